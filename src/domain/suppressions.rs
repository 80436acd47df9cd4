//! Suppressed addresses: those a customer's tasks skip, because they
//! unsubscribed, complained, bounced as not existing, or the customer said
//! so. A customer sees them with the reason and the date, and may lift one
//! it knows to be wrong; the lift is kept on record.

use crate::domain::email::EmailAddress;
use crate::domain::ids::CustomerId;
use crate::domain::storage::StoreResult;

/// Why an address is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    Unsubscribe,
    Complaint,
    /// A hard bounce; its class is in [`Suppression::detail`].
    Bounce,
    /// Added by the customer.
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribe => "unsubscribe",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<SuppressionReason> {
        [
            SuppressionReason::Unsubscribe,
            SuppressionReason::Complaint,
            SuppressionReason::Bounce,
            SuppressionReason::Manual,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// One suppressed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// The address as compared: lower case, its domain in A-labels.
    pub email: String,
    pub reason: SuppressionReason,
    /// For a bounce, its failure class (`not_exist`, `invalid_addr`).
    pub detail: String,
    pub at: i64,
}

/// Which suppressions a listing shows.
#[derive(Clone, Debug, Default)]
pub struct SuppressionFilter {
    /// A part of the address, case-insensitive.
    pub q: Option<String>,
    pub reason: Option<SuppressionReason>,
}

/// What the suppression use-cases need of storage.
pub trait SuppressionStorage: Sync {
    /// Up to `limit` of the customer's suppressions, by address, after `after`.
    fn suppressions(
        &self,
        customer: CustomerId,
        filter: &SuppressionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<Suppression>>> + Send;

    /// The suppressions of those of `keys` (addresses as
    /// [`EmailAddress::key`] gives them) that are suppressed.
    fn suppressions_of(
        &self,
        customer: CustomerId,
        keys: &[String],
    ) -> impl Future<Output = StoreResult<Vec<Suppression>>> + Send;

    /// How many suppressions the filter selects.
    fn suppression_count(
        &self,
        customer: CustomerId,
        filter: &SuppressionFilter,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Suppresses the keys not suppressed yet; how many were new.
    fn suppress(
        &self,
        customer: CustomerId,
        keys: &[String],
        reason: SuppressionReason,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Removes one suppression and records the lift with `note`, in one
    /// transaction; false if the address was not suppressed.
    fn lift_suppression(
        &self,
        customer: CustomerId,
        key: &str,
        note: &str,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// Why a suppression operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    #[error("the address is not suppressed")]
    NotFound,
    #[error("the note is longer than 500 characters")]
    NoteTooLong,
    #[error(transparent)]
    Store(#[from] crate::domain::storage::StoreError),
}

/// Longest note kept with a lift.
pub const NOTE_MAX: usize = 500;

/// A page of the customer's suppressions, by address, after `after`.
pub async fn suppressions(
    s: &impl SuppressionStorage,
    customer: CustomerId,
    filter: &SuppressionFilter,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<Suppression>> {
    s.suppressions(customer, filter, after, limit.clamp(1, 10_000))
        .await
}

/// The suppression of each of `emails` that is suppressed, by address key.
pub async fn suppressions_of(
    s: &impl SuppressionStorage,
    customer: CustomerId,
    emails: &[&str],
) -> StoreResult<std::collections::HashMap<String, Suppression>> {
    let mut keys: Vec<String> = emails
        .iter()
        .filter_map(|e| EmailAddress::parse(e).map(|a| a.key()))
        .collect();
    keys.sort();
    keys.dedup();
    Ok(s.suppressions_of(customer, &keys)
        .await?
        .into_iter()
        .map(|x| (x.email.clone(), x))
        .collect())
}

/// How many suppressions a filter selects (for a page count).
pub async fn suppression_count(
    s: &impl SuppressionStorage,
    customer: CustomerId,
    filter: &SuppressionFilter,
) -> StoreResult<i64> {
    s.suppression_count(customer, filter).await
}

/// Suppresses addresses by the customer's own decision; how many were new.
pub async fn suppress(
    s: &impl SuppressionStorage,
    customer: CustomerId,
    emails: &[EmailAddress],
    now: i64,
) -> StoreResult<u64> {
    let mut keys: Vec<String> = emails.iter().map(EmailAddress::key).collect();
    keys.sort();
    keys.dedup();
    s.suppress(customer, &keys, SuppressionReason::Manual, now).await
}

/// Lets an address be sent to again, recording who lifted it and why.
pub async fn lift(
    s: &impl SuppressionStorage,
    customer: CustomerId,
    email: &EmailAddress,
    note: &str,
    now: i64,
) -> Result<(), SuppressionError> {
    let note = note.trim();
    if note.chars().count() > NOTE_MAX {
        return Err(SuppressionError::NoteTooLong);
    }
    if s.lift_suppression(customer, &email.key(), note, now).await? {
        Ok(())
    } else {
        Err(SuppressionError::NotFound)
    }
}
