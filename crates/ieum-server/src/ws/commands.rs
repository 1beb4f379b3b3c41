//! What each STOMP frame does: parse it, make one call on the session core,
//! answer with frames.

use std::sync::Arc;
use std::time::Duration;

use ieum_domain::DomainError;
use ieum_domain::hub::{Delivery, RoomEvent};
use ieum_domain::session::Outcome;
use ieum_stomp::{Command, Frame};
use serde_json::json;

use super::connection::{Conn, Step, Stop};
use super::frames::{event_frame, message_prefix, named_event_frame, receipt_frame};
use super::routing::{Target, parse_heartbeat, parse_send, readable_temp_id, subscribe_target};
use crate::wire::{SHAPE_C, contract_c_room};

const SERVER: &str = concat!("ieum/", env!("CARGO_PKG_VERSION"));

impl Conn {
    pub(super) async fn on_frame(&mut self, f: Frame) -> Step {
        if self.session.user().is_none() && !matches!(f.command, Command::Connect | Command::Stomp)
        {
            return self
                .fatal("not_connected", "send CONNECT first", f.get("receipt"))
                .await;
        }
        match f.command {
            Command::Connect | Command::Stomp => self.on_connect(f).await,
            Command::Subscribe => self.on_subscribe(f).await,
            Command::Unsubscribe => self.on_unsubscribe(f).await,
            Command::Send => self.on_send(f).await,
            Command::Disconnect => {
                self.receipt(&f, &[]).await?;
                Err(Stop)
            }
            // Messages are not acknowledged individually (delivery is ordered by seq
            // and resumable), and SENDs in a transaction take effect at once.
            Command::Ack | Command::Nack | Command::Begin | Command::Commit | Command::Abort => {
                self.receipt(&f, &[]).await
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                self.fatal(
                    "unknown_command",
                    &format!("{} is a server frame", f.command),
                    f.get("receipt"),
                )
                .await
            }
        }
    }

    async fn receipt(&mut self, frame: &Frame, extra: &[(&str, String)]) -> Step {
        if let Some(r) = frame.get("receipt") {
            self.write_frame(&receipt_frame(r, extra)).await?;
        }
        Ok(())
    }

    async fn on_connect(&mut self, f: Frame) -> Step {
        if self.session.user().is_some() {
            return self
                .fatal("already_connected", "CONNECT was already sent", None)
                .await;
        }
        let versions = f.get("accept-version").unwrap_or("1.0");
        let Some(version) = ["1.2", "1.1", "1.0"]
            .into_iter()
            .find(|v| versions.split(',').any(|x| x.trim() == *v))
        else {
            return self
                .fatal(
                    "unsupported_version",
                    "this server speaks STOMP 1.0, 1.1 and 1.2",
                    None,
                )
                .await;
        };
        let token = ["Authorization", "authorization", "X-Authorization"]
            .into_iter()
            .find_map(|h| f.get(h))
            .map(|v| v.trim())
            .map(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .unwrap_or(v)
            })
            .or_else(|| f.get("token"))
            .or_else(|| f.get("passcode"))
            .map(str::to_owned);
        // Heart-beats: cx,cy from the client; the server offers hb,hb.
        let (cx, cy) = match f.get("heart-beat").map(parse_heartbeat) {
            None => (0, 0),
            Some(Some(v)) => v,
            Some(None) => {
                return self
                    .fatal("invalid_heartbeat", "heart-beat must be two integers", None)
                    .await;
            }
        };
        let handshake = self.handshake.clone();
        let user = match self.session.authenticate(token.as_deref(), handshake).await {
            Ok(user) => user,
            Err(e) => return self.fatal(e.code(), &e.public_message(), None).await,
        };
        self.note_token_expiry();
        self.signed_in();
        let device = match f.get("device-id").map(str::trim).map(uuid::Uuid::parse_str) {
            None => None,
            Some(Err(_)) => {
                return self
                    .fatal(
                        "invalid_device_id",
                        "device-id must be the id POST /api/devices answered",
                        None,
                    )
                    .await;
            }
            // A device removed since (its token refused, a logout) leaves
            // the connection standing for all of its user's devices.
            Some(Ok(id)) => match self.session.use_device(id).await {
                Ok(()) => Some(id),
                Err(e) => {
                    tracing::debug!(device = %id, error = %e, "connection names no device of its user");
                    None
                }
            },
        };
        let hb = self.state.config.stomp_heartbeat_ms;
        self.send_every = (hb > 0 && cy > 0).then(|| Duration::from_millis(hb.max(cy)));
        self.expect_every = (hb > 0 && cx > 0).then(|| Duration::from_millis(hb.max(cx)));
        self.budget.set(super::ws_max_bytes(&self.state.config));
        tracing::Span::current().record("user", tracing::field::display(user.id));
        tracing::debug!(user = %user.username, version, "stomp connected");
        let reply = Frame::new(Command::Connected)
            .header("version", version)
            .header("heart-beat", format!("{hb},{hb}"))
            .header("server", SERVER)
            .header("session", uuid::Uuid::new_v4().simple().to_string())
            .header("user-name", user.username.clone());
        let reply = match device {
            Some(id) => reply.header("device-id", id.to_string()),
            None => reply,
        };
        self.write_frame(&reply).await?;
        self.receipt(&f, &[]).await
    }

    async fn on_subscribe(&mut self, f: Frame) -> Step {
        let Some(destination) = f.get("destination").map(str::to_owned) else {
            return self
                .fatal(
                    "missing_header",
                    "SUBSCRIBE needs destination",
                    f.get("receipt"),
                )
                .await;
        };
        let id = f.get("id").unwrap_or(&destination).to_owned();
        if self.session.has_subscription(&id) || self.errors_sub.as_deref() == Some(id.as_str()) {
            let e = DomainError::invalid(
                "duplicate_subscription",
                format!("subscription id {id:?} is in use"),
            );
            return self.app_error(&e, &f, None).await;
        }
        let Some(target) = subscribe_target(&destination) else {
            let e = DomainError::not_found(
                "unknown_destination",
                format!("cannot subscribe to {destination}"),
            );
            return self.app_error(&e, &f, None).await;
        };
        let (room_id, shape, entry) = match target {
            Target::Errors => {
                self.errors_sub = Some(id);
                return self.receipt(&f, &[]).await;
            }
            Target::Events => return self.subscribe_events(&f, id, &destination).await,
            Target::Room {
                room_id,
                shape,
                entry,
            } => (room_id, shape, entry),
        };
        let resume_after = match f.get("last-seq").map(|v| v.trim().parse::<i64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                let e = DomainError::invalid("invalid_header", "last-seq must be an integer");
                return self.app_error(&e, &f, None).await;
            }
        };
        let subscribed = match self
            .session
            .subscribe_room(&id, &room_id, entry, shape, resume_after)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.app_error(&e, &f, None).await,
        };
        let id: Arc<str> = id.into();
        self.prefixes
            .insert(id.clone(), message_prefix(&destination, &id));
        self.receipt(&f, &[("last-seq", subscribed.live_after.to_string())])
            .await?;
        let Some(mut after) = subscribed.resume_after else {
            return Ok(());
        };
        if subscribed.truncated {
            let e = DomainError::invalid(
                "resume_truncated",
                format!(
                    "more than {} messages were missed; page older ones with the history API",
                    self.state.chat.policy().max_resume
                ),
            );
            self.app_error(&e, &f, None).await?;
        }
        while after < subscribed.live_after {
            let page = match self
                .session
                .replay_page(&room_id, after, subscribed.live_after)
                .await
            {
                Ok(p) => p,
                Err(e) => return self.fatal(e.code(), &e.public_message(), None).await,
            };
            let Some(last) = page.last().map(|m| m.seq) else {
                break;
            };
            for m in page {
                self.write_event(&id, shape, &RoomEvent::message(m)).await?;
            }
            after = last;
        }
        Ok(())
    }

    async fn on_unsubscribe(&mut self, f: Frame) -> Step {
        let Some(id) = f.get("id").map(str::to_owned) else {
            return self
                .fatal("missing_header", "UNSUBSCRIBE needs id", f.get("receipt"))
                .await;
        };
        if self.errors_sub.as_deref() == Some(id.as_str()) {
            self.errors_sub = None;
        } else if self.session.unsubscribe(&id) {
            self.prefixes.remove(id.as_str());
        }
        self.receipt(&f, &[]).await
    }

    async fn on_send(&mut self, f: Frame) -> Step {
        let Some(destination) = f.get("destination").map(str::to_owned) else {
            return self
                .fatal("missing_header", "SEND needs destination", f.get("receipt"))
                .await;
        };
        let header_cmid = f.get("client-msg-id").map(str::to_owned);
        let command = match parse_send(&destination, &f.body, header_cmid.clone()) {
            Ok(c) => self.state.links.take_linked_image(c),
            Err(e) => {
                // The couple app matches errors by tempId: give it back whenever
                // it can be read, even from a body that did not parse.
                let temp_id = readable_temp_id(&f.body).or(header_cmid);
                return self.app_error(&e, &f, temp_id.as_deref()).await;
            }
        };
        let temp_id = match &command {
            ieum_domain::session::Command::Message { msg, .. } => msg.client_msg_id.clone(),
            _ => None,
        };
        match self.session.execute(command).await {
            Ok(Outcome::Sent(appended)) => {
                if appended.duplicate {
                    self.return_stored(&appended.message).await?;
                }
                let m = &appended.message;
                self.receipt(
                    &f,
                    &[
                        ("message-id", m.id.to_string()),
                        ("seq", m.seq.to_string()),
                        ("room-id", m.room_id.clone()),
                        ("duplicate", appended.duplicate.to_string()),
                    ],
                )
                .await
            }
            Ok(Outcome::Read(r)) => {
                self.receipt(&f, &[("last-read-seq", r.last_read_seq.to_string())])
                    .await
            }
            Ok(Outcome::Typed | Outcome::TypingDropped) => self.receipt(&f, &[]).await,
            Err(e) => self.app_error(&e, &f, temp_id.as_deref()).await,
        }
    }

    /// A resend of a stored message (same client id): contract B's app
    /// completes its pending bubble by the `tempId` of a message on its
    /// `/topic/couple` subscription, so the stored message goes back there, to
    /// this connection only. Native clients have the RECEIPT's `duplicate`.
    async fn return_stored(&mut self, message: &ieum_domain::message::Message) -> Step {
        let event = RoomEvent::message(message.clone());
        for (id, shape) in self.session.room_subscriptions(&message.room_id) {
            if shape == crate::wire::SHAPE_B {
                self.write_event(&id, shape, &event).await?;
            }
        }
        Ok(())
    }

    /// Contract C's events: the `rooms` list now, then the user's rooms, own feed
    /// and the lobby.
    async fn subscribe_events(&mut self, f: &Frame, id: String, destination: &str) -> Step {
        let rooms = match self.session.subscribe_events(&id, SHAPE_C).await {
            Ok(r) => r,
            Err(e) => return self.app_error(&e, f, None).await,
        };
        let prefix = message_prefix(destination, &id);
        self.prefixes.insert(id.into(), prefix.clone());
        self.receipt(f, &[]).await?;
        let list: Vec<_> = rooms.iter().map(|r| contract_c_room(&r.room)).collect();
        let body = json!({ "event": "rooms", "data": list }).to_string();
        self.write_text(named_event_frame(&prefix, "rooms", &body))
            .await
    }

    pub(super) async fn deliver(&mut self, d: Delivery) -> Step {
        let subscription = d.subscription.clone();
        let Some(out) = self.session.on_delivery(d).await else {
            if let Some((code, message)) = self.session.ended() {
                return self.end_session(code, message).await;
            }
            return Ok(()); // unsubscribed meanwhile
        };
        self.write_event(&subscription, out.shape, &out.delivery.event)
            .await?;
        self.ask_for_proof().await?;
        // A leave may have ended the subscription: its id is free again.
        if !self.session.has_subscription(&subscription) {
            self.prefixes.remove(&subscription);
        }
        Ok(())
    }

    async fn write_event(&mut self, sub_id: &Arc<str>, shape: u8, event: &RoomEvent) -> Step {
        let Some(prefix) = self.prefixes.get(sub_id) else {
            return Ok(());
        };
        match event_frame(prefix, shape, event, &self.state.links) {
            Some(text) => self.write_text(text).await,
            None => Ok(()), // this shape does not carry this kind of event
        }
    }
}
