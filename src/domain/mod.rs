//! The rules: accounts and credits, addresses, failure classes, templates,
//! sender domains and mailboxes. Nothing here knows about HTTP, XML or SQL.

pub mod accounts;
pub mod email;
pub mod failure;
pub mod lists;
pub mod senders;
pub mod tasks;
pub mod templates;
