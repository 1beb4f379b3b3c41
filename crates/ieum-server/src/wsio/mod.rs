//! WebSocket connections on their own socket, outside actix-http's HTTP/1
//! dispatcher.
//!
//! actix-http serves a WebSocket as a streaming request and response through
//! its dispatcher, which keeps an 8 KiB read and an 8 KiB write buffer for
//! the connection's whole life: 16 KiB of every idle connection's 27
//! (docs/benchmarks.md, "Memory per idle connection"). Here the listener
//! ([`listener::serve`]) hands upgrade requests to an upgrade service
//! instead. That service runs the request through the same actix-web `App`
//! (routing, middleware, the transports' handshake checks); a handler that
//! accepts answers 101 through [`upgrade`] with what runs the connection.
//! The service writes the 101 itself, takes the socket out of the
//! dispatcher and runs the connection on it with [`WsIn`] and [`WsOut`],
//! which hold no buffer while the connection is idle.

mod io;
pub mod listener;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use tokio::net::TcpStream;

pub use io::{Closed, WsIn, WsOut};

use crate::ws::guard::Budget;

/// Put on a request by the listener when it can hand the socket over.
#[derive(Debug, Clone, Copy)]
struct Upgradable;

type Run = Box<dyn FnOnce(Arc<TcpStream>, BytesMut) -> LocalBoxFuture<'static, ()>>;

/// On a 101 response: what takes over the socket once the 101 is written.
struct Handoff(Run);

/// How a connection's frames are limited.
pub struct Limits {
    /// The largest frame, and message of joined frames, once signed in.
    pub max_bytes: usize,
    /// The limit in force now (small until the protocol's CONNECT), checked
    /// on every frame header before its payload is read.
    pub budget: Budget,
    /// How long one frame may take to go out before the peer counts as gone.
    pub write_timeout: Duration,
}

/// Answers a WebSocket handshake: 101, naming the first of `protocols` the
/// client offered (none when it offered none of them), after which `run`
/// has the connection. A request that is not a valid handshake gets actix's
/// 400 and nothing runs.
pub fn upgrade<F, Fut>(
    req: &HttpRequest,
    protocols: &[&str],
    limits: Limits,
    run: F,
) -> Result<HttpResponse, actix_web::Error>
where
    F: FnOnce(WsOut, WsIn) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut accept = actix_http::ws::handshake(req.head())?;
    if let Some(protocol) = select_protocol(req, protocols) {
        accept.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol));
    }
    if !can_upgrade(req) {
        // Only a server built by `listener::serve` upgrades.
        return Err(actix_web::error::ErrorInternalServerError(
            "this listener cannot hand over WebSocket connections",
        ));
    }
    let mut response = HttpResponse::from(accept.finish()).map_into_boxed_body();
    let Limits {
        max_bytes,
        budget,
        write_timeout,
    } = limits;
    let start: Run = Box::new(move |socket, leftover| {
        let input = WsIn::new(socket.clone(), leftover, max_bytes, budget);
        let output = WsOut::new(socket, write_timeout);
        Box::pin(run(output, input))
    });
    response.extensions_mut().insert(Handoff(start));
    Ok(response)
}

/// Whether this request came through the listener's upgrade service, so
/// [`upgrade`] can take it: a transport that opens state before upgrading
/// (a Socket.IO session) asks first.
pub fn can_upgrade(req: &HttpRequest) -> bool {
    req.extensions().get::<Upgradable>().is_some()
}

/// The first protocol the client offered that `protocols` holds.
fn select_protocol<'a>(req: &'a HttpRequest, protocols: &[&str]) -> Option<&'a str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .find(|offered| !offered.is_empty() && protocols.contains(offered))
}
