//! qunfa (群发, "send to many"): a self-hosted bulk e-mail platform with a
//! vendor-compatible XML API. See DESIGN.md for the shape of the system.

pub mod app;
pub mod bounce;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod http;
pub mod mail;
pub mod secrets;
pub mod store;
pub mod tracking;

pub use app::{App, Running};
