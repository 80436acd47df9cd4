//! Building one message: rendering, MIME, link rewriting and DKIM. No I/O.
//! For now: DKIM keys (made when a domain is added) and signatures.

pub mod dkim;
