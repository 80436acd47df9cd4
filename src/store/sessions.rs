//! Console login sessions ([`SessionStorage`]).

use super::{Arg, Store, StoreResult, on_pool};
use crate::domain::accounts::{Principal, Role, Session, SessionStorage, principal_of};

impl SessionStorage for Store {
    async fn create_session(
        &self,
        token_hash: &str,
        s: &Session,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.write(
            "INSERT INTO sessions (token_hash, role, account_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Arg::Text(token_hash),
                Arg::Text(s.principal.role().as_str()),
                Arg::Int(s.principal.number()),
                Arg::Text(&s.csrf),
                Arg::Int(now),
                Arg::Int(expires_at),
            ],
        )
        .await?;
        // Expired sessions go as new ones come.
        self.write("DELETE FROM sessions WHERE expires_at < $1", &[Arg::Int(now)])
            .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let row: Option<(String, i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT role, account_id, csrf FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(p)
        .await)?;
        Ok(row.and_then(|(role, account_id, csrf)| {
            let role = match role.as_str() {
                "customer" => Role::Customer,
                "agent" => Role::Agent,
                "manager" => Role::Manager,
                _ => return None,
            };
            Some(Session {
                principal: principal_of(role, account_id),
                csrf,
            })
        }))
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write(
            "DELETE FROM sessions WHERE token_hash = $1",
            &[Arg::Text(token_hash)],
        )
        .await?;
        Ok(())
    }

    async fn account_username(&self, principal: Principal) -> StoreResult<Option<String>> {
        let sql = match principal.role() {
            Role::Customer => "SELECT username FROM customers WHERE id = $1",
            Role::Agent | Role::Manager => "SELECT username FROM operators WHERE id = $1",
        };
        let id = principal.number();
        let name = on_pool!(self, p => sqlx::query_scalar(sql).bind(id).fetch_optional(p).await)?;
        Ok(name)
    }
}
