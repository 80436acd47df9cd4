//! DKIM signatures (RFC 6376, RFC 8463) with a sending domain's keys: one
//! per key, RSA first, over the same headers.

use std::cell::RefCell;
use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use mail_auth::common::crypto::{
    Algorithm, CryptoError, Ed25519Key, HashContext, HashImpl, HashOutput, Sha256, SigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable, Writer};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

pub use crate::domain::senders::dkim::{DkimAlgorithm, DkimError, DkimKey, txt_value, zone_line};

fn err(e: impl fmt::Display) -> DkimError {
    DkimError::of(e)
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

thread_local! {
    /// The body hash of the message `DomainSigner::sign` is signing on this
    /// thread, computed once for all the domain's keys (see `BodyHashed`).
    static BODY_HASH: RefCell<Option<HashOutput>> = const { RefCell::new(None) };
}

/// A key that takes the body hash `DomainSigner::sign` computed. mail-auth
/// hashes the body once per key, canonicalizing it a byte at a time with one
/// hasher call each: for a 20 KB message that was a sixth of the CPU of a
/// campaign (perf), twice over with an RSA and an Ed25519 key.
struct BodyHashed<K>(K);

impl<K: SigningKey<Hasher = Sha256>> SigningKey for BodyHashed<K> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    /// `data` is the canonical body mail-auth would hash; the same hash is
    /// taken from `BODY_HASH` when `DomainSigner::sign` left it there.
    fn hash(&self, data: impl Writable) -> HashOutput {
        BODY_HASH
            .with(|h| h.borrow().clone())
            .unwrap_or_else(|| hash_in_blocks(data))
    }

    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

/// SHA-256 of a body under relaxed canonicalization (RFC 6376 3.4.4), as
/// mail-auth computes it. A body whose lines relaxed canonicalization leaves
/// as they are (CRLF line ends, no tab, no run of spaces, no space ending a
/// line: every body qunfa builds) is hashed as one slice; any other goes
/// through mail-auth's own canonicalization.
fn relaxed_body_hash(body: &[u8]) -> HashOutput {
    match plain_lines(body) {
        Some(lines) => {
            let mut hash = <Sha256 as HashImpl>::hasher();
            if !lines.is_empty() {
                hash.write(lines);
                hash.write(b"\r\n");
            }
            hash.complete()
        }
        None => hash_in_blocks(Canonicalization::Relaxed.canonical_body(body, u64::MAX)),
    }
}

/// The body of a message whose header lines are all `Name: value` (or
/// folded) with CRLF line ends, as mail-auth's header parser finds it: after
/// the first empty line. `None` for any other message, which mail-auth then
/// hashes itself.
fn body_of(message: &[u8]) -> Option<&[u8]> {
    let end = memchr::memmem::find(message, b"\r\n\r\n")?;
    let head = &message[..end];
    let well_formed =
        memchr::memchr_iter(b'\n', head).count() == memchr::memmem::find_iter(head, b"\r\n").count()
            && head.split(|&b| b == b'\n').enumerate().all(|(i, line)| {
                line.contains(&b':') || (i > 0 && matches!(line.first(), Some(b' ' | b'\t')))
            });
    well_formed.then(|| &message[end + 4..])
}

/// `body` without its trailing line ends, if relaxed canonicalization
/// changes nothing else in it.
fn plain_lines(body: &[u8]) -> Option<&[u8]> {
    let crlf = memchr::memmem::find_iter(body, b"\r\n").count();
    let plain = memchr::memchr(b'\t', body).is_none()
        && memchr::memmem::find(body, b"  ").is_none()
        && memchr::memmem::find(body, b" \r").is_none()
        && body.last() != Some(&b' ')
        && memchr::memchr_iter(b'\r', body).count() == crlf
        && memchr::memchr_iter(b'\n', body).count() == crlf;
    let mut lines = body;
    while let Some(rest) = lines.strip_suffix(b"\r\n") {
        lines = rest;
    }
    plain.then_some(lines)
}

/// Hashes what mail-auth writes a byte at a time, collected into blocks.
fn hash_in_blocks(data: impl Writable) -> HashOutput {
    let mut blocks = Blocks {
        hash: <Sha256 as HashImpl>::hasher(),
        block: [0; BLOCK],
        len: 0,
    };
    data.write(&mut blocks);
    blocks.flush();
    blocks.hash.complete()
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
    Rsa(DkimSigner<BodyHashed<LcRsaKey>, Done>),
    Ed25519(DkimSigner<BodyHashed<Ed25519Key>, Done>),
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
                    DkimSigner::from_key(BodyHashed(LcRsaKey::from_pkcs1_der(&k.private_der)?))
                        .domain(domain)
                        .selector(&k.selector)
                        .headers(headers)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                ),
                DkimAlgorithm::Ed25519 => Signer::Ed25519(
                    DkimSigner::from_key(BodyHashed(
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
        let body_hash = body_of(message).map(relaxed_body_hash);
        BODY_HASH.with(|h| *h.borrow_mut() = body_hash);
        let signatures: Result<Vec<_>, _> = self
            .signers
            .iter()
            .map(|s| match s {
                Signer::Rsa(s) => s.sign(message),
                Signer::Ed25519(s) => s.sign(message),
            })
            .collect();
        BODY_HASH.with(|h| *h.borrow_mut() = None);
        let signatures = signatures.map_err(err)?;
        Ok(signatures
            .into_iter()
            .map(|s| closing_semicolon_unfolded(s.to_header()))
            .collect())
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
    fn the_shared_body_hash_is_mail_auths() {
        let bodies: [&[u8]; 16] = [
            b"",
            b"\r\n",
            b"\r\n\r\n",
            b"one line\r\n",
            b"no line end",
            b"\r\n\r\nleading empty lines\r\n",
            b"a\r\n\r\nb\r\n\r\n\r\n",
            b" leading space\r\n",
            b"two  spaces\r\n",
            b"a tab\there\r\n",
            b"trailing space \r\nnext\r\n",
            b"ends in a space ",
            b"bare\nline feeds\n",
            b"bare\rcarriage return\r\n",
            b"   \r\n",
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSGVsbG8=\r\n--b--\r\n",
        ];
        for body in bodies {
            let theirs = hash_in_blocks(Canonicalization::Relaxed.canonical_body(body, u64::MAX));
            assert_eq!(
                relaxed_body_hash(body).as_ref(),
                theirs.as_ref(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(
            plain_lines(bodies[15]).is_some(),
            "a MIME body takes the fast way"
        );
    }

    #[test]
    fn the_body_is_where_mail_auth_finds_it() {
        let k = DkimKey::generate(DkimAlgorithm::Ed25519, "s".into()).unwrap();
        let ours = DomainSigner::new("example.cn", std::slice::from_ref(&k), SIGNED_HEADERS).unwrap();
        let theirs = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&k.private_der).unwrap())
            .domain("example.cn")
            .selector("s")
            .headers(SIGNED_HEADERS.iter().map(|h| h.to_string()))
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        let bh = |header: &str| {
            header
                .split("bh=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        };
        let messages: [&[u8]; 6] = [
            b"From: a@example.cn\r\nSubject: folded\r\n  subject\r\n\r\nbody\r\n\r\n",
            b"From: a@example.cn\r\n\r\n\r\nbody after an empty line\r\n",
            b"From: a@example.cn\r\nnot a header\r\nSubject: x\r\n\r\nbody\r\n",
            b"From: a@example.cn\nSubject: bare LF\n\nbody\n",
            b"From: a@example.cn\r\nSubject: no body\r\n",
            b"From: a@example.cn\r\n\r\nspace  runs \r\n\tand tabs\r\n",
        ];
        for m in messages {
            let want = bh(&theirs.sign(m).unwrap().to_header());
            assert_eq!(
                bh(&ours.sign(m).unwrap()),
                want,
                "{:?}",
                String::from_utf8_lossy(m)
            );
        }
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
