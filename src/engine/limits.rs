//! The cluster's per-destination limits: the delivery throttle's
//! [`Coordinator`] over the store's PostgreSQL tables, for every process
//! of a cluster on one database.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rand::RngExt;

use crate::delivery::{Booked, Coordinator};
use crate::store::Store;

/// A process asked for a group's slots "lately": within this.
const WANTED_WITHIN: Duration = Duration::from_secs(1);
/// A group that started nothing for this long may start a burst at once.
const QUIET: Duration = Duration::from_secs(1);

pub struct StoreCoordinator {
    store: Store,
    /// This process among the slot holders.
    holder: String,
    lease: Duration,
}

impl StoreCoordinator {
    /// Slots leased for `lease` (the delivery lease: a process that dies
    /// gives its slots back as it gives back its deliveries), held by a
    /// name made of `host`, the process id and a random part.
    pub fn new(store: Store, host: &str, lease: Duration) -> StoreCoordinator {
        let nonce: u32 = rand::rng().random();
        StoreCoordinator {
            store,
            holder: format!("{host}:{}:{nonce:08x}", std::process::id()),
            lease,
        }
    }
}

impl Coordinator for StoreCoordinator {
    fn lease(&self) -> Duration {
        self.lease
    }

    fn acquire<'a>(
        &'a self,
        group: &'a str,
        limit: u32,
        want: u32,
    ) -> BoxFuture<'a, anyhow::Result<Vec<u32>>> {
        async move {
            Ok(self
                .store
                .lease_slots(group, limit, want, &self.holder, self.lease)
                .await?)
        }
        .boxed()
    }

    fn release<'a>(&'a self, group: &'a str, slots: &'a [u32]) -> BoxFuture<'a, anyhow::Result<()>> {
        async move { Ok(self.store.release_slots(group, slots, &self.holder).await?) }.boxed()
    }

    fn renew(&self) -> BoxFuture<'_, anyhow::Result<Vec<(String, u32)>>> {
        async move { Ok(self.store.renew_slots(&self.holder, self.lease).await?) }.boxed()
    }

    fn wanted<'a>(&'a self, groups: &'a [String]) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        async move { Ok(self.store.wanted_groups(groups, WANTED_WITHIN).await?) }.boxed()
    }

    fn book<'a>(&'a self, group: &'a str, span: Duration) -> BoxFuture<'a, anyhow::Result<Booked>> {
        async move {
            let (ahead, quiet, wanted) = self.store.book_span(group, span, QUIET, WANTED_WITHIN).await?;
            Ok(Booked {
                ahead: Duration::try_from_secs_f64(ahead).unwrap_or(Duration::ZERO),
                quiet,
                wanted,
            })
        }
        .boxed()
    }
}
