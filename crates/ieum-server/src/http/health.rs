//! `GET /health`: the process is alive. `GET /ready`: the database answers and
//! every migration is applied.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.ping().await;
    let pending = match &database {
        Ok(()) => state.store.pending_migrations().await.ok(),
        Err(_) => None,
    };
    let migrations_ok = pending.as_ref().is_some_and(Vec::is_empty);
    // Redis down is degraded, not unready: the node still serves its own clients.
    let redis = match &state.bus {
        None => "disabled",
        Some(bus) if bus.healthy() && state.social.presence_healthy() => "ok",
        Some(_) => "degraded",
    };
    let status = match (database.is_ok() && migrations_ok, redis) {
        (false, _) => "not_ready",
        (true, "degraded") => "degraded",
        (true, _) => "ready",
    };
    let body = json!({
        "status": status,
        "redis": redis,
        "database": match &database { Ok(()) => "ok".to_owned(), Err(e) => e.public_message() },
        "migrations": match &pending {
            Some(p) if p.is_empty() => json!("applied"),
            Some(p) => json!({ "pending": p }),
            None => json!("unknown"),
        },
    });
    if database.is_ok() && migrations_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
