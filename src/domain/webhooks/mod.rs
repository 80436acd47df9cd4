//! Webhooks: a customer's HTTP endpoints that hear, signed and at least
//! once, what became of its messages. The events are queued in the outbox
//! (`webhook_events`) in the transaction of the outcome that causes them;
//! the dispatcher delivers them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand::RngExt;

use crate::domain::ids::{CustomerId, WebhookEventId, WebhookId};
use crate::domain::storage::{StoreError, StoreResult};
use crate::secrets::SecretBox;

/// What a webhook may hear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Delivered,
    Deferred,
    Failed,
    Bounced,
    Opened,
    Clicked,
    Unsubscribed,
    Complained,
    CampaignDone,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::Delivered,
        EventType::Deferred,
        EventType::Failed,
        EventType::Bounced,
        EventType::Opened,
        EventType::Clicked,
        EventType::Unsubscribed,
        EventType::Complained,
        EventType::CampaignDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Delivered => "delivered",
            EventType::Deferred => "deferred",
            EventType::Failed => "failed",
            EventType::Bounced => "bounced",
            EventType::Opened => "opened",
            EventType::Clicked => "clicked",
            EventType::Unsubscribed => "unsubscribed",
            EventType::Complained => "complained",
            EventType::CampaignDone => "campaign.done",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook as its customer sees it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<EventType>,
    pub created_at: i64,
}

/// A webhook just made, with its secret, shown this once.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// One attempt to deliver an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub event: WebhookEventId,
    pub event_type: String,
    pub at: i64,
    /// The answer's status code, if one came.
    pub status_code: Option<i64>,
    /// Why no (2xx) answer came: a timeout, a refused connection …
    pub error: String,
}

/// An event the dispatcher holds, with what it needs to deliver it.
#[derive(Clone, Debug)]
pub struct DueEvent {
    pub id: WebhookEventId,
    pub webhook: WebhookId,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub event_type: String,
    /// The event's `data` object as JSON.
    pub data: String,
    pub created_at: i64,
    /// Attempts made before this one.
    pub attempts: i64,
}

impl DueEvent {
    /// The body POSTed: `{"id", "type", "created_at", "data"}`.
    pub fn body(&self) -> String {
        let created = jiff::Timestamp::from_second(self.created_at)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .strftime("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string();
        format!(
            "{{\"id\":{},\"type\":{},\"created_at\":{},\"data\":{}}}",
            serde_json::Value::from(event_key(self.id)),
            serde_json::Value::from(self.event_type.as_str()),
            serde_json::Value::from(created),
            self.data
        )
    }
}

/// The event id a receiver sees: the same on every attempt.
pub fn event_key(id: WebhookEventId) -> String {
    format!("evt_{id}")
}

/// What the sealed secret of a webhook is bound to.
pub fn webhook_secret_context(id: WebhookId) -> String {
    format!("webhook:{id}")
}

/// What the webhook use-cases need of storage.
pub trait WebhookStorage: Sync {
    /// Adds a webhook; `seal` seals its secret to the new id.
    fn add_webhook(
        &self,
        customer: CustomerId,
        url: &str,
        events: &str,
        seal: &(dyn Fn(WebhookId) -> Vec<u8> + Sync),
        now: i64,
    ) -> impl Future<Output = StoreResult<WebhookId>> + Send;

    /// The customer's webhooks, oldest first.
    fn webhooks(&self, customer: CustomerId) -> impl Future<Output = StoreResult<Vec<Webhook>>> + Send;

    /// Deletes a customer's webhook and drops its pending events; false if it has none such.
    fn delete_webhook(
        &self,
        customer: CustomerId,
        id: WebhookId,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The latest attempts of a customer's webhook, newest first; `None` if it has none such.
    fn webhook_attempts(
        &self,
        customer: CustomerId,
        id: WebhookId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Option<Vec<Attempt>>>> + Send;

    /// Leases up to `limit` due events until `lease_until`, at most
    /// `per_webhook` of any one webhook (counting those already leased).
    fn claim_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        per_webhook: i64,
    ) -> impl Future<Output = StoreResult<Vec<DueEvent>>> + Send;

    /// Records an attempt; `next` is when to try again, `None` when the
    /// event is delivered (`delivered`) or given up.
    fn record_attempt(
        &self,
        event: &DueEvent,
        status_code: Option<i64>,
        error: &str,
        delivered: bool,
        next: Option<i64>,
        now: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Why a webhook use-case refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the URL must be an http or https URL")]
    BadUrl,
    #[error("the URL's host resolves to a loopback, private or otherwise non-public address")]
    PrivateAddress,
    #[error("the URL's host does not resolve")]
    Unresolvable,
    #[error("unknown event type '{0}'")]
    BadEvent(String),
    #[error("no events given")]
    NoEvents,
    #[error("no such webhook")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// The input at fault.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::BadUrl | WebhookError::PrivateAddress | WebhookError::Unresolvable => Some("url"),
            WebhookError::BadEvent(_) | WebhookError::NoEvents => Some("events"),
            _ => None,
        }
    }
}

/// Finds the addresses of a host name.
pub trait Resolve: Sync {
    fn resolve(&self, host: &str, port: u16) -> impl Future<Output = Option<Vec<SocketAddr>>> + Send;
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local, unique-local, CGNAT, multicast, unspecified, documentation,
/// benchmarking or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64
                || (s[0] == 0x2002) // 6to4 (embeds any IPv4)
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || s[0] == 0 // IPv4-compatible and other reserved
                || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)) // discard
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240) // reserved
}

/// A checked webhook URL: its scheme, host, port and the addresses it may be
/// reached at (every one of them public unless private ones are allowed).
#[derive(Clone, Debug)]
pub struct Target {
    pub url: url::Url,
    pub https: bool,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Checks a webhook URL and resolves its host: http or https, and by default
/// only public addresses (every address the name has must be public).
pub async fn check_url(
    resolver: &impl Resolve,
    raw: &str,
    allow_private: bool,
) -> Result<Target, WebhookError> {
    let url = url::Url::parse(raw.trim()).map_err(|_| WebhookError::BadUrl)?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        _ => return Err(WebhookError::BadUrl),
    };
    if !url.username().is_empty() || url.password().is_some() || url.cannot_be_a_base() {
        return Err(WebhookError::BadUrl);
    }
    let port = url.port_or_known_default().ok_or(WebhookError::BadUrl)?;
    let (host, addrs) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(url::Host::Domain(name)) => {
            let addrs = resolver.resolve(name, port).await.unwrap_or_default();
            (name.to_string(), addrs)
        }
        None => return Err(WebhookError::BadUrl),
    };
    if addrs.is_empty() {
        return Err(WebhookError::Unresolvable);
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(WebhookError::PrivateAddress);
    }
    Ok(Target {
        url,
        https,
        host,
        addrs,
    })
}

/// Parses the event types asked for: known, at least one, each once.
pub fn parse_events(events: &[String]) -> Result<Vec<EventType>, WebhookError> {
    let mut out = Vec::new();
    for e in events {
        let t = EventType::parse(e.trim()).ok_or_else(|| WebhookError::BadEvent(e.clone()))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    Ok(out)
}

/// What a customer asks for when it registers a webhook.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct WebhookInput {
    pub url: String,
    pub events: Vec<String>,
}

/// Registers a webhook for the customer; its secret is shown this once.
pub async fn create_webhook(
    s: &impl WebhookStorage,
    secrets: &SecretBox,
    resolver: &impl Resolve,
    allow_private: bool,
    customer: CustomerId,
    input: &WebhookInput,
    now: i64,
) -> Result<NewWebhook, WebhookError> {
    let events = parse_events(&input.events)?;
    let target = check_url(resolver, &input.url, allow_private).await?;
    let secret = format!("whsec_{}", hex::encode(rand::rng().random::<[u8; 24]>()));
    let list = events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",");
    let url = target.url.to_string();
    let seal = |id: WebhookId| secrets.seal(secret.as_bytes(), &webhook_secret_context(id));
    let id = s.add_webhook(customer, &url, &list, &seal, now).await?;
    Ok(NewWebhook {
        webhook: Webhook {
            id,
            url,
            events,
            created_at: now,
        },
        secret,
    })
}

/// The customer's webhooks.
pub async fn list_webhooks(
    s: &impl WebhookStorage,
    customer: CustomerId,
) -> Result<Vec<Webhook>, WebhookError> {
    Ok(s.webhooks(customer).await?)
}

/// Deletes one of the customer's webhooks; its undelivered events go with it.
pub async fn delete_webhook(
    s: &impl WebhookStorage,
    customer: CustomerId,
    id: WebhookId,
    now: i64,
) -> Result<(), WebhookError> {
    match s.delete_webhook(customer, id, now).await? {
        true => Ok(()),
        false => Err(WebhookError::NotFound),
    }
}

/// The latest attempts to deliver to one of the customer's webhooks.
pub async fn webhook_deliveries(
    s: &impl WebhookStorage,
    customer: CustomerId,
    id: WebhookId,
    limit: i64,
) -> Result<Vec<Attempt>, WebhookError> {
    s.webhook_attempts(customer, id, limit.clamp(1, 1000))
        .await?
        .ok_or(WebhookError::NotFound)
}

/// The events a webhook hears, as stored (`delivered,failed`).
pub fn parse_stored_events(s: &str) -> Vec<EventType> {
    s.split(',').filter_map(EventType::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
