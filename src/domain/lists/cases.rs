//! The use-cases of contact lists and their addresses: lists created,
//! changed and deleted; addresses added one at a time or in batches,
//! changed, deleted, paged and walked; subscriptions, unsubscribes and the
//! suppressions they make; imports of uploaded files. And what they need
//! of storage.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use super::{
    Address, BatchRow, ContactList, FileEncoding, ListDescription, ListName, ListStatus, MAX_BATCH,
    NewAddress, Pages, UNCLASSIFIED,
};
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, CustomerId, FileId, ImportId, ListId};
use crate::domain::storage::{FileStorage, StoreError, StoreResult};
use crate::domain::suppressions::SuppressionReason;
use crate::domain::tasks::SendStatus;

/// Which addresses a listing covers (4.8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddressFilter {
    /// `None`: every list; `Some(0)`: the unclassified addresses.
    pub list_id: Option<ListId>,
    /// Case-insensitive substring of the address or the name.
    pub keyword: Option<String>,
    /// Only this address (Part G, H-13).
    pub address_id: Option<AddressId>,
    /// Only the addresses in this state.
    pub state: Option<AddressState>,
}

/// Whether the customer's tasks send to an address of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressState {
    /// Not suppressed: tasks send to it.
    Subscribed,
    /// Its owner asked for no more mail: an unsubscribe or a complaint.
    Unsubscribed,
    /// Suppressed for another reason: a hard bounce, or the customer's own.
    Suppressed,
}

impl AddressState {
    pub const ALL: [AddressState; 3] = [
        AddressState::Subscribed,
        AddressState::Unsubscribed,
        AddressState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AddressState::Subscribed => "subscribed",
            AddressState::Unsubscribed => "unsubscribed",
            AddressState::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<AddressState> {
        AddressState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The state of an address with this suppression (`None`: none).
    pub fn of(suppression: Option<SuppressionReason>) -> AddressState {
        match suppression {
            None => AddressState::Subscribed,
            Some(SuppressionReason::Unsubscribe | SuppressionReason::Complaint) => AddressState::Unsubscribed,
            Some(SuppressionReason::Bounce | SuppressionReason::Manual) => AddressState::Suppressed,
        }
    }

    /// The suppression reasons of the state; none for `Subscribed`.
    pub fn reasons(self) -> &'static [SuppressionReason] {
        match self {
            AddressState::Subscribed => &[],
            AddressState::Unsubscribed => &[SuppressionReason::Unsubscribe, SuppressionReason::Complaint],
            AddressState::Suppressed => &[SuppressionReason::Bounce, SuppressionReason::Manual],
        }
    }
}

/// Whether selected addresses are moved to another list or copied there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    Move,
    Copy,
}

/// What moving or copying addresses did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Addresses that came into the list.
    pub added: u64,
    /// Addresses the list had already (a move still takes them out of
    /// their own list).
    pub already: u64,
}

/// Where a page of addresses starts.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// At the first id ≥ this one (key-based).
    AtId(AddressId),
    /// After skipping this many (OFFSET, for shallow pages).
    Skip(i64),
}

/// A list to create (4.3).
#[derive(Clone, Debug)]
pub struct NewList {
    pub name: ListName,
    pub description: ListDescription,
    pub status: ListStatus,
}

/// What 4.4 changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ListChange {
    pub name: Option<ListName>,
    pub description: Option<ListDescription>,
    pub status: Option<ListStatus>,
}

/// What 4.10 changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct AddressChange {
    pub email: Option<EmailAddress>,
    pub fullname: Option<String>,
    pub vars: [Option<String>; 10],
    pub sex: Option<String>,
    pub birthday: Option<String>,
    pub phone: Option<String>,
    pub area: Option<String>,
}

impl AddressChange {
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.fullname.is_none()
            && self.vars.iter().all(Option::is_none)
            && self.sex.is_none()
            && self.birthday.is_none()
            && self.phone.is_none()
            && self.area.is_none()
    }
}

/// One line of the unsubscribe log (4.7).
#[derive(Clone, Debug)]
pub struct Unsubscribe {
    pub id: i64,
    pub at: i64,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportState {
    Queued,
    Running,
    Done,
    Failed,
}

impl ImportState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> ImportState {
        match s {
            "queued" => ImportState::Queued,
            "running" => ImportState::Running,
            "done" => ImportState::Done,
            _ => ImportState::Failed,
        }
    }
}

/// An import about to be queued: a stored file for a list.
pub struct NewImport<'a> {
    pub list_id: ListId,
    pub file_id: FileId,
    pub file_name: &'a str,
    pub encoding: FileEncoding,
    pub size: i64,
}

/// An import job and its progress.
#[derive(Clone, Debug)]
pub struct ImportJob {
    pub id: ImportId,
    pub customer_id: CustomerId,
    pub list_id: ListId,
    pub file_id: Option<FileId>,
    pub file_name: String,
    pub encoding: FileEncoding,
    pub state: ImportState,
    pub size: i64,
    pub offset_done: i64,
    pub lines_done: i64,
    pub added: i64,
    pub invalid: i64,
    pub duplicate: i64,
    pub error: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// What one batch of an import did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportProgress {
    /// Where the next batch starts.
    pub offset: i64,
    pub lines: i64,
    pub invalid: i64,
    /// The file is read to its end.
    pub finished: bool,
}

/// A page of a listing as [`ListStorage::address_page`] reads it.
#[derive(Clone, Debug, Default)]
pub struct PageRead {
    /// The filter names no list, list 0, or one of the customer's lists.
    pub list_found: bool,
    pub version: i64,
    pub rows: Vec<Address>,
}

/// What the list use-cases need of storage.
pub trait ListStorage: Sync {
    fn lists(&self, customer: CustomerId) -> impl Future<Output = StoreResult<Vec<ContactList>>> + Send;

    fn list(
        &self,
        customer: CustomerId,
        id: ListId,
    ) -> impl Future<Output = StoreResult<Option<ContactList>>> + Send;

    fn create_list(
        &self,
        customer: CustomerId,
        subject: &str,
        description: &str,
        status: ListStatus,
        now: i64,
    ) -> impl Future<Output = StoreResult<ListId>> + Send;

    /// False when the customer has no such list.
    fn update_list(
        &self,
        customer: CustomerId,
        id: ListId,
        c: &ListChange,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes a list with its addresses and unsubscribe log, in one
    /// transaction; false when the customer has no such list.
    fn delete_list(&self, customer: CustomerId, id: ListId)
    -> impl Future<Output = StoreResult<bool>> + Send;

    /// Whether a task of the customer (not deleted) in one of `statuses`
    /// sends to the list.
    fn list_used_by(
        &self,
        customer: CustomerId,
        list_id: ListId,
        statuses: &[SendStatus],
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Adds addresses, in one transaction, skipping those whose address is
    /// in the list already (and, of two rows with the same address, the
    /// second); returns the positions in `rows` of the rows skipped, in
    /// order.
    fn add_addresses(
        &self,
        customer: CustomerId,
        list_id: ListId,
        rows: &[NewAddress],
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<usize>>> + Send;

    /// Adds one address; `Duplicate` if it is already in the list.
    fn add_address(
        &self,
        customer: CustomerId,
        list_id: ListId,
        a: &NewAddress,
        now: i64,
    ) -> impl Future<Output = StoreResult<AddressId>> + Send;

    fn address(
        &self,
        customer: CustomerId,
        id: AddressId,
    ) -> impl Future<Output = StoreResult<Option<Address>>> + Send;

    /// Applies 4.10; `NotFound` or `Duplicate` (the new address is already
    /// in the same list).
    fn update_address(
        &self,
        customer: CustomerId,
        id: AddressId,
        c: &AddressChange,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes one address (no unsubscribe is logged, 4.11); false if the
    /// customer has no such address.
    fn delete_address(
        &self,
        customer: CustomerId,
        id: AddressId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes every address of a list (0: the unclassified ones); returns
    /// how many.
    fn empty_list(
        &self,
        customer: CustomerId,
        list_id: ListId,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// 4.13: adds the addresses not yet in the list and lifts the suppression
    /// of every address named (H-5); returns how many were added.
    fn subscribe(
        &self,
        customer: CustomerId,
        list_id: ListId,
        rows: &[NewAddress],
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// 4.14 and the unsubscribe link: removes the addresses from the list,
    /// logs each one removed, and suppresses every address named (H-5);
    /// returns how many were removed.
    fn unsubscribe(
        &self,
        customer: CustomerId,
        list_id: ListId,
        emails: &[EmailAddress],
        reason: &str,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Whether the customer's tasks must skip this address (H-5).
    fn is_suppressed(
        &self,
        customer: CustomerId,
        email: &EmailAddress,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Which of `keys` (addresses as [`EmailAddress::key`] gives them) the
    /// customer's tasks must skip (H-5).
    fn suppressed_keys(
        &self,
        customer: CustomerId,
        keys: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Changes whenever the customer's addresses change.
    fn address_version(&self, customer: CustomerId) -> impl Future<Output = StoreResult<i64>> + Send;

    /// A page of a listing, read at one moment: whether the filter's list
    /// is the customer's (list 0 always is), the customer's address
    /// version, and up to `limit` matching addresses in id order from where
    /// `start` says. One visit to the database for all three.
    fn address_page(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        start: Start,
        limit: i64,
    ) -> impl Future<Output = StoreResult<PageRead>> + Send;

    /// Up to `limit` matching addresses in id order, from where `start` says.
    fn addresses(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        start: Start,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<Address>>> + Send;

    /// How many addresses match.
    fn address_count(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Copies the customer's addresses `ids` into `to` (the unclassified
    /// ones: 0) unless it has them already, and with `Transfer::Move`
    /// removes them from their own lists, in one transaction. Ids the
    /// customer does not have, and addresses already in `to`'s own rows,
    /// are passed over.
    fn transfer_addresses(
        &self,
        customer: CustomerId,
        ids: &[AddressId],
        to: ListId,
        how: Transfer,
        now: i64,
    ) -> impl Future<Output = StoreResult<Transferred>> + Send;

    /// The ids of up to `limit` matching addresses after `after_id`, in order.
    fn address_ids_after(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        after_id: AddressId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<AddressId>>> + Send;

    /// Up to `limit` unsubscribes of a list after the (time, id) key, oldest first.
    fn unsubscribes_after(
        &self,
        customer: CustomerId,
        list_id: ListId,
        after: (i64, i64),
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<Unsubscribe>>> + Send;

    /// Queues an import of a stored file.
    fn create_import_job(
        &self,
        customer: CustomerId,
        job: &NewImport<'_>,
        now: i64,
    ) -> impl Future<Output = StoreResult<ImportId>> + Send;

    /// An import job, of `customer` (`None`: of anyone).
    fn import_job(
        &self,
        customer: Option<CustomerId>,
        id: ImportId,
    ) -> impl Future<Output = StoreResult<Option<ImportJob>>> + Send;

    /// Import jobs, newest first; all customers' when `customer` is `None`.
    fn import_jobs(
        &self,
        customer: Option<CustomerId>,
    ) -> impl Future<Output = StoreResult<Vec<ImportJob>>> + Send;
}

/// Why a list operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("no such list")]
    NotFound,
    #[error("no such address")]
    AddressNotFound,
    #[error("a list needs a name")]
    NameRequired,
    #[error("a list's name is at most {max} characters")]
    NameTooLong { max: usize },
    #[error("a list's description is at most {max} characters")]
    DescriptionTooLong { max: usize },
    #[error("a task that has not ended sends to the list")]
    InUse,
    #[error("not an e-mail address")]
    InvalidAddress,
    #[error("the address is in the list already")]
    Duplicate,
    #[error("no address was given")]
    NoRecords,
    #[error("a batch is at most {max} records")]
    TooManyRecords { max: usize },
    #[error("the file is empty")]
    EmptyFile,
    #[error("the file is neither UTF-8 nor GBK/GB18030 text")]
    NotText,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One of the customer's lists, or `NotFound`.
async fn own_list(s: &impl ListStorage, customer: CustomerId, id: ListId) -> Result<ContactList, ListError> {
    s.list(customer, id).await?.ok_or(ListError::NotFound)
}

/// `NotFound` unless `id` is one of the customer's lists or the
/// unclassified addresses.
async fn require_list(s: &impl ListStorage, customer: CustomerId, id: ListId) -> Result<(), ListError> {
    if id == UNCLASSIFIED {
        return Ok(());
    }
    own_list(s, customer, id).await.map(drop)
}

/// `InUse` while a task that has not ended (on hold, waiting, sending or
/// paused) sends to the list (4.5, 4.12).
async fn refuse_in_use(s: &impl ListStorage, customer: CustomerId, id: ListId) -> Result<(), ListError> {
    if s.list_used_by(customer, id, &SendStatus::holding()).await? {
        return Err(ListError::InUse);
    }
    Ok(())
}

/// A batch of `n` records: at least one, at most [`MAX_BATCH`] (D-17).
fn check_batch_size(n: usize) -> Result<(), ListError> {
    match n {
        0 => Err(ListError::NoRecords),
        n if n > MAX_BATCH => Err(ListError::TooManyRecords { max: MAX_BATCH }),
        _ => Ok(()),
    }
}

/// The customer's lists, by id.
pub async fn lists(s: &impl ListStorage, customer: CustomerId) -> Result<Vec<ContactList>, ListError> {
    Ok(s.lists(customer).await?)
}

/// One of the customer's lists.
pub async fn list(s: &impl ListStorage, customer: CustomerId, id: ListId) -> Result<ContactList, ListError> {
    own_list(s, customer, id).await
}

/// Creates a list (4.3).
pub async fn create_list(
    s: &impl ListStorage,
    customer: CustomerId,
    l: &NewList,
    now: i64,
) -> Result<ListId, ListError> {
    Ok(
        s.create_list(customer, l.name.as_str(), l.description.as_str(), l.status, now)
            .await?,
    )
}

/// Changes a list's name, description or status (4.4).
pub async fn edit_list(
    s: &impl ListStorage,
    customer: CustomerId,
    id: ListId,
    change: &ListChange,
) -> Result<(), ListError> {
    if s.update_list(customer, id, change).await? {
        Ok(())
    } else {
        Err(ListError::NotFound)
    }
}

/// Deletes a list with its addresses and unsubscribe log (4.5); refused
/// while a task that has not ended sends to it.
pub async fn delete_list(s: &impl ListStorage, customer: CustomerId, id: ListId) -> Result<(), ListError> {
    let list = own_list(s, customer, id).await?;
    refuse_in_use(s, customer, list.id).await?;
    if s.delete_list(customer, list.id).await? {
        Ok(())
    } else {
        Err(ListError::NotFound)
    }
}

/// An address just added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddedAddress {
    pub id: AddressId,
    /// The address is suppressed: it is kept, and the customer's tasks skip
    /// it until it subscribes again (H-5).
    pub suppressed: bool,
}

/// Adds one address to a list, or to the unclassified addresses (4.9.1);
/// `Duplicate` if the list has it already.
pub async fn add_address(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
    a: &NewAddress,
    now: i64,
) -> Result<AddedAddress, ListError> {
    require_list(s, customer, list).await?;
    let suppressed = s.is_suppressed(customer, &a.email).await?;
    match s.add_address(customer, list, a, now).await {
        Ok(id) => Ok(AddedAddress { id, suppressed }),
        Err(StoreError::Duplicate(_)) => Err(ListError::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Why a row of a batch was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftOutReason {
    /// Not an e-mail address.
    Invalid,
    /// The same address as the earlier row `first` (addresses are compared
    /// as [`EmailAddress::key`] gives them).
    Repeated { first: usize },
    /// The list has the address already.
    InList,
}

/// A row of a batch that was not added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// The row's position in the batch, from 0.
    pub index: usize,
    /// The address as given.
    pub email: String,
    pub reason: LeftOutReason,
}

/// What a batch did: every good row is added, each other one is reported
/// with its position and why it was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub added: u64,
    /// The rows left out, in batch order.
    pub left_out: Vec<LeftOut>,
    /// Positions of rows added whose address is suppressed: they are kept,
    /// and the customer's tasks skip them until they subscribe again (H-5).
    pub suppressed: Vec<usize>,
}

impl BatchOutcome {
    /// Rows that were no address.
    pub fn invalid(&self) -> usize {
        self.left_out
            .iter()
            .filter(|l| l.reason == LeftOutReason::Invalid)
            .count()
    }

    /// Rows whose address was in the list already or earlier in the batch.
    pub fn duplicates(&self) -> usize {
        self.left_out.len() - self.invalid()
    }
}

/// Adds a batch of addresses to a list, or to the unclassified addresses
/// (4.9.2): every good row is added, and the others are left out and
/// reported: not an address, repeated in the batch (the first is kept), or
/// in the list already. A batch has 1 to [`MAX_BATCH`] rows, counted before
/// any of them is read. Suppressed addresses are added too, and reported.
pub async fn add_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
    rows: impl IntoIterator<Item = BatchRow, IntoIter: ExactSizeIterator + Send>,
    now: i64,
) -> Result<BatchOutcome, ListError> {
    let rows = rows.into_iter();
    check_batch_size(rows.len())?;
    require_list(s, customer, list).await?;
    let mut out = BatchOutcome::default();
    // The rows to store, their keys and their positions in the batch.
    let mut fresh: Vec<NewAddress> = Vec::with_capacity(rows.len());
    let mut keys: Vec<String> = Vec::with_capacity(rows.len());
    let mut at: Vec<usize> = Vec::with_capacity(rows.len());
    let mut first_of: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (index, row) in rows.enumerate() {
        let a = match row {
            BatchRow::Address(a) => a,
            BatchRow::Invalid(email) => {
                out.left_out.push(LeftOut {
                    index,
                    email,
                    reason: LeftOutReason::Invalid,
                });
                continue;
            }
        };
        match first_of.entry(a.email.key()) {
            Entry::Occupied(first) => out.left_out.push(LeftOut {
                index,
                email: a.email.as_str().to_string(),
                reason: LeftOutReason::Repeated { first: *first.get() },
            }),
            Entry::Vacant(slot) => {
                keys.push(slot.key().clone());
                slot.insert(index);
                at.push(index);
                fresh.push(a);
            }
        }
    }
    drop(first_of);
    // Read before the write: a failure leaves the list as it was.
    let suppressed = s.suppressed_keys(customer, &keys).await?;
    let suppressed: std::collections::HashSet<&str> = suppressed.iter().map(String::as_str).collect();
    let skipped = s.add_addresses(customer, list, &fresh, now).await?;
    let mut skipped = skipped.into_iter().peekable();
    for (i, a) in fresh.iter().enumerate() {
        if skipped.next_if_eq(&i).is_some() {
            out.left_out.push(LeftOut {
                index: at[i],
                email: a.email.as_str().to_string(),
                reason: LeftOutReason::InList,
            });
        } else {
            out.added += 1;
            if suppressed.contains(keys[i].as_str()) {
                out.suppressed.push(at[i]);
            }
        }
    }
    out.left_out.sort_by_key(|l| l.index);
    Ok(out)
}

/// One of the customer's addresses.
pub async fn address(
    s: &impl ListStorage,
    customer: CustomerId,
    id: AddressId,
) -> Result<Address, ListError> {
    s.address(customer, id).await?.ok_or(ListError::AddressNotFound)
}

/// Changes an address (4.10); `Duplicate` when the new address is in the
/// same list already.
pub async fn edit_address(
    s: &impl ListStorage,
    customer: CustomerId,
    id: AddressId,
    change: &AddressChange,
) -> Result<(), ListError> {
    match s.update_address(customer, id, change).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(ListError::AddressNotFound),
        Err(StoreError::Duplicate(_)) => Err(ListError::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an address (4.11); no unsubscribe is logged.
pub async fn delete_address(
    s: &impl ListStorage,
    customer: CustomerId,
    id: AddressId,
) -> Result<(), ListError> {
    if s.delete_address(customer, id).await? {
        Ok(())
    } else {
        Err(ListError::AddressNotFound)
    }
}

/// Removes every address of a list, or the unclassified ones (4.12);
/// refused while a task that has not ended sends to it. Returns how many.
pub async fn empty_list(s: &impl ListStorage, customer: CustomerId, list: ListId) -> Result<u64, ListError> {
    require_list(s, customer, list).await?;
    refuse_in_use(s, customer, list).await?;
    Ok(s.empty_list(customer, list).await?)
}

/// `NotFound` when the filter names a list that is not the customer's.
async fn check_filter(
    s: &impl ListStorage,
    customer: CustomerId,
    filter: &AddressFilter,
) -> Result<(), ListError> {
    match filter.list_id {
        Some(list) => require_list(s, customer, list).await,
        None => Ok(()),
    }
}

/// Page `page` (from 1) of `limit` matching addresses in id order (4.8);
/// deep pages cost a key lookup, not a walk over the pages before
/// ([`Pages`]).
pub async fn address_page(
    s: &impl ListStorage,
    pages: &Pages,
    customer: CustomerId,
    filter: &AddressFilter,
    page: i64,
    limit: i64,
) -> Result<Vec<Address>, ListError> {
    let read = pages.addresses(s, customer, filter, page, limit).await?;
    if !read.list_found {
        return Err(ListError::NotFound);
    }
    Ok(read.rows)
}

/// How many addresses match a filter (for a page count).
pub async fn count_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    filter: &AddressFilter,
) -> Result<i64, ListError> {
    check_filter(s, customer, filter).await?;
    Ok(s.address_count(customer, filter).await?)
}

/// Moves or copies some of the customer's addresses into one of its lists
/// (or to the unclassified ones); an address the list has already is not
/// added twice. A move takes them out of their lists as deleting them
/// would (4.11).
pub async fn transfer_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    ids: &[AddressId],
    to: ListId,
    how: Transfer,
    now: i64,
) -> Result<Transferred, ListError> {
    if ids.is_empty() {
        return Err(ListError::NoRecords);
    }
    if ids.len() > MAX_BATCH {
        return Err(ListError::TooManyRecords { max: MAX_BATCH });
    }
    require_list(s, customer, to).await?;
    Ok(s.transfer_addresses(customer, ids, to, how, now).await?)
}

/// Deletes some of the customer's addresses (4.11, one at a time); those
/// it does not have are passed over. Returns how many went.
pub async fn delete_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    ids: &[AddressId],
) -> Result<u64, ListError> {
    let mut n = 0;
    for id in ids {
        if s.delete_address(customer, *id).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Up to `limit` matching addresses with ids above `after`, in id order:
/// one page of a listing paged by cursor.
pub async fn addresses_after(
    s: &impl ListStorage,
    customer: CustomerId,
    filter: &AddressFilter,
    after: AddressId,
    limit: i64,
) -> Result<Vec<Address>, ListError> {
    let start = Start::AtId(AddressId(after.get() + 1));
    // The list's owner is checked in the same visit as the rows are read.
    let read = s.address_page(customer, filter, start, limit).await?;
    if !read.list_found {
        return Err(ListError::NotFound);
    }
    Ok(read.rows)
}

/// The matching addresses, a batch at a time in id order, for answers
/// that are streamed (every address of 4.8, the export of 4.6).
#[derive(Clone, Debug)]
pub struct AddressWalk {
    customer: CustomerId,
    filter: AddressFilter,
    after: AddressId,
}

impl AddressWalk {
    /// Up to `limit` addresses after the last batch; none at the end.
    pub async fn next_batch(&mut self, s: &impl ListStorage, limit: i64) -> StoreResult<Vec<Address>> {
        let start = Start::AtId(AddressId(self.after.get() + 1));
        let rows = s.addresses(self.customer, &self.filter, start, limit).await?;
        if let Some(last) = rows.last() {
            self.after = last.id;
        }
        Ok(rows)
    }
}

/// Starts a walk over the matching addresses.
pub async fn walk_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    filter: AddressFilter,
) -> Result<AddressWalk, ListError> {
    check_filter(s, customer, &filter).await?;
    Ok(AddressWalk {
        customer,
        filter,
        after: AddressId(0),
    })
}

/// A list's unsubscribe log, a batch at a time, oldest first (4.7).
#[derive(Clone, Debug)]
pub struct UnsubscribeWalk {
    customer: CustomerId,
    list: ListId,
    after: (i64, i64),
}

impl UnsubscribeWalk {
    /// Up to `limit` unsubscribes after the last batch; none at the end.
    pub async fn next_batch(&mut self, s: &impl ListStorage, limit: i64) -> StoreResult<Vec<Unsubscribe>> {
        let rows = s
            .unsubscribes_after(self.customer, self.list, self.after, limit)
            .await?;
        if let Some(last) = rows.last() {
            self.after = (last.at, last.id);
        }
        Ok(rows)
    }
}

/// Starts a walk over a list's unsubscribe log.
pub async fn unsubscribe_log(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
) -> Result<UnsubscribeWalk, ListError> {
    require_list(s, customer, list).await?;
    Ok(UnsubscribeWalk {
        customer,
        list,
        after: (i64::MIN, 0),
    })
}

/// Subscribes addresses to a list (4.13): those not in it yet are added,
/// and every address named has its suppression lifted (H-5), even one that
/// adds nothing. Rows that are no address are passed over; all rows count
/// towards [`MAX_BATCH`]. Returns how many were added.
pub async fn subscribe(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
    rows: impl IntoIterator<Item = BatchRow, IntoIter: ExactSizeIterator + Send>,
    now: i64,
) -> Result<u64, ListError> {
    let rows = rows.into_iter();
    if rows.len() > MAX_BATCH {
        return Err(ListError::TooManyRecords { max: MAX_BATCH });
    }
    require_list(s, customer, list).await?;
    let addresses: Vec<NewAddress> = rows
        .filter_map(|r| match r {
            BatchRow::Address(a) => Some(a),
            BatchRow::Invalid(_) => None,
        })
        .collect();
    Ok(s.subscribe(customer, list, &addresses, now).await?)
}

/// The customer unsubscribes addresses from a list (4.14): they leave it,
/// each one removed is logged, and every one named is suppressed for the
/// customer's tasks (H-5). At most [`MAX_BATCH`]. Returns how many left.
pub async fn unsubscribe_addresses(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
    emails: &[EmailAddress],
    now: i64,
) -> Result<u64, ListError> {
    if emails.len() > MAX_BATCH {
        return Err(ListError::TooManyRecords { max: MAX_BATCH });
    }
    require_list(s, customer, list).await?;
    Ok(s.unsubscribe(customer, list, emails, "unsubscribe", now).await?)
}

/// A recipient's own unsubscribe (the link of a message, one-click):
/// removes the address from the list, logs it and suppresses it, so that
/// the customer's later tasks skip it; returns how many were removed.
pub async fn unsubscribe(
    s: &impl ListStorage,
    customer: CustomerId,
    list: ListId,
    emails: &[EmailAddress],
    reason: &str,
    now: i64,
) -> StoreResult<u64> {
    s.unsubscribe(customer, list, emails, reason, now).await
}

/// Whether the customer's tasks skip this address: it unsubscribed, or
/// bounced as not existing, and has not subscribed again since.
pub async fn is_suppressed(
    s: &impl ListStorage,
    customer: CustomerId,
    email: &EmailAddress,
) -> StoreResult<bool> {
    s.is_suppressed(customer, email).await
}

/// An uploaded address file, still where the upload left it.
#[derive(Clone, Copy, Debug)]
pub struct ImportUpload<'a> {
    pub path: &'a Path,
    pub file_name: &'a str,
    pub size: u64,
}

/// How much of a file its encoding is judged on (H-7).
const ENCODING_PREFIX: usize = 64 * 1024;

/// The first bytes of an upload, for its encoding.
async fn file_prefix(path: &Path) -> Result<Vec<u8>, ListError> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut prefix = Vec::with_capacity(ENCODING_PREFIX);
        let file = tokio::fs::File::open(path).await?;
        file.take(ENCODING_PREFIX as u64).read_to_end(&mut prefix).await?;
        Ok::<_, std::io::Error>(prefix)
    };
    read.await
        .map_err(|e| ListError::Store(StoreError::Failed(format!("reading the upload: {e}"))))
}

/// Queues the import of an address file into a list, or into the
/// unclassified addresses (4.9.3, H-7): the file must be UTF-8 (a BOM
/// allowed) or GB18030 text, judged on its first 64 KiB. It is kept, and
/// the import runner reads it in batches.
pub async fn queue_import(
    s: &impl ListStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    list: ListId,
    upload: ImportUpload<'_>,
    now: i64,
) -> Result<ImportId, ListError> {
    if upload.size == 0 {
        return Err(ListError::EmptyFile);
    }
    let encoding = FileEncoding::detect(&file_prefix(upload.path).await?).ok_or(ListError::NotText)?;
    require_list(s, customer, list).await?;
    let file_id = files.save(customer, upload.path, now).await?;
    let job = NewImport {
        list_id: list,
        file_id,
        file_name: upload.file_name,
        encoding,
        size: i64::try_from(upload.size).unwrap_or(i64::MAX),
    };
    match s.create_import_job(customer, &job, now).await {
        Ok(id) => Ok(id),
        Err(e) => {
            if let Err(left) = files.delete(customer, &[file_id]).await {
                tracing::error!(error = %left, file = %file_id, "an import file was left behind");
            }
            Err(e.into())
        }
    }
}

/// An import job of `customer` (`None`: of anyone, for administrators).
pub async fn import_job(
    s: &impl ListStorage,
    customer: Option<CustomerId>,
    id: ImportId,
) -> StoreResult<Option<ImportJob>> {
    s.import_job(customer, id).await
}

/// Import jobs, newest first; every customer's when `customer` is `None`.
pub async fn import_jobs(s: &impl ListStorage, customer: Option<CustomerId>) -> StoreResult<Vec<ImportJob>> {
    s.import_jobs(customer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_state_follows_why_it_is_suppressed() {
        assert_eq!(AddressState::of(None), AddressState::Subscribed);
        for r in [SuppressionReason::Unsubscribe, SuppressionReason::Complaint] {
            assert_eq!(AddressState::of(Some(r)), AddressState::Unsubscribed);
        }
        for r in [SuppressionReason::Bounce, SuppressionReason::Manual] {
            assert_eq!(AddressState::of(Some(r)), AddressState::Suppressed);
        }
        // Each reason belongs to exactly the state it makes.
        for state in AddressState::ALL {
            assert!(
                state
                    .reasons()
                    .iter()
                    .all(|r| AddressState::of(Some(*r)) == state)
            );
            assert_eq!(AddressState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AddressState::parse("gone"), None);
    }
}
