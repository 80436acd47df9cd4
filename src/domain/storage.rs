//! What the use-cases need of storage, and how storage fails.
//!
//! The use-cases call storage through the traits each area declares beside
//! them (`lists::ListStorage`, `tasks::TaskStorage` …); `store::Store`
//! implements them for SQLite and PostgreSQL. So `domain` never names the
//! store, and the store speaks in the domain's types.

use std::fmt;
use std::path::Path;

use crate::domain::ids::{CustomerId, FileId};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken; names what was duplicated ("address", "domain").
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// A row the call needs does not exist; names what was missing.
    #[error("unknown {0}")]
    NotFound(&'static str),
    /// The write was refused inside its transaction, and nothing changed.
    #[error("{0}")]
    Refused(Refusal),
    /// The database is away, busy or full: the same call may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a broken row, a failed migration, a driver error.
    #[error("database error: {0}")]
    Failed(String),
}

/// A write that the state of the rows forbids, found under their lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The service has fewer credits than the write takes.
    NotEnoughCredits { needed: i64, available: i64 },
    /// The object's state does not allow the change.
    State,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotEnoughCredits { needed, available } => {
                write!(f, "{needed} credits needed, {available} available")
            }
            Refusal::State => f.write_str("the state does not allow it"),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether the same call may succeed later unchanged: the database went
    /// away (a PostgreSQL restart, a network cut), was busy, or its disk was
    /// full. A writer that must not lose what it holds waits and retries.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Everything the use-cases need of storage, for those that cross areas.
pub trait Storage:
    crate::domain::accounts::AccountStorage
    + crate::domain::lists::ListStorage
    + crate::domain::reports::ReportStorage
    + crate::domain::senders::SenderStorage
    + crate::domain::tasks::TaskStorage
    + crate::domain::templates::TemplateStorage
    + crate::domain::tracking::TrackingStorage
{
}

impl<T> Storage for T where
    T: crate::domain::accounts::AccountStorage
        + crate::domain::lists::ListStorage
        + crate::domain::reports::ReportStorage
        + crate::domain::senders::SenderStorage
        + crate::domain::tasks::TaskStorage
        + crate::domain::templates::TemplateStorage
        + crate::domain::tracking::TrackingStorage
{
}

/// Where attachments and import files are kept.
pub trait FileStorage: Sync {
    /// Keeps a copy of the file at `src` as a new file of the customer.
    fn save(
        &self,
        customer: CustomerId,
        src: &Path,
        now: i64,
    ) -> impl Future<Output = StoreResult<FileId>> + Send;

    /// The size of a customer's file, or `None` if it has no such file.
    fn size(&self, customer: CustomerId, id: FileId)
    -> impl Future<Output = StoreResult<Option<u64>>> + Send;

    /// A customer's whole file, for small ones (attachments).
    fn read(&self, customer: CustomerId, id: FileId) -> impl Future<Output = StoreResult<Vec<u8>>> + Send;

    /// Deletes a customer's files.
    fn delete(&self, customer: CustomerId, ids: &[FileId]) -> impl Future<Output = StoreResult<()>> + Send;
}
