//! The engine: scheduler and delivery workers that move tasks through the
//! flow of DESIGN.md. For now it is the loop they will run in; `step` is the
//! unit of work tests will drive deterministically.

use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;

const TICK: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    tracing::debug!(backend = app.store.backend(), "engine started");
    loop {
        if *stop.borrow() {
            break;
        }
        let did = step(&app).await;
        if did == 0 {
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
    tracing::debug!("engine stopped");
}

/// One pass over the due work; returns how many items it moved. There is no
/// work yet: tasks arrive with the send issue.
pub async fn step(_app: &App) -> usize {
    0
}
