//! Sender domains, their DKIM keys and the mailboxes under them. Owners are
//! NULL for the platform (the API's `customer_id` 0). Secrets arrive sealed.

use sqlx::FromRow;

use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool, unique_as};
use crate::domain::ids::{CustomerId, DomainId, MailboxId};
use crate::domain::senders::dkim::DkimAlgorithm;
use crate::domain::senders::{
    CapTarget, DailyCap, DomainName, Mailbox, MailboxAddress, MailboxScope, Owner, SenderDomain,
    SenderStorage, StoredDkimKey,
};

#[derive(FromRow)]
struct DomainRow {
    id: i64,
    customer_id: Option<i64>,
    domain: String,
    relay_host: Option<String>,
    relay_port: Option<i64>,
    relay_tls: bool,
}

impl From<DomainRow> for SenderDomain {
    fn from(r: DomainRow) -> SenderDomain {
        SenderDomain {
            id: DomainId(r.id),
            owner: Owner::from_stored(r.customer_id),
            domain: r.domain,
            relay: match (r.relay_host, r.relay_port) {
                (Some(h), Some(p)) => u16::try_from(p).ok().map(|p| (h, p, r.relay_tls)),
                _ => None,
            },
        }
    }
}

macro_rules! select_domain {
    () => {
        "SELECT id, customer_id, domain, relay_host, relay_port, relay_tls FROM sender_domains "
    };
}

#[derive(FromRow)]
struct DkimRow {
    algorithm: String,
    selector: String,
    private_key: Vec<u8>,
    public_key: String,
}

#[derive(FromRow)]
struct MailboxRow {
    id: i64,
    domain_id: i64,
    domain: String,
    customer_id: Option<i64>,
    local_part: String,
    address: String,
}

impl From<MailboxRow> for Mailbox {
    fn from(r: MailboxRow) -> Mailbox {
        Mailbox {
            id: MailboxId(r.id),
            domain_id: DomainId(r.domain_id),
            domain: r.domain,
            owner: Owner::from_stored(r.customer_id),
            local_part: r.local_part,
            address: r.address,
        }
    }
}

macro_rules! select_mailbox {
    () => {
        "SELECT m.id, m.domain_id, d.domain, m.customer_id, m.local_part, m.address \
         FROM mailboxes m JOIN sender_domains d ON d.id = m.domain_id "
    };
}

/// `LIMIT`/`OFFSET` of an unpaged list.
const NO_LIMIT: (i64, i64) = (i64::MAX, 0);

impl SenderStorage for Store {
    /// Adds a domain with its DKIM keys; `Duplicate("domain")` if any
    /// customer (or the platform) has it already.
    async fn create_domain(
        &self,
        owner: Owner,
        domain: &DomainName,
        keys: &[StoredDkimKey],
        now: i64,
    ) -> StoreResult<DomainId> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO sender_domains (customer_id, domain, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(owner.customer_id().map(CustomerId::get))
            .bind(domain.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_as("domain"))?;
            for k in keys {
                sqlx::query(
                    "INSERT INTO dkim_keys (domain_id, algorithm, selector, private_key, public_key, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(k.algorithm.as_str())
                .bind(&k.selector)
                .bind(&k.sealed_private)
                .bind(&k.public_base64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(DomainId(id))
        })
    }

    async fn domain(&self, domain: &DomainName) -> StoreResult<Option<SenderDomain>> {
        let row = on_pool!(self, p => sqlx::query_as::<_, DomainRow>(concat!(select_domain!(), "WHERE domain = $1"))
            .bind(domain.as_str())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(SenderDomain::from))
    }

    /// The domains `owner` may use (its own and the system's), or every
    /// domain; by owner (the platform first), then name (7.1, D-12).
    async fn domains(&self, visible_to: Option<Owner>) -> StoreResult<Vec<SenderDomain>> {
        let rows = match visible_to {
            Some(owner) => on_pool!(self, p => sqlx::query_as::<_, DomainRow>(concat!(
                select_domain!(),
                "WHERE customer_id IS NOT DISTINCT FROM $1 OR customer_id IS NULL \
                 ORDER BY COALESCE(customer_id, 0), domain"
            ))
            .bind(owner.customer_id().map(CustomerId::get))
            .fetch_all(p)
            .await)?,
            None => on_pool!(self, p => sqlx::query_as::<_, DomainRow>(concat!(
                select_domain!(),
                "ORDER BY COALESCE(customer_id, 0), domain"
            ))
            .fetch_all(p)
            .await)?,
        };
        Ok(rows.into_iter().map(SenderDomain::from).collect())
    }

    /// Deletes a domain of `owner` with its keys and mailboxes; false if
    /// `owner` has no such domain.
    async fn delete_domain(&self, owner: Owner, domain: &DomainName) -> StoreResult<bool> {
        let gone = self
            .write(
                "DELETE FROM sender_domains WHERE domain = $1 AND customer_id IS NOT DISTINCT FROM $2",
                &[
                    Arg::Text(domain.as_str()),
                    Arg::OptInt(owner.customer_id().map(CustomerId::get)),
                ],
            )
            .await?;
        Ok(gone == 1)
    }

    /// Sets (or, with `None`, clears) the server 'remote' sending goes
    /// through; false if there is no such domain.
    async fn set_domain_relay(
        &self,
        domain: &DomainName,
        relay: Option<(&str, u16, bool)>,
    ) -> StoreResult<bool> {
        let done = self
            .write(
                "UPDATE sender_domains SET relay_host = $1, relay_port = $2, relay_tls = $3 WHERE domain = $4",
                &[
                    Arg::OptText(relay.map(|r| r.0)),
                    Arg::OptInt(relay.map(|r| i64::from(r.1))),
                    Arg::Bool(relay.is_some_and(|r| r.2)),
                    Arg::Text(domain.as_str()),
                ],
            )
            .await?;
        Ok(done == 1)
    }

    /// A domain's DKIM keys, RSA first.
    async fn dkim_keys(&self, domain: DomainId) -> StoreResult<Vec<StoredDkimKey>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, DkimRow>(
            "SELECT algorithm, selector, private_key, public_key FROM dkim_keys WHERE domain_id = $1 \
             ORDER BY CASE algorithm WHEN 'rsa' THEN 0 ELSE 1 END, id",
        )
        .bind(domain.get())
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredDkimKey {
                    algorithm: DkimAlgorithm::parse(&r.algorithm).ok_or_else(|| {
                        StoreError::Failed(format!("unknown DKIM algorithm {}", r.algorithm))
                    })?,
                    selector: r.selector,
                    sealed_private: r.private_key,
                    public_base64: r.public_key,
                })
            })
            .collect()
    }

    /// Adds a mailbox; `Duplicate("mailbox")` if the address exists anywhere.
    async fn create_mailbox(
        &self,
        domain: DomainId,
        owner: Owner,
        address: &MailboxAddress,
        sealed_password: &[u8],
        now: i64,
    ) -> StoreResult<MailboxId> {
        let id = self
            .insert_id(
                "INSERT INTO mailboxes (domain_id, customer_id, local_part, address, address_key, password, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                &[
                    Arg::Int(domain.get()),
                    Arg::OptInt(owner.customer_id().map(CustomerId::get)),
                    Arg::Text(&address.local_part),
                    Arg::Text(&address.address()),
                    Arg::Text(&address.key()),
                    Arg::Bytes(sealed_password),
                    Arg::Int(now),
                ],
            )
            .await
            .map_err(unique_as("mailbox"))?;
        Ok(MailboxId(id))
    }

    async fn mailbox(&self, address: &MailboxAddress) -> StoreResult<Option<Mailbox>> {
        let row = on_pool!(self, p => sqlx::query_as::<_, MailboxRow>(concat!(select_mailbox!(), "WHERE m.address_key = $1"))
            .bind(address.key())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Mailbox::from))
    }

    /// The mailboxes of a domain in `scope`, ordered by address (D-12);
    /// `page` is (limit, offset).
    async fn mailboxes(
        &self,
        domain: DomainId,
        scope: MailboxScope,
        page: Option<(i64, i64)>,
    ) -> StoreResult<Vec<Mailbox>> {
        let (limit, offset) = page.unwrap_or(NO_LIMIT);
        let domain_id = domain.get();
        let rows = match scope {
            MailboxScope::AvailableTo(customer_id) => {
                on_pool!(self, p => sqlx::query_as::<_, MailboxRow>(concat!(
                select_mailbox!(),
                "WHERE m.domain_id = $1 AND (m.customer_id = $2 OR m.customer_id IS NULL) \
                 ORDER BY m.address_key LIMIT $3 OFFSET $4"
            ))
            .bind(domain_id)
            .bind(customer_id.get())
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await)?
            }
            MailboxScope::OwnedBy(owner) => on_pool!(self, p => sqlx::query_as::<_, MailboxRow>(concat!(
                select_mailbox!(),
                "WHERE m.domain_id = $1 AND m.customer_id IS NOT DISTINCT FROM $2 \
                 ORDER BY m.address_key LIMIT $3 OFFSET $4"
            ))
            .bind(domain_id)
            .bind(owner.customer_id().map(CustomerId::get))
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await)?,
            MailboxScope::All => on_pool!(self, p => sqlx::query_as::<_, MailboxRow>(concat!(
                select_mailbox!(),
                "WHERE m.domain_id = $1 ORDER BY m.address_key LIMIT $2 OFFSET $3"
            ))
            .bind(domain_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await)?,
        };
        Ok(rows.into_iter().map(Mailbox::from).collect())
    }

    async fn set_mailbox_password(
        &self,
        id: MailboxId,
        sealed_password: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let done = self
            .write(
                "UPDATE mailboxes SET password = $1, updated_at = $2 WHERE id = $3",
                &[Arg::Bytes(sealed_password), Arg::Int(now), Arg::Int(id.get())],
            )
            .await?;
        Ok(done == 1)
    }

    async fn delete_mailbox(&self, id: MailboxId) -> StoreResult<bool> {
        let gone = self
            .write("DELETE FROM mailboxes WHERE id = $1", &[Arg::Int(id.get())])
            .await?;
        Ok(gone == 1)
    }

    /// A mailbox's sealed password, for the delivery that logs in with it.
    async fn sealed_mailbox_password(&self, id: MailboxId) -> StoreResult<Option<Vec<u8>>> {
        let sealed = on_pool!(self, p => sqlx::query_scalar::<_, Vec<u8>>("SELECT password FROM mailboxes WHERE id = $1")
            .bind(id.get())
            .fetch_optional(p)
            .await)?;
        Ok(sealed)
    }

    /// Whether a task waiting, on hold, sending or paused uses the domain or
    /// one of its mailboxes as sender (7.3 `in_use`).
    async fn domain_in_use(&self, domain: DomainId) -> StoreResult<bool> {
        let Some(domain) = on_pool!(self, p => sqlx::query_scalar::<_, String>(
            "SELECT domain FROM sender_domains WHERE id = $1",
        )
        .bind(domain.get())
        .fetch_optional(p)
        .await)?
        else {
            return Ok(false);
        };
        let by_domain = self
            .held_by_task("acct_domain = $2", -1, &Arg::Text(&domain))
            .await?;
        let pattern = format!("%@{domain}");
        Ok(by_domain
            || self
                .held_by_task("acct_address LIKE $2", -1, &Arg::Text(&pattern))
                .await?)
    }

    /// Whether such a task has the mailbox as its single sender (7.6 `in_use`).
    async fn mailbox_in_use(&self, id: MailboxId) -> StoreResult<bool> {
        let Some(address) = on_pool!(self, p => sqlx::query_scalar::<_, String>(
            "SELECT address FROM mailboxes WHERE id = $1",
        )
        .bind(id.get())
        .fetch_optional(p)
        .await)?
        else {
            return Ok(false);
        };
        self.held_by_task("acct_address = $2", -1, &Arg::Text(&address))
            .await
    }

    async fn caps(&self) -> StoreResult<Vec<(CapTarget, DailyCap)>> {
        self.all_caps().await
    }

    async fn set_cap(&self, target: CapTarget, cap: &DailyCap) -> StoreResult<()> {
        self.write_cap(target, cap).await
    }

    async fn cap_usage(&self, day: &str) -> StoreResult<Vec<(CapTarget, i64)>> {
        self.usage_of_day(day).await
    }

    async fn take_allowance(&self, takes: &[(CapTarget, i64)], day: &str) -> StoreResult<bool> {
        self.count_against_caps(takes, day).await
    }

    async fn give_allowance(&self, targets: &[CapTarget], day: &str) -> StoreResult<()> {
        self.uncount_from_caps(targets, day).await
    }
}
