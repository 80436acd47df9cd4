//! The rules: accounts and credits, addresses, failure classes, templates,
//! sender domains and mailboxes, tasks, reports and tracking. Nothing here
//! knows about HTTP, XML or SQL.

pub mod accounts;
pub mod api_keys;
pub mod email;
pub mod failure;
pub mod ids;
pub mod lists;
pub mod reports;
pub mod senders;
pub mod storage;
pub mod suppressions;
pub mod tasks;
pub mod templates;
pub mod tracking;
pub mod webhooks;
