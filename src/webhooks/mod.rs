//! The webhook dispatcher: delivers the outbox's events to their endpoints,
//! signed, each attempt recorded, failures retried after
//! `QUNFA_WEBHOOK_RETRY_DELAYS` and then given up. Events are leased like
//! deliveries, so several processes dispatch side by side and a process that
//! dies leaves its events to the others once their lease runs out. At most
//! [`PER_WEBHOOK`] events of one webhook are in flight, so a slow endpoint
//! holds only its own events, never sending nor the other endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;
use crate::domain::webhooks::{DueEvent, Resolve, WebhookStorage, check_url, webhook_secret_context};

/// Events of one webhook in flight at once.
pub const PER_WEBHOOK: i64 = 8;
/// Events in flight in this process at once.
const IN_FLIGHT: usize = 64;
/// How long an attempt may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves host names with the system's resolver.
pub struct SystemResolver;

impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        tokio::net::lookup_host((host, port))
            .await
            .ok()
            .map(|a| a.collect())
    }
}

/// The `Qunfa-Signature` header of a body sent at `t`:
/// `t=T,v1=HEX(HMAC-SHA256(secret, T "." body))`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs until `stop`, then lets the attempts in flight end.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let tls = match crate::delivery::tls::TlsConnectors::new(&[]) {
        Ok(t) => Arc::new(t.checked),
        Err(e) => {
            tracing::error!(error = %e, "cannot set up TLS; webhooks will not be delivered");
            return;
        }
    };
    // A dead process's events come back after the deliveries' lease, as its
    // deliveries do; never before an attempt in flight could have ended.
    let lease = app.config.delivery_lease.max(TIMEOUT * 2).as_secs() as i64;
    let mut flying = JoinSet::new();
    while !*stop.borrow() {
        while flying.try_join_next().is_some() {}
        let room = IN_FLIGHT.saturating_sub(flying.len()) as i64;
        let now = app.clock.now();
        let claimed = if room > 0 {
            match app.store.claim_events(now, now + lease, room, PER_WEBHOOK).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook events");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let idle = claimed.is_empty();
        for event in claimed {
            let (app, tls) = (app.clone(), tls.clone());
            flying.spawn(async move { deliver(&app, &tls, event).await });
        }
        if idle {
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                Some(_) = flying.join_next(), if !flying.is_empty() => {}
            }
        }
    }
    while flying.join_next().await.is_some() {}
}

/// One attempt: POSTs the event and records what came of it.
async fn deliver(app: &App, tls: &tokio_rustls::TlsConnector, event: DueEvent) {
    let (status, error) = match tokio::time::timeout(TIMEOUT, post(app, tls, &event)).await {
        Ok(Ok(code)) => (Some(code as i64), String::new()),
        Ok(Err(e)) => (None, e),
        Err(_) => (None, "timed out".to_string()),
    };
    let delivered = status.is_some_and(|c| (200..300).contains(&c));
    let now = app.clock.now();
    let next = (!delivered)
        .then(|| app.config.webhook_retry_delays.get(event.attempts as usize))
        .flatten()
        .map(|d| now + d.as_secs().max(1) as i64);
    let error = match (status, delivered) {
        (Some(c), false) if error.is_empty() => format!("answered {c}"),
        _ => error,
    };
    if let Err(e) = app
        .store
        .record_attempt(&event, status, &error, delivered, next, now)
        .await
    {
        // The lease runs out and the event is tried again.
        tracing::warn!(error = %e, event = event.id.get(), "cannot record a webhook attempt");
    }
}

/// POSTs one event to the address its URL's host has now, checked again
/// (the name may have changed its address) and connected to as checked.
async fn post(app: &App, tls: &tokio_rustls::TlsConnector, event: &DueEvent) -> Result<u16, String> {
    let target = check_url(&SystemResolver, &event.url, app.config.webhook_private)
        .await
        .map_err(|e| e.to_string())?;
    let secret = app
        .secret_box
        .open(&event.sealed_secret, &webhook_secret_context(event.webhook))
        .map_err(|e| e.to_string())?;
    let body = event.body();
    let t = jiff::Timestamp::now().as_second();
    let mut path = target.url.path().to_string();
    if let Some(q) = target.url.query() {
        path = format!("{path}?{q}");
    }
    let host = match target.url.port() {
        Some(p) => format!("{}:{p}", target.url.host_str().unwrap_or_default()),
        None => target.url.host_str().unwrap_or_default().to_string(),
    };
    let request = hyper::Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .header("user-agent", "qunfa-webhooks")
        .header("qunfa-signature", signature(&secret, t, body.as_bytes()))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let addr = target.addrs[0];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if target.https {
        let name = crate::delivery::tls::server_name(&target.host).ok_or("not a TLS server name")?;
        let stream = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<T>(io: TokioIo<T>, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let answer = sender.send_request(request).await.map_err(|e| e.to_string());
    driver.abort();
    // Redirects are answers like any other: not followed.
    answer.map(|r| r.status().as_u16())
}
