//! Building one message: rendering, MIME, link rewriting, signed tokens and
//! DKIM. No I/O.

pub mod dkim;
pub mod tokens;

pub use tokens::{Claim, LinkSigner};
