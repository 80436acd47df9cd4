//! Many rows into SQLite through one prepared statement, as the `sqlite3`
//! shell's `.import` does: each row binds its text in place and steps. sqlx
//! copies every bound value twice (into its argument list, then into SQLite)
//! and runs statements on a worker thread; for an import of a million rows
//! that was half of the time.
//!
//! The statement runs on the connection sqlx lent us ([`LockedSqliteHandle`]),
//! inside the caller's transaction.

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
    StoreError::Other(format!("database error: {} (code {rc})", msg.to_string_lossy()))
}

impl<'h> Statement<'h> {
    pub fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> StoreResult<Statement<'h>> {
        let db = handle.as_raw_handle();
        let mut stmt = ptr::null_mut();
        // SAFETY: the handle is locked for `'h`, so no other thread uses the
        // connection; `sql` is passed with its length (no NUL needed).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                c_int::try_from(sql.len()).map_err(|_| StoreError::Other("statement too long".into()))?,
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
