//! The rules: accounts and credits, addresses, failure classes. Nothing here knows about
//! HTTP, XML or SQL.

pub mod accounts;
pub mod email;
pub mod failure;
pub mod lists;
