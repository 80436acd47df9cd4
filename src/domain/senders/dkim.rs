//! DKIM keys of sending domains (RFC 6376, RFC 8463): every domain gets an
//! RSA-2048 key and an Ed25519 key when it is added, so messages can carry
//! both signatures (receivers that don't know Ed25519 check the RSA one);
//! and the DNS records that publish them.

use std::fmt;

use base64::Engine;
use mail_auth::dkim::generate::DkimKeyPair;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;

/// The key types of a domain, in the order their signatures are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl DkimAlgorithm {
    pub const ALL: [DkimAlgorithm; 2] = [DkimAlgorithm::Rsa, DkimAlgorithm::Ed25519];

    /// The `k=` tag of the DNS record, also the stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa" => Some(DkimAlgorithm::Rsa),
            "ed25519" => Some(DkimAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// A selector naming the key type and the day it was made, so a later
    /// key (rotation) gets a new DNS name and never clashes with a
    /// customer's existing selectors.
    pub fn selector(self, day: jiff::civil::Date) -> String {
        format!("qunfa-{}-{}", self.as_str(), day.strftime("%Y%m%d"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DKIM key error: {0}")]
pub struct DkimError(String);

impl DkimError {
    /// A key or signing failure, in the crypto library's words.
    pub fn of(e: impl fmt::Display) -> DkimError {
        DkimError(e.to_string())
    }
}

fn err(e: impl fmt::Display) -> DkimError {
    DkimError::of(e)
}

/// One key of a domain: the private key (PKCS#1 DER for RSA, PKCS#8 DER for
/// Ed25519) and the `p=` value of its DNS record (SubjectPublicKeyInfo for
/// RSA, as every verifier reads it; the raw 32 bytes for Ed25519).
#[derive(Clone)]
pub struct DkimKey {
    pub algorithm: DkimAlgorithm,
    pub selector: String,
    pub private_der: Vec<u8>,
    pub public_base64: String,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DkimKey({} {}, private ***)",
            self.algorithm.as_str(),
            self.selector
        )
    }
}

impl DkimKey {
    /// A new key. RSA-2048 takes a noticeable time: call it off the async threads.
    pub fn generate(algorithm: DkimAlgorithm, selector: String) -> Result<DkimKey, DkimError> {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let (private_der, public_base64) = match algorithm {
            DkimAlgorithm::Rsa => {
                let (private, public_pkcs1) = DkimKeyPair::generate_rsa(2048).map_err(err)?.into_inner();
                let spki = rsa::RsaPublicKey::from_pkcs1_der(&public_pkcs1)
                    .map_err(err)?
                    .to_public_key_der()
                    .map_err(err)?;
                (private, b64.encode(spki.as_bytes()))
            }
            DkimAlgorithm::Ed25519 => {
                let (private, public) = DkimKeyPair::generate_ed25519().map_err(err)?.into_inner();
                (private, b64.encode(public))
            }
        };
        Ok(DkimKey {
            algorithm,
            selector,
            private_der,
            public_base64,
        })
    }

    /// The TXT value: `v=DKIM1; k=rsa; p=…`.
    pub fn txt_value(&self) -> String {
        txt_value(self.algorithm, &self.public_base64)
    }

    /// The zone-file line of the key for `domain`: [`zone_line`].
    pub fn zone_line(&self, domain: &str) -> String {
        zone_line(&self.selector, self.algorithm, &self.public_base64, domain)
    }
}

/// The TXT value of a public key: `v=DKIM1; k=rsa; p=…`.
pub fn txt_value(algorithm: DkimAlgorithm, public_base64: &str) -> String {
    format!("v=DKIM1; k={}; p={public_base64}", algorithm.as_str())
}

/// The zone-file line of a public key for `domain` (A-labels):
/// `SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=…; p=…"`, the value split
/// into quoted strings of at most 255 characters (one DNS character-string each).
pub fn zone_line(selector: &str, algorithm: DkimAlgorithm, public_base64: &str, domain: &str) -> String {
    txt_zone_line(
        &format!("{selector}._domainkey.{domain}"),
        &txt_value(algorithm, public_base64),
    )
}

/// A TXT record in zone-file form, `NAME. IN TXT "…" "…"`: the value in
/// quoted strings of at most 255 characters.
pub fn txt_zone_line(name: &str, value: &str) -> String {
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name}. IN TXT {}", strings.join(" "))
}
