//! The engine: the work that runs behind the HTTP edge, in `serve` and in
//! `worker`. For now: the import runner. The scheduler and delivery workers
//! of DESIGN.md arrive with the send issue.

pub mod imports;

use tokio::sync::watch;

use crate::app::App;

/// Runs every engine activity until `stop` turns true.
pub async fn run(app: App, stop: watch::Receiver<bool>) {
    tracing::debug!(backend = app.store.backend(), "engine started");
    imports::run(app, stop).await;
    tracing::debug!("engine stopped");
}
