//! Delivery: SMTP out. Given an envelope (MAIL FROM, one RCPT TO) and the
//! message's bytes, deliver it and say what happened — nothing about tasks,
//! retries or counters (the engine decides those from the [`Attempt`]).
//!
//! Split as Stalwart splits outbound delivery: `lookup` (where a domain's
//! mail goes), `session` (one SMTP connection), `pool` (idle connections
//! kept for reuse), `throttle` (per-destination limits, in this process or
//! for the whole cluster); this module ties
//! them together for the three routes: a relay, the recipient's MX hosts,
//! and a customer's own server.
//!
//! ```no_run
//! # async fn example(config: &qunfa::config::Config, message: &[u8]) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use qunfa::delivery::{Attempt, HickoryResolver, Mailer, MailerSettings, Route};
//!
//! let mailer = Mailer::new(
//!     MailerSettings::from_config(config),
//!     Arc::new(HickoryResolver::from_system_conf()?),
//! )?;
//! let route = config.smtp_relay.as_ref().map_or(Route::Mx, Route::relay);
//! match mailer.send(&route, "bounce+17@bounce.example", "user@example.org", message).await {
//!     Attempt::Sent { reply } => println!("accepted: {reply}"),
//!     Attempt::Deferred { reason, class_if_last, .. } => println!("later ({class_if_last} if last): {reason}"),
//!     Attempt::Failed { class, reason, .. } => println!("{class}: {reason}"),
//! }
//! # Ok(()) }
//! ```

pub mod dns;
mod lookup;
mod pool;
mod reply;
mod session;
mod throttle;
pub(crate) mod tls;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::bounce::{Status, classify_reply};
use crate::config::{self, DomainLimit};
use crate::domain::failure::FailureClass;

pub use lookup::{DnsError, Exchangers, HickoryResolver, Mx, Resolver, StaticResolver, exchangers};
pub use reply::Reply;
pub use throttle::{Booked, Coordinator, InFlight, Limit, Throttle};

use pool::{Key, Pool};
use session::{Connection, Envelope, Outcome, Setup, SetupError};
use tls::TlsConnectors;

/// How a connection is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tls {
    /// STARTTLS when the server offers it, any certificate; clear text when
    /// it does not (or the handshake fails).
    Opportunistic,
    /// STARTTLS or no delivery, and the certificate must be valid for the host.
    Required,
    /// TLS from the first byte (SMTPS, port 465), certificate checked.
    Implicit,
}

/// A login for AUTH PLAIN/LOGIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***", self.user)
    }
}

/// A given SMTP server: the platform's relay or a customer's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub credentials: Option<Credentials>,
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the recipient domain's MX hosts (port 25).
    Mx,
    /// Through one server, whatever the recipient.
    Server(Server),
}

impl Route {
    /// The platform's smarthost (`QUNFA_SMTP_RELAY`): STARTTLS when offered.
    pub fn relay(relay: &config::Relay) -> Route {
        Route::Server(Server {
            host: relay.host.clone(),
            port: relay.port,
            tls: Tls::Opportunistic,
            credentials: relay.credentials.as_ref().map(|(u, p)| Credentials::new(u, p)),
        })
    }

    /// A 'remote' customer's server (`admin domain relay`), logged in to with
    /// the sending mailbox's credentials. `implicit_tls` is the domain's
    /// `--tls`: TLS from the first byte; otherwise STARTTLS when offered.
    pub fn remote(host: &str, port: u16, implicit_tls: bool, credentials: Option<Credentials>) -> Route {
        Route::Server(Server {
            host: host.to_string(),
            port,
            tls: if implicit_tls {
                Tls::Implicit
            } else {
                Tls::Opportunistic
            },
            credentials,
        })
    }
}

/// How long each step may take before the attempt is given up as deferred.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// The server's greeting (tarpits delay it).
    pub greeting: Duration,
    /// Each command's reply, and the TLS handshake.
    pub command: Duration,
    /// Sending the message and the reply to its end.
    pub data: Duration,
}

impl Default for Timeouts {
    /// Shorter than RFC 5321's minimums (5 and 10 minutes): a bulk sender
    /// defers and retries rather than hold a worker on one slow server.
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(20),
            greeting: Duration::from_secs(60),
            command: Duration::from_secs(60),
            data: Duration::from_secs(180),
        }
    }
}

/// What a [`Mailer`] is made of.
#[derive(Clone, Debug)]
pub struct MailerSettings {
    /// The name in EHLO (`QUNFA_HELO_NAME`).
    pub helo_name: String,
    /// Per-destination overrides (`QUNFA_DOMAIN_LIMITS`) of the built-in limits.
    pub domain_limits: Vec<DomainLimit>,
    pub timeouts: Timeouts,
    /// A connection is closed (QUIT) after this many transactions.
    pub messages_per_connection: usize,
    /// Idle connections kept per destination server.
    pub idle_per_server: usize,
    /// An idle connection older than this is not reused.
    pub max_idle: Duration,
    /// The port of MX hosts: 25, but tests point it at their own listener.
    pub mx_port: u16,
    /// Certificates trusted besides Mozilla's roots when TLS is checked.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl MailerSettings {
    pub fn new(helo_name: &str) -> MailerSettings {
        MailerSettings {
            helo_name: helo_name.to_string(),
            domain_limits: Vec::new(),
            timeouts: Timeouts::default(),
            messages_per_connection: 100,
            idle_per_server: 16,
            max_idle: Duration::from_secs(30),
            mx_port: 25,
            extra_roots: Vec::new(),
        }
    }

    pub fn from_config(config: &config::Config) -> MailerSettings {
        MailerSettings {
            domain_limits: config.domain_limits.clone(),
            ..MailerSettings::new(&config.helo_name)
        }
    }
}

/// The result of one delivery attempt to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiving server took the message (2xx after the data).
    Sent { reply: Reply },
    /// Try again later: a 4xx reply, no connection, a connection lost (even
    /// in the middle of the data), a DNS failure. `class_if_last` is the
    /// failure to record when no retry is left (docs/vendor-api.md H-4).
    Deferred {
        reply: Option<Reply>,
        reason: String,
        class_if_last: FailureClass,
    },
    /// Never deliverable: a 5xx reply, classified (enhanced status code
    /// first, text second), or a domain that receives no mail.
    Failed {
        class: FailureClass,
        reply: Option<Reply>,
        reason: String,
    },
}

impl Attempt {
    /// The server's reply the outcome rests on, if a server gave one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Attempt::Sent { reply } => Some(reply),
            Attempt::Deferred { reply, .. } | Attempt::Failed { reply, .. } => reply.as_ref(),
        }
    }

    /// The enhanced status code of that reply (`5.1.1`), for the record.
    pub fn status(&self) -> Option<Status> {
        self.reply().and_then(|r| r.enhanced)
    }

    /// One line for the record: the reply, or what went wrong.
    pub fn describe(&self) -> String {
        match self {
            Attempt::Sent { reply } => reply.one_line(),
            Attempt::Deferred { reason, .. } | Attempt::Failed { reason, .. } => reason.clone(),
        }
    }

    /// The outcome a server's answer at `stage` means.
    fn from_reply(reply: Reply, stage: &str) -> Attempt {
        let reason = format!("{stage}: {}", reply.one_line());
        match reply.code {
            200..=299 => Attempt::Sent { reply },
            400..=599 => {
                let enhanced = reply.enhanced.map(|s| s.to_string());
                let verdict = classify_reply(reply.code, enhanced.as_deref(), &reply.text);
                if reply.is_transient() {
                    Attempt::Deferred {
                        class_if_last: verdict.if_last_retry.unwrap_or(FailureClass::UserReject),
                        reply: Some(reply),
                        reason,
                    }
                } else {
                    Attempt::Failed {
                        class: verdict.class.failure().unwrap_or(FailureClass::UserReject),
                        reply: Some(reply),
                        reason,
                    }
                }
            }
            // A 1xx or 3xx where a verdict belongs: a broken server.
            _ => Attempt::Deferred {
                reply: Some(reply),
                reason: format!("unexpected reply at {reason}"),
                class_if_last: FailureClass::UserReject,
            },
        }
    }

    /// No server could be reached or answered (H-4: `invalid_addr` at the end).
    fn no_answer(reason: String) -> Attempt {
        Attempt::Deferred {
            reply: None,
            reason,
            class_if_last: FailureClass::InvalidAddr,
        }
    }

    fn from_setup(e: SetupError) -> Attempt {
        match e {
            SetupError::Network(reason) => Attempt::no_answer(reason),
            SetupError::Refused(reply) => Attempt::from_reply(reply, "session"),
            // Our side's configuration (TLS policy, password) is wrong or the
            // server's is: nothing the recipient did. Defer, so the operator
            // can fix it before the retries run out.
            SetupError::Tls(reason) => Attempt::Deferred {
                reply: None,
                reason,
                class_if_last: FailureClass::UserReject,
            },
            SetupError::Auth(reply, why) => Attempt::Deferred {
                reason: match &reply {
                    Some(r) => format!("{why}: {r}"),
                    None => why,
                },
                reply,
                class_if_last: FailureClass::UserReject,
            },
        }
    }
}

/// MX hosts tried per attempt, and addresses per host.
const MAX_HOSTS: usize = 5;
const MAX_ADDRESSES: usize = 3;

/// Sends messages; one for the whole process, shared by every sending task
/// (`Send + Sync`): it holds the idle connections and the limits.
pub struct Mailer {
    settings: MailerSettings,
    resolver: Arc<dyn Resolver>,
    throttle: Throttle,
    pool: Arc<Pool>,
    connectors: TlsConnectors,
}

impl Mailer {
    /// A mailer whose per-destination limits hold in this process.
    pub fn new(settings: MailerSettings, resolver: Arc<dyn Resolver>) -> anyhow::Result<Mailer> {
        let pool = Arc::new(Pool::new(settings.idle_per_server, settings.max_idle));
        Ok(Mailer {
            throttle: Throttle::new(&settings.domain_limits),
            pool,
            connectors: TlsConnectors::new(&settings.extra_roots)?,
            settings,
            resolver,
        })
    }

    /// A mailer whose per-destination limits hold for the whole cluster
    /// `coordinator` speaks for (every process on one database).
    pub fn clustered(
        settings: MailerSettings,
        resolver: Arc<dyn Resolver>,
        coordinator: Arc<dyn Coordinator>,
    ) -> anyhow::Result<Mailer> {
        let pool = Arc::new(Pool::new(settings.idle_per_server, settings.max_idle));
        Ok(Mailer {
            throttle: Throttle::clustered(&settings.domain_limits, coordinator, pool.clone()),
            pool,
            connectors: TlsConnectors::new(&settings.extra_roots)?,
            settings,
            resolver,
        })
    }

    /// The per-destination limits in force.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Delivers `message` from `mail_from` (empty: the null sender) to
    /// `rcpt` along `route`, waiting first for a slot and the pace of the
    /// recipient's domain group.
    pub async fn send(&self, route: &Route, mail_from: &str, rcpt: &str, message: &[u8]) -> Attempt {
        match self.send_if(route, mail_from, rcpt, message, async || true).await {
            Some(attempt) => attempt,
            None => unreachable!("a message always wanted is always attempted"),
        }
    }

    /// Like [`Mailer::send`], but once the message has its slot and its pace
    /// asks `wanted` whether it is still to be sent, and gives up without a
    /// word to the server (`None`) if not: a message can wait long for its
    /// turn, and its sender may have changed its mind meanwhile.
    pub async fn send_if(
        &self,
        route: &Route,
        mail_from: &str,
        rcpt: &str,
        message: &[u8],
        wanted: impl AsyncFnOnce() -> bool,
    ) -> Option<Attempt> {
        let domain = recipient_domain(rcpt);
        let (Some(domain), true) = (
            domain,
            mail_from.is_empty() || recipient_domain(mail_from).is_some(),
        ) else {
            return Some(Attempt::Failed {
                class: FailureClass::FormatError,
                reply: None,
                reason: format!("not an address SMTP can carry: <{mail_from}> to <{rcpt}>"),
            });
        };
        let envelope = Envelope {
            from: mail_from,
            rcpt,
            message,
        };
        let in_flight = self.throttle.enter(&domain).await;
        if !wanted().await {
            return None;
        }
        let attempt = match route {
            Route::Mx => self.to_mx(&domain, envelope, &in_flight).await,
            Route::Server(server) => self.to_server(server, envelope, &in_flight).await,
        };
        tracing::debug!(rcpt, outcome = %attempt.describe(), "delivery attempt");
        Some(attempt)
    }

    /// QUITs every idle connection and gives the cluster's connection
    /// slots back (at shutdown).
    pub async fn close(&self) {
        for c in self.pool.drain() {
            c.quit(self.quit_wait()).await;
        }
        self.throttle.release_all().await;
    }

    fn quit_wait(&self) -> Duration {
        self.settings.timeouts.command.min(Duration::from_secs(5))
    }

    async fn to_server(&self, server: &Server, envelope: Envelope<'_>, in_flight: &InFlight) -> Attempt {
        let key = Key {
            host: server.host.to_ascii_lowercase(),
            port: server.port,
            tls: server.tls,
            user: server.credentials.as_ref().map(|c| c.user.clone()),
        };
        if let Some(attempt) = self.pooled(&key, envelope, in_flight).await {
            return attempt;
        }
        // A relay's name is resolved as the machine resolves names
        // (/etc/hosts included), as an operator expects of a setting.
        let addrs: Vec<SocketAddr> = match server.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, server.port)],
            Err(_) => match tokio::net::lookup_host((server.host.as_str(), server.port)).await {
                Ok(found) => found.collect(),
                Err(e) => return Attempt::no_answer(format!("{}: {e}", server.host)),
            },
        };
        let setup = self.setup(&server.host, server.tls, server.credentials.as_ref());
        match self.fresh(&key, &addrs, &setup, envelope, in_flight).await {
            Ok(attempt) => attempt,
            Err(e) => Attempt::from_setup(e),
        }
    }

    async fn to_mx(&self, domain: &str, envelope: Envelope<'_>, in_flight: &InFlight) -> Attempt {
        let hosts = match exchangers(&*self.resolver, domain).await {
            Exchangers::Hosts(hosts) => hosts,
            Exchangers::None(reason) => {
                return Attempt::Failed {
                    class: FailureClass::InvalidAddr,
                    reply: None,
                    reason,
                };
            }
            Exchangers::Unknown(e) => return Attempt::no_answer(format!("DNS lookup of {domain}: {e}")),
        };
        let mut last = None;
        let mut any_address = false;
        for host in hosts.iter().take(MAX_HOSTS) {
            let key = Key {
                host: host.clone(),
                port: self.settings.mx_port,
                tls: Tls::Opportunistic,
                user: None,
            };
            if let Some(attempt) = self.pooled(&key, envelope, in_flight).await {
                return attempt;
            }
            let addrs: Vec<SocketAddr> = match self.resolver.ips(host).await {
                Ok(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, key.port)).collect(),
                Err(DnsError::NotFound) => Vec::new(),
                Err(DnsError::Temporary(e)) => {
                    any_address = true;
                    last = Some(SetupError::Network(format!("DNS lookup of {host}: {e}")));
                    continue;
                }
            };
            if addrs.is_empty() {
                continue;
            }
            any_address = true;
            let setup = self.setup(host, Tls::Opportunistic, None);
            match self.fresh(&key, &addrs, &setup, envelope, in_flight).await {
                Ok(attempt) => return attempt,
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Attempt::from_setup(e),
            None if !any_address => Attempt::Failed {
                class: FailureClass::InvalidAddr,
                reply: None,
                reason: format!("no MX host of {domain} has an address"),
            },
            None => Attempt::no_answer(format!("no MX host of {domain} answered")),
        }
    }

    fn setup<'a>(&'a self, host: &'a str, tls: Tls, credentials: Option<&'a Credentials>) -> Setup<'a> {
        Setup {
            helo: &self.settings.helo_name,
            host,
            tls,
            credentials,
            timeouts: &self.settings.timeouts,
            connectors: &self.connectors,
        }
    }

    /// On an idle connection to `key`, if one is kept: the group's own
    /// first, else another group's, which then counts against this
    /// message's group. A connection the server closed meanwhile is dropped
    /// and the next one tried.
    async fn pooled(&self, key: &Key, envelope: Envelope<'_>, in_flight: &InFlight) -> Option<Attempt> {
        while let Some((mut c, tag)) = self.pool.take(key, in_flight.tag()) {
            if tag != *in_flight.tag() {
                self.make_room(in_flight).await;
            }
            match c.deliver(envelope, &self.settings.timeouts).await {
                Outcome::Lost { untouched: true, .. } => continue,
                outcome => return Some(self.finish(key, c, outcome, in_flight).await),
            }
        }
        None
    }

    /// On a new connection to the first of `addrs` that takes one.
    async fn fresh(
        &self,
        key: &Key,
        addrs: &[SocketAddr],
        setup: &Setup<'_>,
        envelope: Envelope<'_>,
        in_flight: &InFlight,
    ) -> Result<Attempt, SetupError> {
        self.make_room(in_flight).await;
        let mut last = SetupError::Network(format!("{}: no address", key.host));
        for addr in addrs.iter().take(MAX_ADDRESSES) {
            match Connection::open(*addr, setup).await {
                Ok(mut c) => {
                    let outcome = c.deliver(envelope, &self.settings.timeouts).await;
                    return Ok(self.finish(key, c, outcome, in_flight).await);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Before a message of a group takes a connection of its own: closes
    /// the group's idle connections (to other servers, or kept for another
    /// message) that would make it one too many.
    async fn make_room(&self, in_flight: &InFlight) {
        while in_flight.crowded(self.pool.idle_of(in_flight.tag())) {
            match self.pool.take_tagged(in_flight.tag()) {
                Some(c) => c.quit(self.quit_wait()).await,
                None => return,
            }
        }
    }

    /// Keeps the connection for the next message, or closes it — before
    /// the message's connection is given back, so its group never has
    /// more sessions open than its connections — and says what the outcome
    /// means.
    async fn finish(&self, key: &Key, c: Connection, outcome: Outcome, in_flight: &InFlight) -> Attempt {
        let peer = c.peer.clone();
        if c.is_usable() {
            let spent = c.used >= self.settings.messages_per_connection;
            let surplus = if spent {
                Some(c)
            } else {
                self.pool.keep(key.clone(), c, in_flight.tag().clone())
            };
            if let Some(c) = surplus {
                c.quit(self.quit_wait()).await;
            }
        }
        match outcome {
            Outcome::Answered { reply, stage } => Attempt::from_reply(reply, stage),
            Outcome::Lost { reason, .. } => Attempt::no_answer(format!("{peer}: {reason}")),
        }
    }
}

/// The domain of an address SMTP can carry in `<…>`, lower case, in
/// A-labels; `None` for anything that could break the command line.
fn recipient_domain(address: &str) -> Option<String> {
    let bad = |c: char| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>');
    if address.len() > 320 || address.chars().any(bad) {
        return None;
    }
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let domain = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(domain).ok()?
    };
    Some(domain.trim_end_matches('.').to_string()).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            enhanced: Status::parse(text),
            text: text.to_string(),
        }
    }

    #[test]
    fn replies_become_outcomes() {
        assert!(matches!(
            Attempt::from_reply(reply(250, "2.0.0 Ok"), "end of data"),
            Attempt::Sent { .. }
        ));
        let cases = [
            (550, "5.1.1 User unknown", FailureClass::NotExist),
            (552, "5.2.2 Mailbox full", FailureClass::OverQuota),
            (554, "5.7.1 Message refused as spam", FailureClass::UserReject),
            (550, "5.1.2 Bad destination system", FailureClass::InvalidAddr),
        ];
        for (code, text, class) in cases {
            match Attempt::from_reply(reply(code, text), "RCPT TO") {
                Attempt::Failed {
                    class: c,
                    reply,
                    reason,
                } => {
                    assert_eq!(reason, format!("RCPT TO: {code} {text}"));
                    assert_eq!(c, class, "{code} {text}");
                    assert_eq!(
                        reply.and_then(|r| r.enhanced).map(|s| s.to_string()),
                        Some(text[..5].to_string())
                    );
                }
                other => panic!("{code} {text}: {other:?}"),
            }
        }
        let deferred = |code, text| match Attempt::from_reply(reply(code, text), "RCPT TO") {
            Attempt::Deferred { class_if_last, .. } => class_if_last,
            other => panic!("{other:?}"),
        };
        assert_eq!(deferred(452, "4.2.2 Mailbox full"), FailureClass::OverQuota);
        assert_eq!(deferred(451, "4.3.0 Try again later"), FailureClass::UserReject);
        assert_eq!(deferred(354, "go ahead"), FailureClass::UserReject);
    }

    #[test]
    fn addresses_smtp_can_carry() {
        assert_eq!(recipient_domain("a@Example.COM").as_deref(), Some("example.com"));
        assert_eq!(
            recipient_domain("a@例子.中国").as_deref(),
            Some("xn--fsqu00a.xn--fiqs8s")
        );
        for bad in [
            "a b@x.test",
            "a@x.test>\r\nRCPT TO:<b@y.test",
            "nodomain",
            "@x.test",
            "a@",
            "<a@x.test>",
        ] {
            assert_eq!(recipient_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn credentials_never_print() {
        assert_eq!(format!("{:?}", Credentials::new("u", "secret")), "u:***");
    }
}
