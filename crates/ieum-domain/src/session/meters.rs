//! A connection's metrics, their handles taken once when it opens: a
//! delivery (the per-message, per-recipient path) costs one atomic add, not
//! a registry lookup.

use metrics::{Counter, Gauge};

pub(super) struct Meters {
    transport: &'static str,
    connecting: Gauge,
    authenticated: Gauge,
    deliveries: Counter,
}

impl Meters {
    /// A new connection, counted as `connecting` until it signs in.
    pub(super) fn opened(transport: &'static str) -> Self {
        let gauge = |state: &'static str| metrics::gauge!("ieum_connections", "transport" => transport, "state" => state);
        let m = Self {
            transport,
            connecting: gauge("connecting"),
            authenticated: gauge("authenticated"),
            deliveries: metrics::counter!("ieum_deliveries_total", "transport" => transport),
        };
        m.connecting.increment(1);
        m
    }

    /// A sign-in attempt: `ieum_handshakes_total` by result; a success moves
    /// the connection to `authenticated`.
    pub(super) fn handshake(&self, refused: Option<&crate::error::DomainError>) {
        let result = refused.map_or("ok", |e| e.code());
        metrics::counter!("ieum_handshakes_total", "transport" => self.transport, "result" => result)
            .increment(1);
        if refused.is_none() {
            self.connecting.decrement(1);
            self.authenticated.increment(1);
        }
    }

    pub(super) fn delivered(&self) {
        self.deliveries.increment(1);
    }

    /// The connection is gone, signed in or not.
    pub(super) fn closed(&self, authenticated: bool) {
        if authenticated {
            self.authenticated.decrement(1)
        } else {
            self.connecting.decrement(1)
        }
    }
}
