//! The rules: accounts and credits, addresses, templates, sender domains and
//! mailboxes. Nothing here knows about HTTP, XML or SQL.

pub mod accounts;
pub mod email;
pub mod lists;
pub mod senders;
pub mod templates;
