//! The JSON API under `/api/v1` (docs/json-api.md): keys in
//! `Authorization: Bearer`, JSON in and out, errors as
//! `{"error": {"code", "message", "field"?}}`.
//!
//! Each resource is a module with its own `routes()`, merged by [`router`];
//! handlers parse, call the domain's use-cases and render, nothing more.

mod account;
mod campaigns;
mod contacts;
mod error;
mod lists;
mod openapi;
mod paging;
mod suppressions;
mod templates;
mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::app::App;
use crate::domain::api_keys;
use crate::domain::ids::CustomerId;

pub(crate) use error::{ApiError, ApiJson, ApiResult};

use super::lang::Lang;

/// The routes of `/api/v1`, to be nested there.
pub fn router() -> Router<App> {
    Router::new()
        .merge(account::routes())
        .merge(lists::routes())
        .merge(contacts::routes())
        .merge(campaigns::routes())
        .merge(templates::routes())
        .merge(suppressions::routes())
        .merge(webhooks::routes())
        .merge(openapi::routes())
}

/// An id of the path as its type: anything but a positive number names no
/// object, and is answered as a missing one.
pub(crate) fn path_id<T>(raw: &str, me: ApiCustomer, id: impl FnOnce(i64) -> T) -> ApiResult<T> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(id)
        .ok_or_else(|| ApiError::not_found(me.lang))
}

/// The language of a request's messages: English unless its
/// `Accept-Language` prefers Chinese.
fn lang_of(parts: &Parts) -> Lang {
    lang_of_headers(&parts.headers)
}

fn lang_of_headers(headers: &axum::http::HeaderMap) -> Lang {
    Lang::from_accept(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        Lang::En,
    )
}

/// The customer a request's key acts as, and the language to answer in.
/// A missing, malformed, wrong or revoked key, or one of a disabled
/// customer, is refused with 401.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ApiCustomer {
    pub id: CustomerId,
    pub lang: Lang,
}

/// The key of an `Authorization: Bearer KEY` header.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

impl FromRequestParts<App> for ApiCustomer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<ApiCustomer, ApiError> {
        let lang = lang_of(parts);
        let Some(key) = bearer(parts) else {
            return Err(ApiError::unauthorized(lang));
        };
        match api_keys::authenticate(&app.store, key, app.clock.now()).await {
            Ok(Some((key, id))) => match app.key_rate.take(key) {
                Ok(()) => Ok(ApiCustomer { id, lang }),
                Err(wait) => Err(ApiError::rate_limited(lang, wait)),
            },
            Ok(None) => Err(ApiError::unauthorized(lang)),
            Err(e) => Err(ApiError::explained(&e, lang)),
        }
    }
}
