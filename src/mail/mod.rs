//! Building one message: rendering, MIME, link rewriting, signed tokens and
//! DKIM. No I/O.

pub mod dkim;
pub mod links;
pub mod mime;
pub mod tokens;

pub use links::link_base;
pub use tokens::{Claim, LinkSigner};
