//! qunfa (群发, "send to many"): a self-hosted bulk e-mail platform with a
//! vendor-compatible XML API. `docs/architecture.md` draws the layers.

pub mod app;
pub mod bounce;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod http;
pub mod inbound;
pub mod mail;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tracking;
pub mod webhooks;

pub use app::App;
pub use server::Running;
