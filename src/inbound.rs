//! The inbound SMTP listener of the bounce domain (`QUNFA_BOUNCE_LISTEN`):
//! takes the reports mail systems send to a delivery's VERP address,
//! classifies them and applies what they say to that delivery. Only
//! recipients in the bounce domain are accepted (it relays nothing); a
//! report to an address whose token does not verify is accepted and
//! dropped, so probing learns nothing, and counted.
//!
//! The protocol is the small part of RFC 5321 a receiver needs: EHLO/HELO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT; PIPELINING and
//! 8BITMIME are offered; a size limit; idle timeouts.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::app::App;
use crate::bounce::{Class, classify_message};
use crate::store::Applied;

/// The largest report accepted.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
const MAX_RECIPIENTS: usize = 100;
const IDLE: Duration = Duration::from_secs(300);

/// Binds the listener when the setting asks for one.
pub async fn bind(app: &App) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = app.config.bounce_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("invalid QUNFA_BOUNCE_LISTEN: cannot listen on {addr}: {e}"))?;
    tracing::info!("bounce listener on smtp://{}", listener.local_addr()?);
    Ok(Some(listener))
}

/// Serves until `stop` turns true.
pub async fn run(app: App, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let app = app.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session(&app, stream).await {
                            tracing::debug!(error = %e, "bounce listener session");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bounce listener accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn reply(w: &mut (impl AsyncWriteExt + Unpin), line: &str) -> std::io::Result<()> {
    w.write_all(line.as_bytes()).await?;
    w.write_all(b"\r\n").await
}

/// The address inside `<…>` of a MAIL FROM / RCPT TO argument.
fn path_of(arg: &str) -> Option<&str> {
    let arg = arg.trim();
    let start = arg.find('<')?;
    let end = arg[start..].find('>')? + start;
    Some(&arg[start + 1..end])
}

async fn session(app: &App, stream: TcpStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let name = &app.config.helo_name;
    reply(&mut w, &format!("220 {name} ESMTP qunfa bounce listener")).await?;
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        if read_line(&mut r, &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                reply(&mut w, &format!("250-{name}")).await?;
                reply(&mut w, &format!("250-SIZE {MAX_MESSAGE}")).await?;
                reply(&mut w, "250-8BITMIME").await?;
                reply(&mut w, "250 PIPELINING").await?;
            }
            "HELO" => reply(&mut w, &format!("250 {name}")).await?,
            "MAIL" => match path_of(arg) {
                Some(from) if arg.to_ascii_uppercase().starts_with("FROM:") => {
                    mail_from = Some(from.to_string());
                    rcpts.clear();
                    reply(&mut w, "250 2.1.0 ok").await?;
                }
                _ => reply(&mut w, "501 5.5.4 syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => {
                let to = path_of(arg).filter(|_| arg.to_ascii_uppercase().starts_with("TO:"));
                match to {
                    _ if mail_from.is_none() => reply(&mut w, "503 5.5.1 MAIL first").await?,
                    None => reply(&mut w, "501 5.5.4 syntax: RCPT TO:<address>").await?,
                    Some(_) if rcpts.len() >= MAX_RECIPIENTS => {
                        reply(&mut w, "452 4.5.3 too many recipients").await?
                    }
                    Some(to) => {
                        let ours = to
                            .rsplit_once('@')
                            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&app.config.bounce_domain));
                        if ours {
                            rcpts.push(to.to_string());
                            reply(&mut w, "250 2.1.5 ok").await?;
                        } else {
                            reply(&mut w, "550 5.7.1 relaying denied").await?;
                        }
                    }
                }
            }
            "DATA" => {
                if rcpts.is_empty() {
                    reply(&mut w, "503 5.5.1 RCPT first").await?;
                    continue;
                }
                reply(&mut w, "354 end with <CRLF>.<CRLF>").await?;
                let Some(message) = read_data(&mut r).await? else {
                    reply(&mut w, "552 5.3.4 message too big").await?;
                    rcpts.clear();
                    continue;
                };
                for to in rcpts.drain(..) {
                    take_report(app, &to, &message).await;
                }
                mail_from = None;
                reply(&mut w, "250 2.0.0 ok").await?;
            }
            "RSET" => {
                mail_from = None;
                rcpts.clear();
                reply(&mut w, "250 2.0.0 ok").await?;
            }
            "NOOP" => reply(&mut w, "250 2.0.0 ok").await?,
            "QUIT" => {
                reply(&mut w, "221 2.0.0 bye").await?;
                return Ok(());
            }
            _ => reply(&mut w, "502 5.5.2 command not recognised").await?,
        }
    }
}

/// The next line into `line` (emptied first); 0 at the end of the stream.
async fn read_line(r: &mut (impl AsyncBufReadExt + Unpin), line: &mut Vec<u8>) -> std::io::Result<usize> {
    line.clear();
    tokio::time::timeout(IDLE, r.read_until(b'\n', line))
        .await
        .map_err(|_| std::io::Error::other("idle"))?
}

/// The message up to the lone dot, unstuffed; `None` when it is too big
/// (read to its end all the same, so the session can go on).
async fn read_data(r: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        if read_line(r, &mut line).await? == 0 {
            return Err(std::io::Error::other("connection closed in DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(message));
        }
        let body = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        if message.len() + body.len() > MAX_MESSAGE {
            too_big = true;
        } else {
            message.extend_from_slice(body);
        }
    }
}

/// Applies a report to the delivery its VERP address names.
async fn take_report(app: &App, to: &str, message: &[u8]) {
    let Some(delivery) = app.link_signer.verp_delivery(to) else {
        metrics::counter!("bounce_reports_total", "outcome" => "forged").increment(1);
        return;
    };
    let findings = classify_message(message);
    let owner = match app.store.delivery_owner(delivery).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            metrics::counter!("bounce_reports_total", "outcome" => "unknown").increment(1);
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "bounce report: looking up its delivery");
            return;
        }
    };
    // The finding about this delivery's recipient; else the report's first
    // that says something (a report sent to one VERP address is about it).
    let finding = findings
        .iter()
        .find(|f| f.recipient.eq_ignore_ascii_case(&owner.address) && f.class != Class::Ignore)
        .or_else(|| findings.iter().find(|f| f.class != Class::Ignore))
        .or(findings.first());
    let Some(f) = finding else { return };
    let status = f.status.map(|s| s.to_string()).unwrap_or_default();
    let now = app.clock.now();
    match app
        .store
        .late_report(delivery, f.class, &status, &f.reason, now, &app.clock)
        .await
    {
        Ok(applied) => {
            metrics::counter!("bounce_reports_total", "outcome" => applied.as_str()).increment(1);
            tracing::info!(target: "qunfa::bounce", delivery, class = f.class.as_str(), status = %status, outcome = applied.as_str(), "report");
            if applied != Applied::Unchanged {
                guard_reputation(app, owner.task, now).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "bounce report: applying it"),
    }
}

/// A hard bounce or a complaint that arrives later counts for the
/// reputation guards of its task as well.
async fn guard_reputation(app: &App, task: crate::domain::ids::TaskId, now: i64) {
    match crate::domain::tasks::watch_reputation(&app.store, task, &app.config.guards, now).await {
        Ok(Some(pause)) => tracing::warn!(task = %task, guard = pause.guard.as_str(), "task paused: {pause}"),
        Ok(None) => {}
        Err(e) => tracing::warn!(task = %task, error = %e, "checking a task's reputation guards"),
    }
}
