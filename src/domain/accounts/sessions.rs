//! Console login sessions: opened after a login, found by the token of the
//! browser's cookie, closed at logout or when they expire. Only a hash of
//! the token is stored, so a copy of the database opens no session; each
//! session has its own token for the forms it serves (CSRF).

use rand::RngExt;
use sha2::{Digest, Sha256};

use super::{AccountStorage, Customer, Principal, Role, Username};
use crate::domain::ids::{CustomerId, OperatorId};
use crate::domain::storage::StoreResult;

/// How long a session lasts from login, in seconds.
pub const SESSION_SECS: i64 = 12 * 3600;

/// A session as stored: who logged in, and the token its forms carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

/// A session found by its cookie, with the account's user name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSession {
    pub session: Session,
    pub username: String,
}

/// A session just opened: the token goes into the browser's cookie and is
/// not kept anywhere else.
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub token: String,
    pub session: Session,
}

/// What the session use-cases need of storage.
pub trait SessionStorage: Sync {
    /// Stores a session under the hash of its token, and drops the
    /// sessions that expired by `now`.
    fn create_session(
        &self,
        token_hash: &str,
        s: &Session,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The session of a token hash, unless it expired by `now`.
    fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> impl Future<Output = StoreResult<Option<Session>>> + Send;

    fn delete_session(&self, token_hash: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// The user name of an account.
    fn account_username(
        &self,
        principal: Principal,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// Opens a session for an account whose credentials were checked.
pub async fn open_session(
    s: &impl SessionStorage,
    principal: Principal,
    now: i64,
) -> StoreResult<OpenedSession> {
    let token = random_token();
    let session = Session {
        principal,
        csrf: random_token(),
    };
    s.create_session(&token_hash(&token), &session, now, now + SESSION_SECS)
        .await?;
    Ok(OpenedSession { token, session })
}

/// The live session of a cookie's token, if there is one.
pub async fn find_session(
    s: &impl SessionStorage,
    token: &str,
    now: i64,
) -> StoreResult<Option<ActiveSession>> {
    let Some(session) = s.session(&token_hash(token), now).await? else {
        return Ok(None);
    };
    let username = s.account_username(session.principal).await?.unwrap_or_default();
    Ok(Some(ActiveSession { session, username }))
}

/// Ends the session of a token (logout); nothing if there is none.
pub async fn close_session(s: &impl SessionStorage, token: &str) -> StoreResult<()> {
    s.delete_session(&token_hash(token)).await
}

/// A customer as `who` may see it: a customer only itself, an agent the
/// customers it looks after, a manager every one. `None` for any other,
/// exactly as for a customer that does not exist.
pub async fn visible_customer(
    s: &(impl AccountStorage + SessionStorage),
    who: Principal,
    id: CustomerId,
) -> StoreResult<Option<Customer>> {
    let allowed = match who {
        Principal::Customer(me) if me != id => return Ok(None),
        Principal::Customer(_) | Principal::Manager(_) => true,
        Principal::Agent(agent) => agent_of(s, agent, id).await?,
    };
    if !allowed {
        return Ok(None);
    }
    s.customer(id).await
}

/// Whether the agent looks after the customer.
async fn agent_of(
    s: &(impl AccountStorage + SessionStorage),
    agent: OperatorId,
    id: CustomerId,
) -> StoreResult<bool> {
    let Some(customer) = s.customer(id).await? else {
        return Ok(false);
    };
    let Some(name) = s.account_username(Principal::Agent(agent)).await? else {
        return Ok(false);
    };
    let key = |n: &str| Username::parse(n).map(|u| u.key()).ok();
    Ok(customer
        .agent
        .as_deref()
        .and_then(key)
        .is_some_and(|k| Some(k) == key(&name)))
}

/// The principal of a stored role and account number.
pub fn principal_of(role: Role, number: i64) -> Principal {
    match role {
        Role::Customer => Principal::Customer(CustomerId(number)),
        Role::Agent => Principal::Agent(OperatorId(number)),
        Role::Manager => Principal::Manager(OperatorId(number)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
