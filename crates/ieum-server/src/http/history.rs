//! History over HTTP: contract A's `GET /chat/history/{roomId}` and the native
//! `GET /api/rooms/{roomId}/messages`.

use actix_web::{HttpResponse, web};
use ieum_domain::DomainError;
use ieum_domain::message::HistoryQuery;
use ieum_domain::rooms::Entry;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::MessageJson;
use crate::wire::ContractAMessage;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The native `GET /api/rooms/{id}/messages` is mounted in the rooms scope.
    cfg.route("/chat/history/{room_id}", web::get().to(contract_a_history));
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

impl PageParams {
    fn query(&self, default_limit: u32) -> HistoryQuery {
        HistoryQuery {
            skip_system: false,
            before: self.before,
            after: self.after,
            limit: self.limit.unwrap_or(default_limit),
        }
    }
}

/// Oldest first; `limit` (default 100, at most 500) newest messages, or a page
/// by `before`/`after` seq. A room that does not exist has no history (`[]`).
async fn contract_a_history(
    state: web::Data<AppState>,
    who: Authenticated,
    room_id: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let result = state
        .chat
        .history(
            &who.0,
            &room_id,
            Entry::AutoJoinExisting,
            HistoryQuery {
                skip_system: true,
                ..params.query(100)
            },
        )
        .await;
    match result {
        Ok(messages) => {
            let body: Vec<ContractAMessage<'_>> =
                messages.iter().map(ContractAMessage::from).collect();
            Ok(HttpResponse::Ok().json(body))
        }
        // Forbidden is 403 through ApiError like every other error.
        Err(DomainError::NotFound { .. }) => Ok(HttpResponse::Ok().json(json!([]))),
        Err(e) => Err(e.into()),
    }
}

/// `{"messages":[...oldest first], "hasMore": bool}`.
pub async fn native_history(
    state: web::Data<AppState>,
    who: Authenticated,
    room_id: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .chat
        .history_page(&who.0, &room_id, Entry::MembersOnly, params.query(0))
        .await?;
    let messages: Vec<_> = page
        .messages
        .iter()
        .map(|m| MessageJson::new(m, &state.links))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "messages": messages, "hasMore": page.has_more })))
}
