//! `GET /api/me`: the caller's account.

use actix_web::{HttpResponse, web};

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::MeJson;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me", web::get().to(me));
}

async fn me(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = state.auth.me(&who.0).await?;
    Ok(HttpResponse::Ok().json(MeJson::from(&user)))
}
