//! The scheduler: starts waiting tasks whose time has come (D-20), within a
//! second of it, unless their service can't send (H-3: they stay waiting).

use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::domain::accounts::ServiceType;
use crate::store::StoreResult;

const TICK: Duration = Duration::from_millis(500);

/// Runs until `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = step(&app).await {
            tracing::error!(error = %e, "scheduler");
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = app.engine_wakeup.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// Starts the tasks that are due now; returns how many it started.
pub async fn step(app: &App) -> StoreResult<usize> {
    let now = app.clock.now();
    let today = app.clock.today();
    let mut started = 0;
    for (task, customer) in app.store.due_tasks(now, 100).await? {
        let service = app.store.service(customer).await?;
        if !service.is_usable(today) {
            continue;
        }
        let all_type = service.service_type == ServiceType::All;
        if let Some(n) = app.store.start_task(task, now, all_type).await? {
            tracing::info!(task, recipients = n, "task started");
            started += 1;
        }
    }
    Ok(started)
}
