//! Keys of the JSON API ([`ApiKeyStorage`]).

use super::{Arg, Store, StoreError, StoreResult, on_pool};
use crate::domain::api_keys::{ApiKey, ApiKeyStorage, StoredKey};
use crate::domain::ids::{ApiKeyId, CustomerId};

/// id, name, created_at, last_used_at, revoked_at.
type KeyRow = (i64, String, i64, Option<i64>, Option<i64>);
/// id, customer_id, secret_hash, last_used_at, refused.
type LookupRow = (i64, i64, Vec<u8>, Option<i64>, bool);

impl ApiKeyStorage for Store {
    async fn insert_api_key(
        &self,
        customer: CustomerId,
        name: &str,
        lookup: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<ApiKeyId> {
        let known: Option<i64> = on_pool!(self, p => sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
            .bind(customer.get())
            .fetch_optional(p)
            .await)?;
        if known.is_none() {
            return Err(StoreError::NotFound("customer"));
        }
        let id = self
            .insert_id(
                "INSERT INTO api_keys (customer_id, name, lookup, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    Arg::Int(customer.get()),
                    Arg::Text(name),
                    Arg::Text(lookup),
                    Arg::Bytes(secret_hash),
                    Arg::Int(now),
                ],
            )
            .await?;
        Ok(ApiKeyId(id))
    }

    async fn api_keys(&self, customer: CustomerId) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM api_keys \
             WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer.get())
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at, last_used_at, revoked_at)| ApiKey {
                id: ApiKeyId(id),
                name,
                created_at,
                last_used_at,
                revoked_at,
            })
            .collect())
    }

    async fn revoke_api_key(&self, customer: CustomerId, id: ApiKeyId, now: i64) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE api_keys SET revoked_at = $1 \
                 WHERE id = $2 AND customer_id = $3 AND revoked_at IS NULL",
                &[Arg::Int(now), Arg::Int(id.get()), Arg::Int(customer.get())],
            )
            .await?;
        Ok(n == 1)
    }

    async fn api_key_by_lookup(&self, lookup: &str) -> StoreResult<Option<StoredKey>> {
        const SQL: &str = "SELECT k.id, k.customer_id, k.secret_hash, k.last_used_at, \
                    (k.revoked_at IS NOT NULL OR c.disabled) AS refused \
             FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.lookup = $1";
        // Every JSON API request asks: on SQLite it is read in place.
        let row: Option<LookupRow> = if let Store::Sqlite(pool) = self {
            super::sqlite_readers(pool)?.with(|r| {
                let mut st = r.prepare(SQL)?;
                st.bind_text(1, lookup)?;
                Ok(st.next_row()?.then(|| {
                    (
                        st.int(0),
                        st.int(1),
                        st.blob(2).to_vec(),
                        st.optional_int(3),
                        st.int(4) != 0,
                    )
                }))
            })?
        } else {
            on_pool!(self, p => sqlx::query_as(SQL).bind(lookup).fetch_optional(p).await)?
        };
        Ok(
            row.map(|(id, customer, secret_hash, last_used_at, refused)| StoredKey {
                id: ApiKeyId(id),
                customer: CustomerId(customer),
                secret_hash,
                last_used_at,
                refused,
            }),
        )
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: i64) -> StoreResult<()> {
        self.write(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
            &[Arg::Int(now), Arg::Int(id.get())],
        )
        .await?;
        Ok(())
    }
}
