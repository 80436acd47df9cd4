//! Where a domain's mail goes: MX hosts by preference, the domain itself when
//! it has no MX (RFC 5321 5.1), nowhere when it publishes a null MX (RFC 7505)
//! or has no record at all. Behind [`Resolver`], so tests fill a table
//! ([`StaticResolver`]) instead of asking the DNS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use futures_util::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

pub use crate::domain::senders::health::{DnsError, Mx};

/// Asks the DNS for MX and address records.
pub trait Resolver: Send + Sync {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<Mx>, DnsError>>;
    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>>;
}

/// The machine's DNS (`/etc/resolv.conf`), through hickory (the same
/// resolver mail-auth uses, so one copy of it is built).
pub struct HickoryResolver(TokioResolver);

impl HickoryResolver {
    /// Asking `server` (`QUNFA_DNS_SERVER`), or the machine's resolvers.
    pub fn new(server: Option<std::net::SocketAddr>) -> anyhow::Result<HickoryResolver> {
        Ok(HickoryResolver(tokio_resolver(server)?))
    }

    pub fn from_system_conf() -> anyhow::Result<HickoryResolver> {
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| anyhow::anyhow!("reading the DNS configuration: {e}"))?
            .build()
            .map_err(|e| anyhow::anyhow!("starting the DNS resolver: {e}"))?;
        Ok(HickoryResolver(resolver))
    }
}

pub(super) fn dns_error(e: NetError) -> DnsError {
    if e.is_nx_domain() || e.is_no_records_found() {
        DnsError::NotFound
    } else {
        DnsError::Temporary(e.to_string())
    }
}

/// Absolute, so the resolver's search list never applies to a mail domain.
pub(super) fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The MX records of `domain` (a null MX is a host of `""`).
pub(super) async fn mx_records(resolver: &TokioResolver, domain: &str) -> Result<Vec<Mx>, DnsError> {
    let lookup = resolver.mx_lookup(fqdn(domain)).await.map_err(dns_error)?;
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                host: mx
                    .exchange
                    .to_lowercase()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_string(),
            }),
            _ => None,
        })
        .collect())
}

impl Resolver for HickoryResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<Mx>, DnsError>> {
        Box::pin(mx_records(&self.0, domain))
    }

    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move {
            let lookup = self.0.lookup_ip(fqdn(host)).await.map_err(dns_error)?;
            Ok(lookup.iter().collect())
        })
    }
}

/// A DNS of fixed records, for tests (and for pinning a domain to a host).
/// A name with no entry is `NotFound`; one marked failing is `Temporary`.
#[derive(Default)]
pub struct StaticResolver {
    records: RwLock<Records>,
}

#[derive(Default)]
struct Records {
    mx: HashMap<String, Vec<Mx>>,
    ips: HashMap<String, Vec<IpAddr>>,
    failing: Vec<String>,
}

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Adds an MX record: `domain` receives at `host` with `preference`.
    pub fn add_mx(&self, domain: &str, preference: u16, host: &str) -> &Self {
        self.write()
            .mx
            .entry(domain.to_ascii_lowercase())
            .or_default()
            .push(Mx {
                preference,
                host: host.to_ascii_lowercase(),
            });
        self
    }

    /// Adds an A or AAAA record.
    pub fn add_ip(&self, host: &str, ip: IpAddr) -> &Self {
        self.write()
            .ips
            .entry(host.to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }

    /// Every lookup of `name` fails as a DNS timeout would.
    pub fn add_failure(&self, name: &str) -> &Self {
        self.write().failing.push(name.to_ascii_lowercase());
        self
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        self.records.write().unwrap_or_else(|e| e.into_inner())
    }

    fn find<T: Clone>(
        &self,
        name: &str,
        table: impl Fn(&Records) -> &HashMap<String, Vec<T>>,
    ) -> Result<Vec<T>, DnsError> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if records.failing.contains(&name) {
            return Err(DnsError::Temporary(format!("{name}: timed out")));
        }
        table(&records).get(&name).cloned().ok_or(DnsError::NotFound)
    }
}

impl Resolver for StaticResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<Mx>, DnsError>> {
        Box::pin(async move { self.find(domain, |r| &r.mx) })
    }

    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            self.find(host, |r| &r.ips)
        })
    }
}

/// Where to deliver a domain's mail.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchangers {
    /// Host names to try in this order.
    Hosts(Vec<String>),
    /// The domain says it receives no mail (null MX) or has no MX and no
    /// address: the recipient fails as `invalid_addr`.
    None(String),
    /// The DNS could not tell: defer.
    Unknown(String),
}

/// The hosts that receive `domain`'s mail, by preference (equal preferences
/// keep the DNS's order, which already varies between answers).
pub async fn exchangers(resolver: &dyn Resolver, domain: &str) -> Exchangers {
    match resolver.mx(domain).await {
        Ok(mut mx) if !mx.is_empty() => {
            mx.sort_by_key(|m| m.preference);
            if mx.len() == 1 && mx[0].host.is_empty() {
                return Exchangers::None(format!("{domain} accepts no mail (null MX)"));
            }
            Exchangers::Hosts(
                mx.into_iter()
                    .filter(|m| !m.host.is_empty())
                    .map(|m| m.host)
                    .collect(),
            )
        }
        Ok(_) | Err(DnsError::NotFound) => match resolver.ips(domain).await {
            // No MX: the domain itself is the implicit MX (RFC 5321 5.1).
            Ok(ips) if !ips.is_empty() => Exchangers::Hosts(vec![domain.to_string()]),
            Ok(_) | Err(DnsError::NotFound) => {
                Exchangers::None(format!("{domain} has no MX and no A/AAAA record"))
            }
            Err(DnsError::Temporary(e)) => Exchangers::Unknown(e),
        },
        Err(DnsError::Temporary(e)) => Exchangers::Unknown(e),
    }
}

/// A resolver asking `server` (UDP, and TCP for long answers), or the
/// machine's resolvers (`/etc/resolv.conf`) when there is none.
pub fn tokio_resolver(server: Option<SocketAddr>) -> anyhow::Result<TokioResolver> {
    let builder = match server {
        None => TokioResolver::builder_tokio()
            .map_err(|e| anyhow::anyhow!("reading the DNS configuration: {e}"))?,
        Some(server) => {
            let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
            for connection in &mut name_server.connections {
                connection.port = server.port();
            }
            let mut options = ResolverOpts::default();
            options.use_hosts_file = ResolveHosts::Never;
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![name_server]),
                TokioRuntimeProvider::default(),
            )
            .with_options(options)
        }
    };
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("starting the DNS resolver: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn mx_by_preference_then_the_domain_itself_then_nothing() {
        let dns = StaticResolver::new();
        dns.add_mx("a.test", 20, "backup.a.test")
            .add_mx("a.test", 10, "MX.a.test")
            .add_ip("b.test", ip("127.0.0.1"))
            .add_mx("null.test", 0, "")
            .add_failure("slow.test");
        assert_eq!(
            exchangers(&dns, "a.test").await,
            Exchangers::Hosts(vec!["mx.a.test".into(), "backup.a.test".into()])
        );
        assert_eq!(
            exchangers(&dns, "b.test").await,
            Exchangers::Hosts(vec!["b.test".into()])
        );
        assert!(matches!(exchangers(&dns, "none.test").await, Exchangers::None(_)));
        assert!(matches!(exchangers(&dns, "null.test").await, Exchangers::None(_)));
        assert!(matches!(
            exchangers(&dns, "slow.test").await,
            Exchangers::Unknown(_)
        ));
        assert_eq!(dns.ips("127.0.0.2").await, Ok(vec![ip("127.0.0.2")]));
    }
}
