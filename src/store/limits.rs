//! Per-destination limits shared by every process on a PostgreSQL database
//! (`delivery::throttle`, through the engine): connection slots leased to
//! processes, each group's next start time, and who asked for slots
//! lately. One statement each, timed by the database's clock. SQLite runs
//! one node, whose limits stay in its process: these answer an error there.

use std::time::Duration;

use super::{Store, StoreError, StoreResult};

/// The database's clock in epoch seconds, for the statements below.
const NOW: &str = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION";

fn postgres(store: &Store) -> StoreResult<&sqlx::PgPool> {
    match store {
        Store::Postgres(p) => Ok(p),
        Store::Sqlite(_) => Err(StoreError::Failed(
            "limits shared by a cluster need PostgreSQL".to_string(),
        )),
    }
}

impl Store {
    /// Leases up to `want` free slots of `group` (numbered below `limit`)
    /// to `holder` for `lease`; a slot is free when nobody holds it or its
    /// lease ran out. When it gets fewer than `want`, marks the group
    /// wanted now. Returns the slots taken.
    pub async fn lease_slots(
        &self,
        group: &str,
        limit: u32,
        want: u32,
        holder: &str,
        lease: Duration,
    ) -> StoreResult<Vec<u32>> {
        let pool = postgres(self)?;
        // Two processes may pick the same free slot: the second's insert
        // waits for the first's and then finds the slot held, so it gets
        // fewer slots, never a slot held by another.
        let sql = format!(
            "WITH free AS (SELECT s FROM generate_series(0, $2 - 1) AS s WHERE NOT EXISTS \
             (SELECT 1 FROM dest_slots d WHERE d.grp = $1 AND d.slot = s AND d.expires_at >= {NOW}) \
             ORDER BY s LIMIT $3) \
             INSERT INTO dest_slots (grp, slot, holder, expires_at) SELECT $1, s, $4, {NOW} + $5 FROM free \
             ON CONFLICT (grp, slot) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE dest_slots.expires_at < {NOW} RETURNING slot"
        );
        let slots: Vec<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(group)
            .bind(limit as i32)
            .bind(want as i32)
            .bind(holder)
            .bind(lease.as_secs_f64())
            .fetch_all(pool)
            .await?;
        if (slots.len() as u32) < want {
            let sql = format!(
                "INSERT INTO dest_groups (grp, wanted_at) VALUES ($1, {NOW}) \
                 ON CONFLICT (grp) DO UPDATE SET wanted_at = EXCLUDED.wanted_at"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(group)
                .execute(pool)
                .await?;
        }
        Ok(slots.into_iter().map(|s| s as u32).collect())
    }

    /// Gives `holder`'s slots of `group` back.
    pub async fn release_slots(&self, group: &str, slots: &[u32], holder: &str) -> StoreResult<()> {
        let pool = postgres(self)?;
        let slots: Vec<i32> = slots.iter().map(|s| *s as i32).collect();
        sqlx::query("DELETE FROM dest_slots WHERE grp = $1 AND holder = $2 AND slot = ANY($3)")
            .bind(group)
            .bind(holder)
            .bind(&slots)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Renews every slot `holder` holds for another `lease`; those it holds.
    pub async fn renew_slots(&self, holder: &str, lease: Duration) -> StoreResult<Vec<(String, u32)>> {
        let pool = postgres(self)?;
        let sql =
            format!("UPDATE dest_slots SET expires_at = {NOW} + $2 WHERE holder = $1 RETURNING grp, slot");
        let rows: Vec<(String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(lease.as_secs_f64())
            .fetch_all(pool)
            .await?;
        Ok(rows.into_iter().map(|(g, s)| (g, s as u32)).collect())
    }

    /// The groups among `groups` some process asked slots for in the last
    /// `within`.
    pub async fn wanted_groups(&self, groups: &[String], within: Duration) -> StoreResult<Vec<String>> {
        let pool = postgres(self)?;
        let sql = format!("SELECT grp FROM dest_groups WHERE grp = ANY($1) AND wanted_at > {NOW} - $2");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(groups)
            .bind(within.as_secs_f64())
            .fetch_all(pool)
            .await?;
        Ok(rows)
    }

    /// Books `span` of `group`'s sending time: the group's next start time
    /// (never before now) moves on by `span`. Returns how far ahead of now
    /// the booked span begins, whether the group had started nothing for
    /// `quiet` (its previous next start time that long past), and whether a
    /// process asked for the group's slots in the last `within`.
    pub async fn book_span(
        &self,
        group: &str,
        span: Duration,
        quiet: Duration,
        within: Duration,
    ) -> StoreResult<(f64, bool, bool)> {
        let pool = postgres(self)?;
        // SET reads the row as it was: `quiet` is decided on the old time.
        let sql = format!(
            "INSERT INTO dest_groups (grp, tat, quiet) VALUES ($1, {NOW} + $2, TRUE) \
             ON CONFLICT (grp) DO UPDATE SET tat = GREATEST(dest_groups.tat, {NOW}) + $2, \
             quiet = dest_groups.tat + $3 <= {NOW} \
             RETURNING GREATEST(tat - $2 - {NOW}, 0), quiet, wanted_at > {NOW} - $4"
        );
        let row: (f64, bool, bool) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(group)
            .bind(span.as_secs_f64())
            .bind(quiet.as_secs_f64())
            .bind(within.as_secs_f64())
            .fetch_one(pool)
            .await?;
        Ok(row)
    }
}
