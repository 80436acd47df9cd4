//! The DNS client of the process: the machine's resolvers, or the one
//! server `QUNFA_DNS_SERVER` names (then the hosts file is not read
//! either: every answer comes from that server). MX look-ups of delivery
//! ([`super::HickoryResolver`]) and the DNS health check of sending
//! domains ([`crate::domain::senders::domain_health`]) both ask through it.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};

use super::lookup::{DnsError, Mx, dns_error, fqdn, mx_records, tokio_resolver};
use crate::domain::senders::health::DnsLookup;

/// The look-ups the DNS health check makes.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    pub fn new(server: Option<SocketAddr>) -> anyhow::Result<Dns> {
        Ok(Dns {
            resolver: tokio_resolver(server)?,
        })
    }
}

impl DnsLookup for Dns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self.resolver.txt_lookup(fqdn(name)).await.map_err(dns_error)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        mx_records(&self.resolver, domain).await
    }

    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        let lookup = self.resolver.lookup_ip(fqdn(host)).await.map_err(dns_error)?;
        Ok(lookup.iter().collect())
    }

    /// Every mechanism evaluated, includes and redirects followed, at most
    /// 10 look-ups (mail-auth's implementation).
    async fn spf(&self, ip: IpAddr, domain: &str, helo: &str) -> SpfResult {
        let authenticator = MessageAuthenticator(self.resolver.clone());
        let sender = format!("postmaster@{domain}");
        authenticator
            .verify_spf(SpfParameters::verify_mail_from(ip, helo, helo, &sender))
            .await
            .result()
    }

    /// A socket binds to the address only on a machine that has it.
    fn is_local(&self, ip: IpAddr) -> bool {
        UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
    }
}
