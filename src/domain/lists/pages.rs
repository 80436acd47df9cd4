//! Page-numbered listings that stay fast deep into a big list (4.8, A.8).
//! The vendor API asks for page N, not "after id X"; an OFFSET that deep
//! walks every row before it. So for a deep page the first id of every page
//! of that listing is worked out once, by one walk over the index, kept, and
//! then any page is a key lookup (`id >= first`). The anchors hold for one
//! `address_version` of the customer: a page is read with the anchors known
//! and the version at that moment in one visit to the database, and read
//! again with new anchors when the addresses changed meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{AddressFilter, ListStorage, PageRead, Start};
use crate::domain::ids::{AddressId, CustomerId};
use crate::domain::storage::StoreResult;

/// Rows an OFFSET may skip before anchors are worth building.
const SHALLOW: i64 = 2_000;
/// Listings whose anchors are kept at once.
const KEEP: usize = 64;
/// Ids fetched per query while building anchors.
const WALK: i64 = 20_000;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Scope {
    customer: CustomerId,
    filter: AddressFilter,
    limit: i64,
}

struct Anchors {
    version: i64,
    /// `firsts[p]` is the first id of page `p + 1`.
    firsts: Arc<Vec<AddressId>>,
    used: Instant,
}

#[derive(Default)]
pub struct Pages {
    cache: Mutex<HashMap<Scope, Anchors>>,
}

impl Pages {
    /// Page `page` (from 1) of `limit` addresses in id order.
    pub(super) async fn addresses(
        &self,
        store: &impl ListStorage,
        customer: CustomerId,
        filter: &AddressFilter,
        page: i64,
        limit: i64,
    ) -> StoreResult<PageRead> {
        let skip = (page - 1).saturating_mul(limit);
        // A state comes from the suppressions, which move no address
        // version: anchors of such a listing could not be known current.
        if skip <= SHALLOW || filter.state.is_some() {
            return store
                .address_page(customer, filter, Start::Skip(skip), limit)
                .await;
        }
        let scope = Scope {
            customer,
            filter: filter.clone(),
            limit,
        };
        // The anchors known, checked by the version read with the page.
        if let Some((version, firsts)) = self.known(&scope) {
            let read = store
                .address_page(customer, filter, at(&firsts, page), limit)
                .await?;
            if read.version == version || !read.list_found {
                return Ok(read);
            }
        }
        let version = store.address_version(customer).await?;
        let firsts = Arc::new(build(store, &scope).await?);
        self.keep(scope, version, firsts.clone());
        store
            .address_page(customer, filter, at(&firsts, page), limit)
            .await
    }

    /// The anchors of a listing, whatever their version.
    fn known(&self, scope: &Scope) -> Option<(i64, Arc<Vec<AddressId>>)> {
        let mut cache = self.cache.lock().expect("page cache lock");
        let a = cache.get_mut(scope)?;
        a.used = Instant::now();
        Some((a.version, a.firsts.clone()))
    }

    fn keep(&self, scope: Scope, version: i64, firsts: Arc<Vec<AddressId>>) {
        let mut cache = self.cache.lock().expect("page cache lock");
        if cache.len() >= KEEP
            && !cache.contains_key(&scope)
            && let Some(oldest) = cache.iter().min_by_key(|(_, a)| a.used).map(|(s, _)| s.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(
            scope,
            Anchors {
                version,
                firsts,
                used: Instant::now(),
            },
        );
    }
}

/// Where page `page` starts: at its anchor, or past every id when the
/// listing has fewer pages.
fn at(firsts: &[AddressId], page: i64) -> Start {
    let first = usize::try_from(page - 1).ok().and_then(|p| firsts.get(p));
    Start::AtId(first.copied().unwrap_or(AddressId(i64::MAX)))
}

/// The first id of every page, by one walk over the matching ids.
async fn build(store: &impl ListStorage, scope: &Scope) -> StoreResult<Vec<AddressId>> {
    let mut firsts = Vec::new();
    let mut position: i64 = 0;
    let mut after = AddressId(0);
    loop {
        let ids = store
            .address_ids_after(scope.customer, &scope.filter, after, WALK)
            .await?;
        for &id in &ids {
            if position % scope.limit == 0 {
                firsts.push(id);
            }
            position += 1;
        }
        match ids.last() {
            Some(&last) if ids.len() as i64 == WALK => after = last,
            _ => break,
        }
    }
    Ok(firsts)
}
