//! `GET /api/v1/openapi.json`, no key needed: the OpenAPI 3.1 document of
//! every route of the JSON API. It is a static document, written and
//! reviewed beside the handlers rather than derived from them: its schemas
//! say what a client may rely on, which is more than the Rust types show
//! (which fields are absent rather than null, what a list id means), and
//! the test suite checks it with a standard validator and against every
//! route the tests call.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::App;

const DOCUMENT: &str = include_str!("openapi.json");

pub(super) fn routes() -> Router<App> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
