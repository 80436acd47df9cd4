//! The database: SQLite (embedded default) or PostgreSQL (scale-out), one
//! schema with a migration set per backend. Queries are written once with `$N`
//! placeholders and compiled for both pools by [`on_pool!`]; where the dialects
//! differ, the code branches on [`Store`] openly. Nothing of sqlx leaks upward.

mod accounts;
mod api_keys;
mod bounces;
mod caps;
mod conn;
mod credits;
mod deliveries;
mod files;
mod ids;
mod limits;
mod lists;
mod reports;
mod senders;
mod sessions;
mod sqlite_rows;
mod suppressions;
mod tasks;
mod templates;
mod tracking;
mod webhooks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Database, Transaction};

use crate::config::DatabaseUrl;

pub use bounces::Applied;
pub use deliveries::{Claimed, Outcome};
pub use files::{FileCursor, Files};

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

/// A write transaction. Every write goes through one. On SQLite it takes
/// the write lock up front (`BEGIN IMMEDIATE`: a deferred one fails under
/// concurrent writers) and first queues, in this process, behind the other
/// writers of the same database file: SQLite's busy handler is not fair, and
/// without a queue a long import that commits batch after batch would starve
/// every other writer until its busy timeout.
pub(crate) trait WritePool {
    type Db: Database;
    fn begin_write(&self) -> impl Future<Output = Result<WriteTx<Self::Db>, sqlx::Error>> + Send;
}

/// A write transaction, holding its place in the writers' queue until it ends.
pub(crate) struct WriteTx<DB: Database> {
    tx: Transaction<'static, DB>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: Database> WriteTx<DB> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// A value bound to a one-statement write.
pub enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    Bytes(&'a [u8]),
    OptText(Option<&'a str>),
    Bool(bool),
}

/// Binds [`Arg`]s inside `on_pool!` (compiled for each backend).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::OptInt(v) => q.bind(*v),
                Arg::Bytes(v) => q.bind(*v),
                Arg::Text(v) => q.bind(*v),
                Arg::OptText(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

impl Store {
    /// One statement in a write transaction of its own; the rows it changed.
    pub(crate) async fn write(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = bind_args!(sqlx::query(sql), args).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    /// One `INSERT … RETURNING id` in a write transaction of its own.
    pub(crate) async fn insert_id(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<i64, sqlx::Error> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = bind_args!(sqlx::query_scalar::<_, i64>(sql), args).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(id)
        })
    }
}

/// The writers' queue of a SQLite database file.
fn sqlite_queue(pool: &SqlitePool) -> Arc<tokio::sync::Mutex<()>> {
    static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let file = pool.connect_options().get_filename().to_path_buf();
    QUEUES
        .lock()
        .expect("writer queues lock")
        .entry(file)
        .or_default()
        .clone()
}

/// The read-only connections of a SQLite database file
/// ([`sqlite_rows::Readers`]), kept until the store closes.
pub(crate) fn sqlite_readers(pool: &SqlitePool) -> StoreResult<Arc<sqlite_rows::Readers>> {
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut readers = READERS.lock().expect("readers lock");
    if let Some(r) = readers.get(&file) {
        return Ok(r.clone());
    }
    let r = Arc::new(sqlite_rows::Readers::new(&file)?);
    readers.insert(file, r.clone());
    Ok(r)
}

static READERS: LazyLock<Mutex<HashMap<PathBuf, Arc<sqlite_rows::Readers>>>> =
    LazyLock::new(Default::default);

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Sqlite>, sqlx::Error> {
        let turn = sqlite_queue(self).lock_owned().await;
        let tx = self.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            tx,
            _turn: Some(turn),
        })
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Postgres>, sqlx::Error> {
        Ok(WriteTx {
            tx: self.begin().await?,
            _turn: None,
        })
    }
}

pub use crate::domain::storage::{Refusal, StoreError, StoreResult};

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if is_transient(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Failed(e.to_string())
        }
    }
}

/// Whether a driver error may go away by itself: the database went away,
/// was busy, or its disk was full.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            match code.parse::<i32>() {
                Ok(n) => sqlite_code_is_transient(n),
                // PostgreSQL's SQLSTATE: connection exceptions, resources
                // (disk full), shutdowns, serialization failures.
                Err(_) => ["08", "53", "57P", "40"].iter().any(|c| code.starts_with(c)),
            }
        }
        _ => false,
    }
}

/// SQLite's result codes, extended ones carrying the primary in their low
/// byte: BUSY, LOCKED, IOERR, FULL.
pub(crate) fn sqlite_code_is_transient(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13)
}

/// Turns a unique-index violation into [`StoreError::Duplicate`].
pub(crate) fn unique_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate(what),
        _ => StoreError::from(e),
    }
}

/// Whether a SQLite connection given back to the pool may serve again. When
/// SQLite rolls a transaction back by itself (a full disk, an I/O error),
/// sqlx's ROLLBACK then fails and sqlx goes on counting the transaction as
/// open: every later BEGIN on that connection would fail. Such a connection
/// is closed instead. The ping waits for a ROLLBACK still queued on the
/// connection (a transaction dropped unfinished), which ends it normally.
async fn sqlite_connection_reusable(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    Ok(!conn.is_in_transaction())
}

impl Store {
    /// Connects, creating the SQLite file (and its folder) on first start, and
    /// applies the migrations.
    pub async fn open(url: &DatabaseUrl) -> StoreResult<Store> {
        let store = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Failed(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                sqlite_rows::configure_once();
                let opts = sqlite_options(path);
                let pool = PoolOptions::<sqlx::Sqlite>::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_release(|conn, _| Box::pin(sqlite_connection_reusable(conn)))
                    .connect_with(opts)
                    .await?;
                spawn_checkpointer(pool.clone());
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
        result.map_err(|e| StoreError::Failed(format!("migration failed: {e}")))
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
        if let Store::Sqlite(p) = self {
            let file = p.connect_options().get_filename().to_path_buf();
            READERS.lock().expect("readers lock").remove(&file);
        }
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
    /// the one that is kept: the first writer wins, on every node. Reads
    /// first, so that a start (or an admin command) takes no write lock when
    /// the value is there.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        if let Some(v) = self.setting(key).await? {
            return Ok(v);
        }
        self.write(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[Arg::Text(key), Arg::Text(value)],
        )
        .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Failed(format!("setting {key} vanished")))
    }
}

/// Copies the WAL back into the database file every half second, on a
/// connection of its own and without blocking writers (PASSIVE). With
/// SQLite's automatic checkpoints the commit that crossed the threshold did
/// it, fsyncs included: a tenth of an import's time, on the one writer.
fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await
                && !pool.is_closed()
            {
                tracing::warn!(error = %e, "WAL checkpoint");
            }
        }
    });
}

fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // A small page cache (4 MiB) per connection: sending and reading
        // touch few pages, and the files stay in the system's cache. An
        // import goes as fast with it as with four times as much (measured
        // at a million lines, bench/import.sh), and a bigger cache stayed
        // with every pooled connection that had written a batch.
        .pragma("cache_size", "-4096")
        .pragma("temp_store", "memory")
        // No checkpoint in the commit that crosses a threshold: the
        // checkpointer does them beside the writers (spawn_checkpointer).
        .pragma("wal_autocheckpoint", "0")
}
