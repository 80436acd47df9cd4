//! The application's state: settings, store, files, clock, secrets, the
//! authenticator and the queues between the HTTP edge and the workers.
//! Every interface and worker takes an [`App`]; this module imports none of
//! them (`server` starts them).

use std::ops::Deref;
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::RngExt;

use crate::clock::Clock;
use crate::config::{Config, DatabaseUrl};
use crate::domain::accounts::Authenticator;
use crate::secrets::SecretBox;
use crate::store::{Files, Store};

pub struct Inner {
    pub config: Config,
    pub store: Store,
    /// Attachments and import files.
    pub files: Files,
    /// Anchors of deep pages of big listings.
    pub pages: crate::domain::lists::Pages,
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
    /// Click links looked up lately.
    pub links: crate::domain::tracking::LinkCache,
    /// Each JSON API key's requests a second (`QUNFA_API_RATE`).
    pub key_rate: crate::domain::api_keys::KeyRate,
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
    /// What the DNS checks of a sending domain compare against: this
    /// platform's host name, bounce domain and listener, SPF include, relay
    /// and signing algorithms, as configured.
    pub fn dns_platform(&self) -> crate::domain::senders::health::Platform {
        crate::domain::senders::health::Platform {
            helo_name: self.config.helo_name.to_ascii_lowercase(),
            bounce_domain: self.config.bounce_domain.clone(),
            bounce_listen: self.config.bounce_listen,
            spf_include: self.config.spf_include.clone(),
            relay: self.config.smtp_relay.as_ref().map(|r| r.host.clone()),
            algorithms: self.config.dkim_algorithms(),
        }
    }

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
            auth: Authenticator::default(),
            files: Files::new(store.clone(), config.files_dir.clone()),
            pages: crate::domain::lists::Pages::default(),
            key_rate: crate::domain::api_keys::KeyRate::new(config.api_rate),
            config,
            store,
            link_signer: crate::mail::LinkSigner::new(&link_secret),
            link_secret,
            secret_box,
            import_wakeup: tokio::sync::Notify::new(),
            engine_wakeup: tokio::sync::Notify::new(),
            hits: crate::tracking::Recorder::default(),
            links: crate::domain::tracking::LinkCache::default(),
        })))
    }
}

/// A 32-byte platform secret named `name`: the file `name` in the data dir
/// (SQLite) or the setting `name` with `-` as `_` (PostgreSQL). The first
/// writer wins, on every node.
async fn load_secret(config: &Config, store: &Store, name: &str) -> anyhow::Result<[u8; 32]> {
    let fresh = hex::encode(rand::rng().random::<[u8; 32]>());
    let text = match config.database {
        DatabaseUrl::Postgres(_) => store.setting_or_insert(&name.replace('-', "_"), &fresh).await?,
        DatabaseUrl::Sqlite(_) => {
            let path = config.data_dir.join(name);
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
    let bytes = hex::decode(text.trim()).with_context(|| format!("the secret {name} is corrupt"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the secret {name} has the wrong length"))
}
