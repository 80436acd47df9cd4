//! The application: settings, store, clock, secrets and the authenticator,
//! shared by the HTTP edge, the engine and the admin commands; and the
//! start/stop of a server, used by `qunfa serve` and by the tests.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::auth::Authenticator;
use crate::secrets::{SecretBox, load_secret};
use crate::store::{Files, Pages, Store};

pub struct Inner {
    pub config: Config,
    pub store: Store,
    /// Attachments and import files.
    pub files: Files,
    /// Anchors of deep pages of big listings.
    pub pages: Pages,
    pub clock: Clock,
    /// Signs tracking, click and unsubscribe links.
    pub link_secret: [u8; 32],
    /// Signs and verifies the tokens of tracking links (made once from `link_secret`).
    pub link_signer: crate::mail::LinkSigner,
    /// Seals mailbox passwords and DKIM private keys at rest.
    pub secret_box: SecretBox,
    pub auth: Authenticator,
    /// Wakes the import runner when a file is queued.
    pub import_wakeup: tokio::sync::Notify,
    /// Wakes the scheduler when a task may have become due.
    pub engine_wakeup: tokio::sync::Notify,
    /// Tracking hits on their way to the database.
    pub hits: crate::tracking::Recorder,
    pub links: crate::tracking::LinkCache,
}

#[derive(Clone)]
pub struct App(Arc<Inner>);

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Creates the data dir, opens (and migrates) the database, checks the
    /// time zone against the one recorded at first start (H-11), and loads
    /// the link-signing secret and the sealing key, creating them once.
    pub async fn init(config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let store = Store::open(&config.database)
            .await
            .with_context(|| format!("cannot open database {:?}", config.database))?;
        let recorded = store.setting_or_insert("timezone", &config.timezone_name).await?;
        if recorded != config.timezone_name {
            bail!(
                "invalid QUNFA_TIMEZONE: '{}' differs from '{}', the zone this database was created with",
                config.timezone_name,
                recorded
            );
        }
        let link_secret = load_secret(&config, &store, "link-secret").await?;
        let secret_box = SecretBox::new(load_secret(&config, &store, "sealing-key").await?);
        Ok(App(Arc::new(Inner {
            clock: Clock::new(config.timezone.clone()),
            auth: Authenticator::new(store.clone()),
            files: Files::new(store.clone(), config.files_dir.clone()),
            pages: Pages::default(),
            config,
            store,
            link_signer: crate::mail::LinkSigner::new(&link_secret),
            link_secret,
            secret_box,
            import_wakeup: tokio::sync::Notify::new(),
            engine_wakeup: tokio::sync::Notify::new(),
            hits: crate::tracking::Recorder::default(),
            links: crate::tracking::LinkCache::default(),
        })))
    }
}

/// A running server (HTTP and engine).
pub struct Running {
    pub addr: SocketAddr,
    /// Where the bounce listener listens, when it runs.
    pub bounce_addr: Option<SocketAddr>,
    pub app: App,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    engine: JoinHandle<()>,
    /// Stopped after the HTTP server, so the hits of its last requests are written.
    hits_stop: watch::Sender<bool>,
    hits: JoinHandle<()>,
}

impl Running {
    /// Binds the listen address of the settings (port 0 picks a free port)
    /// and starts serving and the engine.
    pub async fn start(config: Config) -> anyhow::Result<Running> {
        Self::start_with(config, true).await
    }

    /// Like [`Running::start`]; without the engine when `engine` is false,
    /// so that tests can drive it a step at a time.
    pub async fn start_with(config: Config, engine: bool) -> anyhow::Result<Running> {
        let listen = config.listen;
        let app = App::init(config).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("invalid QUNFA_LISTEN: cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let mut http_stop = stopped.clone();
        let http = tokio::spawn(crate::http::serve(app.clone(), listener, async move {
            let _ = http_stop.wait_for(|s| *s).await;
        }));
        let bounces = crate::bounce::listener::bind(&app).await?;
        let bounce_addr = bounces.as_ref().map(|l| l.local_addr()).transpose()?;
        let (hits_stop, hits_stopped) = watch::channel(false);
        let hits = tokio::spawn(crate::tracking::write_hits(app.clone(), hits_stopped));
        if let Some(listener) = bounces {
            tokio::spawn(crate::bounce::listener::run(
                app.clone(),
                listener,
                stopped.clone(),
            ));
        }
        let engine = if engine {
            tokio::spawn(crate::engine::run(app.clone(), stopped))
        } else {
            tokio::spawn(async {})
        };
        Ok(Running {
            addr,
            bounce_addr,
            app,
            stop,
            http,
            engine,
            hits_stop,
            hits,
        })
    }

    /// Stops accepting, lets requests in flight finish, stops the engine and
    /// closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.http.await??;
        let _ = self.hits_stop.send(true);
        self.hits.await?;
        self.engine.await?;
        self.app.store.close().await;
        Ok(())
    }
}
