//! Secrets sealed at rest (mailbox passwords, DKIM private keys) under the
//! platform's sealing key, which `app` creates once and keeps: in the data
//! dir with SQLite, in the database with PostgreSQL so every node shares it.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngExt;

/// Seals small secrets at rest with XChaCha20-Poly1305 (random 192-bit
/// nonces, so no counter has to be shared between nodes). The associated
/// data binds a sealed value to the row it belongs to, so a value copied into
/// another row does not open.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

/// A sealed value: this version byte, the nonce, then ciphertext and tag.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
#[error("a sealed secret does not open: it was changed, moved to another row, or sealed with another key")]
pub struct Unsealable;

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce_bytes = rand::rng().random::<[u8; NONCE_LEN]>();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message this small");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, Unsealable> {
        let (&version, rest) = sealed.split_first().ok_or(Unsealable)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unsealable)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_with_their_key() {
        let b = SecretBox::new([7; 32]);
        let sealed = b.seal("邮箱密码 p@ss".as_bytes(), "mailbox:a@b.cn");
        assert!(!sealed.windows(4).any(|w| w == b"p@ss"));
        assert_eq!(
            b.open(&sealed, "mailbox:a@b.cn").unwrap(),
            "邮箱密码 p@ss".as_bytes()
        );
        assert!(b.open(&sealed, "mailbox:c@b.cn").is_err());
        assert!(SecretBox::new([8; 32]).open(&sealed, "mailbox:a@b.cn").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(b.open(&tampered, "mailbox:a@b.cn").is_err());
        assert!(b.open(&[], "x").is_err());
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, b.seal("邮箱密码 p@ss".as_bytes(), "mailbox:a@b.cn"));
    }
}
