//! Suppressed addresses and the record of lifted ones.

use sqlx::FromRow;

use super::lists::like_pattern;
use super::{Arg, Store, StoreError, StoreResult, WritePool, bind_args, on_pool};
use crate::domain::ids::CustomerId;
use crate::domain::suppressions::{Suppression, SuppressionFilter, SuppressionReason, SuppressionStorage};

#[derive(FromRow)]
struct SuppressionRow {
    address_key: String,
    reason: String,
    detail: String,
    at: i64,
}

impl TryFrom<SuppressionRow> for Suppression {
    type Error = StoreError;
    fn try_from(r: SuppressionRow) -> StoreResult<Suppression> {
        Ok(Suppression {
            reason: SuppressionReason::parse(&r.reason)
                .ok_or_else(|| StoreError::Failed(format!("unknown suppression reason {}", r.reason)))?,
            email: r.address_key,
            detail: r.detail,
            at: r.at,
        })
    }
}

/// The `WHERE` of a filter from `$2` on, and its values.
fn filter_sql<'a>(filter: &'a SuppressionFilter, pattern: &'a Option<String>) -> (String, Vec<Arg<'a>>) {
    let mut sql = String::from(" WHERE customer_id = $1");
    let mut args = Vec::new();
    if let Some(p) = pattern {
        args.push(Arg::Text(p));
        sql.push_str(&format!(" AND address_key LIKE ${} ESCAPE '\\'", args.len() + 1));
    }
    if let Some(r) = filter.reason {
        args.push(Arg::Text(r.as_str()));
        sql.push_str(&format!(" AND reason = ${}", args.len() + 1));
    }
    (sql, args)
}

impl SuppressionStorage for Store {
    async fn suppressions(
        &self,
        customer: CustomerId,
        filter: &SuppressionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Suppression>> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let (where_sql, mut args) = filter_sql(filter, &pattern);
        let mut sql = format!("SELECT address_key, reason, detail, at FROM suppressions{where_sql}");
        if let Some(a) = after {
            args.push(Arg::Text(a));
            sql.push_str(&format!(" AND address_key > ${}", args.len() + 1));
        }
        args.push(Arg::Int(limit));
        sql.push_str(&format!(" ORDER BY address_key LIMIT ${}", args.len() + 1));
        let rows = on_pool!(self, p => {
            let q = sqlx::query_as::<_, SuppressionRow>(sqlx::AssertSqlSafe(sql.clone())).bind(customer);
            bind_args!(q, &args).fetch_all(p).await
        })?;
        rows.into_iter().map(Suppression::try_from).collect()
    }

    async fn suppressions_of(&self, customer: CustomerId, keys: &[String]) -> StoreResult<Vec<Suppression>> {
        let mut found = Vec::new();
        // A page's worth of keys per query, each its own placeholder.
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT address_key, reason, detail, at FROM suppressions WHERE customer_id = $1 \
                 AND address_key IN ({})",
                marks.join(", ")
            );
            let args: Vec<Arg<'_>> = chunk.iter().map(|k| Arg::Text(k)).collect();
            let rows = on_pool!(self, p => {
                let q = sqlx::query_as::<_, SuppressionRow>(sqlx::AssertSqlSafe(sql.clone())).bind(customer);
                bind_args!(q, &args).fetch_all(p).await
            })?;
            for r in rows {
                found.push(Suppression::try_from(r)?);
            }
        }
        Ok(found)
    }

    async fn suppression_count(&self, customer: CustomerId, filter: &SuppressionFilter) -> StoreResult<i64> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let (where_sql, args) = filter_sql(filter, &pattern);
        let sql = format!("SELECT COUNT(*) FROM suppressions{where_sql}");
        let n = on_pool!(self, p => {
            let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone())).bind(customer);
            bind_args!(q, &args).fetch_one(p).await
        })?;
        Ok(n)
    }

    async fn suppress(
        &self,
        customer: CustomerId,
        keys: &[String],
        reason: SuppressionReason,
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut added = 0;
            for key in keys {
                added += sqlx::query(
                    "INSERT INTO suppressions (customer_id, address_key, reason, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (customer_id, address_key) DO NOTHING",
                )
                .bind(customer)
                .bind(key)
                .bind(reason.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    async fn lift_suppression(
        &self,
        customer: CustomerId,
        key: &str,
        note: &str,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let gone: Option<(String, String, i64)> = sqlx::query_as(
                "DELETE FROM suppressions WHERE customer_id = $1 AND address_key = $2 RETURNING reason, detail, at",
            )
            .bind(customer)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((reason, detail, at)) = gone else {
                return Ok(false);
            };
            sqlx::query(
                "INSERT INTO suppression_lifts (customer_id, address_key, reason, detail, suppressed_at, note, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(customer)
            .bind(key)
            .bind(reason)
            .bind(detail)
            .bind(at)
            .bind(note)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
