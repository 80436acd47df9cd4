//! Statements on a connection of either backend, for the steps that several
//! transactions share (a ledger row, a move of credits, a task's locked
//! read): written once as plain functions over [`Conn`], with the SQL text
//! both dialects accept, instead of once per backend.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, SqliteConnection};

use super::{Arg, bind_args};

/// A row type that both backends can read.
pub(crate) trait AnyRow:
    Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>
{
}

impl<T> AnyRow for T where T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> {}

/// A connection (usually inside a write transaction) of either backend.
pub(crate) trait Conn: Send {
    /// Whether this is PostgreSQL, for the few clauses only it has (`FOR UPDATE`).
    fn is_postgres(&self) -> bool;

    /// Runs one statement; the rows it changed.
    fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// The first column of the first row, if there is a row.
    fn fetch_i64(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;

    /// The first row, if there is one.
    fn fetch_row<R: AnyRow>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<R>, sqlx::Error>> + Send;

    /// Every row.
    fn fetch_rows<R: AnyRow>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send;
}

macro_rules! conn_for {
    ($conn:ty, $postgres:expr) => {
        impl Conn for $conn {
            fn is_postgres(&self) -> bool {
                $postgres
            }

            async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
                Ok(bind_args!(sqlx::query(sql), args)
                    .execute(&mut *self)
                    .await?
                    .rows_affected())
            }

            async fn fetch_i64(
                &mut self,
                sql: &'static str,
                args: &[Arg<'_>],
            ) -> Result<Option<i64>, sqlx::Error> {
                bind_args!(sqlx::query_scalar::<_, i64>(sql), args)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn fetch_row<R: AnyRow>(
                &mut self,
                sql: &'static str,
                args: &[Arg<'_>],
            ) -> Result<Option<R>, sqlx::Error> {
                bind_args!(sqlx::query_as::<_, R>(sql), args)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn fetch_rows<R: AnyRow>(
                &mut self,
                sql: &'static str,
                args: &[Arg<'_>],
            ) -> Result<Vec<R>, sqlx::Error> {
                bind_args!(sqlx::query_as::<_, R>(sql), args)
                    .fetch_all(&mut *self)
                    .await
            }
        }
    };
}

// The two impls are the same text over two connection types; sqlx has no
// type that is either without giving up prepared statements (`Any`).
conn_for!(SqliteConnection, false);
conn_for!(PgConnection, true);
