//! The engine: the work that runs behind the HTTP edge, in `serve` and in
//! `worker`: the import runner, the task scheduler and the delivery
//! workers. [`run`] keeps them going; [`step`] takes one turn of each, for
//! whoever drives the engine itself.

pub mod imports;
pub mod limits;
mod outbox;
pub mod scheduler;
pub mod sending;

use tokio::sync::watch;

pub use outbox::Outbox;

use crate::app::App;

/// The SMTP client of this process: the DNS resolver for MX delivery (the
/// system's, or `QUNFA_DNS_SERVER`; a relay needs none). On PostgreSQL its
/// per-destination limits hold for every process on the database; on SQLite
/// (one node) in this process.
pub fn mailer(app: &App) -> anyhow::Result<std::sync::Arc<crate::delivery::Mailer>> {
    use crate::delivery::{Mailer, MailerSettings};
    let resolver = std::sync::Arc::new(crate::delivery::HickoryResolver::new(app.config.dns_server)?);
    let settings = MailerSettings::from_config(&app.config);
    let mailer = match app.store {
        crate::store::Store::Postgres(_) => {
            let coordinator = limits::StoreCoordinator::new(
                app.store.clone(),
                &app.config.helo_name,
                app.config.delivery_lease,
            );
            Mailer::clustered(settings, resolver, std::sync::Arc::new(coordinator))?
        }
        crate::store::Store::Sqlite(_) => Mailer::new(settings, resolver)?,
    };
    Ok(std::sync::Arc::new(mailer))
}

/// Runs every engine activity until `stop` turns true.
pub async fn run(app: App, stop: watch::Receiver<bool>) {
    tracing::debug!(backend = app.store.backend(), "engine started");
    let mailer = match mailer(&app) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up SMTP delivery; nothing will be sent");
            tokio::join!(imports::run(app.clone(), stop.clone()), scheduler::run(app, stop));
            return;
        }
    };
    tokio::join!(
        imports::run(app.clone(), stop.clone()),
        scheduler::run(app.clone(), stop.clone()),
        sending::run(app, mailer.clone(), stop),
    );
    mailer.close().await;
    tracing::debug!("engine stopped");
}

/// One turn of the engine: a batch of the import runner, the scheduler's
/// step (services followed, due tasks started), then one batch of due
/// deliveries claimed, sent and recorded. Returns whether it found work,
/// so that `while step(..).await? {}` runs everything that is due now.
pub async fn step(app: &App, mailer: &std::sync::Arc<crate::delivery::Mailer>) -> anyhow::Result<bool> {
    let imported = imports::run_batches(app, 1).await?;
    let started = scheduler::step(app).await?;
    let sent = sending::step(app, mailer).await?;
    Ok(imported || started > 0 || sent > 0)
}

/// Stops a background task when its owner goes, whichever way it goes.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
