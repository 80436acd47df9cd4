//! Sender domains and the mailboxes under them (vendor API chapter 7, F.3).
//! A domain belongs to a customer or, as a system domain, to the platform
//! (`customer_id` 0 in the API); so does a mailbox.

mod caps;
mod cases;
pub mod dkim;
pub mod health;

pub use crate::domain::email::DomainName;
pub use caps::*;
pub use cases::*;

use std::fmt;

use self::dkim::DkimAlgorithm;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{CustomerId, DomainId, MailboxId};

/// Who owns a domain or a mailbox: a customer, or the platform (API `0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    System,
    Customer(CustomerId),
}

impl Owner {
    /// From the API's `customer_id` (0 = system).
    pub fn from_api(customer_id: i64) -> Owner {
        if customer_id == 0 {
            Owner::System
        } else {
            Owner::Customer(CustomerId(customer_id))
        }
    }

    pub fn api_id(self) -> i64 {
        match self {
            Owner::System => 0,
            Owner::Customer(id) => id.get(),
        }
    }

    /// The owning customer; `None` for the platform.
    pub fn customer_id(self) -> Option<CustomerId> {
        match self {
            Owner::System => None,
            Owner::Customer(id) => Some(id),
        }
    }

    pub fn from_stored(customer_id: Option<i64>) -> Owner {
        customer_id.map_or(Owner::System, |c| Owner::Customer(CustomerId(c)))
    }
}

/// A sending domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderDomain {
    pub id: DomainId,
    pub owner: Owner,
    /// A-labels, lower case.
    pub domain: String,
    /// 'remote' sending through the customer's server: host, port, TLS.
    pub relay: Option<(String, u16, bool)>,
}

/// A DKIM key as stored: the private key sealed.
#[derive(Clone)]
pub struct StoredDkimKey {
    pub algorithm: DkimAlgorithm,
    pub selector: String,
    pub sealed_private: Vec<u8>,
    pub public_base64: String,
}

/// A mailbox, without its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub domain_id: DomainId,
    pub domain: String,
    pub owner: Owner,
    pub local_part: String,
    pub address: String,
}

/// Whose mailboxes of a domain a list shows.
#[derive(Clone, Copy, Debug)]
pub enum MailboxScope {
    /// A customer's own and the platform's shared ones (F.3 "available").
    AvailableTo(CustomerId),
    /// Exactly one owner's.
    OwnedBy(Owner),
    All,
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
        assert_eq!(Owner::from_api(7).customer_id(), Some(CustomerId(7)));
        assert_eq!(Owner::from_stored(None).api_id(), 0);
    }
}
