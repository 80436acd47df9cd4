//! The links in sent messages, on the public URL and any `track_domain`
//! pointed at it: the open pixel, click redirects and the unsubscribe page
//! with RFC 8058 one-click. A token that does not verify is a 404 and
//! counts nothing; a hit is answered at once and queued for the writer.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::domain::ids::{DeliveryId, LinkId};
use crate::domain::tracking::{self, Hit, TrackingError};
use crate::http::unsubscribe_page;
use crate::mail::Claim;
use crate::tracking::agent::Agent;

/// A transparent 1×1 GIF: the 43 bytes every tracker serves.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";

pub fn router() -> Router<App> {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/t/u/{token}", get(unsubscribe_page).post(unsubscribe))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, NO_CACHE)],
        "not found\n",
    )
        .into_response()
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the last address of `X-Forwarded-For` that is not one.
fn client_ip(app: &App, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| app.config.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted(ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

fn hit(
    app: &App,
    method: &Method,
    peer: IpAddr,
    headers: &HeaderMap,
    delivery: DeliveryId,
    link: Option<LinkId>,
) -> Hit {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let agent = Agent::parse(ua);
    let at = app.clock.now();
    Hit {
        delivery,
        link,
        at,
        day: app.clock.date_of(at),
        ip: client_ip(app, peer, headers).to_string(),
        browser: agent.browser,
        os: agent.os,
        device: agent.device.as_str(),
        // A HEAD fetches no image and follows no link: a checker's.
        machine: agent.machine || *method == Method::HEAD,
    }
}

// The request itself, not its `Method` and `HeaderMap` extracted: those
// extractors copy them, on the path every open and click takes.
async fn open(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let Some(Claim::Open { delivery }) = app.link_signer.verify(&token) else {
        return not_found();
    };
    app.hits
        .record(hit(
            &app,
            req.method(),
            peer.ip(),
            req.headers(),
            DeliveryId(delivery),
            None,
        ))
        .await;
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE)),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
            (header::EXPIRES, HeaderValue::from_static("0")),
        ],
        PIXEL,
    )
        .into_response()
}

async fn click(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let Some(Claim::Click { delivery, link }) = app.link_signer.verify(&token) else {
        return not_found();
    };
    let (delivery, link) = (DeliveryId(delivery), LinkId(i64::from(link)));
    let url = match tracking::click_target(&app.store, &app.links, delivery, link).await {
        Ok(url) => url,
        Err(TrackingError::Store(e)) => {
            tracing::error!(error = %e, "looking up a click link");
            return not_found();
        }
        Err(TrackingError::UnknownLink | TrackingError::UnknownDelivery) => return not_found(),
    };
    // The URL exactly as the template had it; bytes a header can't carry
    // (controls) are percent-encoded.
    let location = HeaderValue::from_bytes(url.as_bytes()).unwrap_or_else(|_| {
        let encoded = percent_encoding::utf8_percent_encode(&url, percent_encoding::CONTROLS).to_string();
        HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static("/"))
    });
    app.hits
        .record(hit(
            &app,
            req.method(),
            peer.ip(),
            req.headers(),
            delivery,
            Some(link),
        ))
        .await;
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE)),
        ],
    )
        .into_response()
}

/// GET: a page that asks to confirm (links are fetched by scanners and
/// previews; only a POST unsubscribes), in the footer's language.
async fn unsubscribe_page(
    State(app): State<App>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(Claim::Unsubscribe { delivery }) = app.link_signer.verify(&token) else {
        return not_found();
    };
    let language = unsubscribe_page::language(&app, DeliveryId(delivery), query.as_deref()).await;
    page(language, unsubscribe_page::confirm(language))
}

/// POST: unsubscribes at once, whether it is the confirmation form or the
/// RFC 8058 one-click (`List-Unsubscribe=One-Click`): the address leaves the
/// task's list, its unsubscribe is logged (4.7) and the customer's future
/// sends skip it (H-5). Repeating it changes nothing more.
async fn unsubscribe(
    State(app): State<App>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(Claim::Unsubscribe { delivery }) = app.link_signer.verify(&token) else {
        return not_found();
    };
    let one_click = body.as_ref() == b"List-Unsubscribe=One-Click";
    let done = tracking::unsubscribe(&app.store, &app.clock, DeliveryId(delivery)).await;
    match done {
        Err(TrackingError::UnknownDelivery | TrackingError::UnknownLink) => not_found(),
        Ok(_) if one_click => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, NO_CACHE)],
            "unsubscribed\n",
        )
            .into_response(),
        Ok(_) => {
            let language = unsubscribe_page::language(&app, DeliveryId(delivery), query.as_deref()).await;
            page(language, unsubscribe_page::done(language))
        }
        Err(TrackingError::Store(e)) => {
            tracing::error!(error = %e, "unsubscribe link");
            (StatusCode::SERVICE_UNAVAILABLE, "please try again later\n").into_response()
        }
    }
}

fn page(language: crate::mail::footer::Language, (title, body): (String, String)) -> Response {
    let lang = unsubscribe_page::html_lang(language);
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em;line-height:1.6}}\
         button{{font-size:1em;padding:.5em 1.5em}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    );
    ([(header::CACHE_CONTROL, NO_CACHE)], Html(html)).into_response()
}
