//! Delivery benchmark driver (run by `bench/send_sink.sh`): sends N copies
//! of one pre-built message through `delivery::Mailer` in relay mode to an
//! SMTP sink, C at a time, and prints messages per second.
//!
//!     send_sink HOST:PORT [N=100000] [CONCURRENCY=16] [SIZE=20480]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use qunfa::config::DomainLimit;
use qunfa::delivery::{Attempt, Mailer, MailerSettings, Route, Server, StaticResolver, Tls};

/// A message of about `size` bytes: headers, then 76-character lines as a
/// base64 HTML part would have.
fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: News <news@shop.test>\r\nTo: <reader@sink.test>\r\nSubject: Weekly offers\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let line = b"PGh0bWw+PGJvZHk+PHA+SGVsbG8sIHRoaXMgaXMgYSBiZW5jaG1hcmsgbWVzc2FnZS48L3A+PC9i\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    let rest = size.saturating_sub(m.len() + 2).min(line.len() - 2);
    if rest > 0 {
        m.extend_from_slice(&line[..rest]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first() else {
        bail!("usage: send_sink HOST:PORT [N] [CONCURRENCY] [SIZE]");
    };
    let (host, port) = target.rsplit_once(':').context("HOST:PORT")?;
    let number = |i: usize, default: usize| -> anyhow::Result<usize> {
        args.get(i).map_or(Ok(default), |s| s.parse().context("a number"))
    };
    let (n, concurrency, size) = (number(1, 100_000)?, number(2, 16)?, number(3, 20_480)?);

    let settings = MailerSettings {
        // Every recipient is at one domain: let the sink take all workers.
        domain_limits: vec![DomainLimit {
            domain: "*".into(),
            connections: u32::try_from(concurrency)?,
            per_second: 0.0,
        }],
        idle_per_server: concurrency,
        ..MailerSettings::new("bench.qunfa.test")
    };
    let mailer = Arc::new(Mailer::new(settings, Arc::new(StaticResolver::new()))?);
    let route = Route::Server(Server {
        host: host.to_string(),
        port: port.parse().context("port")?,
        tls: Tls::Opportunistic,
        credentials: None,
    });
    let message = Arc::new(message(size));
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);

    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (mailer, route, message, next, outcomes) = (
                mailer.clone(),
                route.clone(),
                message.clone(),
                next.clone(),
                outcomes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let rcpt = format!("reader{i}@sink.test");
                    let from = format!("bounce+{i}@bounce.shop.test");
                    let slot = match mailer.send(&route, &from, &rcpt, &message).await {
                        Attempt::Sent { .. } => 0,
                        Attempt::Deferred { .. } => 1,
                        Attempt::Failed { .. } => 2,
                    };
                    outcomes[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let took = started.elapsed().as_secs_f64();
    mailer.close().await;

    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let [sent, deferred, failed] = outcomes.as_ref().each_ref().map(|c| c.load(Ordering::Relaxed));
    println!(
        "qunfa\t{n}\t{took:.2}\t{:.0}\tsent={sent} deferred={deferred} failed={failed} size={} concurrency={concurrency} peak_rss={}MiB",
        n as f64 / took,
        message.len(),
        peak_kib / 1024
    );
    Ok(())
}
