//! Accounts, credentials and the bulk-send service with its credits
//! (vendor API 1.1, 1.2, A.3, D-9, D-20, H-2).

mod auth;
mod cases;
mod sessions;

pub use auth::{Authenticator, Secret};
pub use cases::*;
pub use sessions::*;

use std::fmt;

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use jiff::civil::Date;
use md5::{Digest, Md5};
use tokio::sync::Semaphore;

use crate::clock;
use crate::domain::ids::{CustomerId, OperatorId, TaskId};

/// Who an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Agent,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Manager => "manager",
        }
    }

    /// The `user_type` of the API's chapter 7 (A.6, C-7.0a): absent, empty or
    /// `customer` is a customer, `manager` a manager; anything else, 8.1's
    /// `agents` included, names no API role.
    pub fn from_api_user_type(user_type: Option<&str>) -> Option<Role> {
        match user_type.unwrap_or("") {
            "" | "customer" => Some(Role::Customer),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }

    /// The `user_type` of the console login form (8.1, D-10): empty for a
    /// customer, `agents` for an agent, `manager` for a manager.
    pub fn from_login_user_type(user_type: &str) -> Option<Role> {
        match user_type {
            "" => Some(Role::Customer),
            "agents" => Some(Role::Agent),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

/// A login name: trimmed, 1–64 characters, no control characters, no `:`
/// (HTTP Basic could not carry it). Matched case-insensitively (A.3 rule 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the user name is empty");
        }
        if s.chars().count() > 64 {
            return Err("the user name is longer than 64 characters");
        }
        if s.chars().any(|c| c.is_control() || c == ':') {
            return Err("the user name contains a control character or ':'");
        }
        Ok(Username(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are compared in.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The credential of the vendor API: the MD5 of the plain password, as 32
/// lower-case hex digits (A.3, D-9). Upper case is accepted and lowered.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Digest(String);

impl Md5Digest {
    /// Only exactly 32 hex digits; anything else is never tried as a plain password.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Md5Digest(s.to_ascii_lowercase()))
    }

    pub fn of_plain(plain: &str) -> Self {
        Md5Digest(hex::encode(Md5::digest(plain.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Md5Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Digest(***)")
    }
}

/// The stored form of a credential: argon2id over the md5 hex digest, so the
/// API (md5) and the console (plain password) share one credential (D-9).
/// Slow on purpose: call it off the async threads.
pub fn hash_credential(digest: &Md5Digest) -> String {
    argon2()
        .hash_password(digest.as_str().as_bytes())
        .expect("argon2 with valid parameters and a random salt cannot fail")
        .to_string()
}

/// Checks `digest` against a stored hash, with the parameters the hash was
/// made with.
pub fn verify_credential(digest: &Md5Digest, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(digest.as_str().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash was made with other parameters than
/// [`hash_credential`] uses now (an older release's), and should be made
/// again the next time its password is known.
pub fn credential_outdated(stored: &str) -> bool {
    let current = argon2_params();
    PasswordHash::new(stored)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .is_none_or(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost()) != (current.m_cost(), current.t_cost(), current.p_cost())
        })
}

/// argon2id with 7 MiB of memory, five passes and one lane: one of the
/// settings OWASP's Password Storage Cheat Sheet gives as equally strong as
/// the crate's default (19 MiB, two passes), with little more than a third of
/// the memory while a check runs.
fn argon2_params() -> Params {
    Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params())
}

/// At most one slow hash a core at a time: each holds its memory while it
/// runs, and more at once would only wait for a core.
static SLOW_HASHES: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs `f` (a slow hash or its check) off the async threads, once a core
/// is free for it.
pub async fn slow_hash<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let _turn = SLOW_HASHES
        .acquire()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(f)
        .await
        .expect("hashing a credential does not panic")
}

/// A customer's profile (1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub company: String,
    pub contact: String,
    pub phone: String,
    pub mobile: String,
    pub email: String,
    pub im: String,
    pub address: String,
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub id: CustomerId,
    pub username: String,
    pub profile: Profile,
    pub agent: Option<String>,
    pub disabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceStatus {
    Enabled,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceType {
    /// One pool of credits.
    All,
    /// A daily allowance, refilled at midnight in QUNFA_TIMEZONE.
    Day,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendType {
    Local,
    Remote,
}

macro_rules! wire_enum {
    ($ty:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}
wire_enum!(ServiceStatus { Enabled = "enabled", Disabled = "disabled" });
wire_enum!(ServiceType { All = "all", Day = "day" });
wire_enum!(SendType { Local = "local", Remote = "remote" });

/// A customer's bulk-send service (1.2).
#[derive(Clone, Debug)]
pub struct Service {
    pub customer_id: CustomerId,
    pub status: ServiceStatus,
    pub service_type: ServiceType,
    pub send_type: SendType,
    pub begin: Option<Date>,
    pub end: Option<Date>,
    pub qty_available: i64,
    pub qty_buytotal: i64,
    /// `day` services: the date `qty_available` belongs to.
    pub day_of: Option<Date>,
}

impl Service {
    /// What is left to send: of the pool (`all`), or of today's allowance (`day`),
    /// which is whole again on a day nothing was sent yet.
    pub fn available(&self, today: Date) -> i64 {
        match self.service_type {
            ServiceType::All => self.qty_available,
            ServiceType::Day if self.day_of == Some(today) => self.qty_available,
            ServiceType::Day => self.qty_buytotal,
        }
    }

    /// Enabled and today within its dates (D-20); unset dates don't bound it.
    pub fn is_usable(&self, today: Date) -> bool {
        self.status == ServiceStatus::Enabled
            && self.begin.is_none_or(|b| b <= today)
            && self.end.is_none_or(|e| today <= e)
    }

    pub fn begin_text(&self) -> String {
        self.begin
            .map_or_else(|| clock::NO_DATE.to_string(), clock::format_date)
    }

    pub fn end_text(&self) -> String {
        self.end
            .map_or_else(|| clock::NO_DATE.to_string(), clock::format_date)
    }
}

/// What an administrator changes on a service; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ServiceChange {
    pub status: Option<ServiceStatus>,
    pub service_type: Option<ServiceType>,
    pub send_type: Option<SendType>,
    pub begin: Option<Date>,
    pub end: Option<Date>,
    /// Set the credits available and bought (`all`) or the daily allowance (`day`).
    pub quota: Option<i64>,
    /// Buy this many more.
    pub add: Option<i64>,
}

/// Why an administrator's change to a service is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidServiceChange {
    #[error("the end date {} is before the begin date {}", clock::format_date(*end), clock::format_date(*begin))]
    EndBeforeBegin { begin: Date, end: Date },
    #[error("the quota is negative")]
    NegativeQuota,
    #[error("the number of credits to add must be positive")]
    AddNotPositive,
    #[error("too many credits")]
    TooManyCredits,
}

/// One change to a customer's credits, before it is written to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditChange {
    pub kind: LedgerKind,
    /// The change to `qty_available`.
    pub amount: i64,
    /// `qty_available` after it.
    pub balance: i64,
    pub reason: String,
}

impl Service {
    /// A `day` service on a new day gets its whole allowance back.
    fn roll_day(&mut self, today: Date, changes: &mut Vec<CreditChange>) {
        if self.service_type == ServiceType::Day && self.day_of != Some(today) {
            let amount = self.qty_buytotal - self.qty_available;
            self.qty_available = self.qty_buytotal;
            self.day_of = Some(today);
            if amount != 0 {
                changes.push(CreditChange {
                    kind: LedgerKind::DayReset,
                    amount,
                    balance: self.qty_available,
                    reason: format!("daily allowance for {}", clock::format_date(today)),
                });
            }
        }
    }

    /// The service after an administrator's change, and the credit changes it
    /// makes, or why the change is refused.
    pub fn apply(
        &self,
        c: &ServiceChange,
        today: Date,
    ) -> Result<(Service, Vec<CreditChange>), InvalidServiceChange> {
        let mut s = self.clone();
        let mut changes = Vec::new();
        if let Some(v) = c.status {
            s.status = v;
        }
        if let Some(v) = c.send_type {
            s.send_type = v;
        }
        if let Some(v) = c.begin {
            s.begin = Some(v);
        }
        if let Some(v) = c.end {
            s.end = Some(v);
        }
        if let (Some(b), Some(e)) = (s.begin, s.end)
            && e < b
        {
            return Err(InvalidServiceChange::EndBeforeBegin { begin: b, end: e });
        }
        if let Some(t) = c.service_type
            && t != s.service_type
        {
            s.service_type = t;
            s.day_of = None;
        }
        s.roll_day(today, &mut changes);
        if let Some(n) = c.quota {
            if n < 0 {
                return Err(InvalidServiceChange::NegativeQuota);
            }
            let amount = n - s.qty_available;
            s.qty_available = n;
            s.qty_buytotal = n;
            changes.push(CreditChange {
                kind: LedgerKind::Set,
                amount,
                balance: n,
                reason: format!("quota set to {n}"),
            });
        }
        if let Some(n) = c.add {
            if n <= 0 {
                return Err(InvalidServiceChange::AddNotPositive);
            }
            s.qty_available = s
                .qty_available
                .checked_add(n)
                .ok_or(InvalidServiceChange::TooManyCredits)?;
            s.qty_buytotal = s
                .qty_buytotal
                .checked_add(n)
                .ok_or(InvalidServiceChange::TooManyCredits)?;
            changes.push(CreditChange {
                kind: LedgerKind::Buy,
                amount: n,
                balance: s.qty_available,
                reason: format!("bought {n}"),
            });
        }
        Ok((s, changes))
    }
}

/// Why a change to credits happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerKind {
    Buy,
    Set,
    PreDeduct,
    Charge,
    Refund,
    DayReset,
}
wire_enum!(LedgerKind {
    Buy = "buy",
    Set = "set",
    PreDeduct = "pre_deduct",
    Charge = "charge",
    Refund = "refund",
    DayReset = "day_reset",
});

#[derive(Clone, Debug)]
pub struct LedgerEntry {
    pub at: i64,
    pub kind: LedgerKind,
    pub amount: i64,
    pub balance: i64,
    pub task_id: Option<TaskId>,
    pub reason: String,
}

/// Who a request acts as, once its credentials were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Customer(CustomerId),
    Agent(OperatorId),
    Manager(OperatorId),
}

impl Principal {
    pub fn role(self) -> Role {
        match self {
            Principal::Customer(_) => Role::Customer,
            Principal::Agent(_) => Role::Agent,
            Principal::Manager(_) => Role::Manager,
        }
    }

    /// The account's number, whatever its kind.
    pub fn number(self) -> i64 {
        match self {
            Principal::Customer(c) => c.get(),
            Principal::Agent(o) | Principal::Manager(o) => o.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_digest_of_test_is_the_documented_one() {
        assert_eq!(
            Md5Digest::of_plain("test").as_str(),
            "098f6bcd4621d373cade4e832627b4f6"
        );
    }

    #[test]
    fn only_32_hex_digits_are_a_digest() {
        assert!(Md5Digest::parse("1111111").is_none());
        assert!(Md5Digest::parse("098f6bcd4621d373cade4e832627b4fg").is_none());
        assert_eq!(
            Md5Digest::parse("098F6BCD4621D373CADE4E832627B4F6")
                .unwrap()
                .as_str(),
            "098f6bcd4621d373cade4e832627b4f6"
        );
    }

    #[test]
    fn the_stored_hash_accepts_the_digest_and_nothing_else() {
        let digest = Md5Digest::of_plain("secret 密码");
        let stored = hash_credential(&digest);
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains(digest.as_str()));
        assert!(verify_credential(&digest, &stored));
        assert!(verify_credential(
            &Md5Digest::parse(&digest.as_str().to_uppercase()).unwrap(),
            &stored
        ));
        assert!(!verify_credential(&Md5Digest::of_plain("secret"), &stored));
        // The plain password itself is not the credential.
        assert!(!verify_credential(
            &Md5Digest(String::from("secret 密码")),
            &stored
        ));
        assert!(!verify_credential(&digest, "not a phc string"));
    }

    #[test]
    fn user_types_map_to_roles() {
        assert_eq!(Role::from_api_user_type(None), Some(Role::Customer));
        assert_eq!(Role::from_api_user_type(Some("")), Some(Role::Customer));
        assert_eq!(Role::from_api_user_type(Some("customer")), Some(Role::Customer));
        assert_eq!(Role::from_api_user_type(Some("manager")), Some(Role::Manager));
        assert_eq!(Role::from_api_user_type(Some("agents")), None);
        assert_eq!(Role::from_api_user_type(Some("Manager")), None);
        assert_eq!(Role::from_login_user_type(""), Some(Role::Customer));
        assert_eq!(Role::from_login_user_type("agents"), Some(Role::Agent));
        assert_eq!(Role::from_login_user_type("manager"), Some(Role::Manager));
        assert_eq!(Role::from_login_user_type("customer"), None);
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("  Alice ").unwrap().key(), "alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a:b").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert_eq!(Username::parse("客户一").unwrap().as_str(), "客户一");
    }

    fn service(t: ServiceType) -> Service {
        Service {
            customer_id: CustomerId(1),
            status: ServiceStatus::Enabled,
            service_type: t,
            send_type: SendType::Local,
            begin: None,
            end: None,
            qty_available: 0,
            qty_buytotal: 0,
            day_of: None,
        }
    }

    #[test]
    fn quota_then_add_writes_one_ledger_change_each() {
        let today = Date::constant(2026, 11, 26);
        let change = ServiceChange {
            quota: Some(100),
            add: Some(50),
            ..Default::default()
        };
        let (s, changes) = service(ServiceType::All).apply(&change, today).unwrap();
        assert_eq!((s.qty_available, s.qty_buytotal), (150, 150));
        assert_eq!(changes.len(), 2);
        assert_eq!(
            (changes[0].kind, changes[0].amount, changes[0].balance),
            (LedgerKind::Set, 100, 100)
        );
        assert_eq!(
            (changes[1].kind, changes[1].amount, changes[1].balance),
            (LedgerKind::Buy, 50, 150)
        );
        let lower = ServiceChange {
            quota: Some(20),
            ..Default::default()
        };
        let (s, changes) = s.apply(&lower, today).unwrap();
        assert_eq!(s.qty_available, 20);
        assert_eq!(changes[0].amount, -130);
    }

    #[test]
    fn refused_changes() {
        let today = Date::constant(2026, 11, 26);
        let s = service(ServiceType::All);
        let bad_dates = ServiceChange {
            begin: Some(today),
            end: Some(Date::constant(2026, 1, 1)),
            ..Default::default()
        };
        assert!(s.apply(&bad_dates, today).is_err());
        assert!(
            s.apply(
                &ServiceChange {
                    add: Some(0),
                    ..Default::default()
                },
                today
            )
            .is_err()
        );
        assert!(
            s.apply(
                &ServiceChange {
                    quota: Some(-1),
                    ..Default::default()
                },
                today
            )
            .is_err()
        );
    }

    #[test]
    fn day_services_roll_over_to_the_full_allowance() {
        let today = Date::constant(2026, 11, 26);
        let mut s = service(ServiceType::Day);
        s.qty_buytotal = 10;
        s.qty_available = 4;
        s.day_of = Some(Date::constant(2026, 11, 25));
        let (s, changes) = s.apply(&ServiceChange::default(), today).unwrap();
        assert_eq!((s.qty_available, s.day_of), (10, Some(today)));
        assert_eq!(changes[0].kind, LedgerKind::DayReset);
        assert_eq!(changes[0].amount, 6);
    }

    #[test]
    fn day_allowance_is_whole_on_a_new_day() {
        let today = Date::constant(2026, 11, 26);
        let s = Service {
            customer_id: CustomerId(1),
            status: ServiceStatus::Enabled,
            service_type: ServiceType::Day,
            send_type: SendType::Local,
            begin: Some(Date::constant(2026, 1, 1)),
            end: Some(today),
            qty_available: 3,
            qty_buytotal: 10,
            day_of: Some(Date::constant(2026, 11, 25)),
        };
        assert_eq!(s.available(today), 10);
        assert!(s.is_usable(today));
        assert!(!s.is_usable(Date::constant(2026, 11, 27)));
        let s = Service {
            day_of: Some(today),
            ..s
        };
        assert_eq!(s.available(today), 3);
    }
}
