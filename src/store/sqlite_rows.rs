//! SQLite called directly, where sqlx's way costs more than the work:
//! - many rows into SQLite through one prepared statement, as the `sqlite3`
//!   shell's `.import` does: each row binds its text in place and steps.
//!   sqlx copies every bound value twice (into its argument list, then into
//!   SQLite) and runs statements on a worker thread; for an import of a
//!   million rows that was half of the time. The statement runs on the
//!   connection sqlx lent us ([`LockedSqliteHandle`]), inside the caller's
//!   transaction.
//! - reads of a page of rows on connections of our own ([`Readers`]), on the
//!   caller's thread: sqlx hands each row from its connection's thread to
//!   the caller's over a channel, and the thread switches that cost were
//!   most of an API read's time.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::{StoreError, StoreResult};

/// A prepared statement on a locked connection; finalized when dropped.
pub(crate) struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    _handle: PhantomData<&'h mut ()>,
}

fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: `db` is an open connection; errmsg returns a NUL-terminated
    // string it owns, copied before any other call.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) };
    let text = format!("{} (code {rc})", msg.to_string_lossy());
    // BUSY, FULL and I/O errors keep their meaning, so that callers retry them.
    if super::sqlite_code_is_transient(rc) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Failed(text)
    }
}

impl<'h> Statement<'h> {
    pub fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> StoreResult<Statement<'h>> {
        Statement::prepare_on(handle.as_raw_handle(), sql)
    }

    /// On a connection the caller holds alone for `'h`.
    fn prepare_on(db: NonNull<ffi::sqlite3>, sql: &str) -> StoreResult<Statement<'h>> {
        let mut stmt = ptr::null_mut();
        // SAFETY: the handle is locked for `'h`, so no other thread uses the
        // connection; `sql` is passed with its length (no NUL needed).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                c_int::try_from(sql.len()).map_err(|_| StoreError::Failed("statement too long".into()))?,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(Statement {
                db,
                stmt,
                _handle: PhantomData,
            }),
            _ => Err(error(db, rc)),
        }
    }

    /// Binds an integer, which SQLite copies: it stays bound across runs.
    pub fn bind_int(&mut self, n: c_int, v: i64) -> StoreResult<()> {
        // SAFETY: a prepared statement on the locked connection.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), n, v) };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        Ok(())
    }

    /// Binds `texts` to the parameters `first`, `first + 1`, …, runs the
    /// statement to its end and resets it; returns how many rows it changed.
    pub fn run<'t>(&mut self, first: c_int, texts: impl IntoIterator<Item = &'t str>) -> StoreResult<u64> {
        let stmt = self.stmt.as_ptr();
        for (n, s) in (first..).zip(texts) {
            // SAFETY: SQLITE_STATIC lets SQLite read the text in place instead
            // of copying it. The text outlives this call, and SQLite reads it
            // only in the step below: every run binds its texts anew.
            let rc = unsafe {
                ffi::sqlite3_bind_text64(
                    stmt,
                    n,
                    s.as_ptr().cast(),
                    s.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        // SAFETY: a prepared statement on the locked connection.
        let (rc, changed, reset) = unsafe {
            let rc = ffi::sqlite3_step(stmt);
            (
                rc,
                ffi::sqlite3_changes64(self.db.as_ptr()),
                ffi::sqlite3_reset(stmt),
            )
        };
        match (rc, reset) {
            (ffi::SQLITE_DONE, ffi::SQLITE_OK) => Ok(changed as u64),
            (ffi::SQLITE_DONE, e) | (e, _) => Err(error(self.db, e)),
        }
    }
}

/// Reading rows: a statement stepped on the locked connection, its columns
/// read in place. sqlx hands each row from its connection thread to the
/// caller's over a channel; for a page of a listing those hand-overs, with
/// the thread switches they cost, were most of a request's time.
impl Statement<'_> {
    /// Binds a text, which SQLite copies.
    pub fn bind_text(&mut self, n: c_int, s: &str) -> StoreResult<()> {
        // SAFETY: a prepared statement on the locked connection; SQLITE_TRANSIENT
        // makes SQLite copy the text before this returns.
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt.as_ptr(),
                n,
                s.as_ptr().cast(),
                s.len() as u64,
                ffi::SQLITE_TRANSIENT(),
                ffi::SQLITE_UTF8 as u8,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        Ok(())
    }

    /// Steps to the next row; false at the end (the statement is then reset).
    pub fn next_row(&mut self) -> StoreResult<bool> {
        // SAFETY: a prepared statement on the locked connection.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => {
                // SAFETY: as above.
                unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
                Ok(false)
            }
            rc => Err(error(self.db, rc)),
        }
    }

    /// Column `col` of the current row as an integer.
    pub fn int(&self, col: c_int) -> i64 {
        // SAFETY: called between a step that returned a row and the next step.
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), col) }
    }

    /// Column `col` of the current row as text, valid until the next step;
    /// empty for NULL. qunfa writes only UTF-8 text.
    pub fn text(&self, col: c_int) -> &str {
        // SAFETY: as above; the pointer and length describe SQLite's buffer
        // for this column, which stays put until the row changes, and `&self`
        // keeps the statement from stepping meanwhile.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), col);
            if p.is_null() {
                return "";
            }
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), col);
            std::slice::from_raw_parts(p, usize::try_from(n).unwrap_or(0))
        };
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// Turns off SQLite's memory statistics, which take a global mutex on every
/// allocation (a tenth of an import's time). Must come before SQLite starts:
/// later it is refused, harmlessly.
pub(crate) fn configure_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config before sqlite3_initialize, once; the first
        // Store::open runs this before it opens any connection.
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        }
    });
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized once, on the connection still locked for `'h`.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// Read-only connections to one database file, opened by qunfa and used on
/// the caller's thread, one caller at a time each. A page read takes tens
/// of microseconds of SQLite's work; doing it in place spares the two
/// thread switches per row batch of sqlx's connection threads. WAL mode lets
/// them read while the writer writes.
pub(crate) struct Readers {
    path: std::ffi::CString,
    idle: std::sync::Mutex<Vec<Reader>>,
}

/// One read-only connection.
pub(crate) struct Reader(NonNull<ffi::sqlite3>);

// SAFETY: a connection is used by one thread at a time (it is taken out of
// the idle list while in use); SQLite is built thread-safe.
unsafe impl Send for Reader {}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: its statements are finalized (they borrow it), so it closes.
        unsafe {
            ffi::sqlite3_close(self.0.as_ptr());
        }
    }
}

/// Idle connections kept: more than the cores is no use to reads on the
/// caller's thread.
const READERS_KEPT: usize = 8;

impl Readers {
    pub fn new(path: &std::path::Path) -> StoreResult<Readers> {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| StoreError::Failed("the database path holds a NUL".into()))?;
        Ok(Readers {
            path,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn open(&self) -> StoreResult<Reader> {
        let mut db = ptr::null_mut();
        // SAFETY: a NUL-terminated path; the handle is closed even on failure.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                self.path.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX,
                ptr::null(),
            )
        };
        let Some(db) = NonNull::new(db) else {
            return Err(StoreError::Failed(format!("cannot open a reader (code {rc})")));
        };
        let reader = Reader(db);
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        // A small page cache: the listings read few pages, and every reader
        // keeps its own.
        for pragma in ["PRAGMA busy_timeout = 30000", "PRAGMA cache_size = -2048"] {
            let mut st = Statement::prepare_on(db, pragma)?;
            while st.next_row()? {}
        }
        Ok(reader)
    }

    /// Runs `f` on an idle reader (one is opened when none is idle).
    pub fn with<T>(&self, f: impl FnOnce(&mut ReaderUse<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let taken = self.idle.lock().expect("readers lock").pop();
        let reader = match taken {
            Some(r) => r,
            None => self.open()?,
        };
        let result = f(&mut ReaderUse {
            db: reader.0,
            _reader: PhantomData,
        });
        // A read that failed inside its transaction must not leave the
        // reader on an old snapshot.
        // SAFETY: the reader is ours alone here, its statements finalized.
        if unsafe { ffi::sqlite3_get_autocommit(reader.0.as_ptr()) } == 0 {
            let ended = Statement::prepare_on(reader.0, "ROLLBACK").and_then(|mut st| st.next_row());
            if ended.is_err() {
                return result;
            }
        }
        let mut idle = self.idle.lock().expect("readers lock");
        if idle.len() < READERS_KEPT {
            idle.push(reader);
        }
        result
    }
}

/// A reader lent to one call.
pub(crate) struct ReaderUse<'r> {
    db: NonNull<ffi::sqlite3>,
    _reader: PhantomData<&'r mut Reader>,
}

impl ReaderUse<'_> {
    /// Prepares SQL written with `$N` parameters, as qunfa's queries are for
    /// both backends: SQLite numbers `$N` by first appearance, `?N` by N.
    pub fn prepare(&mut self, sql: &str) -> StoreResult<Statement<'_>> {
        Statement::prepare_on(self.db, &sql.replace('$', "?"))
    }
}
