//! HTTP adapters: each module maps routes onto use cases.

pub mod admin;
pub mod auth;
pub mod client;
pub mod contracts;
pub mod errors;
pub mod extract;
pub mod files;
pub mod guard;
pub mod health;
pub mod history;
pub mod me;
pub mod messages;
pub mod metrics;
pub mod origin;
pub mod push;
pub mod request_id;
pub mod rooms;
pub mod social;
pub mod uploads;
pub mod web_client;
