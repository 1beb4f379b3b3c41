//! One Engine.IO session and the Socket.IO socket on it, whatever carries
//! it: the task that owns the domain session, reads the client's packets,
//! writes contract C's events, pings, and ends the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ieum_domain::DomainError;
use ieum_domain::auth::Grant;
use ieum_domain::hub::{Delivery, MailboxReceiver};
use ieum_domain::session::{Outcome, Session};
use ieum_engineio::{Kind, Packet, SioPacket};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::app::AppState;
use crate::outbox::Outbox;
use crate::wire::{SHAPE_C, contract_c_event, contract_c_message, contract_c_room};

/// The subscription id of the socket's events (contract C).
const EVENTS: &str = "sio-events";

/// How a session's packets travel now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carrier {
    Polling,
    /// A WebSocket answered the probe; polls still drain until the client
    /// sends `upgrade`.
    Probing,
    WebSocket,
}

/// What the transports share with the session's task.
pub struct Handle {
    pub(super) sid: String,
    pub(super) inbound: mpsc::Sender<Packet>,
    pub(super) outbox: Outbox,
    pub(super) carrier: std::sync::Mutex<Carrier>,
    /// One long-poll GET at a time.
    pub(super) polling: Mutex<()>,
    closed: AtomicBool,
    pub(super) closing: tokio::sync::Notify,
    /// The socket's CONNECT succeeded: the full payload limit applies.
    authenticated: AtomicBool,
    /// The WebSocket's frame budget, raised at CONNECT.
    budget: std::sync::Mutex<Option<crate::ws::guard::Budget>>,
    max_payload: usize,
}

impl Handle {
    pub(super) fn new(
        sid: String,
        inbound: mpsc::Sender<Packet>,
        outbox: Outbox,
        carrier: Carrier,
        max_payload: usize,
    ) -> Self {
        Self {
            sid,
            inbound,
            outbox,
            carrier: std::sync::Mutex::new(carrier),
            polling: Mutex::new(()),
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
            authenticated: AtomicBool::new(false),
            budget: std::sync::Mutex::new(None),
            max_payload,
        }
    }

    pub(super) fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    /// The WebSocket carrying the session: its budget rises at CONNECT.
    pub(super) fn watch_budget(&self, budget: crate::ws::guard::Budget) {
        if self.is_authenticated() {
            budget.set(self.max_payload);
        }
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = Some(budget);
    }

    fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Release);
        if let Some(budget) = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            budget.set(self.max_payload);
        }
    }

    pub(super) fn carrier(&self) -> Carrier {
        *self.carrier.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_carrier(&self, carrier: Carrier) {
        *self.carrier.lock().unwrap_or_else(|p| p.into_inner()) = carrier;
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the session from outside (a transport error, a second poll).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
        self.closing.notify_one();
    }

    /// Queues an encoded Engine.IO packet; a full queue ends the session.
    fn send(&self, packet: Packet) -> bool {
        if self.outbox.push(packet.encode()) {
            true
        } else {
            self.close();
            false
        }
    }

    fn emit(&self, packet: &SioPacket) -> bool {
        self.send(Packet::Message(packet.encode()))
    }
}

/// The session's timing.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub connect_timeout: Duration,
}

pub(super) struct Engine {
    pub(super) state: AppState,
    pub(super) session: Session,
    inbox: Option<MailboxReceiver>,
    pub(super) handle: Arc<Handle>,
    pub(super) packets: mpsc::Receiver<Packet>,
    /// What the handshake request proved (a token in the query or header).
    pub(super) handshake: Option<Grant>,
    pub(super) timing: Timing,
    connected: bool,
    pings_sent: u64,
    pongs: u64,
    /// A proof-of-receipt mark and the ping number that carries it.
    proof: Option<(u64, u64)>,
}

type Step = Result<(), ()>;

impl Engine {
    pub(super) fn new(
        state: AppState,
        session: Session,
        inbox: MailboxReceiver,
        handle: Arc<Handle>,
        packets: mpsc::Receiver<Packet>,
        handshake: Option<Grant>,
        timing: Timing,
    ) -> Self {
        Self {
            state,
            session,
            inbox: Some(inbox),
            handle,
            packets,
            handshake,
            timing,
            connected: false,
            pings_sent: 0,
            pongs: 0,
            proof: None,
        }
    }

    /// Runs the session until it ends. Boxed, and its packet handler boxed:
    /// the task of an idle session then holds the loop's state, not the
    /// largest handler's future nor copies of the engine (docs/benchmarks.md).
    pub(super) async fn run(mut self: Box<Self>) {
        let started = Instant::now();
        let mut draining = self.state.drain.subscribe();
        let mut ticks = tokio::time::interval_at(
            started + self.timing.ping_interval,
            self.timing.ping_interval,
        );
        let mut last_pong = started;
        let handle = self.handle.clone();
        let Some(MailboxReceiver {
            rx: mut inbox,
            overflow,
        }) = self.inbox.take()
        else {
            return;
        };
        let overflow = overflow.wait();
        let drained = draining.wait_for(|d| *d);
        tokio::pin!(overflow, drained);
        let far = started + Duration::from_secs(365 * 24 * 3600);
        loop {
            let connect_by = started + self.timing.connect_timeout;
            let token_expires = self.session.expires_at().map(|at| {
                let left = at - chrono::Utc::now();
                Instant::now() + left.to_std().unwrap_or_default()
            });
            let step = tokio::select! {
                packet = self.packets.recv() => match packet {
                    Some(packet) => {
                        if matches!(packet, Packet::Pong(_)) {
                            last_pong = Instant::now();
                        }
                        Box::pin(self.on_packet(packet)).await
                    }
                    None => Err(()),
                },
                delivery = inbox.recv() => match delivery {
                    // The per-message path stays unboxed: no allocation a delivery.
                    Some(delivery) => self.deliver(delivery).await,
                    None => Err(()),
                },
                _ = ticks.tick() => {
                    if last_pong + self.timing.ping_interval + self.timing.ping_timeout < Instant::now() {
                        tracing::debug!("socket.io ping timeout");
                        Err(())
                    } else {
                        self.ping()
                    }
                }
                _ = tokio::time::sleep_until(connect_by), if !self.connected => {
                    self.connect_error("connect_timeout", "no CONNECT packet in time");
                    Err(())
                }
                _ = &mut overflow => {
                    self.emit_error("slow_consumer", "the connection fell too far behind; reconnect");
                    Err(())
                }
                _ = &mut drained => {
                    // Only the engine's close (sent below): socket.io-client
                    // takes it as a lost transport and reconnects, to another
                    // node. A Socket.IO disconnect would stop it for good.
                    Err(())
                }
                _ = tokio::time::sleep_until(token_expires.unwrap_or(far)), if token_expires.is_some() => {
                    self.emit_error("token_expired", "the access token expired; reconnect with a fresh one");
                    Err(())
                }
                _ = handle.closing.notified() => Err(()),
            };
            if let Some((code, message)) = self.session.ended() {
                self.emit_error(code, message);
                break;
            }
            if step.is_err() || self.handle.is_closed() {
                break;
            }
        }
        Box::pin(self.session.close()).await;
        self.handle.send(Packet::Close);
        self.handle.close();
        self.state.sio.remove(&self.handle.sid, &self.handle);
    }

    fn ping(&mut self) -> Step {
        self.pings_sent += 1;
        if self.handle.send(Packet::Ping(String::new())) {
            Ok(())
        } else {
            Err(())
        }
    }

    async fn on_packet(&mut self, packet: Packet) -> Step {
        match packet {
            Packet::Pong(_) => {
                self.pongs += 1;
                if let Some((mark, ping)) = self.proof
                    && self.pongs >= ping
                {
                    self.proof = None;
                    self.session.proven(mark).await;
                    self.ask_for_proof();
                }
                Ok(())
            }
            Packet::Close => Err(()),
            Packet::Message(text) => self.on_socket_packet(&text).await,
            // `ping` from a client is only the upgrade probe, answered by
            // the WebSocket transport; the rest carries nothing.
            Packet::Ping(_) | Packet::Open(_) | Packet::Upgrade | Packet::Noop => Ok(()),
        }
    }

    async fn on_socket_packet(&mut self, text: &str) -> Step {
        let packet = match SioPacket::decode(text) {
            Ok(packet) => packet,
            Err(e) => {
                self.emit_error(e.code(), &e.to_string());
                return Ok(());
            }
        };
        if packet.namespace != "/" {
            self.handle.emit(&SioPacket {
                kind: Kind::ConnectError,
                namespace: packet.namespace.clone(),
                id: None,
                data: Some(
                    json!({"message": "Invalid namespace", "data": {"code": "unknown_namespace"}}),
                ),
            });
            return Ok(());
        }
        match packet.kind {
            Kind::Connect => self.on_connect(packet.data).await,
            Kind::Disconnect => Err(()),
            Kind::Event if self.connected => {
                self.on_event(&packet).await;
                Ok(())
            }
            Kind::Event => {
                self.connect_error("not_connected", "send CONNECT first");
                Ok(())
            }
            // Acks of the server's events: the server asks for none.
            Kind::Ack | Kind::ConnectError => Ok(()),
        }
    }

    fn connect_error(&self, code: &str, message: &str) {
        self.handle.emit(&SioPacket {
            kind: Kind::ConnectError,
            namespace: "/".into(),
            id: None,
            data: Some(json!({"message": message, "data": {"code": code}})),
        });
    }

    fn emit_error(&self, code: &str, message: &str) {
        self.handle.emit(&SioPacket::event(
            "error",
            json!({"code": code, "message": message}),
        ));
    }

    /// `40{"token":"..."}`: signs the socket in (the auth payload's token,
    /// or what the handshake proved), then `rooms`.
    async fn on_connect(&mut self, auth: Option<Value>) -> Step {
        if self.connected {
            self.connect_error("already_connected", "the socket is already connected");
            return Ok(());
        }
        let token = auth
            .as_ref()
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .map(|t| t.trim().trim_start_matches("Bearer ").to_owned());
        if let Err(e) = self
            .session
            .authenticate(token.as_deref(), self.handshake.take())
            .await
        {
            self.connect_error(e.code(), &e.public_message());
            return Ok(());
        }
        let rooms = match self.session.subscribe_events(EVENTS, SHAPE_C).await {
            Ok(rooms) => rooms,
            Err(e) => {
                self.connect_error(e.code(), &e.public_message());
                return Err(());
            }
        };
        self.connected = true;
        self.handle.authenticated();
        let sid = uuid::Uuid::new_v4().simple().to_string();
        self.handle.emit(&SioPacket {
            kind: Kind::Connect,
            namespace: "/".into(),
            id: None,
            data: Some(json!({"sid": sid})),
        });
        let list: Vec<Value> = rooms.iter().map(|r| contract_c_room(&r.room)).collect();
        self.handle
            .emit(&SioPacket::event("rooms", Value::Array(list)));
        Ok(())
    }

    /// An event of the client: `chat` sends; the ack (when asked for)
    /// answers the stored message, or `{"error":{"code","message"}}`.
    async fn on_event(&mut self, packet: &SioPacket) {
        let Some((name, args)) = packet.event_parts() else {
            return;
        };
        let data = args.first().cloned().unwrap_or(Value::Null);
        let outcome = match crate::ws::parse_event(name, data) {
            Ok(command) => self.session.execute(command).await,
            Err(e) => Err(e),
        };
        let answer = match outcome {
            Ok(Outcome::Sent(appended)) => {
                json!({"ok": true, "message": contract_c_message(&appended.message)})
            }
            Ok(_) => json!({"ok": true}),
            Err(e) => {
                crate::http::errors::log_if_server_error(&e);
                let error = error_json(&e);
                if packet.id.is_none() {
                    self.handle.emit(&SioPacket::event("error", error.clone()));
                }
                json!({"ok": false, "error": error})
            }
        };
        if let Some(id) = packet.id {
            self.handle.emit(&SioPacket::ack("/", id, vec![answer]));
        }
    }

    async fn deliver(&mut self, delivery: Delivery) -> Step {
        let Some(out) = self.session.on_delivery(delivery).await else {
            return Ok(());
        };
        if let Some((name, data)) = contract_c_event(&out.delivery.event)
            && !self.handle.emit(&SioPacket::event(name, data))
        {
            return Err(());
        }
        self.ask_for_proof();
        Ok(())
    }

    /// A ping after messages: its pong proves the client read them (push).
    fn ask_for_proof(&mut self) {
        if self.proof.is_some() {
            return;
        }
        if let Some(mark) = self.session.proof_request() {
            let _ = self.ping();
            self.proof = Some((mark, self.pings_sent));
        }
    }
}

fn error_json(e: &DomainError) -> Value {
    json!({"code": e.code(), "message": e.public_message()})
}
