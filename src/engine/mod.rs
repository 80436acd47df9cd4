//! The engine: the work that runs behind the HTTP edge, in `serve` and in
//! `worker`: the import runner and the task scheduler; the delivery workers
//! of DESIGN.md join them.

pub mod imports;
pub mod scheduler;

use tokio::sync::watch;

use crate::app::App;

/// Runs every engine activity until `stop` turns true.
pub async fn run(app: App, stop: watch::Receiver<bool>) {
    tracing::debug!(backend = app.store.backend(), "engine started");
    tokio::join!(imports::run(app.clone(), stop.clone()), scheduler::run(app, stop));
    tracing::debug!("engine stopped");
}
