//! Sender domains and the mailboxes under them (API.md chapter 7, F.3).
//! A domain belongs to a customer or, as a system domain, to the platform
//! (`customer_id` 0 in the API); so does a mailbox.

use std::fmt;

use crate::domain::email::EmailAddress;
use crate::mail::dkim::{DkimAlgorithm, DkimError, DkimKey, DomainSigner};
use crate::secrets::SecretBox;
use crate::store::{Mailbox, SenderDomain, Store, StoreError, StoredDkimKey};

/// A domain name as qunfa keeps it: A-labels (IDNA 2008 / UTS 46 for a
/// Unicode name), lower case, with the label rules of D-15.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// Parses a name as given (callers trim what they read).
    pub fn parse(s: &str) -> Option<DomainName> {
        let ascii = if s.is_ascii() {
            s.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(s).ok()?
        };
        labels_ok(&ascii).then_some(DomainName(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// At least two labels of 1–63 letters, digits and inner hyphens; the last
/// alphabetic (two letters or more) or an `xn--` label; 253 octets at most.
fn labels_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let last = labels[labels.len() - 1];
    labels.iter().all(|l| label_ok(l))
        && ((last.len() >= 2 && last.bytes().all(|b| b.is_ascii_alphabetic()))
            || last.to_ascii_lowercase().starts_with("xn--"))
}

/// Who owns a domain or a mailbox: a customer, or the platform (API `0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    System,
    Customer(i64),
}

impl Owner {
    /// From the API's `customer_id` (0 = system).
    pub fn from_api(customer_id: i64) -> Owner {
        if customer_id == 0 {
            Owner::System
        } else {
            Owner::Customer(customer_id)
        }
    }

    pub fn api_id(self) -> i64 {
        match self {
            Owner::System => 0,
            Owner::Customer(id) => id,
        }
    }

    /// As stored: NULL for the platform.
    pub fn customer_id(self) -> Option<i64> {
        match self {
            Owner::System => None,
            Owner::Customer(id) => Some(id),
        }
    }

    pub fn from_stored(customer_id: Option<i64>) -> Owner {
        customer_id.map_or(Owner::System, Owner::Customer)
    }
}

/// A mailbox address: a well-formed address (D-15) kept with its domain in
/// A-labels, compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxAddress {
    pub local_part: String,
    pub domain: DomainName,
}

impl MailboxAddress {
    pub fn parse(s: &str) -> Option<MailboxAddress> {
        let a = EmailAddress::parse(s)?;
        Some(MailboxAddress {
            local_part: a.local_part().to_string(),
            domain: DomainName::parse(a.domain_ascii())?,
        })
    }

    /// `local@domain`, the domain in A-labels.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local_part, self.domain)
    }

    pub fn key(&self) -> String {
        self.address().to_ascii_lowercase()
    }
}

/// The password of a sender mailbox (7.5 `pwd`): plain text, 1–64 characters,
/// kept so the platform can log in to the customer's server with it.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxPassword(String);

impl MailboxPassword {
    pub fn parse(s: &str) -> Option<MailboxPassword> {
        (1..=64)
            .contains(&s.chars().count())
            .then(|| MailboxPassword(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MailboxPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailboxPassword(***)")
    }
}

/// The context a mailbox password is sealed under (see `secrets::SecretBox`).
pub fn mailbox_secret_context(address_key: &str) -> String {
    format!("mailbox-password:{address_key}")
}

/// The context a DKIM private key is sealed under.
pub fn dkim_secret_context(domain: &DomainName, selector: &str) -> String {
    format!("dkim-key:{domain}:{selector}")
}

/// Why a domain was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddDomainError {
    #[error("the domain exists already")]
    Exists,
    #[error(transparent)]
    Key(#[from] DkimError),
    #[error(transparent)]
    Store(StoreError),
}

/// Adds a domain for `owner` with a new key of each of `algorithms`
/// (RSA-2048, Ed25519), their private halves sealed; returns its id.
pub async fn add_domain(
    store: &Store,
    secrets: &SecretBox,
    algorithms: &'static [DkimAlgorithm],
    owner: Owner,
    domain: &DomainName,
    today: jiff::civil::Date,
    now: i64,
) -> Result<i64, AddDomainError> {
    // Key generation is slow: spare it for a name that is taken already.
    if store
        .domain(domain)
        .await
        .map_err(AddDomainError::Store)?
        .is_some()
    {
        return Err(AddDomainError::Exists);
    }
    let keys = tokio::task::spawn_blocking(move || {
        algorithms
            .iter()
            .map(|a| DkimKey::generate(*a, a.selector(today)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| AddDomainError::Store(StoreError::Other(format!("key generation stopped: {e}"))))??;
    let stored: Vec<StoredDkimKey> = keys
        .into_iter()
        .map(|k| StoredDkimKey {
            sealed_private: secrets.seal(&k.private_der, &dkim_secret_context(domain, &k.selector)),
            algorithm: k.algorithm,
            selector: k.selector,
            public_base64: k.public_base64,
        })
        .collect();
    match store.create_domain(owner, domain, &stored, now).await {
        Ok(id) => Ok(id),
        Err(StoreError::Duplicate(_)) => Err(AddDomainError::Exists),
        Err(e) => Err(AddDomainError::Store(e)),
    }
}

/// A domain's keys with their private halves opened.
pub async fn dkim_keys(
    store: &Store,
    secrets: &SecretBox,
    domain: &SenderDomain,
) -> anyhow::Result<Vec<DkimKey>> {
    let name = DomainName::parse(&domain.domain)
        .ok_or_else(|| anyhow::anyhow!("stored domain '{}' is not a domain name", domain.domain))?;
    let mut keys = Vec::new();
    for k in store.dkim_keys(domain.id).await? {
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

/// The signer of a domain's messages, with its keys of `algorithms`.
pub async fn domain_signer(
    store: &Store,
    secrets: &SecretBox,
    algorithms: &[DkimAlgorithm],
    domain: &SenderDomain,
) -> anyhow::Result<DomainSigner> {
    let mut keys = dkim_keys(store, secrets, domain).await?;
    keys.retain(|k| algorithms.contains(&k.algorithm));
    Ok(DomainSigner::new(
        &domain.domain,
        &keys,
        crate::mail::dkim::SIGNED_HEADERS,
    )?)
}

/// A mailbox password as stored: sealed to its address.
pub fn seal_mailbox_password(
    secrets: &SecretBox,
    address: &MailboxAddress,
    password: &MailboxPassword,
) -> Vec<u8> {
    secrets.seal(
        password.expose().as_bytes(),
        &mailbox_secret_context(&address.key()),
    )
}

/// The password of a mailbox, for the delivery that logs in with it.
pub async fn mailbox_password(
    store: &Store,
    secrets: &SecretBox,
    mailbox: &Mailbox,
) -> anyhow::Result<MailboxPassword> {
    let sealed = store
        .sealed_mailbox_password(mailbox.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("mailbox {} vanished", mailbox.address))?;
    let plain = secrets.open(
        &sealed,
        &mailbox_secret_context(&mailbox.address.to_ascii_lowercase()),
    )?;
    Ok(MailboxPassword(String::from_utf8(plain)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_a_labels_in_lower_case() {
        assert_eq!(DomainName::parse("Example.COM").unwrap().as_str(), "example.com");
        assert_eq!(
            DomainName::parse("例子.中国").unwrap().as_str(),
            "xn--fsqu00a.xn--fiqs8s"
        );
        assert_eq!(
            DomainName::parse("XN--fsqu00a.xn--FIQS8S").unwrap().as_str(),
            "xn--fsqu00a.xn--fiqs8s"
        );
        for bad in [
            "",
            " a.cn",
            "com",
            "a..cn",
            "-a.cn",
            "a-.cn",
            "a.c",
            "a.c1",
            "a b.cn",
            "a_b.cn",
            "a.cn.",
            "http://a.cn",
            "a@b.cn",
        ] {
            assert!(DomainName::parse(bad).is_none(), "{bad:?}");
        }
        assert!(DomainName::parse(&format!("{}.cn", "x".repeat(64))).is_none());
    }

    #[test]
    fn mailbox_addresses_keep_the_local_part_and_normalise_the_domain() {
        let m = MailboxAddress::parse("Sales@例子.中国").unwrap();
        assert_eq!(m.address(), "Sales@xn--fsqu00a.xn--fiqs8s");
        assert_eq!(m.key(), "sales@xn--fsqu00a.xn--fiqs8s");
        assert!(MailboxAddress::parse("no-at-sign").is_none());
    }

    #[test]
    fn mailbox_passwords_are_1_to_64_characters() {
        assert!(MailboxPassword::parse("").is_none());
        assert!(MailboxPassword::parse(&"密".repeat(64)).is_some());
        assert!(MailboxPassword::parse(&"x".repeat(65)).is_none());
        assert_eq!(
            format!("{:?}", MailboxPassword::parse("s3cret").unwrap()),
            "MailboxPassword(***)"
        );
    }

    #[test]
    fn owners_map_zero_to_the_platform() {
        assert_eq!(Owner::from_api(0), Owner::System);
        assert_eq!(Owner::from_api(7).customer_id(), Some(7));
        assert_eq!(Owner::from_stored(None).api_id(), 0);
    }
}
