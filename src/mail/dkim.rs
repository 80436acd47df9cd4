//! DKIM keys and signatures (RFC 6376, RFC 8463): every sender domain gets an
//! RSA-2048 key and an Ed25519 key when it is added, so messages can carry
//! both signatures (receivers that don't know Ed25519 check the RSA one).
//! The DNS record is printed by `qunfa admin domain dkim`.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use mail_auth::common::crypto::{
    Algorithm, CryptoError, Ed25519Key, HashContext, HashImpl, HashOutput, Sha256, SigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable, Writer};
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
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

fn err(e: impl fmt::Display) -> DkimError {
    DkimError(e.to_string())
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

/// The headers a signature covers when the caller names none.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// An RSA key signing with AWS-LC. mail-auth's own RSA key (rust-crypto
/// backend, the `rsa` crate) takes about 2 ms a signature here, AWS-LC a
/// sixth of that; and the RSA signature is most of the cost of a message.
/// (mail-auth's `aws-lc-rs` feature would also switch its DNS resolver to
/// rustls with platform verification: more to build, nothing we need.)
struct LcRsaKey {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl LcRsaKey {
    /// From the PKCS#1 DER the domain's key is kept in.
    fn from_pkcs1_der(der: &[u8]) -> Result<LcRsaKey, DkimError> {
        Ok(LcRsaKey {
            pair: RsaKeyPair::from_der(der).map_err(err)?,
            rng: SystemRandom::new(),
        })
    }
}

impl SigningKey for LcRsaKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        // The canonical headers and the signature header: a few hundred bytes.
        let mut signed = Vec::with_capacity(1024);
        input.write(&mut signed);
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, &signed, &mut signature)
            .map_err(|e| mail_auth::Error::Crypto(CryptoError::Library(e.to_string())))?;
        Ok(signature)
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}

/// A key whose body hash is fed in blocks. mail-auth canonicalizes the
/// body into the hash a byte at a time, one `update` call each: for a
/// 30 KB message that was a fifth of the time of building it (perf).
struct BlockHashed<K>(K);

impl<K: SigningKey> SigningKey for BlockHashed<K> {
    type Hasher = K::Hasher;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn hash(&self, data: impl Writable) -> HashOutput {
        let mut blocks = Blocks {
            hash: <K::Hasher as HashImpl>::hasher(),
            block: [0; BLOCK],
            len: 0,
        };
        data.write(&mut blocks);
        blocks.flush();
        blocks.hash.complete()
    }

    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

const BLOCK: usize = 4096;

/// Collects small writes into blocks for the hash behind it.
struct Blocks<C> {
    hash: C,
    block: [u8; BLOCK],
    len: usize,
}

impl<C: Writer> Blocks<C> {
    fn flush(&mut self) {
        if self.len > 0 {
            self.hash.write(&self.block[..self.len]);
            self.len = 0;
        }
    }
}

impl<C: Writer> Writer for Blocks<C> {
    fn write(&mut self, data: &[u8]) {
        if self.len + data.len() > BLOCK {
            self.flush();
        }
        if data.len() >= BLOCK {
            self.hash.write(data);
        } else {
            self.block[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        }
    }
}

enum Signer {
    Rsa(DkimSigner<BlockHashed<LcRsaKey>, Done>),
    Ed25519(DkimSigner<BlockHashed<Ed25519Key>, Done>),
}

/// Signs messages of one domain with all its keys. Build it once (parsing an
/// RSA key is not free) and sign every message of a task with it.
pub struct DomainSigner {
    signers: Vec<Signer>,
}

impl DomainSigner {
    pub fn new(domain: &str, keys: &[DkimKey], headers: &[&str]) -> Result<DomainSigner, DkimError> {
        let mut signers = Vec::with_capacity(keys.len());
        for k in keys {
            let headers = headers.iter().map(|h| h.to_string());
            let signer = match k.algorithm {
                DkimAlgorithm::Rsa => Signer::Rsa(
                    DkimSigner::from_key(BlockHashed(LcRsaKey::from_pkcs1_der(&k.private_der)?))
                        .domain(domain)
                        .selector(&k.selector)
                        .headers(headers)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                ),
                DkimAlgorithm::Ed25519 => Signer::Ed25519(
                    DkimSigner::from_key(BlockHashed(
                        Ed25519Key::from_pkcs8_der(&k.private_der).map_err(err)?,
                    ))
                    .domain(domain)
                    .selector(&k.selector)
                    .headers(headers)
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
                ),
            };
            signers.push(signer);
        }
        Ok(DomainSigner { signers })
    }

    /// The `DKIM-Signature:` header lines (CRLF-terminated) to put in front of
    /// `message`, one per key.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        let mut out = String::new();
        for s in &self.signers {
            let signature = match s {
                Signer::Rsa(s) => s.sign(message),
                Signer::Ed25519(s) => s.sign(message),
            }
            .map_err(err)?;
            out.push_str(&closing_semicolon_unfolded(signature.to_header()));
        }
        Ok(out)
    }
}

/// mail-auth folds a header right before its closing `;` when the `b=` value
/// ends a line. RFC 6376 deletes whitespace around the `b=` value when
/// verifying, but some verifiers (dkimpy) keep that fold and then see
/// `b= ;` where the signer hashed `b=;`: keep the `;` on the value's line.
fn closing_semicolon_unfolded(header: String) -> String {
    match header.strip_suffix("\r\n\t;\r\n") {
        Some(head) => format!("{head};\r\n"),
        None => header,
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
    let value = txt_value(algorithm, public_base64);
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{selector}._domainkey.{domain}. IN TXT {}", strings.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(public_base64: String) -> DkimKey {
        DkimKey {
            algorithm: DkimAlgorithm::Rsa,
            selector: "qunfa-rsa-20261126".into(),
            private_der: vec![],
            public_base64,
        }
    }

    #[test]
    fn zone_lines_split_long_values_into_255_character_strings() {
        let line = key("A".repeat(400)).zone_line("xn--fsqu00a.xn--fiqs8s");
        let (name, rest) = line.split_once(" IN TXT ").unwrap();
        assert_eq!(name, "qunfa-rsa-20261126._domainkey.xn--fsqu00a.xn--fiqs8s.");
        let strings: Vec<&str> = rest.split("\" \"").collect();
        assert_eq!(strings.len(), 2);
        assert!(strings.iter().all(|s| s.trim_matches('"').len() <= 255));
        let joined: String = strings.iter().map(|s| s.trim_matches('"')).collect();
        assert_eq!(joined, format!("v=DKIM1; k=rsa; p={}", "A".repeat(400)));
        assert_eq!(
            key("AB".into()).zone_line("a.cn"),
            "qunfa-rsa-20261126._domainkey.a.cn. IN TXT \"v=DKIM1; k=rsa; p=AB\""
        );
    }

    #[test]
    fn a_fold_before_the_closing_semicolon_is_removed() {
        assert_eq!(
            closing_semicolon_unfolded("DKIM-Signature: a=1; b=xyz==\r\n\t;\r\n".into()),
            "DKIM-Signature: a=1; b=xyz==;\r\n"
        );
        assert_eq!(
            closing_semicolon_unfolded("DKIM-Signature: a=1;\r\n\tb=xyz==;\r\n".into()),
            "DKIM-Signature: a=1;\r\n\tb=xyz==;\r\n"
        );
    }

    #[test]
    fn selectors_name_the_key_type_and_day() {
        let day = jiff::civil::Date::constant(2026, 1, 5);
        assert_eq!(DkimAlgorithm::Rsa.selector(day), "qunfa-rsa-20260105");
        assert_eq!(DkimAlgorithm::Ed25519.selector(day), "qunfa-ed25519-20260105");
    }

    #[test]
    fn generated_keys_sign() {
        let keys: Vec<DkimKey> = DkimAlgorithm::ALL
            .iter()
            .map(|a| DkimKey::generate(*a, format!("s-{}", a.as_str())).unwrap())
            .collect();
        // SPKI of an RSA-2048 key starts with these bytes in base64.
        assert!(
            keys[0]
                .public_base64
                .starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
        );
        assert_eq!(keys[1].public_base64.len(), 44);
        let signer = DomainSigner::new("example.cn", &keys, SIGNED_HEADERS).unwrap();
        let headers = signer
            .sign(b"From: a@example.cn\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n")
            .unwrap();
        assert_eq!(headers.matches("DKIM-Signature: ").count(), 2, "{headers}");
        assert!(
            headers.contains("a=rsa-sha256; s=s-rsa; d=example.cn"),
            "{headers}"
        );
        assert!(
            headers.contains("a=ed25519-sha256; s=s-ed25519; d=example.cn"),
            "{headers}"
        );
    }
}
