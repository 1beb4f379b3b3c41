//! docs/openapi.json against the real app: it is served, it is OpenAPI 3.1, and
//! every operation it lists is routed (no "no route" answer for its method and
//! path), so the document cannot name an endpoint that does not exist.

use crate::common;

use actix_web::test::TestRequest;
use ieum_test_support::TestDb;

#[actix_web::test]
async fn every_documented_operation_is_served() {
    let db = TestDb::sqlite().await;
    let app = common::app(common::state(&db, common::temp_dir()).await).await;
    let (status, headers, doc) = common::call(&app, TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, ops) in paths {
        // Placeholders become plausible values; the route must exist whatever
        // the handler then says (401 without a token, 400, 404 for the room).
        let uri: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().expect("operations") {
            assert!(op["responses"].is_object(), "{method} {path}: responses");
            let m = actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let req = TestRequest::default()
                .method(m)
                .uri(&uri)
                .insert_header(("content-type", "application/json"))
                .set_payload("{}");
            let (status, _, body) = common::call(&app, req).await;
            let unrouted = status == 405
                || (status == 404
                    && body["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no route for")));
            assert!(
                !unrouted,
                "{method} {path} is documented but not served: {status} {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 59, "only {checked} operations documented");
    // And an undocumented path is indeed answered "no route" (the check above can fail).
    let (status, _, body) = common::call(&app, TestRequest::get().uri("/api/nothing-here")).await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().starts_with("no route for"));
}
