//! The use-cases of the links in sent messages: where a click goes, the
//! unsubscribe of a delivery's recipient, and the writing of a batch of
//! hits; and what they need of storage.

use std::collections::HashMap;
use std::sync::Arc;

use super::{DeliveryLanguage, DeliveryOwner, Hit, HitBatch, HitTarget, LinkCache};
use crate::clock::Clock;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{DeliveryId, LinkId};
use crate::domain::lists;
use crate::domain::storage::{Storage, StoreError, StoreResult};

/// What the tracking use-cases need of storage.
pub trait TrackingStorage: Sync {
    /// The URL of one of the tracked links of a delivery's own task.
    fn click_target(
        &self,
        delivery: DeliveryId,
        link: LinkId,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// Whose delivery it is.
    fn delivery_owner(
        &self,
        delivery: DeliveryId,
    ) -> impl Future<Output = StoreResult<Option<DeliveryOwner>>> + Send;

    /// The `footer_language` of a delivery's task and of its customer,
    /// and the task's template.
    fn delivery_language(
        &self,
        delivery: DeliveryId,
    ) -> impl Future<Output = StoreResult<Option<DeliveryLanguage>>> + Send;

    /// Counts an unsubscribe through a task's link on the day's figures,
    /// and announces it to the customer's webhooks in the same transaction.
    fn count_unsubscribe(
        &self,
        owner: &DeliveryOwner,
        day: jiff::civil::Date,
        now: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The deliveries hits name that still exist.
    fn hit_targets(
        &self,
        deliveries: &[DeliveryId],
    ) -> impl Future<Output = StoreResult<HashMap<DeliveryId, HitTarget>>> + Send;

    /// Adds a folded batch to every aggregate, in one transaction: per
    /// recipient, per (recipient, link), per link, per task and per day.
    fn write_hits(&self, batch: &HitBatch) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Why a tracking link's request did nothing.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// The delivery the token names is gone (its task was deleted), or its
    /// recipient has no address to act on.
    #[error("no such delivery")]
    UnknownDelivery,
    /// The link is not one of the delivery's task.
    #[error("no such link")]
    UnknownLink,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a click on one of a delivery's links goes: only to a link stored
/// for the delivery's own task (no open redirect).
pub async fn click_target(
    s: &impl TrackingStorage,
    cache: &LinkCache,
    delivery: DeliveryId,
    link: LinkId,
) -> Result<Arc<str>, TrackingError> {
    if let Some(url) = cache.get(delivery, link) {
        return Ok(url);
    }
    let url: Arc<str> = s
        .click_target(delivery, link)
        .await?
        .ok_or(TrackingError::UnknownLink)?
        .into();
    cache.put(delivery, link, url.clone());
    Ok(url)
}

/// The unsubscribe link: the delivery's address leaves its task's list, the
/// unsubscribe is logged (4.7) and the customer's later tasks skip the
/// address (H-5); the first time, it counts on the day's figures. Doing it
/// again changes nothing more. Returns whether the address was in the list.
pub async fn unsubscribe(
    s: &impl Storage,
    clock: &Clock,
    delivery: DeliveryId,
) -> Result<bool, TrackingError> {
    let owner = s
        .delivery_owner(delivery)
        .await?
        .ok_or(TrackingError::UnknownDelivery)?;
    let email = EmailAddress::parse(&owner.address).ok_or(TrackingError::UnknownDelivery)?;
    let now = clock.now();
    let removed = lists::unsubscribe(s, owner.customer, owner.list, &[email], "unsubscribe", now).await?;
    if removed > 0 {
        s.count_unsubscribe(&owner, clock.date_of(now), now).await?;
    }
    Ok(removed > 0)
}

/// What decides the language of the unsubscribe page of a delivery: its
/// task's `footer_language`, else its customer's, and the task's template;
/// `None` when the delivery is gone.
pub async fn delivery_language(
    s: &impl TrackingStorage,
    delivery: DeliveryId,
) -> StoreResult<Option<DeliveryLanguage>> {
    s.delivery_language(delivery).await
}

/// Writes a batch of hits (see [`HitBatch::fold`] for which count as a
/// person's); returns how many were recorded (those of deleted tasks are not).
pub async fn record_hits(s: &impl TrackingStorage, hits: &[Hit], scanner_window: i64) -> StoreResult<usize> {
    let mut ids: Vec<DeliveryId> = hits.iter().map(|h| h.delivery).collect();
    ids.sort_unstable();
    ids.dedup();
    let targets = s.hit_targets(&ids).await?;
    let batch = HitBatch::fold(hits, &targets, scanner_window);
    if batch.recorded > 0 {
        s.write_hits(&batch).await?;
    }
    Ok(batch.recorded)
}
