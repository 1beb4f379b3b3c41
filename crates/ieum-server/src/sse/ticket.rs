//! SSE tickets: EventSource cannot send headers, and a long-lived access
//! token in a URL ends up in proxies' logs. A ticket is short-lived (30 s),
//! good once, and names the session it was asked under:
//! `base64url(user id, family id, expiry, nonce || HMAC-SHA256)`, keyed from
//! the JWT secret under a label of its own. Single use holds across nodes:
//! the nonce is counted by the rate limiter (Redis when there is one).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const LABEL: &[u8] = b"ieum sse ticket v1";
const MAC_BYTES: usize = 16;
/// How long a ticket may be redeemed.
pub const TICKET_SECS: i64 = 30;

/// What a ticket proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub user_id: Uuid,
    pub family_id: Option<Uuid>,
    pub expires_at: i64,
    pub nonce: Uuid,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TicketError {
    Invalid,
    Expired,
}

#[derive(Clone)]
pub struct Tickets {
    key: Hmac<Sha256>,
}

impl Tickets {
    pub fn new(secret: &[u8]) -> Self {
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        derive.update(LABEL);
        let key = <Hmac<Sha256> as Mac>::new_from_slice(&derive.finalize().into_bytes())
            .expect("HMAC takes keys of any length");
        Self { key }
    }

    fn payload(ticket: &Ticket) -> Vec<u8> {
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(ticket.user_id.as_bytes());
        payload.extend_from_slice(ticket.family_id.unwrap_or(Uuid::nil()).as_bytes());
        payload.extend_from_slice(&ticket.expires_at.to_be_bytes());
        payload.extend_from_slice(ticket.nonce.as_bytes());
        payload
    }

    pub fn issue(&self, ticket: &Ticket) -> String {
        let mut bytes = Self::payload(ticket);
        let mut mac = self.key.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks the signature and the expiry (`now`: unix seconds).
    pub fn check(&self, text: &str, now: i64) -> Result<Ticket, TicketError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| TicketError::Invalid)?;
        if bytes.len() != 56 + MAC_BYTES {
            return Err(TicketError::Invalid);
        }
        let (payload, tag) = bytes.split_at(56);
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| TicketError::Invalid)?;
        let uuid = |range: std::ops::Range<usize>| {
            Uuid::from_slice(&payload[range]).map_err(|_| TicketError::Invalid)
        };
        let family = uuid(16..32)?;
        let expires_at = i64::from_be_bytes(
            payload[32..40]
                .try_into()
                .map_err(|_| TicketError::Invalid)?,
        );
        let ticket = Ticket {
            user_id: uuid(0..16)?,
            family_id: (!family.is_nil()).then_some(family),
            expires_at,
            nonce: uuid(40..56)?,
        };
        if expires_at <= now {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            user_id: Uuid::now_v7(),
            family_id: Some(Uuid::now_v7()),
            expires_at: 1_000,
            nonce: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_ticket_round_trips_until_it_expires() {
        let tickets = Tickets::new(b"secret");
        let t = ticket();
        let text = tickets.issue(&t);
        assert_eq!(tickets.check(&text, 999), Ok(t));
        assert_eq!(tickets.check(&text, 1_000), Err(TicketError::Expired));
    }

    #[test]
    fn a_forged_or_foreign_ticket_is_invalid() {
        let text = Tickets::new(b"other").issue(&ticket());
        assert_eq!(
            Tickets::new(b"secret").check(&text, 0),
            Err(TicketError::Invalid)
        );
        assert_eq!(
            Tickets::new(b"secret").check("garbage", 0),
            Err(TicketError::Invalid)
        );
    }
}
