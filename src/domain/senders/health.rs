//! The DNS health of a sending domain: whether what the DNS says about it
//! lets receivers trust the mail qunfa sends as it, record by record, each
//! with the exact record to publish (`qunfa admin domain check`).
//!
//! | check | what it asks |
//! | --- | --- |
//! | `dkim:SELECTOR` | each signing key's TXT record at `SELECTOR._domainkey.D` holds that key (RFC 6376 3.6.1) |
//! | `spf` | D has one SPF record (RFC 7208) that allows the route mail leaves by — the relay's or this host's addresses, evaluated as a receiver would, or the `include:` named by `QUNFA_SPF_INCLUDE` — and ends in `~all` or `-all` |
//! | `dmarc` | a DMARC record at `_dmarc.D`, or the one of a parent domain that covers D (RFC 7489), and its policy |
//! | `bounce-mx` | the MX of the bounce domain (`QUNFA_BOUNCE_DOMAIN`) leads to the bounce listener (`QUNFA_BOUNCE_LISTEN`) |
//! | `alignment` | the bounce domain is D or under it, so that SPF's domain aligns with the From domain for DMARC |

use std::net::{IpAddr, SocketAddr};

use mail_auth::SpfResult;

use super::dkim::{DkimAlgorithm, txt_value, txt_zone_line, zone_line};

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The exchange, without the trailing dot; `""` is a null MX.
    pub host: String,
}

/// Why a lookup gave nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist, or has no record of the type asked: a fact.
    #[error("no such record")]
    NotFound,
    /// The DNS did not answer usefully (timeout, SERVFAIL …): try again later.
    #[error("DNS failure: {0}")]
    Temporary(String),
}

/// What the checks ask of the network: the DNS (`delivery::dns::Dns`
/// answers, from the machine's resolvers or `QUNFA_DNS_SERVER`), and
/// whether an address is this machine's.
pub trait DnsLookup: Sync {
    /// The TXT records at `name`, each one's strings joined (RFC 7208 3.3,
    /// RFC 6376 3.6.2.2), in the DNS's order.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<String>, DnsError>> + Send;

    /// The MX records of `domain` (a null MX is a host of `""`).
    fn mx(&self, domain: &str) -> impl Future<Output = Result<Vec<Mx>, DnsError>> + Send;

    /// The A and AAAA addresses of `host` (an address stands for itself).
    fn ips(&self, host: &str) -> impl Future<Output = Result<Vec<IpAddr>, DnsError>> + Send;

    /// The SPF verdict (RFC 7208 `check_host`) for mail from `ip` with an
    /// envelope sender at `domain`, as a receiver would reach it.
    fn spf(&self, ip: IpAddr, domain: &str, helo: &str) -> impl Future<Output = SpfResult> + Send;

    /// Whether `ip` is one of this machine's addresses.
    fn is_local(&self, ip: IpAddr) -> bool;
}

/// The verdict on one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Wrong,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Wrong => "wrong",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// `dkim:SELECTOR`, `spf`, `dmarc`, `bounce-mx` or `alignment`.
    pub check: String,
    pub status: Status,
    /// What the DNS answered, in a few words.
    pub found: String,
    /// The record as it should be published, in zone-file form.
    pub publish: String,
}

/// What the platform sends from and receives bounces at (its settings).
#[derive(Clone, Debug)]
pub struct Platform {
    /// This host's name (`QUNFA_HELO_NAME`, lower case).
    pub helo_name: String,
    /// `QUNFA_BOUNCE_DOMAIN`.
    pub bounce_domain: String,
    /// `QUNFA_BOUNCE_LISTEN`.
    pub bounce_listen: Option<SocketAddr>,
    /// `QUNFA_SPF_INCLUDE`.
    pub spf_include: Option<String>,
    /// The host of `QUNFA_SMTP_RELAY`, when mail leaves through it.
    pub relay: Option<String>,
    /// The algorithms that sign (`QUNFA_DKIM_ED25519`).
    pub algorithms: &'static [DkimAlgorithm],
}

/// The way a domain's mail leaves the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to each recipient's MX, from this host (`QUNFA_HELO_NAME`).
    Direct,
    /// Through a relay: `QUNFA_SMTP_RELAY`, or the customer's own server.
    Relay(String),
}

/// A signing key whose record is checked.
#[derive(Clone, Debug)]
pub struct PublishedKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub public_base64: String,
}

/// Every check of `domain` (A-labels), in order: each key's DKIM record,
/// SPF, DMARC, the bounce domain's MX, alignment.
pub async fn check(
    dns: &impl DnsLookup,
    platform: &Platform,
    route: &Route,
    domain: &str,
    keys: &[PublishedKey],
) -> Vec<Check> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut checks = Vec::with_capacity(keys.len() + 4);
    for key in keys {
        checks.push(dkim(dns, &domain, key).await);
    }
    checks.push(spf(dns, platform, route, &domain).await);
    checks.push(dmarc(dns, &domain).await);
    let mx = bounce_mx(dns, platform).await;
    // Aligned, the bounce domain's MX is the record that makes it work.
    let aligned = alignment(platform, &domain);
    let aligned = match aligned.status {
        Status::Ok => Check {
            publish: mx.publish.clone(),
            ..aligned
        },
        _ => aligned,
    };
    checks.push(mx);
    checks.push(aligned);
    checks
}

/// `s` cut to about `max` characters.
fn abbreviated(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// The value of tag `name` of a `tag=value; …` record (DKIM, DMARC).
fn tag<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn nothing_at(name: &str, e: &DnsError) -> String {
    match e {
        DnsError::NotFound => format!("no record at {name}"),
        DnsError::Temporary(e) => format!("no answer for {name} ({e})"),
    }
}

async fn dkim(dns: &impl DnsLookup, domain: &str, key: &PublishedKey) -> Check {
    let name = format!("{}._domainkey.{domain}", key.selector);
    let line = |status, found| Check {
        check: format!("dkim:{}", key.selector),
        status,
        found,
        publish: zone_line(&key.selector, key.algorithm, &key.public_base64, domain),
    };
    let records = match dns.txt(&name).await {
        Ok(records) => records,
        Err(e) => return line(Status::Missing, nothing_at(&name, &e)),
    };
    let keys: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=DKIM1") || tag(r, "p").is_some())
        .collect();
    let record = match keys.as_slice() {
        [] => {
            return line(
                Status::Missing,
                format!("no DKIM key in the TXT records at {name}"),
            );
        }
        [one] => one.as_str(),
        more => {
            return line(
                Status::Wrong,
                format!(
                    "{} DKIM records at {name}: a receiver takes any one of them",
                    more.len()
                ),
            );
        }
    };
    let k = tag(record, "k").unwrap_or("rsa");
    let p: String = tag(record, "p")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    // Keys share their first characters (the key type's prefix): the end
    // tells them apart.
    let tail: String = p
        .chars()
        .rev()
        .take(16)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let shown = format!("k={k}; p=…{tail}");
    if p.is_empty() {
        line(
            Status::Wrong,
            format!("{shown} (p= is empty: the key is revoked)"),
        )
    } else if !k.eq_ignore_ascii_case(key.algorithm.as_str()) {
        line(
            Status::Wrong,
            format!("{shown} (k={k}, the key signing is {})", key.algorithm.as_str()),
        )
    } else if p != key.public_base64 {
        line(Status::Wrong, format!("{shown} (a different key)"))
    } else {
        let expected = txt_value(key.algorithm, &key.public_base64);
        let note = if record.trim() == expected {
            "the key"
        } else {
            "the key, other tags aside"
        };
        line(Status::Ok, format!("{shown} ({note})"))
    }
}

/// An SPF record: `v=spf1` alone or followed by a space (RFC 7208 4.5).
fn is_spf(record: &str) -> bool {
    let r = record.trim_start();
    r.len() >= 6 && r[..6].eq_ignore_ascii_case("v=spf1") && (r.len() == 6 || r.as_bytes()[6] == b' ')
}

/// The single SPF record at `name`: `Ok(None)` when there is none,
/// `Err(n)` when there are `n` of them.
async fn spf_record(dns: &impl DnsLookup, name: &str) -> Result<Option<String>, usize> {
    let records: Vec<String> = dns
        .txt(name)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| is_spf(r))
        .collect();
    match records.len() {
        0 => Ok(None),
        1 => Ok(records.into_iter().next()),
        n => Err(n),
    }
}

/// The terms of an SPF record after `v=spf1`.
fn terms(record: &str) -> Vec<String> {
    record.split_whitespace().skip(1).map(str::to_string).collect()
}

/// An `all` term's qualifier (`+` when it has none).
fn all_qualifier(term: &str) -> Option<char> {
    let (q, rest) = match term.chars().next()? {
        q @ ('+' | '-' | '~' | '?') => (q, &term[1..]),
        _ => ('+', term),
    };
    rest.eq_ignore_ascii_case("all").then_some(q)
}

/// The target of an `include:` (allowing, not `-include:`) or `redirect=` term.
fn delegation(term: &str) -> Option<String> {
    let lower = term.to_ascii_lowercase();
    let target = lower
        .strip_prefix("include:")
        .or_else(|| lower.strip_prefix("+include:"))
        .or_else(|| lower.strip_prefix("redirect="))?;
    Some(target.trim_end_matches('.').to_string())
}

/// The qualifier of the `all` that ends the policy, following `redirect=`
/// (at most 10 look-ups, RFC 7208 4.6.4); `None` when there is none.
async fn final_all(dns: &impl DnsLookup, record: &str) -> Option<char> {
    let mut terms = terms(record);
    for _ in 0..10 {
        if let Some(q) = terms.iter().find_map(|t| all_qualifier(t)) {
            return Some(q);
        }
        let target = terms
            .iter()
            .find(|t| t.to_ascii_lowercase().starts_with("redirect="))
            .and_then(|t| delegation(t))?;
        terms = match spf_record(dns, &target).await {
            Ok(Some(r)) => self::terms(&r),
            _ => return None,
        };
    }
    None
}

/// Whether the record names `include:target`, itself or through the
/// records it includes or redirects to (at most 10 look-ups).
async fn includes(dns: &impl DnsLookup, record: &str, target: &str) -> bool {
    let mut pending = vec![record.to_string()];
    let mut lookups = 0;
    while let Some(record) = pending.pop() {
        for term in terms(&record) {
            let Some(next) = delegation(&term) else {
                continue;
            };
            if next == target && !term.to_ascii_lowercase().starts_with("redirect=") {
                return true;
            }
            lookups += 1;
            if lookups > 10 {
                return false;
            }
            if let Ok(Some(r)) = spf_record(dns, &next).await {
                pending.push(r);
            }
        }
    }
    false
}

/// The public addresses mail leaves from on `route`, when the DNS knows
/// them: the relay's, or this host's (its HELO name's). A relay on the
/// loopback is a local MTA: it sends from this host too.
async fn sending_addresses(dns: &impl DnsLookup, platform: &Platform, route: &Route) -> Vec<IpAddr> {
    let usable = |ips: Vec<IpAddr>| -> Vec<IpAddr> {
        ips.into_iter()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .collect()
    };
    if let Route::Relay(host) = route {
        let ips = dns.ips(host).await.unwrap_or_default();
        if !ips.iter().all(IpAddr::is_loopback) {
            return usable(ips);
        }
    }
    usable(dns.ips(&platform.helo_name).await.unwrap_or_default())
}

/// The mechanisms that allow the platform's route.
fn route_mechanisms(platform: &Platform, route: &Route, addresses: &[IpAddr]) -> Vec<String> {
    if let Some(include) = &platform.spf_include {
        return vec![format!("include:{include}")];
    }
    if !addresses.is_empty() {
        return addresses
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => format!("ip4:{v4}"),
                IpAddr::V6(v6) => format!("ip6:{v6}"),
            })
            .collect();
    }
    match route {
        Route::Direct => vec![format!("a:{}", platform.helo_name)],
        Route::Relay(host) if host.parse::<IpAddr>().is_err() => vec![format!("a:{host}")],
        Route::Relay(host) => vec![format!("ip4:{host}")],
    }
}

fn spf_result_name(r: &SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

async fn spf(dns: &impl DnsLookup, platform: &Platform, route: &Route, domain: &str) -> Check {
    let addresses = sending_addresses(dns, platform, route).await;
    let needed = route_mechanisms(platform, route, &addresses);
    let line = |status, found, terms: &[String]| Check {
        check: "spf".into(),
        status,
        found,
        publish: txt_zone_line(domain, &format!("v=spf1 {}", terms.join(" "))),
    };
    let record = match spf_record(dns, domain).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let mut fresh = needed.clone();
            fresh.push("~all".into());
            return line(Status::Missing, format!("no SPF record at {domain}"), &fresh);
        }
        Err(n) => {
            let mut fresh = needed.clone();
            fresh.push("~all".into());
            return line(
                Status::Wrong,
                format!("{n} SPF records at {domain}: receivers treat that as an error (RFC 7208 4.5)"),
                &fresh,
            );
        }
    };
    let current = terms(&record);
    let mut problems = Vec::new();
    let mut notes = Vec::new();

    // Does it allow the route?
    let allowed = if let Some(include) = &platform.spf_include {
        let yes = includes(dns, &record, include).await;
        if yes {
            notes.push(format!("includes {include}"));
        } else {
            problems.push(format!("names no include:{include}"));
        }
        Some(yes)
    } else if !addresses.is_empty() {
        let mut refused = Vec::new();
        for ip in &addresses {
            let verdict = dns.spf(*ip, domain, &platform.helo_name).await;
            if verdict != SpfResult::Pass {
                refused.push(format!("{ip}: {}", spf_result_name(&verdict)));
            }
        }
        if refused.is_empty() {
            let shown: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            notes.push(format!("passes for {}", shown.join(", ")));
        } else {
            problems.push(format!("does not pass for {}", refused.join(", ")));
        }
        Some(refused.is_empty())
    } else {
        notes.push("the sending addresses are unknown (QUNFA_HELO_NAME has no address)".into());
        None
    };

    // How does it end?
    let ending = final_all(dns, &record).await;
    match ending {
        Some('-') | Some('~') => {}
        Some('?') => problems.push("ends in ?all: other servers are neutral, not refused".into()),
        Some(_) => problems.push("ends in +all: any server may send as this domain".into()),
        None => problems.push("has no all: other servers are neutral, not refused".into()),
    }

    let shown = abbreviated(&record, 100);
    if problems.is_empty() {
        let found = format!("{shown} ({})", notes.join("; "));
        return line(Status::Ok, found, &current);
    }
    // The record with what it lacks added before its end, ending in ~all
    // (or the -all it had).
    let hard = ending == Some('-');
    let redirect = current
        .iter()
        .find(|t| t.to_ascii_lowercase().starts_with("redirect="))
        .cloned();
    let mut fixed: Vec<String> = current
        .iter()
        .filter(|t| all_qualifier(t).is_none() && !t.to_ascii_lowercase().starts_with("redirect="))
        .cloned()
        .collect();
    if allowed == Some(false) {
        for m in &needed {
            if !fixed.iter().any(|t| t.eq_ignore_ascii_case(m)) {
                fixed.push(m.clone());
            }
        }
    }
    match (&redirect, ending) {
        (Some(r), Some('-' | '~')) => fixed.push(r.clone()),
        _ => fixed.push(if hard { "-all" } else { "~all" }.into()),
    }
    line(
        Status::Wrong,
        format!("{shown} ({})", problems.join("; ")),
        &fixed,
    )
}

/// A DMARC record's policy, or why it is no valid record.
fn dmarc_policy(record: &str) -> Result<String, String> {
    let p = match tag(record, "p") {
        Some(p) => p.to_ascii_lowercase(),
        // RFC 7489 6.6.3: without p=, a record with rua= counts as p=none.
        None if tag(record, "rua").is_some() => "none".into(),
        None => return Err("it has no p= policy".into()),
    };
    if !matches!(p.as_str(), "none" | "quarantine" | "reject") {
        return Err(format!("p={p} is no policy (none, quarantine or reject)"));
    }
    let mut policy = format!("p={p}");
    if let Some(sp) = tag(record, "sp") {
        policy.push_str(&format!(", sp={}", sp.to_ascii_lowercase()));
    }
    if let Some(pct) = tag(record, "pct").filter(|v| *v != "100") {
        policy.push_str(&format!(", pct={pct}"));
    }
    if p == "none" {
        policy.push_str(" (monitoring only)");
    }
    Ok(policy)
}

async fn dmarc_records(dns: &impl DnsLookup, name: &str) -> Vec<String> {
    dns.txt(name)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.trim_start()
                .strip_prefix("v")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
                .is_some_and(|r| r.trim_start().starts_with("DMARC1"))
        })
        .collect()
}

async fn dmarc(dns: &impl DnsLookup, domain: &str) -> Check {
    let name = format!("_dmarc.{domain}");
    let suggested = txt_zone_line(
        &name,
        &format!("v=DMARC1; p=none; rua=mailto:postmaster@{domain}"),
    );
    let line = |status, found, publish| Check {
        check: "dmarc".into(),
        status,
        found,
        publish,
    };
    match dmarc_records(dns, &name).await.as_slice() {
        [record] => match dmarc_policy(record) {
            Ok(policy) => line(
                Status::Ok,
                format!("{} ({policy})", abbreviated(record, 80)),
                txt_zone_line(&name, record),
            ),
            Err(why) => line(
                Status::Wrong,
                format!("{} ({why})", abbreviated(record, 80)),
                suggested,
            ),
        },
        [] => {
            // None of its own: the record of a parent domain, the organisational
            // domain's, covers it (RFC 7489 6.6.3), its sp= policy first.
            let labels: Vec<&str> = domain.split('.').collect();
            for start in 1..labels.len().saturating_sub(1) {
                let parent = labels[start..].join(".");
                let parent_name = format!("_dmarc.{parent}");
                if let [record] = dmarc_records(dns, &parent_name).await.as_slice()
                    && let Ok(policy) = dmarc_policy(record)
                {
                    return line(
                        Status::Ok,
                        format!(
                            "none at {name}; {parent_name} covers it: {} ({policy})",
                            abbreviated(record, 80)
                        ),
                        txt_zone_line(&parent_name, record),
                    );
                }
            }
            line(Status::Missing, format!("no DMARC record at {name}"), suggested)
        }
        more => line(
            Status::Wrong,
            format!(
                "{} DMARC records at {name}: receivers ignore them all",
                more.len()
            ),
            suggested,
        ),
    }
}

async fn bounce_mx(dns: &impl DnsLookup, platform: &Platform) -> Check {
    let bounce = &platform.bounce_domain;
    let suggested = format!("{bounce}. IN MX 10 {}.", platform.helo_name);
    let line = |status, found, publish: &str| Check {
        check: "bounce-mx".into(),
        status,
        found,
        publish: publish.to_string(),
    };
    // No MX: the domain's own address receives (RFC 5321 5.1).
    let (hosts, implicit) = match dns.mx(bounce).await {
        Ok(mut mx) if !mx.is_empty() => {
            mx.sort_by_key(|m: &Mx| m.preference);
            if mx.iter().all(|m| m.host.is_empty()) {
                return line(
                    Status::Wrong,
                    format!("{bounce} has a null MX: it accepts no mail"),
                    &suggested,
                );
            }
            (
                mx.into_iter().filter(|m| !m.host.is_empty()).collect::<Vec<_>>(),
                false,
            )
        }
        Ok(_) | Err(DnsError::NotFound) => (
            vec![Mx {
                preference: 0,
                host: bounce.clone(),
            }],
            true,
        ),
        Err(e) => return line(Status::Missing, nothing_at(bounce, &e), &suggested),
    };
    let mut reached = Vec::new();
    let mut shown = Vec::new();
    for Mx { host, .. } in &hosts {
        let ips = dns.ips(host).await.unwrap_or_default();
        let names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        shown.push(if names.is_empty() {
            format!("{host} (no address)")
        } else {
            format!("{host} ({})", names.join(", "))
        });
        if let Some(listen) = platform.bounce_listen {
            let reaches = |ip: &IpAddr| {
                if listen.ip().is_unspecified() {
                    dns.is_local(*ip)
                } else {
                    *ip == listen.ip()
                }
            };
            if ips.iter().any(reaches) {
                reached.push(host.clone());
            }
        } else if !ips.is_empty() {
            reached.push(host.clone());
        }
    }
    let what = if implicit {
        format!("no MX at {bounce}; its address receives: {}", shown.join(", "))
    } else {
        format!("MX {}", shown.join(", "))
    };
    if implicit && reached.is_empty() && shown.iter().all(|s| s.ends_with("(no address)")) {
        return line(
            Status::Missing,
            format!("no MX and no address at {bounce}"),
            &suggested,
        );
    }
    // What works is kept as it is: the MX records found.
    let current: Vec<String> = if implicit {
        vec![suggested.clone()]
    } else {
        hosts
            .iter()
            .map(|m| format!("{bounce}. IN MX {} {}.", m.preference, m.host))
            .collect()
    };
    let current = current.join("; ");
    match platform.bounce_listen {
        None if reached.is_empty() => line(
            Status::Wrong,
            format!("{what}; QUNFA_BOUNCE_LISTEN is unset, so qunfa itself receives no bounces"),
            &suggested,
        ),
        None => line(
            Status::Ok,
            format!("{what}; QUNFA_BOUNCE_LISTEN is unset, so qunfa itself receives no bounces"),
            &current,
        ),
        Some(listen) if reached.is_empty() => line(
            Status::Wrong,
            format!("{what}: none of them is the bounce listener at {listen}"),
            &suggested,
        ),
        Some(listen) => {
            let port = if listen.port() == 25 {
                String::new()
            } else {
                format!(" (MX delivery comes to port 25: forward it to {})", listen.port())
            };
            line(
                Status::Ok,
                format!("{what}: reaches the bounce listener at {listen}{port}"),
                &current,
            )
        }
    }
}

fn alignment(platform: &Platform, domain: &str) -> Check {
    let bounce = &platform.bounce_domain;
    let within = bounce == domain || bounce.ends_with(&format!(".{domain}"));
    let (status, found) = if within {
        (
            Status::Ok,
            format!("envelope senders are bounce+…@{bounce}, within {domain}: SPF aligns for DMARC"),
        )
    } else {
        (
            Status::Wrong,
            format!(
                "envelope senders are bounce+…@{bounce}, outside {domain}: SPF cannot align for DMARC, \
                 which then rests on DKIM alone (set QUNFA_BOUNCE_DOMAIN to {domain} or a subdomain of it)"
            ),
        )
    };
    let target = if within {
        bounce.clone()
    } else {
        format!("bounce.{domain}")
    };
    Check {
        check: "alignment".into(),
        status,
        found,
        publish: format!("{target}. IN MX 10 {}.", platform.helo_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_terms() {
        assert!(is_spf("v=spf1 -all") && is_spf("V=SPF1") && !is_spf("v=spf10 -all"));
        assert_eq!(all_qualifier("-all"), Some('-'));
        assert_eq!(all_qualifier("ALL"), Some('+'));
        assert_eq!(all_qualifier("~all"), Some('~'));
        assert_eq!(all_qualifier("include:all"), None);
        assert_eq!(
            delegation("include:_spf.Example.com."),
            Some("_spf.example.com".into())
        );
        assert_eq!(
            delegation("redirect=spf.example.com"),
            Some("spf.example.com".into())
        );
        assert_eq!(delegation("-include:x.com"), None);
    }

    #[test]
    fn dmarc_policies() {
        assert_eq!(dmarc_policy("v=DMARC1; p=reject"), Ok("p=reject".into()));
        assert_eq!(
            dmarc_policy("v=DMARC1;p=none;rua=mailto:d@x.cn;pct=50"),
            Ok("p=none, pct=50 (monitoring only)".into())
        );
        assert_eq!(
            dmarc_policy("v=DMARC1; rua=mailto:d@x.cn"),
            Ok("p=none (monitoring only)".into())
        );
        assert!(dmarc_policy("v=DMARC1; p=block").is_err());
        assert!(dmarc_policy("v=DMARC1").is_err());
    }

    #[test]
    fn records_in_zone_file_form() {
        let long = "x".repeat(300);
        assert_eq!(
            txt_zone_line("a.cn", &long),
            format!("a.cn. IN TXT \"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
        assert_eq!(tag("v=DKIM1; k=ed25519; p=abc", "k"), Some("ed25519"));
        assert_eq!(abbreviated("abcdef", 3), "abc…");
    }
}
