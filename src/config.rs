//! Settings: every one is an environment variable and a same-named flag
//! (docs/interface.md, "Settings"); a flag wins. This is the only module that reads
//! the environment. Raw strings are taken from clap and validated here, so a
//! bad value stops the program with one line naming the setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;

use crate::domain::tasks::{GuardLimit, Guards};
use crate::mail::dkim::DkimAlgorithm;

/// The raw settings as given on the command line or in the environment.
#[derive(clap::Args, Clone, Default)]
pub struct Settings {
    /// Home of the SQLite database, files, keys and the link-signing secret.
    #[arg(long, env = "QUNFA_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// `postgres://user@host:port/db` or `sqlite://path`; default: SQLite in the data dir.
    #[arg(long, env = "QUNFA_DATABASE_URL", global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// HTTP listen address.
    #[arg(long, env = "QUNFA_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL written into tracking, click and unsubscribe links.
    #[arg(long, env = "QUNFA_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// `host:port` or `user:pass@host:port` of a smarthost; unset: direct to MX.
    #[arg(long, env = "QUNFA_SMTP_RELAY", global = true, value_name = "HOST:PORT")]
    pub smtp_relay: Option<String>,
    /// Waits between delivery attempts, e.g. `5m,10m,30m,1h,2h,4h`.
    #[arg(long, env = "QUNFA_RETRY_DELAYS", global = true, value_name = "LIST")]
    pub retry_delays: Option<String>,
    /// Waits between attempts to deliver a webhook event, e.g. `10s,1m,5m`.
    #[arg(long, env = "QUNFA_WEBHOOK_RETRY_DELAYS", global = true, value_name = "LIST")]
    pub webhook_retry_delays: Option<String>,
    /// `allow`: webhooks may point at loopback, private and other non-public addresses.
    #[arg(long, env = "QUNFA_WEBHOOK_PRIVATE", global = true, value_name = "allow")]
    pub webhook_private: Option<String>,
    /// Name used in EHLO and Message-IDs.
    #[arg(long, env = "QUNFA_HELO_NAME", global = true, value_name = "NAME")]
    pub helo_name: Option<String>,
    /// Domain of the per-delivery (VERP) bounce addresses; default: the HELO name.
    #[arg(long, env = "QUNFA_BOUNCE_DOMAIN", global = true, value_name = "DOMAIN")]
    pub bounce_domain: Option<String>,
    /// Address the inbound SMTP listener for bounces and complaints listens on, e.g. `0.0.0.0:25`.
    #[arg(long, env = "QUNFA_BOUNCE_LISTEN", global = true, value_name = "ADDR")]
    pub bounce_listen: Option<String>,
    /// Connections and messages per second per recipient domain, e.g. `qq.com=5/20,*=10/0`.
    #[arg(long, env = "QUNFA_DOMAIN_LIMITS", global = true, value_name = "LIST")]
    pub domain_limits: Option<String>,
    /// How long a worker holds the deliveries it claimed before another may take them over.
    #[arg(long, env = "QUNFA_DELIVERY_LEASE", global = true, value_name = "DURATION")]
    pub delivery_lease: Option<String>,
    /// Where attachments and import files are kept.
    #[arg(long, env = "QUNFA_FILES_DIR", global = true, value_name = "DIR")]
    pub files_dir: Option<String>,
    /// Largest import file accepted, e.g. `512MiB`.
    #[arg(long, env = "QUNFA_IMPORT_MAX", global = true, value_name = "SIZE")]
    pub import_max: Option<String>,
    /// Hosts the console login may send a browser back to.
    #[arg(long, env = "QUNFA_ERRURL_HOSTS", global = true, value_name = "HOSTS")]
    pub errurl_hosts: Option<String>,
    /// Hits this soon after delivery are taken for scanners, e.g. `10s`.
    #[arg(long, env = "QUNFA_SCANNER_WINDOW", global = true, value_name = "DURATION")]
    pub scanner_window: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks, comma-separated.
    #[arg(long, env = "QUNFA_TRUSTED_PROXIES", global = true, value_name = "LIST")]
    pub trusted_proxies: Option<String>,
    /// IANA time zone of every date and time the API reads or writes.
    #[arg(long, env = "QUNFA_TIMEZONE", global = true, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// `off`: DKIM-sign with RSA only; `on` (default): RSA and Ed25519.
    #[arg(long, env = "QUNFA_DKIM_ED25519", global = true, value_name = "on|off")]
    pub dkim_ed25519: Option<String>,
    /// `host:port` of the DNS server for MX look-ups and domain checks; default: the machine's.
    #[arg(long, env = "QUNFA_DNS_SERVER", global = true, value_name = "ADDR:PORT")]
    pub dns_server: Option<String>,
    /// An `include:` domain that the SPF check accepts as allowing the platform to send.
    #[arg(long, env = "QUNFA_SPF_INCLUDE", global = true, value_name = "DOMAIN")]
    pub spf_include: Option<String>,
    /// A task pauses when more than RATE of at least MIN recipients with an outcome are hard failures, e.g. `10%/200`; `off`.
    #[arg(long, env = "QUNFA_BOUNCE_GUARD", global = true, value_name = "RATE/MIN")]
    pub bounce_guard: Option<String>,
    /// A task pauses when more than RATE of at least MIN recipients with an outcome complain, e.g. `0.3%/1000`; `off`.
    #[arg(long, env = "QUNFA_COMPLAINT_GUARD", global = true, value_name = "RATE/MIN")]
    pub complaint_guard: Option<String>,
    /// Requests a second each JSON API key may make (bursts of twice that); default 20.
    #[arg(long, env = "QUNFA_API_RATE", global = true, value_name = "N")]
    pub api_rate: Option<String>,
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => write!(f, "{}", redact_userinfo(u)),
        }
    }
}

/// An SMTP smarthost.
#[derive(Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = if self.credentials.is_some() { "***@" } else { "" };
        write!(f, "{user}{}:{}", self.host, self.port)
    }
}

/// A per-destination limit from `QUNFA_DOMAIN_LIMITS` (`*` is every domain
/// without a limit of its own).
#[derive(Clone, Debug, PartialEq)]
pub struct DomainLimit {
    pub domain: String,
    /// Messages in flight (connections in use) at once.
    pub connections: u32,
    /// Messages started per second; 0 means no limit.
    pub per_second: f64,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub listen: SocketAddr,
    pub public_url: String,
    pub smtp_relay: Option<Relay>,
    pub retry_delays: Vec<Duration>,
    /// Waits between attempts to deliver a webhook event; after the last, it is given up.
    pub webhook_retry_delays: Vec<Duration>,
    /// Webhooks may point at non-public addresses (`QUNFA_WEBHOOK_PRIVATE=allow`).
    pub webhook_private: bool,
    pub helo_name: String,
    /// Envelope senders are `bounce+TOKEN@` this domain (lower case).
    pub bounce_domain: String,
    /// Where reports addressed to the bounce domain are received (off when unset).
    pub bounce_listen: Option<SocketAddr>,
    pub domain_limits: Vec<DomainLimit>,
    /// A worker's claim on deliveries lasts this long unless renewed.
    pub delivery_lease: Duration,
    /// `None`: keep files in the database (PostgreSQL without a files dir).
    pub files_dir: Option<PathBuf>,
    pub import_max: u64,
    pub errurl_hosts: Vec<String>,
    pub scanner_window: Duration,
    /// Peers whose `X-Forwarded-For` names the client of a tracking hit.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub timezone: TimeZone,
    pub timezone_name: String,
    /// Dual signing: an Ed25519 key for each new domain, and an Ed25519
    /// signature beside the RSA one on each message.
    pub dkim_ed25519: bool,
    /// The one DNS server every look-up asks; `None`: the machine's resolvers.
    pub dns_server: Option<SocketAddr>,
    /// The `include:` (lower case) whose presence in a sending domain's SPF
    /// record allows the platform to send for it.
    pub spf_include: Option<String>,
    /// The reputation guards (`QUNFA_BOUNCE_GUARD`, `QUNFA_COMPLAINT_GUARD`).
    pub guards: Guards,
    /// Requests a second each JSON API key may make; bursts of twice that.
    pub api_rate: u32,
}

impl Config {
    /// The DKIM algorithms domains get keys for and messages are signed with.
    pub fn dkim_algorithms(&self) -> &'static [DkimAlgorithm] {
        if self.dkim_ed25519 {
            &DkimAlgorithm::ALL
        } else {
            &[DkimAlgorithm::Rsa]
        }
    }
}

/// A setting with a bad value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

/// An unset or empty value both mean "use the default".
/// A list of waits like `5m,10m,1h` from `name`, or `default`.
fn delays(name: &'static str, given: Option<&str>, default: &[&str]) -> Result<Vec<Duration>, ConfigError> {
    let list = given.map(|l| l.split(',').map(str::trim).collect::<Vec<_>>());
    list.as_deref()
        .unwrap_or(default)
        .iter()
        .map(|s| {
            parse_duration(s)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad(name, format!("'{s}' is not a duration like 5m")))
        })
        .collect()
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Settings {
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(given(&self.data_dir).unwrap_or("./qunfa-data"));

        let database = match given(&self.database_url) {
            None => DatabaseUrl::Sqlite(data_dir.join("qunfa.db")),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                DatabaseUrl::Postgres(u.to_string())
            }
            Some(u) if u.starts_with("sqlite://") => {
                let path = u.trim_start_matches("sqlite://");
                if path.is_empty() {
                    return Err(bad("QUNFA_DATABASE_URL", "sqlite:// needs a file path"));
                }
                DatabaseUrl::Sqlite(PathBuf::from(path))
            }
            Some(_) => {
                return Err(bad("QUNFA_DATABASE_URL", "expected postgres://… or sqlite://…"));
            }
        };

        let listen_s = given(&self.listen).unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_s
            .parse()
            .map_err(|_| bad("QUNFA_LISTEN", format!("'{listen_s}' is not an address:port")))?;

        let public_url = match given(&self.public_url) {
            None => format!("http://{listen}"),
            Some(u) => {
                let ok = (u.starts_with("http://") || u.starts_with("https://"))
                    && u.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
                if !ok {
                    return Err(bad("QUNFA_PUBLIC_URL", "expected an http:// or https:// URL"));
                }
                u.trim_end_matches('/').to_string()
            }
        };

        let smtp_relay = given(&self.smtp_relay).map(parse_relay).transpose()?;

        let bounce_listen = given(&self.bounce_listen)
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    bad(
                        "QUNFA_BOUNCE_LISTEN",
                        format!("'{a}' is not an address like 0.0.0.0:25"),
                    )
                })
            })
            .transpose()?;

        let retry_delays = delays(
            "QUNFA_RETRY_DELAYS",
            given(&self.retry_delays),
            &["5m", "10m", "30m", "1h", "2h", "4h"],
        )?;
        let webhook_retry_delays = delays(
            "QUNFA_WEBHOOK_RETRY_DELAYS",
            given(&self.webhook_retry_delays),
            &["10s", "1m", "5m", "30m", "2h", "6h", "12h"],
        )?;
        let webhook_private = match given(&self.webhook_private) {
            None => false,
            Some("allow") => true,
            Some(v) => return Err(bad("QUNFA_WEBHOOK_PRIVATE", format!("'{v}' is not 'allow'"))),
        };

        let helo_name = match given(&self.helo_name) {
            Some(h) => {
                if !is_host_name(h) {
                    return Err(bad("QUNFA_HELO_NAME", format!("'{h}' is not a host name")));
                }
                h.to_string()
            }
            None => system_host_name(),
        };

        // Bounces come back to this name: it needs an MX (or A) pointing at
        // the bounce listener, and two labels at least like any mail domain.
        let bounce_domain = match given(&self.bounce_domain) {
            Some(d) => {
                if !is_host_name(d) || !d.contains('.') {
                    return Err(bad("QUNFA_BOUNCE_DOMAIN", format!("'{d}' is not a domain name")));
                }
                d.to_ascii_lowercase()
            }
            None => helo_name.to_ascii_lowercase(),
        };

        let domain_limits = match given(&self.domain_limits) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    parse_domain_limit(s).ok_or_else(|| {
                        bad(
                            "QUNFA_DOMAIN_LIMITS",
                            format!("'{s}' is not DOMAIN=CONNECTIONS/PER_SECOND like qq.com=5/20"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let delivery_lease = match given(&self.delivery_lease) {
            None => Duration::from_secs(60),
            Some(s) => parse_duration(s).filter(|d| d.as_secs() >= 2).ok_or_else(|| {
                bad(
                    "QUNFA_DELIVERY_LEASE",
                    format!("'{s}' is not a duration of 2s or more"),
                )
            })?,
        };

        let files_dir = match (given(&self.files_dir), &database) {
            (Some(d), _) => Some(PathBuf::from(d)),
            (None, DatabaseUrl::Sqlite(_)) => Some(data_dir.join("files")),
            (None, DatabaseUrl::Postgres(_)) => None,
        };

        let import_max = match given(&self.import_max) {
            None => 512 * 1024 * 1024,
            Some(s) => parse_size(s)
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("QUNFA_IMPORT_MAX", format!("'{s}' is not a size like 512MiB")))?,
        };

        let errurl_hosts = match given(&self.errurl_hosts) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    let host =
                        h.rsplit_once(':').map_or(
                            h,
                            |(host, port)| if port.parse::<u16>().is_ok() { host } else { h },
                        );
                    if is_host_name(host) {
                        Ok(h.to_ascii_lowercase())
                    } else {
                        Err(bad(
                            "QUNFA_ERRURL_HOSTS",
                            format!("'{h}' is not host or host:port"),
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let scanner_window = match given(&self.scanner_window) {
            None => Duration::from_secs(10),
            Some(s) => parse_duration(s).ok_or_else(|| {
                bad(
                    "QUNFA_SCANNER_WINDOW",
                    format!("'{s}' is not a duration like 10s"),
                )
            })?,
        };

        let trusted_proxies = match given(&self.trusted_proxies) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            bad(
                                "QUNFA_TRUSTED_PROXIES",
                                format!("'{p}' is not an IP address or CIDR block"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let (timezone, timezone_name) = match given(&self.timezone) {
            Some(name) => {
                let tz = TimeZone::get(name)
                    .map_err(|_| bad("QUNFA_TIMEZONE", format!("'{name}' is not an IANA time zone")))?;
                (tz, name.to_string())
            }
            None => {
                let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
                let name = tz.iana_name().unwrap_or("UTC").to_string();
                (tz, name)
            }
        };

        let dkim_ed25519 = match given(&self.dkim_ed25519) {
            None | Some("on") => true,
            Some("off") => false,
            Some(s) => return Err(bad("QUNFA_DKIM_ED25519", format!("'{s}' is neither on nor off"))),
        };

        let dns_server = given(&self.dns_server)
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    bad(
                        "QUNFA_DNS_SERVER",
                        format!("'{a}' is not an IP address and port like 127.0.0.1:53"),
                    )
                })
            })
            .transpose()?;

        let spf_include = given(&self.spf_include)
            .map(|d| {
                let d = d.trim_end_matches('.');
                // A DNS name, not a host name: `_spf.example.com` is usual.
                let dns_name = d.len() <= 253
                    && d.contains('.')
                    && d.split('.').all(|l| {
                        (1..=63).contains(&l.len())
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                if dns_name {
                    Ok(d.to_ascii_lowercase())
                } else {
                    Err(bad("QUNFA_SPF_INCLUDE", format!("'{d}' is not a domain name")))
                }
            })
            .transpose()?;

        let defaults = Guards::default();
        let guard = |setting: &'static str, v: &Option<String>, default: Option<GuardLimit>| match given(v) {
            None => Ok(default),
            Some("off") => Ok(None),
            Some(s) => GuardLimit::parse(s)
                .map(Some)
                .ok_or_else(|| bad(setting, format!("'{s}' is neither off nor RATE/MIN like 10%/200"))),
        };
        let guards = Guards {
            bounces: guard("QUNFA_BOUNCE_GUARD", &self.bounce_guard, defaults.bounces)?,
            complaints: guard(
                "QUNFA_COMPLAINT_GUARD",
                &self.complaint_guard,
                defaults.complaints,
            )?,
        };

        let api_rate = match given(&self.api_rate) {
            None => 20,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "QUNFA_API_RATE",
                        format!("'{s}' is not a whole number from 1 to 100000"),
                    )
                })?,
        };

        Ok(Config {
            api_rate,
            data_dir,
            database,
            listen,
            public_url,
            smtp_relay,
            retry_delays,
            webhook_retry_delays,
            webhook_private,
            delivery_lease,
            helo_name,
            bounce_domain,
            bounce_listen,
            domain_limits,
            files_dir,
            import_max,
            errurl_hosts,
            scanner_window,
            trusted_proxies,
            timezone,
            timezone_name,
            dkim_ed25519,
            dns_server,
            spf_include,
            guards,
        })
    }
}

fn parse_relay(s: &str) -> Result<Relay, ConfigError> {
    let err = || bad("QUNFA_SMTP_RELAY", "expected host:port or user:pass@host:port");
    let (credentials, hostport) = match s.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (u, p) = userinfo.split_once(':').ok_or_else(err)?;
            if u.is_empty() {
                return Err(err());
            }
            (Some((u.to_string(), p.to_string())), hp)
        }
        None => (None, s),
    };
    let (host, port) = hostport.rsplit_once(':').ok_or_else(err)?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(err)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || !(is_host_name(host) || host.parse::<std::net::IpAddr>().is_ok()) {
        return Err(err());
    }
    Ok(Relay {
        host: host.to_string(),
        port,
        credentials,
    })
}

/// `qq.com=5/20` (5 connections, 20 messages a second), `corp.example=2`
/// (no rate limit), `*=10/0.5` (every other domain).
fn parse_domain_limit(s: &str) -> Option<DomainLimit> {
    let (domain, value) = s.split_once('=')?;
    let domain = domain.trim().to_ascii_lowercase();
    if domain != "*" && !(domain.contains('.') && is_host_name(&domain)) {
        return None;
    }
    let (connections, rate) = value.split_once('/').unwrap_or((value, "0"));
    let connections: u32 = connections.trim().parse().ok().filter(|n| *n > 0)?;
    let per_second: f64 = rate
        .trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r >= 0.0)?;
    Some(DomainLimit {
        domain,
        connections,
        per_second,
    })
}

/// `30s`, `5m`, `1h`, `2d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// `512MiB`, `10MB`, `4096`, `1GiB`, `64KiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|h| is_host_name(h))
        .unwrap_or_else(|| "localhost".to_string())
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let sep = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:***@{host}{sep}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = Settings::default();
        f(&mut s);
        s
    }

    #[test]
    fn defaults_validate() {
        let c = Settings::default().validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.retry_delays.len(), 6);
        assert_eq!(c.retry_delays[3], Duration::from_secs(3600));
        assert_eq!(c.import_max, 512 << 20);
        assert_eq!(c.bounce_domain, c.helo_name.to_ascii_lowercase());
        let named = settings(|s| {
            s.helo_name = Some("mx1.qunfa.example".into());
            s.bounce_domain = Some("Bounce.Qunfa.Example".into());
        });
        assert_eq!(named.validate().unwrap().bounce_domain, "bounce.qunfa.example");
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(PathBuf::from("./qunfa-data/qunfa.db"))
        );
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let cases: Vec<(Settings, &str)> = vec![
            (settings(|s| s.listen = Some("nope".into())), "QUNFA_LISTEN"),
            (
                settings(|s| s.database_url = Some("mysql://x".into())),
                "QUNFA_DATABASE_URL",
            ),
            (
                settings(|s| s.public_url = Some("ftp://x".into())),
                "QUNFA_PUBLIC_URL",
            ),
            (
                settings(|s| s.smtp_relay = Some("nohost".into())),
                "QUNFA_SMTP_RELAY",
            ),
            (
                settings(|s| s.retry_delays = Some("5m,x".into())),
                "QUNFA_RETRY_DELAYS",
            ),
            (
                settings(|s| s.helo_name = Some("bad name".into())),
                "QUNFA_HELO_NAME",
            ),
            (
                settings(|s| s.bounce_domain = Some("bounce_host".into())),
                "QUNFA_BOUNCE_DOMAIN",
            ),
            (
                settings(|s| s.bounce_domain = Some("localhost".into())),
                "QUNFA_BOUNCE_DOMAIN",
            ),
            (
                settings(|s| s.domain_limits = Some("qq.com=0/5".into())),
                "QUNFA_DOMAIN_LIMITS",
            ),
            (
                settings(|s| s.import_max = Some("lots".into())),
                "QUNFA_IMPORT_MAX",
            ),
            (
                settings(|s| s.delivery_lease = Some("1s".into())),
                "QUNFA_DELIVERY_LEASE",
            ),
            (
                settings(|s| s.errurl_hosts = Some("a b".into())),
                "QUNFA_ERRURL_HOSTS",
            ),
            (
                settings(|s| s.scanner_window = Some("10y".into())),
                "QUNFA_SCANNER_WINDOW",
            ),
            (
                settings(|s| s.bounce_listen = Some("port 25".into())),
                "QUNFA_BOUNCE_LISTEN",
            ),
            (
                settings(|s| s.dkim_ed25519 = Some("yes".into())),
                "QUNFA_DKIM_ED25519",
            ),
            (
                settings(|s| s.trusted_proxies = Some("10.0.0.0/8, proxy".into())),
                "QUNFA_TRUSTED_PROXIES",
            ),
            (
                settings(|s| s.timezone = Some("Mars/Olympus".into())),
                "QUNFA_TIMEZONE",
            ),
            (
                settings(|s| s.dns_server = Some("ns1.example.com:53".into())),
                "QUNFA_DNS_SERVER",
            ),
            (
                settings(|s| s.spf_include = Some("spf_platform".into())),
                "QUNFA_SPF_INCLUDE",
            ),
            (
                settings(|s| s.bounce_guard = Some("10%".into())),
                "QUNFA_BOUNCE_GUARD",
            ),
            (
                settings(|s| s.complaint_guard = Some("on".into())),
                "QUNFA_COMPLAINT_GUARD",
            ),
        ];
        for (s, name) in cases {
            let e = s.validate().unwrap_err();
            assert_eq!(e.setting, name);
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn guards_default_and_turn_off() {
        let c = Settings::default().validate().unwrap();
        assert_eq!(c.guards, Guards::default());
        let c = settings(|s| {
            s.bounce_guard = Some("off".into());
            s.complaint_guard = Some("1%/50".into());
        })
        .validate()
        .unwrap();
        assert_eq!(c.guards.bounces, None);
        assert_eq!(c.guards.complaints, GuardLimit::parse("1%/50"));
    }

    #[test]
    fn relay_credentials_are_parsed_and_redacted() {
        let r = parse_relay("user:p@ss@smtp.example.com:587").unwrap();
        assert_eq!(r.host, "smtp.example.com");
        assert_eq!(r.port, 587);
        assert_eq!(r.credentials, Some(("user".into(), "p@ss".into())));
        assert_eq!(format!("{r:?}"), "***@smtp.example.com:587");
        assert_eq!(parse_relay("127.0.0.1:2525").unwrap().port, 2525);
    }

    #[test]
    fn domain_limits() {
        let c = settings(|s| s.domain_limits = Some("QQ.com=5/20, corp.example=2,*=10/0.5".into()))
            .validate()
            .unwrap();
        let shown: Vec<(&str, u32, f64)> = c
            .domain_limits
            .iter()
            .map(|l| (l.domain.as_str(), l.connections, l.per_second))
            .collect();
        assert_eq!(
            shown,
            [("qq.com", 5, 20.0), ("corp.example", 2, 0.0), ("*", 10, 0.5)]
        );
        for bad in [
            "qq.com",
            "qq.com=x/1",
            "qq.com=5/-1",
            "qq.com=5/NaN",
            "nodot=5/1",
            "=5/1",
        ] {
            assert_eq!(parse_domain_limit(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("64 KiB"), Some(64 << 10));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("h"), None);
    }

    #[test]
    fn database_passwords_never_print() {
        let c = settings(|s| s.database_url = Some("postgres://u:secret@h:5432/db".into()))
            .validate()
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgres://u:***@h:5432/db"));
    }
}
