//! The HTTP listener: what actix-web's `HttpServer` builds (actix-server and
//! actix-http's `HttpService` with the same settings), plus an upgrade
//! service: upgrade requests go to [`hand_over`] instead of being served as
//! streaming responses.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_codec::{Encoder, Framed};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, HttpService, Request, Response, StatusCode};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_factory, fn_service,
    map_config,
};
use actix_web::HttpMessage;
use actix_web::dev::AppConfig;
use actix_web::web::BytesMut;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::{Handoff, Upgradable};
use crate::app::{AppState, app};

/// How the listener runs.
pub struct Options {
    /// Worker threads; one per core when unset.
    pub workers: Option<usize>,
    /// Seconds a graceful stop waits for open connections.
    pub shutdown_timeout: u64,
    /// How long a client may take to send a request's head.
    pub client_request_timeout: Duration,
}

/// Connections the kernel queues before they are accepted (actix-web's
/// `HttpServer` default).
const BACKLOG: i32 = 1024;

/// A listening socket on `addr` (`SO_REUSEADDR`, so a restart can bind at
/// once); port 0 picks a free port, which `local_addr` then names.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves `state`'s app until the returned server stops.
pub fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    options: &Options,
) -> io::Result<Server> {
    let request_timeout = options.client_request_timeout;
    let write_limit = Duration::from_millis(state.config.ws_write_timeout_ms);
    let mut builder = Server::build()
        .disable_signals()
        .shutdown_timeout(options.shutdown_timeout);
    if let Some(workers) = options.workers {
        builder = builder.workers(workers);
    }
    // A graceful stop tells every connection's dispatcher, so idle keep-alive
    // connections close at once instead of holding the stop.
    let stopping = builder.graceful_shutdown_signal();
    let factory = move || {
        let upgrades = state.clone();
        let stopping = stopping.clone();
        HttpService::build()
            .client_request_timeout(request_timeout)
            // actix-web's: an answer given before the request's body was read
            // waits this long for the client to finish, instead of a reset.
            .client_disconnect_timeout(Duration::from_secs(1))
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .upgrade(fn_factory(move || {
                let state = upgrades.clone();
                async move {
                    let app = app(state)
                        .into_factory()
                        .new_service(AppConfig::default())
                        .await
                        .map_err(|()| tracing::error!("the upgrade service did not start"))?;
                    let app = Rc::new(app);
                    Ok::<_, ()>(fn_service(move |(req, framed)| {
                        hand_over(app.clone(), req, framed, write_limit)
                    }))
                }
            }))
            .finish(map_config(
                app(state.clone())
                    .into_factory()
                    .map_err(|e: actix_web::Error| e.error_response()),
                |_| AppConfig::default(),
            ))
            .tcp()
    };
    Ok(builder.listen("ieum", listener, factory)?.run())
}

/// The largest answer other than a 101 written to an upgrade request (a
/// refusal's problem body is well under it).
const MAX_REFUSAL_BYTES: u64 = 16 * 1024;

/// An upgrade request: through the app like any other; a 101 that carries a
/// [`Handoff`] is written here and the connection runs on the socket. Any
/// other answer is written whole (a small body only: a streaming one, an SSE
/// stream or a file, is refused with 400) and the connection closes.
async fn hand_over<S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<TcpStream, Codec>,
    write_limit: Duration,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    // actix-http sends every request with `Upgrade: websocket` here, also
    // ones that are no handshake (a POST, a file with the header): those
    // never reach the app, whose answers could be streams.
    let mut response: Response<BoxBody> = match actix_http::ws::verify_handshake(req.head()) {
        Err(e) => not_an_upgrade(&e.to_string()),
        Ok(()) => {
            req.extensions_mut().insert(Upgradable);
            match app.call(req).await {
                Ok(res) => res.into_parts().1.map_into_boxed_body().into(),
                Err(e) => e.error_response().into(),
            }
        }
    };
    let handoff = response.extensions_mut().remove::<Handoff>();
    let parts = framed.into_parts();
    let (socket, mut codec, leftover) = (parts.io, parts.codec, parts.read_buf);
    // What the dispatcher had not flushed yet (the answer to a request
    // pipelined before this one) goes first; then its buffer goes, not when
    // the connection ends.
    let mut out = BytesMut::from(&parts.write_buf[..]);
    drop(parts.write_buf);
    match handoff {
        Some(Handoff(run)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let (head, _) = response.into_parts();
            codec.encode(Message::Item((head, BodySize::None)), &mut out)?;
            drop(codec);
            write_within(&socket, &out, write_limit).await?;
            drop(out);
            let socket = Arc::new(socket);
            run(socket.clone(), leftover).await;
            Box::pin(linger(socket)).await;
        }
        _ => {
            if !matches!(
                response.body().size(),
                BodySize::None | BodySize::Sized(0..=MAX_REFUSAL_BYTES)
            ) {
                response =
                    not_an_upgrade("this resource is not served over an upgraded connection");
            }
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            let (head, body) = response.into_parts();
            let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
            let size = BodySize::Sized(body.len() as u64);
            codec.encode(Message::Item((head, size)), &mut out)?;
            codec.encode(Message::Chunk(Some(body)), &mut out)?;
            codec.encode(Message::Chunk(None), &mut out)?;
            drop(codec);
            write_within(&socket, &out, write_limit).await?;
            drop(out);
            Box::pin(linger(Arc::new(socket))).await;
        }
    }
    Ok(())
}

/// 400 problem+json for an upgrade request that is not one this server takes.
fn not_an_upgrade(detail: &str) -> Response<BoxBody> {
    crate::http::errors::problem_response(
        StatusCode::BAD_REQUEST,
        "not_a_websocket_handshake",
        detail.to_owned(),
    )
    .into()
}

async fn write_within(socket: &TcpStream, bytes: &[u8], limit: Duration) -> io::Result<()> {
    tokio::time::timeout(limit, super::io::write_all(socket, bytes))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// How long a closed connection reads what its peer still sends.
const LINGER: Duration = Duration::from_secs(1);
/// And how much of it, at most.
const LINGER_BYTES: usize = 64 * 1024;

/// Ends a connection after its close frame: FIN, then what the peer still
/// sends is read and dropped until it closes too (within [`LINGER`]).
/// Closing with unread bytes would answer them with a reset, which can cost
/// the peer the close frame it has not read yet.
async fn linger(socket: Arc<TcpStream>) {
    let Ok(mut socket) = Arc::try_unwrap(socket) else {
        return;
    };
    let _ = poll_fn(|cx| Pin::new(&mut socket).poll_shutdown(cx)).await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut scratch = [0u8; 1024];
        let mut left = LINGER_BYTES;
        while left > 0 {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}
