//! The bundled web client, served at `/` from files compiled into the binary.

use actix_web::{HttpResponse, web};

const INDEX_HTML: &str = include_str!("../../web/index.html");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(INDEX_HTML)
}
