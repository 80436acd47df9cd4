//! The engine: the work that runs behind the HTTP edge, in `serve` and in
//! `worker`: the import runner and the task scheduler; the delivery workers
//! of DESIGN.md join them.

pub mod imports;
pub mod scheduler;
pub mod sending;

use tokio::sync::watch;

use crate::app::App;

/// The SMTP client of this process: the system's DNS resolver for MX
/// delivery (a relay needs none).
fn mailer(app: &App) -> anyhow::Result<std::sync::Arc<crate::delivery::Mailer>> {
    let resolver = std::sync::Arc::new(crate::delivery::HickoryResolver::from_system_conf()?);
    let settings = crate::delivery::MailerSettings::from_config(&app.config);
    Ok(std::sync::Arc::new(crate::delivery::Mailer::new(
        settings, resolver,
    )?))
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

/// Stops a background task when its owner goes, whichever way it goes.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
