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

use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::{StoreError, StoreResult};

/// A prepared statement on a locked connection; finalized when dropped,
/// or, when a reader's cache keeps it, reset for the next use.
pub(crate) struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    kept: bool,
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

/// Compiles `sql` on a connection the caller holds alone; the caller
/// finalizes the statement.
fn compile(db: NonNull<ffi::sqlite3>, sql: &str) -> StoreResult<NonNull<ffi::sqlite3_stmt>> {
    let mut stmt = ptr::null_mut();
    // SAFETY: the caller holds the connection alone, so no other thread
    // uses it; `sql` is passed with its length (no NUL needed).
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
        Some(stmt) if rc == ffi::SQLITE_OK => Ok(stmt),
        _ => Err(error(db, rc)),
    }
}

impl<'h> Statement<'h> {
    pub fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> StoreResult<Statement<'h>> {
        Statement::prepare_on(handle.as_raw_handle(), sql)
    }

    /// On a connection the caller holds alone for `'h`.
    fn prepare_on(db: NonNull<ffi::sqlite3>, sql: &str) -> StoreResult<Statement<'h>> {
        Ok(Statement {
            db,
            stmt: compile(db, sql)?,
            kept: false,
            _handle: PhantomData,
        })
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

    /// Column `col` of the current row as an integer; `None` for NULL.
    pub fn optional_int(&self, col: c_int) -> Option<i64> {
        // SAFETY: called between a step that returned a row and the next step.
        let null = unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), col) } == ffi::SQLITE_NULL;
        (!null).then(|| self.int(col))
    }

    /// Column `col` of the current row as bytes, valid until the next step;
    /// empty for NULL.
    pub fn blob(&self, col: c_int) -> &[u8] {
        // SAFETY: as in `text`: SQLite's buffer for this column stays put
        // until the row changes, and `&self` keeps the statement from stepping.
        unsafe {
            let p = ffi::sqlite3_column_blob(self.stmt.as_ptr(), col);
            if p.is_null() {
                return &[];
            }
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), col);
            std::slice::from_raw_parts(p.cast(), usize::try_from(n).unwrap_or(0))
        }
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
        // SAFETY: on the connection still locked for `'h`. A kept statement
        // is reset (ending its read) and unbound, and stays the cache's to
        // finalize; any other is finalized once, here.
        unsafe {
            if self.kept {
                ffi::sqlite3_reset(self.stmt.as_ptr());
                ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
            } else {
                ffi::sqlite3_finalize(self.stmt.as_ptr());
            }
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

/// One read-only connection, with the statements it has prepared, by their
/// SQL: an API page runs the same few statements on every request, and
/// compiling them was a fifth of its time.
pub(crate) struct Reader {
    db: NonNull<ffi::sqlite3>,
    statements: HashMap<String, NonNull<ffi::sqlite3_stmt>>,
}

// SAFETY: a connection is used by one thread at a time (it is taken out of
// the idle list while in use), its statements with it; SQLite is built
// thread-safe.
unsafe impl Send for Reader {}

impl Reader {
    fn finalize_statements(&mut self) {
        for (_, stmt) in self.statements.drain() {
            // SAFETY: no Statement borrows one now (they borrow the reader).
            unsafe {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.finalize_statements();
        // SAFETY: its statements are finalized, so it closes.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// Statements a reader keeps; past this the cache starts again (the SQL of
/// a listing varies with its filter, but only over a few shapes).
const STATEMENTS_KEPT: usize = 64;

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
        let reader = Reader {
            db,
            statements: HashMap::new(),
        };
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
        let mut reader = match taken {
            Some(r) => r,
            None => self.open()?,
        };
        let result = f(&mut ReaderUse { reader: &mut reader });
        // A read that failed inside its transaction must not leave the
        // reader on an old snapshot.
        // SAFETY: the reader is ours alone here, its statements reset.
        if unsafe { ffi::sqlite3_get_autocommit(reader.db.as_ptr()) } == 0 {
            let ended = Statement::prepare_on(reader.db, "ROLLBACK").and_then(|mut st| st.next_row());
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
    reader: &'r mut Reader,
}

impl ReaderUse<'_> {
    /// The statement of SQL written with `$N` parameters, as qunfa's queries
    /// are for both backends (SQLite numbers `$N` by first appearance, `?N`
    /// by N), prepared on first use and kept by the reader.
    pub fn prepare(&mut self, sql: &str) -> StoreResult<Statement<'_>> {
        let db = self.reader.db;
        let stmt = match self.reader.statements.get(sql) {
            Some(stmt) => *stmt,
            None => {
                let stmt = compile(db, &sql.replace('$', "?"))?;
                if self.reader.statements.len() >= STATEMENTS_KEPT {
                    self.reader.finalize_statements();
                }
                self.reader.statements.insert(sql.to_string(), stmt);
                stmt
            }
        };
        Ok(Statement {
            db,
            stmt,
            kept: true,
            _handle: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // A writable connection makes the file; the readers only read it.
        let mut db = ptr::null_mut();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; closed below.
        unsafe {
            ffi::sqlite3_open(c.as_ptr(), &mut db);
        }
        let db = NonNull::new(db).unwrap();
        for sql in [
            "PRAGMA journal_mode = WAL",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, b BLOB)",
            "INSERT INTO t VALUES (1, 'one', NULL, x'0102'), (2, 'two', 7, NULL), (3, 'three', 9, x'')",
        ] {
            let mut st = Statement::prepare_on(db, sql).unwrap();
            while st.next_row().unwrap() {}
        }
        // SAFETY: its statements are finalized.
        unsafe {
            ffi::sqlite3_close(db.as_ptr());
        }
        (dir, path)
    }

    fn names_from(r: &mut ReaderUse<'_>, id: i64) -> Vec<String> {
        let mut st = r
            .prepare("SELECT name FROM t WHERE id >= $1 ORDER BY id")
            .unwrap();
        st.bind_int(1, id).unwrap();
        let mut v = Vec::new();
        while st.next_row().unwrap() {
            v.push(st.text(0).to_string());
        }
        v
    }

    #[test]
    fn a_kept_statement_runs_again_with_new_values() {
        let (_dir, path) = database();
        let readers = Readers::new(&path).unwrap();
        for _ in 0..3 {
            readers
                .with(|r| {
                    assert_eq!(names_from(r, 2), ["two", "three"]);
                    // Stopped after one row: the next use starts afresh.
                    let mut st = r.prepare("SELECT name FROM t WHERE id >= $1 ORDER BY id")?;
                    st.bind_int(1, 1)?;
                    assert!(st.next_row()?);
                    assert_eq!(st.text(0), "one");
                    drop(st);
                    assert_eq!(names_from(r, 3), ["three"]);
                    Ok(())
                })
                .unwrap();
        }
    }

    #[test]
    fn more_statements_than_kept_all_answer() {
        let (_dir, path) = database();
        let readers = Readers::new(&path).unwrap();
        readers
            .with(|r| {
                for i in 0..(STATEMENTS_KEPT as i64 * 2 + 3) {
                    let mut st = r.prepare(&format!("SELECT {i} + n FROM t WHERE id = $1"))?;
                    st.bind_int(1, 2)?;
                    assert!(st.next_row()?);
                    assert_eq!(st.int(0), i + 7);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn nulls_blobs_and_integers_read_as_stored() {
        let (_dir, path) = database();
        let readers = Readers::new(&path).unwrap();
        let rows = readers
            .with(|r| {
                let mut st = r.prepare("SELECT n, b FROM t ORDER BY id")?;
                let mut v = Vec::new();
                while st.next_row()? {
                    v.push((st.optional_int(0), st.blob(1).to_vec()));
                }
                Ok(v)
            })
            .unwrap();
        assert_eq!(rows, [(None, vec![1, 2]), (Some(7), vec![]), (Some(9), vec![])]);
    }
}
