//! The application: settings, store, clock, secrets and the authenticator,
//! shared by the HTTP edge, the engine and the admin commands; and the
//! start/stop of a server, used by `qunfa serve` and by the tests.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::RngExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, DatabaseUrl};
use crate::http::auth::Authenticator;
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
    pub auth: Authenticator,
    /// Wakes the import runner when a file is queued.
    pub import_wakeup: tokio::sync::Notify,
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
    /// the link-signing secret, creating it once.
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
        let link_secret = load_link_secret(&config, &store).await?;
        Ok(App(Arc::new(Inner {
            clock: Clock::new(config.timezone.clone()),
            auth: Authenticator::new(store.clone()),
            files: Files::new(store.clone(), config.files_dir.clone()),
            pages: Pages::default(),
            config,
            store,
            link_secret,
            import_wakeup: tokio::sync::Notify::new(),
        })))
    }
}

/// SQLite: a file in the data dir. PostgreSQL: a row every node shares (H-8).
async fn load_link_secret(config: &Config, store: &Store) -> anyhow::Result<[u8; 32]> {
    let fresh = hex::encode(rand::rng().random::<[u8; 32]>());
    let text = match config.database {
        DatabaseUrl::Postgres(_) => store.setting_or_insert("link_secret", &fresh).await?,
        DatabaseUrl::Sqlite(_) => {
            let path = config.data_dir.join("link-secret");
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                    }
                    f.write_all(fresh.as_bytes())?;
                    f.sync_all()?;
                    fresh
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
    };
    let bytes = hex::decode(text.trim()).context("the link-signing secret is corrupt")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the link-signing secret has the wrong length"))
}

/// A running server (HTTP and engine).
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    engine: JoinHandle<()>,
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
        let engine = if engine {
            tokio::spawn(crate::engine::run(app.clone(), stopped))
        } else {
            tokio::spawn(async {})
        };
        Ok(Running {
            addr,
            app,
            stop,
            http,
            engine,
        })
    }

    /// Stops accepting, lets requests in flight finish, stops the engine and
    /// closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.http.await??;
        self.engine.await?;
        self.app.store.close().await;
        Ok(())
    }
}
