//! ieum's domain: entities, rules and use cases behind port traits.
//!
//! Nothing in this crate performs IO. Adapters (SeaORM, Redis, actix, ...) live in
//! other crates and implement the traits in [`ports`]. Use cases take their ports as
//! `Arc<dyn Trait>` so that the binary can wire any adapter and unit tests can wire
//! mockall mocks (the `mocks` feature exports them to other crates).

pub mod attachment;
pub mod attachments;
pub mod auth;
pub mod chat;
pub mod couples;
pub mod error;
pub mod hub;
pub mod members;
pub mod message;
pub mod moderation;
pub mod ports;
pub mod push;
pub mod registration;
pub mod replays;
pub mod room;
pub mod rooms;
pub mod session;
pub mod social;
pub mod text;
pub mod throttle;
pub mod user;

pub use error::{DomainError, DomainResult};
