//! The use-cases of sending domains and mailboxes: add and remove them,
//! their DKIM keys and records, mailbox passwords sealed at rest, their
//! daily caps and warm-up.

use std::collections::HashMap;

use jiff::civil::Date;

use super::dkim::{DkimAlgorithm, DkimError, DkimKey};
use super::health::{self, Check, DnsLookup, Platform, PublishedKey, Route};
use super::{
    CapTarget, CapToday, DailyCap, DomainName, Mailbox, MailboxAddress, MailboxPassword, MailboxScope, Owner,
    SenderDomain, StoredDkimKey, Warmup, dkim_secret_context, mailbox_secret_context,
};
use crate::domain::accounts::SendType;
use crate::domain::ids::{DomainId, MailboxId};
use crate::domain::storage::{Storage, StoreError, StoreResult};
use crate::secrets::SecretBox;

/// What the sender use-cases need of storage.
pub trait SenderStorage: Sync {
    /// Adds a domain with its DKIM keys; `Duplicate("domain")` if any
    /// customer (or the platform) has it already.
    fn create_domain(
        &self,
        owner: Owner,
        domain: &DomainName,
        keys: &[StoredDkimKey],
        now: i64,
    ) -> impl Future<Output = StoreResult<DomainId>> + Send;

    fn domain(&self, domain: &DomainName) -> impl Future<Output = StoreResult<Option<SenderDomain>>> + Send;

    /// The domains `owner` may use (its own and the platform's), or every
    /// domain; by owner (the platform first), then name.
    fn domains(
        &self,
        visible_to: Option<Owner>,
    ) -> impl Future<Output = StoreResult<Vec<SenderDomain>>> + Send;

    /// Deletes a domain of `owner` with its keys and mailboxes; false if
    /// `owner` has no such domain.
    fn delete_domain(
        &self,
        owner: Owner,
        domain: &DomainName,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Sets (or, with `None`, clears) the server 'remote' sending goes
    /// through; false if there is no such domain.
    fn set_domain_relay(
        &self,
        domain: &DomainName,
        relay: Option<(&str, u16, bool)>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// A domain's DKIM keys, RSA first.
    fn dkim_keys(&self, domain: DomainId) -> impl Future<Output = StoreResult<Vec<StoredDkimKey>>> + Send;

    /// Adds a mailbox; `Duplicate("mailbox")` if the address exists anywhere.
    fn create_mailbox(
        &self,
        domain: DomainId,
        owner: Owner,
        address: &MailboxAddress,
        sealed_password: &[u8],
        now: i64,
    ) -> impl Future<Output = StoreResult<MailboxId>> + Send;

    fn mailbox(&self, address: &MailboxAddress) -> impl Future<Output = StoreResult<Option<Mailbox>>> + Send;

    /// The mailboxes of a domain in `scope`, by address; `page` is (limit, offset).
    fn mailboxes(
        &self,
        domain: DomainId,
        scope: MailboxScope,
        page: Option<(i64, i64)>,
    ) -> impl Future<Output = StoreResult<Vec<Mailbox>>> + Send;

    fn set_mailbox_password(
        &self,
        id: MailboxId,
        sealed_password: &[u8],
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    fn delete_mailbox(&self, id: MailboxId) -> impl Future<Output = StoreResult<bool>> + Send;

    /// A mailbox's sealed password.
    fn sealed_mailbox_password(
        &self,
        id: MailboxId,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;

    /// Whether a task waiting, on hold, sending or paused uses the domain or
    /// one of its mailboxes as sender.
    fn domain_in_use(&self, domain: DomainId) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Whether such a task has the mailbox as its single sender.
    fn mailbox_in_use(&self, id: MailboxId) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every daily cap set.
    fn caps(&self) -> impl Future<Output = StoreResult<Vec<(CapTarget, DailyCap)>>> + Send;

    /// Sets a domain's or mailbox's cap; an empty one removes it.
    fn set_cap(&self, target: CapTarget, cap: &DailyCap) -> impl Future<Output = StoreResult<()>> + Send;

    /// The messages counted against caps on `day` (`YYYY-MM-DD`).
    fn cap_usage(&self, day: &str) -> impl Future<Output = StoreResult<Vec<(CapTarget, i64)>>> + Send;

    /// Counts one message on `day` against each target, all or none: false
    /// (and nothing counted) when a target has its limit used already.
    fn take_allowance(
        &self,
        takes: &[(CapTarget, i64)],
        day: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Uncounts one message on `day` from each target (taken, then not sent).
    fn give_allowance(
        &self,
        targets: &[CapTarget],
        day: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Why a sender operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("the domain exists already")]
    DomainExists,
    #[error("no such domain")]
    DomainNotFound,
    #[error("the mailbox exists already")]
    MailboxExists,
    #[error("no such mailbox")]
    MailboxNotFound,
    #[error("a task that has not ended sends from it")]
    InUse,
    #[error(transparent)]
    Key(#[from] DkimError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a domain for `owner` with a new key of each of `algorithms`
/// (RSA-2048, Ed25519), their private halves sealed.
pub async fn add_domain(
    s: &impl SenderStorage,
    secrets: &SecretBox,
    algorithms: &'static [DkimAlgorithm],
    owner: Owner,
    domain: &DomainName,
    today: jiff::civil::Date,
    now: i64,
) -> Result<DomainId, SenderError> {
    // Key generation is slow: spare it for a name that is taken already.
    if s.domain(domain).await?.is_some() {
        return Err(SenderError::DomainExists);
    }
    let keys = tokio::task::spawn_blocking(move || {
        algorithms
            .iter()
            .map(|a| DkimKey::generate(*a, a.selector(today)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| SenderError::Key(DkimError::of(format!("key generation stopped: {e}"))))??;
    let stored: Vec<StoredDkimKey> = keys
        .into_iter()
        .map(|k| StoredDkimKey {
            sealed_private: secrets.seal(&k.private_der, &dkim_secret_context(domain, &k.selector)),
            algorithm: k.algorithm,
            selector: k.selector,
            public_base64: k.public_base64,
        })
        .collect();
    match s.create_domain(owner, domain, &stored, now).await {
        Ok(id) => Ok(id),
        Err(StoreError::Duplicate(_)) => Err(SenderError::DomainExists),
        Err(e) => Err(e.into()),
    }
}

/// A domain by name, if it exists.
pub async fn domain(s: &impl SenderStorage, name: &DomainName) -> StoreResult<Option<SenderDomain>> {
    s.domain(name).await
}

/// The domains `owner` may use, or every domain (`None`).
pub async fn domains(s: &impl SenderStorage, visible_to: Option<Owner>) -> StoreResult<Vec<SenderDomain>> {
    s.domains(visible_to).await
}

/// Removes one of `owner`'s domains with its keys and mailboxes; refused
/// while a task that has not ended sends from it.
pub async fn delete_domain(
    s: &impl SenderStorage,
    owner: Owner,
    name: &DomainName,
) -> Result<(), SenderError> {
    let domain = s
        .domain(name)
        .await?
        .filter(|d| d.owner == owner)
        .ok_or(SenderError::DomainNotFound)?;
    if s.domain_in_use(domain.id).await? {
        return Err(SenderError::InUse);
    }
    if !s.delete_domain(owner, name).await? {
        return Err(SenderError::DomainNotFound);
    }
    Ok(())
}

/// Sends a domain's 'remote' mail through the customer's server (or, with
/// `None`, through the platform again).
pub async fn set_relay(
    s: &impl SenderStorage,
    name: &DomainName,
    relay: Option<(&str, u16, bool)>,
) -> Result<(), SenderError> {
    if s.set_domain_relay(name, relay).await? {
        Ok(())
    } else {
        Err(SenderError::DomainNotFound)
    }
}

/// A domain's keys with their private halves opened.
pub async fn dkim_keys(
    s: &impl SenderStorage,
    secrets: &SecretBox,
    domain: &SenderDomain,
) -> anyhow::Result<Vec<DkimKey>> {
    let name = DomainName::parse(&domain.domain)
        .ok_or_else(|| anyhow::anyhow!("stored domain '{}' is not a domain name", domain.domain))?;
    let mut keys = Vec::new();
    for k in s.dkim_keys(domain.id).await? {
        let private_der = secrets.open(&k.sealed_private, &dkim_secret_context(&name, &k.selector))?;
        keys.push(DkimKey {
            algorithm: k.algorithm,
            selector: k.selector,
            private_der,
            public_base64: k.public_base64,
        });
    }
    Ok(keys)
}

/// The mailboxes of a domain in `scope`, by address; `page` is (limit, offset).
pub async fn mailboxes(
    s: &impl SenderStorage,
    domain: DomainId,
    scope: MailboxScope,
    page: Option<(i64, i64)>,
) -> StoreResult<Vec<Mailbox>> {
    s.mailboxes(domain, scope, page).await
}

/// A mailbox by address, if it exists.
pub async fn mailbox(s: &impl SenderStorage, address: &MailboxAddress) -> StoreResult<Option<Mailbox>> {
    s.mailbox(address).await
}

/// A mailbox password as stored: sealed to its address.
fn seal_password(secrets: &SecretBox, address: &MailboxAddress, password: &MailboxPassword) -> Vec<u8> {
    secrets.seal(
        password.expose().as_bytes(),
        &mailbox_secret_context(&address.key()),
    )
}

/// Adds a mailbox for `owner` in one of its domains or a platform domain.
pub async fn add_mailbox(
    s: &impl SenderStorage,
    secrets: &SecretBox,
    owner: Owner,
    address: &MailboxAddress,
    password: &MailboxPassword,
    now: i64,
) -> Result<MailboxId, SenderError> {
    let domain = s
        .domain(&address.domain)
        .await?
        .filter(|d| d.owner == owner || d.owner == Owner::System)
        .ok_or(SenderError::DomainNotFound)?;
    let sealed = seal_password(secrets, address, password);
    match s.create_mailbox(domain.id, owner, address, &sealed, now).await {
        Ok(id) => Ok(id),
        Err(StoreError::Duplicate(_)) => Err(SenderError::MailboxExists),
        Err(e) => Err(e.into()),
    }
}

/// Removes a mailbox; refused while a task that has not ended sends from it alone.
pub async fn delete_mailbox(s: &impl SenderStorage, mailbox: &Mailbox) -> Result<(), SenderError> {
    if s.mailbox_in_use(mailbox.id).await? {
        return Err(SenderError::InUse);
    }
    if !s.delete_mailbox(mailbox.id).await? {
        return Err(SenderError::MailboxNotFound);
    }
    Ok(())
}

/// Replaces a mailbox's password.
pub async fn set_mailbox_password(
    s: &impl SenderStorage,
    secrets: &SecretBox,
    mailbox: &Mailbox,
    password: &MailboxPassword,
    now: i64,
) -> Result<(), SenderError> {
    let address = MailboxAddress::parse(&mailbox.address).ok_or(SenderError::MailboxNotFound)?;
    let sealed = seal_password(secrets, &address, password);
    if s.set_mailbox_password(mailbox.id, &sealed, now).await? {
        Ok(())
    } else {
        Err(SenderError::MailboxNotFound)
    }
}

/// The password of a mailbox, for the delivery that logs in with it.
pub async fn mailbox_password(
    s: &impl SenderStorage,
    secrets: &SecretBox,
    mailbox: &Mailbox,
) -> anyhow::Result<MailboxPassword> {
    let sealed = s
        .sealed_mailbox_password(mailbox.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("mailbox {} vanished", mailbox.address))?;
    let plain = secrets.open(
        &sealed,
        &mailbox_secret_context(&mailbox.address.to_ascii_lowercase()),
    )?;
    Ok(MailboxPassword(String::from_utf8(plain)?))
}

/// How a cap command changes a domain's or mailbox's cap.
#[derive(Clone, Debug, PartialEq)]
pub enum CapChange {
    /// A fixed cap a day, or none.
    PerDay(Option<i64>),
    /// A warm-up (domains only), or none.
    Warmup(Option<Warmup>),
}

/// Changes the daily cap of a sending domain (a fixed cap or its
/// warm-up); the cap as it stands on `today`.
pub async fn change_domain_cap(
    s: &impl SenderStorage,
    name: &DomainName,
    change: CapChange,
    today: Date,
) -> Result<CapToday, SenderError> {
    let domain = s.domain(name).await?.ok_or(SenderError::DomainNotFound)?;
    change_cap(s, CapTarget::Domain(domain.id), change, today).await
}

/// Sets (or, with `None`, removes) the daily cap of a mailbox; the cap as
/// it stands on `today`.
pub async fn change_mailbox_cap(
    s: &impl SenderStorage,
    address: &MailboxAddress,
    per_day: Option<i64>,
    today: Date,
) -> Result<CapToday, SenderError> {
    let mailbox = s.mailbox(address).await?.ok_or(SenderError::MailboxNotFound)?;
    change_cap(
        s,
        CapTarget::Mailbox(mailbox.id),
        CapChange::PerDay(per_day),
        today,
    )
    .await
}

async fn change_cap(
    s: &impl SenderStorage,
    target: CapTarget,
    change: CapChange,
    today: Date,
) -> Result<CapToday, SenderError> {
    let mut cap = s
        .caps()
        .await?
        .into_iter()
        .find_map(|(t, c)| (t == target).then_some(c))
        .unwrap_or_default();
    match change {
        CapChange::PerDay(n) => cap.per_day = n,
        CapChange::Warmup(w) => cap.warmup = w,
    }
    s.set_cap(target, &cap).await?;
    Ok(caps_on(s, today).await?.remove(&target).unwrap_or(CapToday {
        cap,
        limit: None,
        used: 0,
    }))
}

/// Every cap with its limit on `day` and the messages counted that day.
pub async fn caps_on(s: &impl SenderStorage, day: Date) -> StoreResult<HashMap<CapTarget, CapToday>> {
    let used: HashMap<CapTarget, i64> = s
        .cap_usage(&crate::clock::format_date(day))
        .await?
        .into_iter()
        .collect();
    Ok(s.caps()
        .await?
        .into_iter()
        .map(|(target, cap)| {
            let today = CapToday {
                limit: cap.on(day),
                used: used.get(&target).copied().unwrap_or(0),
                cap,
            };
            (target, today)
        })
        .collect())
}

/// Every cap set (the engine's copy, refreshed now and then).
pub async fn caps(s: &impl SenderStorage) -> StoreResult<HashMap<CapTarget, DailyCap>> {
    Ok(s.caps().await?.into_iter().collect())
}

/// Takes one message of `day`'s allowance of each capped target of a
/// sender (`limits`: each target's limit that day), all or none; false
/// when one of them is used up: the message waits for the next day.
pub async fn take_allowance(
    s: &impl SenderStorage,
    limits: &[(CapTarget, i64)],
    day: &str,
) -> StoreResult<bool> {
    if limits.is_empty() {
        return Ok(true);
    }
    if limits.iter().any(|(_, limit)| *limit < 1) {
        return Ok(false);
    }
    s.take_allowance(limits, day).await
}

/// Gives back what [`take_allowance`] took for a message not handed to SMTP.
pub async fn give_allowance(s: &impl SenderStorage, targets: &[CapTarget], day: &str) -> StoreResult<()> {
    if targets.is_empty() {
        return Ok(());
    }
    s.give_allowance(targets, day).await
}

/// The DNS health of a sending domain: each signing key's DKIM record, SPF
/// for the route its mail leaves by (a 'remote' customer's own server, the
/// relay, or this host), DMARC, the bounce domain's MX and alignment; each
/// with what was found and the record to publish.
pub async fn domain_health(
    s: &impl Storage,
    dns: &impl DnsLookup,
    platform: &Platform,
    name: &DomainName,
) -> Result<Vec<Check>, SenderError> {
    let domain = s.domain(name).await?.ok_or(SenderError::DomainNotFound)?;
    let keys: Vec<PublishedKey> = s
        .dkim_keys(domain.id)
        .await?
        .into_iter()
        .filter(|k| platform.algorithms.contains(&k.algorithm))
        .map(|k| PublishedKey {
            selector: k.selector,
            algorithm: k.algorithm,
            public_base64: k.public_base64,
        })
        .collect();
    let remote = match domain.owner.customer_id() {
        Some(customer) => s.service(customer).await?.send_type == SendType::Remote,
        None => false,
    };
    let route = match (&domain.relay, &platform.relay) {
        (Some((host, _, _)), _) if remote => Route::Relay(host.clone()),
        (_, Some(relay)) => Route::Relay(relay.clone()),
        _ => Route::Direct,
    };
    Ok(health::check(dns, platform, &route, &domain.domain, &keys).await)
}

/// A DNS record the owner of a domain publishes so that receivers trust
/// what qunfa sends from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// The owner name, without the final dot: `s2026._domainkey.shop.example`.
    pub name: String,
    /// `TXT`.
    pub kind: &'static str,
    pub value: String,
    /// The whole record as a zone file writes it.
    pub zone_line: String,
}

/// The records a domain needs published: a DKIM key record for each of its
/// keys, RSA first.
pub async fn records_to_publish(
    s: &impl SenderStorage,
    domain: &SenderDomain,
) -> StoreResult<Vec<DnsRecord>> {
    Ok(s.dkim_keys(domain.id)
        .await?
        .iter()
        .map(|k| DnsRecord {
            name: format!("{}._domainkey.{}", k.selector, domain.domain),
            kind: "TXT",
            value: super::dkim::txt_value(k.algorithm, &k.public_base64),
            zone_line: super::dkim::zone_line(&k.selector, k.algorithm, &k.public_base64, &domain.domain),
        })
        .collect())
}

/// Removes one of `owner`'s mailboxes; another's answers as a missing one.
/// Refused while a task that has not ended sends from it alone.
pub async fn delete_own_mailbox(
    s: &impl SenderStorage,
    owner: Owner,
    address: &MailboxAddress,
) -> Result<(), SenderError> {
    let mailbox = s
        .mailbox(address)
        .await?
        .filter(|m| m.owner == owner)
        .ok_or(SenderError::MailboxNotFound)?;
    delete_mailbox(s, &mailbox).await
}
