//! The ieum server: configuration, wiring of adapters, and the mapping of HTTP
//! and WebSocket onto the domain's use cases. No business rule lives here.

pub mod app;
pub mod config;
pub mod http;
pub mod jsonws;
pub mod limits;
pub mod links;
mod outbox;
pub mod sio;
pub mod sse;
pub mod telemetry;
mod views;
pub mod wire;
pub mod ws;
pub mod wsio;

pub use app::{AppState, build_state, configure, run};
pub use config::{Cli, Command, Config};
