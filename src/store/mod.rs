//! The database: SQLite (embedded default) or PostgreSQL (scale-out), one
//! schema with a migration set per backend. Queries are written once with `$N`
//! placeholders and compiled for both pools by [`on_pool!`]; where the dialects
//! differ, the code branches on [`Store`] openly. Nothing of sqlx leaks upward.

mod accounts;
mod files;
mod lists;
mod pages;
mod senders;
mod templates;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Database, Transaction};

use crate::config::DatabaseUrl;

pub use accounts::{NewCustomer, StoredCredential};
pub use files::{FileCursor, Files};
pub use lists::{
    AddressChange, AddressFilter, ImportJob, ImportProgress, ImportState, ListChange, NewImport, Start,
    Unsubscribe,
};
pub use pages::Pages;
pub use senders::{Mailbox, MailboxScope, SenderDomain, StoredDkimKey};
pub use templates::{AttachOutcome, Attachment, NewAttachment, NewTemplate, Template, TemplateChange};

#[derive(Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has: one
/// source, compiled once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A transaction that will write after it reads. SQLite takes the write lock
/// up front (`BEGIN IMMEDIATE`): a deferred one fails under concurrent writers.
pub(crate) trait WritePool {
    type Db: Database;
    fn begin_write(&self)
    -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken; the string names what was duplicated.
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// A referenced row does not exist; the string names what was missing.
    #[error("unknown {0}")]
    NotFound(&'static str),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Turns a unique-index violation into [`StoreError::Duplicate`].
pub(crate) fn unique_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate(what),
        _ => StoreError::Db(e),
    }
}

impl Store {
    /// Connects, creating the SQLite file (and its folder) on first start, and
    /// applies the migrations.
    pub async fn open(url: &DatabaseUrl) -> StoreResult<Store> {
        let store = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", parent.display())))?;
                }
                let opts = sqlite_options(path);
                let pool = PoolOptions::<sqlx::Sqlite>::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?;
                Store::Sqlite(pool)
            }
            DatabaseUrl::Postgres(url) => {
                let opts = PgConnectOptions::from_str(url)?;
                let pool = PoolOptions::<sqlx::Postgres>::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?;
                Store::Postgres(pool)
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let result = match self {
            Store::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await,
            Store::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        };
        result.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Can the database answer?
    pub async fn ping(&self) -> bool {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let v = on_pool!(self, p => sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(p)
            .await)?;
        Ok(v)
    }

    /// Stores `value` under `key` unless a value is there already, and returns
    /// the one that is kept: the first writer wins, on every node.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        on_pool!(self, p => sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(p)
            .await
            .map(|_| ()))?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Other(format!("setting {key} vanished")))
    }
}

fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
}
