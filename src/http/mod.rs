//! The HTTP edge: the vendor API, the JSON API, health and metrics, one request log and
//! one set of request metrics for all of them.

pub mod api;
pub mod compat;
pub mod explain;
pub mod lang;
pub mod params;
pub mod stream;
pub mod text;
pub mod tracking;
pub mod unsubscribe_page;
pub mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::App;

/// The route a response is counted under, when it is finer than the matched
/// path (e.g. one label per vendor script).
#[derive(Clone, Debug)]
pub struct RouteLabel(pub String);

pub fn router(app: App) -> Router {
    Router::new()
        .merge(compat::router())
        .merge(tracking::router())
        .merge(web::router())
        .nest("/api/v1", api::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn(observe))
        .with_state(app)
}

async fn healthz(State(app): State<App>) -> Response {
    if app.store.ping().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    // The queue is the database's, shared by every worker: read at scrape time.
    match app.store.queue_depth().await {
        Ok(n) => metrics::gauge!("delivery_queue_depth").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "reading the queue depth"),
    }
    let body = prometheus().render();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The process-wide metrics recorder (installed once, shared by every server
/// a process starts, e.g. in tests).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        handle
    })
}

/// Logs every request without its secrets and counts it by route and status.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // The line is written only when the log asks for requests; the
    // redacted target is built only then.
    let logged = tracing::enabled!(target: "qunfa::http", tracing::Level::INFO);
    let line = logged.then(|| {
        (
            req.method().clone(),
            redact_target(req.uri().path(), req.uri().query()),
        )
    });
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(label) => label.0.as_str(),
        None => matched.as_ref().map_or("unmatched", MatchedPath::as_str),
    };
    let status = response.status();
    let elapsed = started.elapsed();
    let (count, duration) = route_metrics(route, status);
    count.increment(1);
    duration.record(elapsed.as_secs_f64());
    if let Some((method, target)) = line {
        tracing::info!(target: "qunfa::http", %method, target = %target, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request");
    }
    response
}

/// The request counter of (route, status) and the duration histogram of
/// the route, registered once: building the labelled keys on every request
/// cost more than the rest of the middleware.
fn route_metrics(route: &str, status: StatusCode) -> (metrics::Counter, metrics::Histogram) {
    type Routes = HashMap<String, (metrics::Histogram, Vec<(StatusCode, metrics::Counter)>)>;
    static ROUTES: LazyLock<RwLock<Routes>> = LazyLock::new(RwLock::default);
    if let Some((duration, counts)) = ROUTES.read().expect("route metrics").get(route)
        && let Some((_, count)) = counts.iter().find(|(s, _)| *s == status)
    {
        return (count.clone(), duration.clone());
    }
    // Registered with the process's recorder, never with the no-op one
    // that stands in before it is installed.
    prometheus();
    let mut routes = ROUTES.write().expect("route metrics");
    let (duration, counts) = routes.entry(route.to_string()).or_insert_with(|| {
        let duration = metrics::histogram!("http_request_duration_seconds", "route" => route.to_string());
        (duration, Vec::new())
    });
    let count = match counts.iter().find(|(s, _)| *s == status) {
        Some((_, c)) => c.clone(),
        None => {
            let c = metrics::counter!("http_requests_total", "route" => route.to_string(), "status" => status.as_str().to_string());
            counts.push((status, c.clone()));
            c
        }
    };
    (count, duration.clone())
}

/// The path and query as logged: values of secret-bearing parameters are
/// replaced (`password`, `pwd`, tokens), never written.
pub fn redact_target(path: &str, query: Option<&str>) -> String {
    let Some(q) = query else {
        return path.to_string();
    };
    let redacted: Vec<String> = q
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let lname = percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .to_ascii_lowercase();
            if lname.contains("password")
                || lname.contains("pwd")
                || lname.contains("token")
                || lname == "sig"
            {
                format!("{name}=***")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", redacted.join("&"))
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    prometheus();
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_logged() {
        let t = redact_target(
            "/mm-ms/api/account.php",
            Some("username=u&password=098f6bcd4621d373cade4e832627b4f6&do=x&PWD=1&Password=2"),
        );
        assert_eq!(
            t,
            "/mm-ms/api/account.php?username=u&password=***&do=x&PWD=***&Password=***"
        );
        assert!(!t.contains("098f6bcd"));
    }
}
