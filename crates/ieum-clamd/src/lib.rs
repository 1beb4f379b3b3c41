//! The clamd adapter: [`ClamdScanner`] implements the domain's
//! [`VirusScanner`](ieum_domain::ports::VirusScanner) port with clamd's
//! `INSTREAM` command, over TCP (`tcp://host:port`) or a unix socket
//! (`unix:///run/clamav/clamd.ctl`).
//!
//! One connection per scan: clamd closes it after each verdict anyway, and a
//! scan is rare next to its cost. Every limit is explicit ([`ClamdConfig`]):
//! the connect and whole-scan timeouts bound how long a caller waits for a
//! clamd that is down or hung (both are `Unavailable`, so the object waits and
//! is scanned again later, never taken for clean), and an object over
//! `max_stream_bytes` is refused before a connection is opened.

mod config;
mod reply;
mod scanner;

pub use config::{BadClamdConfig, ClamdAddress, ClamdConfig};
pub use scanner::ClamdScanner;
