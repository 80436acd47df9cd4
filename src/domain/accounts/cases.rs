//! The use-cases of accounts: customers, agents and managers, their
//! credentials, the bulk-send service and the credit ledger.

use jiff::civil::Date;

use super::{CreditChange, hash_credential, slow_hash};
use super::{
    Customer, InvalidServiceChange, LedgerEntry, Md5Digest, Profile, Role, Service, ServiceChange, Username,
};
use crate::domain::ids::{CustomerId, OperatorId};
use crate::domain::storage::{StoreError, StoreResult};
use crate::domain::templates::FooterLanguage;

/// What authentication needs of an account.
#[derive(Clone, Debug)]
pub struct StoredCredential {
    /// A customer's or an operator's id, by the role it was looked up as.
    pub id: i64,
    pub password_hash: String,
    pub disabled: bool,
}

/// A customer to add.
#[derive(Clone, Debug)]
pub struct NewCustomer {
    pub username: Username,
    pub profile: Profile,
    /// The agent who looks after it.
    pub agent: Option<Username>,
}

/// What the account use-cases need of storage.
pub trait AccountStorage: Sync {
    /// Adds a customer with a default service (enabled, `all`, `local`, no
    /// credits). `Duplicate("customer")` when the name is taken,
    /// `NotFound("agent")` when the agent is unknown.
    fn create_customer(
        &self,
        c: &NewCustomer,
        password_hash: &str,
        now: i64,
    ) -> impl Future<Output = StoreResult<CustomerId>> + Send;

    /// Adds an agent or a manager; `Duplicate` when the name is taken.
    fn create_operator(
        &self,
        role: Role,
        username: &Username,
        password_hash: &str,
        now: i64,
    ) -> impl Future<Output = StoreResult<OperatorId>> + Send;

    fn credential(
        &self,
        role: Role,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Option<StoredCredential>>> + Send;

    /// Replaces an account's stored credential; false if there is no such account.
    fn set_password_hash(
        &self,
        role: Role,
        username: &Username,
        hash: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Replaces an account's stored credential if it is still `old`; false
    /// if it is not (changed meanwhile) or there is no such account.
    fn replace_password_hash(
        &self,
        role: Role,
        username: &Username,
        old: &str,
        new: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// False if there is no such customer.
    fn set_customer_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    fn customer(&self, id: CustomerId) -> impl Future<Output = StoreResult<Option<Customer>>> + Send;

    fn customer_by_username(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Option<Customer>>> + Send;

    /// Every customer, by id.
    fn customers(&self) -> impl Future<Output = StoreResult<Vec<Customer>>> + Send;

    /// A customer's service; `NotFound` when there is no such customer.
    fn service(&self, customer: CustomerId) -> impl Future<Output = StoreResult<Service>> + Send;

    /// Changes a service in one transaction: `change` sees it as it is and
    /// returns it as it must become with the credit changes to record, or
    /// refuses, and then nothing is written.
    fn update_service<E: Send>(
        &self,
        customer: CustomerId,
        now: i64,
        change: impl FnOnce(&Service) -> Result<(Service, Vec<CreditChange>), E> + Send,
    ) -> impl Future<Output = StoreResult<Result<Service, E>>> + Send;

    /// A customer's credit history, oldest first.
    fn ledger(&self, customer: CustomerId) -> impl Future<Output = StoreResult<Vec<LedgerEntry>>> + Send;

    /// A customer's `footer_language` (`Auto` for an unknown customer).
    fn footer_language(
        &self,
        customer: CustomerId,
    ) -> impl Future<Output = StoreResult<FooterLanguage>> + Send;

    /// Sets a customer's `footer_language`; false if there is no such customer.
    fn set_footer_language(
        &self,
        customer: CustomerId,
        language: FooterLanguage,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown {role} '{name}'", role = .0.as_str(), name = .1)]
    NotFound(Role, String),
    #[error("invalid password: it is empty")]
    EmptyPassword,
    #[error("{role} '{name}' already exists", role = .0.as_str(), name = .1)]
    Exists(Role, String),
    #[error("invalid service change: {0}")]
    InvalidChange(#[from] InvalidServiceChange),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The slow hash of a plain password, off the async threads.
async fn hash_plain(password: &str) -> Result<String, AccountError> {
    if password.is_empty() {
        return Err(AccountError::EmptyPassword);
    }
    let digest = Md5Digest::of_plain(password);
    Ok(slow_hash(move || hash_credential(&digest)).await)
}

/// Adds a customer, with its password stored as a slow hash of its md5.
pub async fn add_customer(
    s: &impl AccountStorage,
    c: &NewCustomer,
    password: &str,
    now: i64,
) -> Result<CustomerId, AccountError> {
    let hash = hash_plain(password).await?;
    match s.create_customer(c, &hash, now).await {
        Ok(id) => Ok(id),
        Err(StoreError::Duplicate(_)) => Err(AccountError::Exists(Role::Customer, c.username.to_string())),
        Err(StoreError::NotFound(_)) => Err(AccountError::NotFound(
            Role::Agent,
            c.agent.as_ref().map(Username::to_string).unwrap_or_default(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Adds an agent or a manager.
pub async fn add_operator(
    s: &impl AccountStorage,
    role: Role,
    username: &Username,
    password: &str,
    now: i64,
) -> Result<OperatorId, AccountError> {
    let hash = hash_plain(password).await?;
    match s.create_operator(role, username, &hash, now).await {
        Ok(id) => Ok(id),
        Err(StoreError::Duplicate(_)) => Err(AccountError::Exists(role, username.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Sets an account's password.
pub async fn set_password(
    s: &impl AccountStorage,
    role: Role,
    username: &Username,
    password: &str,
) -> Result<(), AccountError> {
    let hash = hash_plain(password).await?;
    if s.set_password_hash(role, username, &hash).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(role, username.to_string()))
    }
}

/// Bars a customer from logging in, or lets it in again.
pub async fn set_disabled(
    s: &impl AccountStorage,
    username: &Username,
    disabled: bool,
) -> Result<(), AccountError> {
    if s.set_customer_disabled(username, disabled).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(Role::Customer, username.to_string()))
    }
}

/// The customer of a name.
pub async fn customer(s: &impl AccountStorage, username: &Username) -> Result<Customer, AccountError> {
    s.customer_by_username(username)
        .await?
        .ok_or_else(|| AccountError::NotFound(Role::Customer, username.to_string()))
}

/// The customer of an id, if there is one.
pub async fn customer_by_id(s: &impl AccountStorage, id: CustomerId) -> StoreResult<Option<Customer>> {
    s.customer(id).await
}

/// Every customer with its service, by id.
pub async fn customers(s: &impl AccountStorage) -> StoreResult<Vec<(Customer, Service)>> {
    let mut out = Vec::new();
    for c in s.customers().await? {
        let service = s.service(c.id).await?;
        out.push((c, service));
    }
    Ok(out)
}

/// A customer's service.
pub async fn service(s: &impl AccountStorage, customer: CustomerId) -> StoreResult<Service> {
    s.service(customer).await
}

/// Applies an administrator's change to a customer's service; every change
/// to its credits is a ledger row.
pub async fn change_service(
    s: &impl AccountStorage,
    customer: CustomerId,
    change: &ServiceChange,
    now: i64,
    today: Date,
) -> Result<Service, AccountError> {
    Ok(
        s.update_service(customer, now, |current| current.apply(change, today))
            .await??,
    )
}

/// A customer's credit history, oldest first.
pub async fn ledger(s: &impl AccountStorage, customer: CustomerId) -> StoreResult<Vec<LedgerEntry>> {
    s.ledger(customer).await
}

/// The shortest password an account may choose for itself.
pub const OWN_PASSWORD_MIN: usize = 8;

/// Why an account's own change of password was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("a password has at least {min} characters")]
    TooShort { min: usize },
    #[error("the two new passwords differ")]
    Mismatch,
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// A change of password as its account types it.
#[derive(Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    /// The new one again.
    pub repeated: &'a str,
}

/// An account changes its own password: the current one must be right (it
/// is checked like a login, throttled alike), the new one long enough and
/// typed twice the same.
pub async fn change_own_password(
    s: &impl AccountStorage,
    auth: &super::Authenticator,
    who: super::Principal,
    username: &str,
    change: PasswordChange<'_>,
    ip: std::net::IpAddr,
) -> Result<(), PasswordChangeError> {
    let role = who.role();
    let PasswordChange {
        current,
        new,
        repeated,
    } = change;
    let checked = auth
        .check(s, role, username, super::Secret::Plain(current), ip)
        .await;
    if checked != Some(who) {
        return Err(PasswordChangeError::WrongPassword);
    }
    if new.chars().count() < OWN_PASSWORD_MIN {
        return Err(PasswordChangeError::TooShort {
            min: OWN_PASSWORD_MIN,
        });
    }
    if new != repeated {
        return Err(PasswordChangeError::Mismatch);
    }
    let name = Username::parse(username).map_err(|_| AccountError::NotFound(role, username.to_string()))?;
    set_password(s, role, &name, new).await?;
    Ok(())
}

/// The language of a customer's unsubscribe footers, when its task does not
/// set one (`Auto`: each template's language).
pub async fn footer_language(s: &impl AccountStorage, customer: CustomerId) -> StoreResult<FooterLanguage> {
    s.footer_language(customer).await
}

/// Sets the language of a customer's unsubscribe footers.
pub async fn set_footer_language(
    s: &impl AccountStorage,
    customer: &Customer,
    language: FooterLanguage,
) -> Result<(), AccountError> {
    if s.set_footer_language(customer.id, language).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(Role::Customer, customer.username.clone()))
    }
}
