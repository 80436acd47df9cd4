//! E-mail addresses as docs/vendor-api.md D-15 and H-15 define them. Parsing is the only
//! way to get an [`EmailAddress`], so a malformed one can't travel inward.

use std::fmt;

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

/// A well-formed address: stored as given (trimmed), compared by [`Self::key`],
/// sent to [`Self::ascii`] (its domain in A-label form, lower case).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    given: String,
    ascii: String,
}

impl EmailAddress {
    pub fn parse(s: &str) -> Option<Self> {
        let given = s.trim();
        let (local, domain) = given.split_once('@')?;
        if domain.contains('@') || !local_part_ok(local) {
            return None;
        }
        let ascii_domain = DomainName::parse(domain)?;
        let ascii = format!("{local}@{ascii_domain}");
        if ascii.len() > 254 || given.chars().count() > 254 {
            return None;
        }
        Some(EmailAddress {
            given: given.to_string(),
            ascii,
        })
    }

    /// As the user gave it.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// With the domain in A-labels, for SMTP.
    pub fn ascii(&self) -> &str {
        &self.ascii
    }

    /// Duplicates are compared case-insensitively on the whole address.
    pub fn key(&self) -> String {
        self.ascii.to_ascii_lowercase()
    }

    pub fn local_part(&self) -> &str {
        self.given.split_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain_ascii(&self) -> &str {
        self.ascii.split_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.given)
    }
}

fn local_part_ok(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~.-";
    (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_addresses() {
        for ok in [
            "a@b.cn",
            "comingchina@bestdem.org",
            " Test.User+tag@Example.COM ",
            "o'brien@example.ie",
            "x@sub.domain.xn--fiqs8s",
            "a_b-c@a-b.co",
        ] {
            assert!(EmailAddress::parse(ok).is_some(), "{ok}");
        }
        assert_eq!(EmailAddress::parse(" A@B.cn ").unwrap().as_str(), "A@B.cn");
    }

    #[test]
    fn malformed_addresses() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.cn",
            "a@b@c.cn",
            ".a@b.cn",
            "a.@b.cn",
            "a..b@c.cn",
            "a@-b.cn",
            "a@b-.cn",
            "a@b.c",
            "a@b.c1",
            "a b@c.cn",
            "\"q\"@c.cn",
            "a@[192.0.2.1]",
            "用户@例子.中国",
            "a@b..cn",
        ] {
            assert!(EmailAddress::parse(bad).is_none(), "{bad:?}");
        }
        let long_local = format!("{}@b.cn", "x".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_none());
        let long = format!("a@{}.cn", vec!["x".repeat(60); 5].join("."));
        assert!(EmailAddress::parse(&long).is_none());
    }

    #[test]
    fn unicode_domains_go_out_as_a_labels() {
        let a = EmailAddress::parse("test@例子.中国").unwrap();
        assert_eq!(a.as_str(), "test@例子.中国");
        assert_eq!(a.ascii(), "test@xn--fsqu00a.xn--fiqs8s");
        assert_eq!(
            a.key(),
            EmailAddress::parse("TEST@xn--fsqu00a.xn--fiqs8s").unwrap().key()
        );
    }
}
