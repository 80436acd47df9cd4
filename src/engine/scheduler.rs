//! The scheduler: starts waiting tasks whose time has come (D-20), within a
//! second of it, unless their service can't send (H-3: they stay waiting);
//! pauses the sending tasks of a service that became unusable and resumes
//! them when it is usable again (H-3); settles cancelled tasks whose last
//! messages in flight were held by a worker that died.

use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::domain::accounts::{self, ServiceType};
use crate::domain::ids::CustomerId;
use crate::domain::tasks::SendStatus;
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

/// Pauses or resumes tasks as their services go (H-3), then starts the
/// tasks that are due now; returns how many it started.
pub async fn step(app: &App) -> StoreResult<usize> {
    let now = app.clock.now();
    let today = app.clock.today();
    follow_services(app, now).await?;
    app.store.settle_stopped_tasks(now).await?;
    let mut started = 0;
    for (task, customer) in app.store.due_tasks(now, 100).await? {
        let service = accounts::service(&app.store, CustomerId(customer)).await?;
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

/// H-3: the running tasks of a service that is disabled or outside its
/// dates go to -2, marked as paused by the platform; they return to 2 when
/// it is usable again. A task the user paused stays paused.
async fn follow_services(app: &App, now: i64) -> StoreResult<()> {
    let today = app.clock.today();
    let mut usable = std::collections::HashMap::new();
    for (customer, status) in app.store.customers_sending().await? {
        let ok = match usable.get(&customer) {
            Some(ok) => *ok,
            None => {
                let ok = accounts::service(&app.store, CustomerId(customer))
                    .await?
                    .is_usable(today);
                usable.insert(customer, ok);
                ok
            }
        };
        // Only a change is written: sending while unusable, or paused while usable.
        if ok == (status == SendStatus::Paused) {
            let changed = app.store.follow_service(customer, ok, now).await?;
            let what = if ok {
                "resumed: service usable again"
            } else {
                "paused: service unusable"
            };
            tracing::info!(customer, tasks = changed, "{what}");
        }
    }
    Ok(())
}
