//! Signed tokens for the links and addresses a message carries: the open
//! pixel, each click link, the unsubscribe link and the VERP bounce address.
//!
//! A token is `base32(kind ‖ delivery id ‖ [link id] ‖ tag)`: one kind byte,
//! the ids as LEB128 varints, and the first [`TAG_LEN`] bytes of
//! HMAC-SHA256 over everything before it under the link secret. It names a
//! delivery row, never an address; without the secret nobody can make one
//! or move one to another delivery, link or kind (docs/architecture.md, invariant 5).
//!
//! The alphabet is lower-case base32hex without padding (RFC 4648, as
//! DNSSEC uses it), read in either case: a token survives a mail system
//! that folds the case of a bounce address, and fits a URL path segment and
//! a local part as it is.

use std::fmt;

use data_encoding::BASE32_DNSSEC;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of the HMAC kept: 96 bits, beyond guessing online.
pub const TAG_LEN: usize = 12;

/// Separates these MACs from any other use of the same secret.
const CONTEXT: &[u8] = b"qunfa-link-v1\0";

/// Path of the open pixel on the link base: `{base}/t/o/{token}`.
pub const OPEN_PATH: &str = "/t/o/";
/// Path of a click link: `{base}/t/c/{token}`, answered by a 302 to the link.
pub const CLICK_PATH: &str = "/t/c/";
/// Path of the unsubscribe link: `{base}/t/u/{token}` (GET: a page to
/// confirm; POST `List-Unsubscribe=One-Click`: at once, RFC 8058).
pub const UNSUBSCRIBE_PATH: &str = "/t/u/";
/// Local part prefix of the VERP envelope sender: `bounce+{token}@{bounce domain}`.
pub const VERP_PREFIX: &str = "bounce+";

/// What a token stands for. Delivery ids are the delivery rows' ids; link
/// ids count a task's tracked links from 1 in document order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    Open { delivery: i64 },
    Click { delivery: i64, link: u32 },
    Unsubscribe { delivery: i64 },
    Bounce { delivery: i64 },
}

impl Claim {
    fn kind(self) -> u8 {
        match self {
            Claim::Open { .. } => b'o',
            Claim::Click { .. } => b'c',
            Claim::Unsubscribe { .. } => b'u',
            Claim::Bounce { .. } => b'b',
        }
    }

    pub fn delivery(self) -> i64 {
        match self {
            Claim::Open { delivery }
            | Claim::Click { delivery, .. }
            | Claim::Unsubscribe { delivery }
            | Claim::Bounce { delivery } => delivery,
        }
    }
}

/// Signs and verifies tokens with the platform's link secret. Keyed once
/// (the HMAC key schedule is kept and cloned per token).
#[derive(Clone)]
pub struct LinkSigner {
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigner(***)")
    }
}

/// The longest payload: kind, a 10-byte varint, a 5-byte varint.
const PAYLOAD_MAX: usize = 1 + 10 + 5;

impl LinkSigner {
    pub fn new(link_secret: &[u8; 32]) -> LinkSigner {
        let mut keyed =
            <Hmac<Sha256> as KeyInit>::new_from_slice(link_secret).expect("HMAC takes a key of any length");
        keyed.update(CONTEXT);
        LinkSigner { keyed }
    }

    /// The token of `claim`.
    pub fn sign(&self, claim: Claim) -> String {
        let mut out = String::with_capacity(32);
        self.sign_into(claim, &mut out);
        out
    }

    /// Appends the token of `claim` to `out` (the per-message path: one
    /// buffer for the whole URL).
    pub fn sign_into(&self, claim: Claim, out: &mut String) {
        let mut raw = [0u8; PAYLOAD_MAX + TAG_LEN];
        let mut n = 0;
        raw[n] = claim.kind();
        n += 1;
        n += write_varint(&mut raw[n..], claim.delivery() as u64);
        if let Claim::Click { link, .. } = claim {
            n += write_varint(&mut raw[n..], u64::from(link));
        }
        let tag = self.keyed.clone().chain_update(&raw[..n]).finalize().into_bytes();
        raw[n..n + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        n += TAG_LEN;
        BASE32_DNSSEC.encode_append(&raw[..n], out);
    }

    /// What `token` stands for, or `None` when it was not made with this
    /// secret exactly as it is (changed, cut, padded or of another secret).
    pub fn verify(&self, token: &str) -> Option<Claim> {
        let raw = BASE32_DNSSEC.decode(token.as_bytes()).ok()?;
        if raw.len() < 2 + TAG_LEN || raw.len() > PAYLOAD_MAX + TAG_LEN {
            return None;
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        self.keyed
            .clone()
            .chain_update(payload)
            .verify_truncated_left(tag)
            .ok()?;
        let (kind, ids) = payload.split_first()?;
        let (delivery, rest) = read_varint(ids)?;
        let delivery = delivery as i64;
        let claim = match (kind, rest) {
            (b'o', []) => Claim::Open { delivery },
            (b'u', []) => Claim::Unsubscribe { delivery },
            (b'b', []) => Claim::Bounce { delivery },
            (b'c', rest) => {
                let (link, rest) = read_varint(rest)?;
                if !rest.is_empty() {
                    return None;
                }
                Claim::Click {
                    delivery,
                    link: u32::try_from(link).ok()?,
                }
            }
            _ => return None,
        };
        Some(claim)
    }

    /// The VERP envelope sender of a delivery: `bounce+{token}@{domain}`.
    pub fn verp_address(&self, delivery: i64, bounce_domain: &str) -> String {
        let mut out = String::with_capacity(VERP_PREFIX.len() + 32 + 1 + bounce_domain.len());
        out.push_str(VERP_PREFIX);
        self.sign_into(Claim::Bounce { delivery }, &mut out);
        out.push('@');
        out.push_str(bounce_domain);
        out
    }

    /// The delivery a bounce was addressed to, from its recipient address
    /// (`bounce+TOKEN@…`, any case; the domain is not checked: the bounce
    /// listener accepts only its own domains anyway).
    pub fn verp_delivery(&self, address: &str) -> Option<i64> {
        let (local, _domain) = address.trim().trim_matches(['<', '>']).rsplit_once('@')?;
        let prefix = local.get(..VERP_PREFIX.len())?;
        if !prefix.eq_ignore_ascii_case(VERP_PREFIX) {
            return None;
        }
        match self.verify(&local[VERP_PREFIX.len()..])? {
            Claim::Bounce { delivery } => Some(delivery),
            _ => None,
        }
    }
}

fn write_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[n] = byte;
            return n + 1;
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

/// A canonical varint (no trailing zero groups, at most 64 bits) and the
/// rest; anything else is refused so one claim has exactly one token.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let group = u64::from(b & 0x7f);
        if i == 9 && group > 1 {
            return None;
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(&[7u8; 32])
    }

    const CLAIMS: [Claim; 6] = [
        Claim::Open { delivery: 1 },
        Claim::Click {
            delivery: 123_456_789,
            link: 1,
        },
        Claim::Click {
            delivery: 5,
            link: u32::MAX,
        },
        Claim::Unsubscribe { delivery: i64::MAX },
        Claim::Bounce { delivery: 0 },
        Claim::Open { delivery: -1 },
    ];

    #[test]
    fn tokens_round_trip_and_are_compact_and_url_safe() {
        let s = signer();
        for claim in CLAIMS {
            let t = s.sign(claim);
            assert_eq!(s.verify(&t), Some(claim), "{t}");
            assert_eq!(s.verify(&t.to_ascii_uppercase()), Some(claim), "case-insensitive");
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)),
                "{t}"
            );
        }
        // An open link of a delivery in the millions: 1 + 4 + 12 bytes.
        assert_eq!(s.sign(Claim::Open { delivery: 9_000_000 }).len(), 28);
    }

    #[test]
    fn every_changed_character_fails() {
        let s = signer();
        for claim in CLAIMS {
            let t = s.sign(claim);
            for i in 0..t.len() {
                for c in ['0', 'a', 'v', 'k'] {
                    let mut changed: Vec<char> = t.chars().collect();
                    if changed[i] == c {
                        continue;
                    }
                    changed[i] = c;
                    let changed: String = changed.into_iter().collect();
                    assert_eq!(s.verify(&changed), None, "{t} → {changed}");
                }
            }
        }
    }

    #[test]
    fn cut_extended_or_foreign_tokens_fail() {
        let s = signer();
        let t = s.sign(Claim::Click {
            delivery: 77,
            link: 3,
        });
        for n in 0..t.len() {
            assert_eq!(s.verify(&t[..n]), None, "cut to {n}");
        }
        for extra in ["0", "00", "a", "====", " "] {
            assert_eq!(s.verify(&format!("{t}{extra}")), None, "{extra:?}");
        }
        assert_eq!(LinkSigner::new(&[8u8; 32]).verify(&t), None, "another secret");
        for junk in ["", "x", "wwww", "é", &"0".repeat(60)] {
            assert_eq!(s.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn kinds_cannot_be_swapped() {
        let s = signer();
        // The same ids under each kind give unrelated tokens; a token with its
        // kind byte changed (and the tag kept) fails.
        let open = s.sign(Claim::Open { delivery: 42 });
        let unsubscribe = s.sign(Claim::Unsubscribe { delivery: 42 });
        let bounce = s.sign(Claim::Bounce { delivery: 42 });
        assert_ne!(open[2..], unsubscribe[2..]);
        assert_ne!(open[2..], bounce[2..]);
        let mut raw = BASE32_DNSSEC.decode(open.as_bytes()).unwrap();
        for kind in [b'u', b'b', b'c', b'x'] {
            raw[0] = kind;
            assert_eq!(s.verify(&BASE32_DNSSEC.encode(&raw)), None);
        }
        assert!(matches!(s.verify(&open), Some(Claim::Open { delivery: 42 })));
        assert_eq!(s.verp_delivery(&format!("bounce+{open}@b.cn")), None);
    }

    #[test]
    fn non_canonical_varints_are_refused() {
        assert_eq!(read_varint(&[0x80, 0x00]), None);
        assert_eq!(read_varint(&[0xff; 11]), None);
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0x05, 0x01]), Some((5, &[0x01][..])));
        let mut buf = [0u8; 10];
        let n = write_varint(&mut buf, u64::MAX);
        assert_eq!(read_varint(&buf[..n]), Some((u64::MAX, &[][..])));
    }

    #[test]
    fn verp_addresses_name_their_delivery_in_any_case() {
        let s = signer();
        let a = s.verp_address(31337, "bounce.example.cn");
        assert!(
            a.starts_with("bounce+") && a.ends_with("@bounce.example.cn"),
            "{a}"
        );
        assert!(a.split('@').next().unwrap().len() <= 64);
        assert_eq!(s.verp_delivery(&a), Some(31337));
        assert_eq!(s.verp_delivery(&a.to_ascii_uppercase()), Some(31337));
        assert_eq!(s.verp_delivery(&format!("<{a}>")), Some(31337));
        assert_eq!(s.verp_delivery("bounce+@b.cn"), None);
        assert_eq!(s.verp_delivery("user@b.cn"), None);
        assert_eq!(s.verp_delivery(&a.replacen("bounce+", "bounce-", 1)), None);
    }
}
