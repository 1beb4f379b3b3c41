//! The bundled web client, served at `/`, and the OpenAPI document of the HTTP
//! API at `/openapi.json`, both compiled into the binary.

use actix_web::{HttpResponse, web};

const INDEX_HTML: &str = include_str!("../../web/index.html");
/// docs/openapi.json: edited by hand beside the routes; tests/openapi.rs checks
/// that every operation it lists is served.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/openapi.json", web::get().to(openapi));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(INDEX_HTML)
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "no-cache"))
        .body(OPENAPI_JSON)
}
