//! Page-numbered listings that stay fast deep into a big list (4.8, A.8).
//! The vendor API asks for page N, not "after id X"; an OFFSET that deep
//! walks every row before it. So for a deep page the first id of every page
//! of that listing is worked out once, by one walk over the index, kept, and
//! then any page is a key lookup (`id >= first`). The anchors are dropped as
//! soon as the customer's addresses change (their `address_version`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{AddressFilter, Start, Store, StoreResult};
use crate::domain::lists::Address;

/// Rows an OFFSET may skip before anchors are worth building.
const SHALLOW: i64 = 2_000;
/// Listings whose anchors are kept at once.
const KEEP: usize = 64;
/// Ids fetched per query while building anchors.
const WALK: i64 = 20_000;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Scope {
    customer: i64,
    filter: AddressFilter,
    limit: i64,
}

struct Anchors {
    version: i64,
    /// `firsts[p]` is the first id of page `p + 1`.
    firsts: Arc<Vec<i64>>,
    used: Instant,
}

#[derive(Default)]
pub struct Pages {
    cache: Mutex<HashMap<Scope, Anchors>>,
}

impl Pages {
    /// Page `page` (from 1) of `limit` addresses in id order.
    pub async fn addresses(
        &self,
        store: &Store,
        customer: i64,
        filter: &AddressFilter,
        page: i64,
        limit: i64,
    ) -> StoreResult<Vec<Address>> {
        let skip = (page - 1).saturating_mul(limit);
        if skip <= SHALLOW {
            return store.addresses(customer, filter, Start::Skip(skip), limit).await;
        }
        let scope = Scope {
            customer,
            filter: filter.clone(),
            limit,
        };
        let version = store.address_version(customer).await?;
        let firsts = match self.cached(&scope, version) {
            Some(f) => f,
            None => {
                let f = Arc::new(build(store, &scope).await?);
                self.keep(scope, version, f.clone());
                f
            }
        };
        match usize::try_from(page - 1).ok().and_then(|p| firsts.get(p)) {
            Some(&first) => store.addresses(customer, filter, Start::AtId(first), limit).await,
            None => Ok(Vec::new()),
        }
    }

    fn cached(&self, scope: &Scope, version: i64) -> Option<Arc<Vec<i64>>> {
        let mut cache = self.cache.lock().expect("page cache lock");
        let a = cache.get_mut(scope).filter(|a| a.version == version)?;
        a.used = Instant::now();
        Some(a.firsts.clone())
    }

    fn keep(&self, scope: Scope, version: i64, firsts: Arc<Vec<i64>>) {
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

/// The first id of every page, by one walk over the matching ids.
async fn build(store: &Store, scope: &Scope) -> StoreResult<Vec<i64>> {
    let mut firsts = Vec::new();
    let mut position: i64 = 0;
    let mut after = 0;
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
