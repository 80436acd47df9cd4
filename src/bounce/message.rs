//! A whole report → one finding per recipient it names. The producer is
//! recognised first from the report's structure (`producer`); complaints
//! (ARF and its cousins) and Amazon SES notifications are read by their own
//! formats; then the RFC 3464 delivery-status fields; then the free-text
//! layouts. Auto-replies and anything else are `ignore`.
//!
//! Only the server's answer about a recipient is read for its reason: the
//! `Diagnostic-Code`, or the part of a free-text notice from the line that
//! names the recipient to the next one. The preamble before the first
//! recipient ("could not be delivered to one or more of its recipients")
//! and the report's own header-like lines (`Message-id:`, `Date:`) never
//! are.

use std::collections::HashSet;

use serde_json::Value;

use super::dsn::{self, Action};
use super::judge::{Evidence, Judgement, judge};
use super::producer::{self, Family};
use super::report::{Report, prefix};
use super::status::{Status, find_reply_code};
use super::{Class, Finding, scan};

const REASON_MAX: usize = 200;

pub fn classify(raw: &[u8]) -> Vec<Finding> {
    classify_at(raw, 0)
}

fn classify_at(raw: &[u8], depth: u8) -> Vec<Finding> {
    let report = Report::read(raw);
    let family = producer::recognise(&report);
    if let Some(found) = complaint(&report) {
        return found;
    }
    if let Some(found) = ses_notification(&report) {
        return found;
    }
    let mut recipients: Vec<dsn::Recipient> =
        report.status_parts.iter().flat_map(|p| dsn::parse(p)).collect();
    if recipients.is_empty() && dsn::has_fields(&report.notice) {
        recipients = dsn::parse(&report.notice);
    }
    if !recipients.is_empty() {
        return from_status_fields(&report, family, &recipients);
    }
    let bounce = family == Family::GoogleGroups || is_bounce(&report);
    if !bounce && is_auto_reply(&report) {
        let who = scan::header_addresses(report.header("from").unwrap_or_default());
        return vec![ignore(who.into_iter().next().unwrap_or_default(), "auto-reply")];
    }
    if !bounce {
        return vec![ignore(String::new(), "not a delivery report")];
    }
    // A notice that names no recipient itself and carries a whole report
    // copied below it (a postmaster forwarding a bounce): the inner report
    // speaks.
    if depth == 0
        && report.header("x-failed-recipients").is_none()
        && producer::named_in_text(&report.notice).is_empty()
        && let Some(inner) = forwarded_report(&report)
    {
        return inner;
    }
    from_text(&report, family)
}

/// The findings of a delivery report copied inline below a notice, when it
/// is one and names its recipients.
fn forwarded_report(report: &Report) -> Option<Vec<Finding>> {
    let inner = Report::read(report.inline_original.as_bytes());
    let names = !inner.status_parts.is_empty()
        || inner.header("x-failed-recipients").is_some()
        || !producer::named_in_text(&inner.notice).is_empty();
    if !(names && is_bounce(&inner)) {
        return None;
    }
    let found = classify_at(report.inline_original.as_bytes(), 1);
    found
        .iter()
        .any(|f| !f.recipient.is_empty() && f.class != Class::Ignore)
        .then_some(found)
}

fn ignore(recipient: String, reason: &str) -> Finding {
    Finding {
        recipient,
        class: Class::Ignore,
        status: None,
        code: None,
        reason: reason.to_string(),
        delayed: false,
        producer: "",
        rule: "message kind",
    }
}

fn finding(recipient: String, family: Family, j: Judgement, reason_text: &str, delayed: bool) -> Finding {
    let text = one_line(reason_text);
    let reason = if text.is_empty() {
        j.label.to_string()
    } else {
        text
    };
    Finding {
        recipient,
        class: j.class,
        status: j.status,
        code: j.code,
        reason,
        delayed,
        producer: family.name(),
        rule: j.label,
    }
}

/// White space collapsed, at most [`REASON_MAX`] bytes.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    prefix(&joined, REASON_MAX).to_string()
}

// ---- complaints -------------------------------------------------------------

/// RFC 5965 feedback reports, Hotmail's older complaint format (the
/// complained-of message forwarded with `X-HmXmrOriginalRecipient`), and
/// one-click unsubscribe mails sent by mail clients.
fn complaint(report: &Report) -> Option<Vec<Finding>> {
    let arf = report.report_type.as_deref() == Some("feedback-report") || !report.feedback_parts.is_empty();
    let hotmail = report.original_header("x-hmxmroriginalrecipient").is_some()
        || report
            .subject
            .to_lowercase()
            .contains("complaint about message from");
    let unsubscribe = report
        .header("x-apple-unsubscribe")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || report.subject.trim().eq_ignore_ascii_case("unsubscribe");
    if !(arf || hotmail || unsubscribe) {
        return None;
    }
    if unsubscribe && !arf {
        let who = scan::header_addresses(report.header("from").unwrap_or_default());
        let mut f = ignore(who.into_iter().next().unwrap_or_default(), "unsubscribe request");
        f.class = Class::Complaint;
        return Some(vec![f]);
    }
    let fields: Vec<(String, String)> = report
        .feedback_parts
        .iter()
        .flat_map(|p| p.lines())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let kind = fields
        .iter()
        .find(|(n, _)| n == "feedback-type")
        .map_or("abuse", |(_, v)| v.as_str())
        .to_ascii_lowercase();
    let mut recipients = distinct(
        fields
            .iter()
            .filter(|(n, _)| n == "original-rcpt-to" || n == "removal-recipient")
            .flat_map(|(_, v)| scan::header_addresses(v)),
    );
    if recipients.is_empty() {
        recipients = original_recipients(report);
    }
    if recipients.is_empty() {
        recipients.push(String::new());
    }
    // "not-spam" withdraws a complaint; every other type is one.
    let class = if kind == "not-spam" {
        Class::Ignore
    } else {
        Class::Complaint
    };
    let reason = format!("feedback report: {kind}");
    Some(
        recipients
            .into_iter()
            .map(|r| {
                let mut f = ignore(r, &reason);
                f.class = class;
                f
            })
            .collect(),
    )
}

// ---- Amazon SES -------------------------------------------------------------

/// SES sends bounces, complaints and deliveries as JSON (through SNS, whose
/// envelope carries the notification as a JSON string in `Message`).
fn ses_notification(report: &Report) -> Option<Vec<Finding>> {
    let text = report.notice.as_str();
    if !text.contains("notificationType") && !text.contains("eventType") {
        return None;
    }
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let json = text.get(start..=end)?;
    // Lines over 998 characters get broken in transit as "!" CRLF SP (a
    // sendmail habit); the JSON reads again once those breaks are undone.
    let mut value: Value = serde_json::from_str(json)
        .or_else(|_| serde_json::from_str(&json.replace("!\r\n ", "").replace("!\n ", "")))
        .ok()?;
    if let Some(inner) = value.get("Message").and_then(Value::as_str) {
        value = serde_json::from_str(inner).ok()?;
    }
    let kind = value
        .get("notificationType")
        .or_else(|| value.get("eventType"))
        .and_then(Value::as_str)?
        .to_ascii_lowercase();
    let list = |obj: &str, key: &str| -> Vec<Value> {
        value
            .get(obj)
            .and_then(|o| o.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let addr_of = |v: &Value| -> String {
        let raw = v
            .get("emailAddress")
            .and_then(Value::as_str)
            .or_else(|| v.as_str())
            .unwrap_or_default();
        scan::header_addresses(raw).into_iter().next().unwrap_or_default()
    };
    let found = match kind.as_str() {
        "bounce" => {
            let bounce = value.get("bounce");
            let field = |k: &str| {
                bounce
                    .and_then(|b| b.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let permanent = field("bounceType").eq_ignore_ascii_case("permanent");
            let subtype = field("bounceSubType");
            list("bounce", "bouncedRecipients")
                .iter()
                .map(|r| {
                    let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                    let diagnostic = get("diagnosticCode");
                    let diagnostic = diagnostic.split_once(';').map_or(diagnostic, |(_, d)| d).trim();
                    let mut j = judge(&Evidence {
                        action: Some(if permanent {
                            Action::Failed
                        } else {
                            Action::Delayed
                        }),
                        status: Status::parse(get("status")),
                        diagnostic,
                        ..Evidence::default()
                    });
                    if diagnostic.is_empty() && r.get("status").is_none() {
                        j.class = ses_subtype(&subtype, permanent);
                    }
                    finding(addr_of(r), Family::AmazonSes, j, diagnostic, !permanent)
                })
                .collect()
        }
        "complaint" => list("complaint", "complainedRecipients")
            .iter()
            .map(|r| {
                let mut f = ignore(addr_of(r), "complaint");
                f.class = Class::Complaint;
                f
            })
            .collect(),
        "delivery" => list("delivery", "recipients")
            .iter()
            .map(|r| ignore(addr_of(r), "delivered"))
            .collect(),
        _ => return None,
    };
    let found: Vec<Finding> = found;
    if found.is_empty() { None } else { Some(found) }
}

/// SES's own words for a bounce that came without a server reply.
fn ses_subtype(subtype: &str, permanent: bool) -> Class {
    match subtype.to_ascii_lowercase().as_str() {
        "noemail" => Class::NotExist,
        "mailboxfull" => Class::OverQuota,
        _ if !permanent => Class::Transient,
        _ => Class::UserReject,
    }
}

// ---- delivery-status fields ------------------------------------------------

fn from_status_fields(report: &Report, family: Family, recipients: &[dsn::Recipient]) -> Vec<Finding> {
    let addrs: Vec<&str> = recipients.iter().map(|r| r.addr.as_str()).collect();
    let segments = segments(&report.notice, &addrs);
    let knowledge = family.knows(report);
    recipients
        .iter()
        .zip(segments)
        .map(|(r, segment)| {
            // The notice's part about this recipient stands in for a
            // missing Diagnostic-Code.
            let from_notice = diagnostic_of(segment);
            let diagnostic = if r.diagnostic.trim().is_empty() {
                from_notice.as_str()
            } else {
                r.diagnostic.as_str()
            };
            let j = judge(&Evidence {
                knowledge,
                action: Some(r.action),
                status: r.status,
                diagnostic,
                diagnostic_type: &r.diagnostic_type,
                stage_text: segment,
                recorded_reply: !r.diagnostic.trim().is_empty(),
                ..Evidence::default()
            });
            finding(
                r.addr.clone(),
                family,
                j,
                reason_line(diagnostic),
                r.action == Action::Delayed,
            )
        })
        .collect()
}

/// The part of the notice about each address: from the start of the line
/// where it is first named (as a recipient, else anywhere) to where the
/// next one is; empty when the notice does not name it.
fn segments<'a>(notice: &'a str, addrs: &[&str]) -> Vec<&'a str> {
    let named = producer::named_in_text(notice);
    let found = scan::addresses(notice);
    let first_at = |addr: &str| -> Option<usize> {
        let lead = named.iter().find(|f| f.addr.eq_ignore_ascii_case(addr));
        lead.or_else(|| found.iter().find(|f| f.addr.eq_ignore_ascii_case(addr)))
            .map(|f| notice[..f.at].rfind('\n').map_or(0, |nl| nl + 1))
    };
    let starts: Vec<Option<usize>> = addrs.iter().map(|a| first_at(a)).collect();
    let mut sorted: Vec<usize> = starts.iter().flatten().copied().collect();
    sorted.sort_unstable();
    sorted.dedup();
    starts
        .iter()
        .map(|start| match start {
            Some(s) => {
                let end = sorted.iter().copied().find(|&e| e > *s).unwrap_or(notice.len());
                &notice[*s..end]
            }
            None => "",
        })
        .collect()
}

/// A recipient's part of a notice as a diagnostic: without the report's
/// own header-like lines (`Message-id:`, `Date:`, `Reporting-MTA:` …) and
/// without what follows them.
fn diagnostic_of(segment: &str) -> String {
    const NOT_A_REASON: &[&str] = &[
        "message-id",
        "date",
        "subject",
        "from",
        "to",
        "cc",
        "received",
        "return-path",
        "reporting-mta",
        "received-from-mta",
        "arrival-date",
        "x-original-message-id",
        "original-envelope-id",
        "last-attempt-date",
        "final-recipient",
        "original-recipient",
        "action",
        "status",
        "remote-mta",
        "x-postfix-sender",
        "x-postfix-queue-id",
        "x-actual-recipient",
        "will-retry-until",
    ];
    let mut out = String::new();
    for line in segment.lines() {
        let name = line.split_once(':').map(|(n, _)| n.trim().to_ascii_lowercase());
        if name.is_some_and(|n| NOT_A_REASON.contains(&n.as_str())) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The line of a diagnostic that carries the server's answer: the first
/// with a reply or status code, else the first after the address line.
fn reason_line(diagnostic: &str) -> &str {
    let lines: Vec<&str> = diagnostic
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() <= 1 {
        return lines.first().copied().unwrap_or_default();
    }
    lines
        .iter()
        .find(|l| find_reply_code(l).is_some() || Status::find(l).is_some())
        .or_else(|| lines.get(1))
        .copied()
        .unwrap_or_default()
}

// ---- free-text bounces -------------------------------------------------------

fn from_text(report: &Report, family: Family) -> Vec<Finding> {
    let recipients = text_recipients(report, family);
    let addrs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let segments = segments(&report.notice, &addrs);
    let knowledge = family.knows(report);
    let delayed = is_delay_warning(report);
    let one = recipients.len() == 1;
    // Lower-cased once: every recipient looks for its own lines.
    let lines: Vec<(&str, String)> = report.notice.lines().map(|l| (l, l.to_lowercase())).collect();
    recipients
        .iter()
        .zip(segments)
        .map(|(r, segment)| {
            let diagnostic = text_diagnostic(&report.notice, &lines, r, segment, one);
            let j = judge(&Evidence {
                knowledge,
                action: Some(if delayed { Action::Delayed } else { Action::Failed }),
                diagnostic: &diagnostic,
                stage_text: segment,
                ..Evidence::default()
            });
            finding(r.clone(), family, j, reason_line(&diagnostic), delayed)
        })
        .collect()
}

/// A recipient's diagnostic in a free-text notice, by the layouts
/// producers use: the lines after the one naming it (most producers); the
/// paragraph just above it when nothing follows the address (Notes writes
/// the reason first); and, for the only recipient of a notice, the lines
/// that quote a server's answer wherever they stand. A recipient the
/// notice does not name gets the quoted answers and the indented lines
/// (where Exim and others put them), never the prose around them.
fn text_diagnostic(
    notice: &str,
    lines: &[(&str, String)],
    addr: &str,
    segment: &str,
    only_recipient: bool,
) -> String {
    if segment.is_empty() {
        return answer_lines(notice, true);
    }
    let mut out = diagnostic_of(segment);
    // Sendmail lists the addresses first and gives each one's answer in
    // the transcript below: the lines there that name it are its own.
    for line in transcript_of(lines, addr).lines() {
        if !out.contains(line) {
            out.push_str(line);
            out.push('\n');
        }
    }
    let after_address = out.lines().skip(1).any(|l| l.chars().any(char::is_alphanumeric));
    if !after_address {
        let start = segment.as_ptr() as usize - notice.as_ptr() as usize;
        let above = notice[..start].trim_end();
        let paragraph = above.rfind("\n\n").map_or(above, |at| &above[at + 2..]);
        out = format!("{paragraph}\n{out}");
    }
    let quoted = |t: &str| {
        t.lines()
            .any(|l| find_reply_code(l).is_some() || Status::find(l).is_some())
    };
    if only_recipient && !quoted(&out) {
        out.push_str(&answer_lines(notice, false));
    }
    out
}

/// The lines of a notice that name `addr` in a server's answer or in a
/// transcript (`>>> RCPT To:<a@b>` and the `<<<` lines after it; `550 5.1.1
/// <a@b>... User unknown`).
fn transcript_of(lines: &[(&str, String)], addr: &str) -> String {
    let addr = addr.to_lowercase();
    let addr = addr.as_str();
    let mut out = String::new();
    let mut after_command = false;
    for (line, lower) in lines {
        let line = *line;
        let t = line.trim_start();
        let names = !addr.is_empty() && lower.contains(addr);
        if t.starts_with(">>>") {
            after_command = names;
            if names {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let answer = find_reply_code(line).is_some() || Status::find(line).is_some();
        if (after_command && t.starts_with("<<<")) || (names && answer) {
            out.push_str(line);
            out.push('\n');
        } else if !t.starts_with("<<<") {
            after_command = false;
        }
    }
    out
}

/// The lines of a notice that quote a server's answer (a reply or an
/// enhanced status code), with the indented lines that continue them; with
/// `indented`, every indented line too.
fn answer_lines(notice: &str, indented: bool) -> String {
    let mut out = String::new();
    let mut taking = false;
    for line in notice.lines() {
        let answer = find_reply_code(line).is_some() || Status::find(line).is_some();
        let inset = line.starts_with([' ', '\t']) && !line.trim().is_empty();
        if answer || (inset && (taking || indented)) {
            out.push_str(line);
            out.push('\n');
            taking = true;
        } else {
            taking = false;
        }
    }
    out
}

/// The recipients a free-text bounce reports on, in its order.
fn text_recipients(report: &Report, family: Family) -> Vec<String> {
    if let Some(failed) = report.header("x-failed-recipients") {
        let list = distinct(scan::header_addresses(failed));
        if !list.is_empty() && (family.lists_failed_recipients() || list.len() > 1) {
            return list;
        }
    }
    let ours: HashSet<String> = senders(report);
    let named = distinct(
        producer::named_in_text(&report.notice)
            .into_iter()
            .map(|f| f.addr.to_lowercase())
            .filter(|a| !ours.contains(a)),
    );
    if !named.is_empty() {
        return named;
    }
    if let Some(failed) = report.header("x-failed-recipients") {
        let list = distinct(scan::header_addresses(failed));
        if !list.is_empty() {
            return list;
        }
    }
    let found: Vec<String> = scan::addresses(&report.notice)
        .into_iter()
        .map(|f| f.addr.to_lowercase())
        .filter(|a| !ours.contains(a))
        .collect();
    let original = original_recipients(report);
    let mentioned = distinct(found);
    let both: Vec<String> = mentioned
        .iter()
        .filter(|a| original.contains(a))
        .cloned()
        .collect();
    if !both.is_empty() {
        return both;
    }
    if let Some(first) = mentioned.into_iter().next() {
        return vec![first];
    }
    if !original.is_empty() {
        return original;
    }
    vec![String::new()]
}

/// The addresses that are the sender's side of the exchange: the report's
/// own From/To and the original message's From, Sender, Reply-To and
/// Return-Path. They show up in notices but are never the failed recipient.
fn senders(report: &Report) -> HashSet<String> {
    let mut out = HashSet::new();
    for name in ["from", "to", "reply-to", "sender"] {
        out.extend(scan::header_addresses(report.header(name).unwrap_or_default()));
    }
    for name in ["from", "sender", "reply-to", "return-path"] {
        out.extend(scan::header_addresses(
            report.original_header(name).unwrap_or_default(),
        ));
    }
    out
}

/// To and Cc of the original message, else the `for <addr>` of its
/// `Received` fields, else Hotmail's recipient field.
fn original_recipients(report: &Report) -> Vec<String> {
    let mut out = distinct(
        report
            .original
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "to" | "cc" | "x-hmxmroriginalrecipient"))
            .flat_map(|(_, v)| scan::header_addresses(v)),
    );
    if out.is_empty() {
        out = distinct(
            report
                .original
                .iter()
                .filter(|(n, _)| n == "received")
                .filter_map(|(_, v)| v.to_lowercase().split_once(" for ").map(|(_, r)| r.to_string()))
                .flat_map(|r| scan::header_addresses(&r).into_iter().take(1)),
        );
    }
    out
}

fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|a| seen.insert(a.to_lowercase()))
        .collect()
}

// ---- what kind of message is it ---------------------------------------------

fn is_bounce(report: &Report) -> bool {
    if report.header("x-failed-recipients").is_some()
        || report.report_type.as_deref() == Some("delivery-status")
    {
        return true;
    }
    let from = report.header("from").unwrap_or_default().to_lowercase();
    const DAEMONS: &[&str] = &[
        "mailer-daemon",
        "mailerdaemon",
        "mail-daemon",
        "postmaster",
        "post_master",
        "mail delivery",
    ];
    if DAEMONS.iter().any(|d| from.contains(d)) {
        return true;
    }
    const SUBJECTS: &[&str] = &[
        "undeliver",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "delivery has failed",
        "delivery problem",
        "delivery notification",
        "failure notice",
        "failed delivery",
        "returned mail",
        "returned to sender",
        "return to sender",
        "non-delivery",
        "nondelivery",
        "non delivery",
        "not delivered",
        "could not be delivered",
        "mail system error",
        "message delayed",
        "delivery delayed",
        "warning: message",
        "退信",
        "未送达",
        "投递失败",
        "发送失败",
        "送信エラー",
        "配信エラー",
        "不達",
        "unzustellbar",
        "nicht zugestellt",
        "non remis",
        "no entregado",
        "не доставлено",
        "недоставлен",
    ];
    let subject = report.subject.to_lowercase();
    if SUBJECTS.iter().any(|s| subject.contains(s)) {
        return true;
    }
    const NOTICES: &[&str] = &[
        "could not be delivered",
        "couldn't be delivered",
        "was not delivered",
        "wasn't delivered",
        "not been delivered",
        "undeliverable",
        "delivery to the following recipient",
        "following address(es) failed",
        "following addresses had permanent fatal errors",
        "permanent error",
        "did not reach the following recipient",
        "could not be reached",
        "delivery has failed",
        "failed permanently",
        "unable to deliver",
        "wasn't able to deliver",
        "was unable to deliver",
        "error delivering your mail",
        "error occurred while trying to deliver",
        "rejected by",
        // a mailing list's manager refusing a non-member's post
        "not a member of this mailing list",
        "not a member of this list",
    ];
    let notice = report.notice.to_lowercase();
    NOTICES.iter().any(|n| notice.contains(n))
}

fn is_delay_warning(report: &Report) -> bool {
    let subject = report.subject.to_lowercase();
    let notice = report.notice.to_lowercase();
    ["delayed", "delay)", "warning: message"]
        .iter()
        .any(|s| subject.contains(s))
        || [
            "warning message only",
            "has not yet been delivered",
            "delivery attempts will continue",
        ]
        .iter()
        .any(|s| notice.contains(s))
}

fn is_auto_reply(report: &Report) -> bool {
    let header_says = ["x-autoreply", "x-autorespond", "x-autoresponder"]
        .iter()
        .any(|h| report.header(h).is_some())
        || report
            .header("auto-submitted")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"));
    const SUBJECTS: &[&str] = &[
        "auto reply",
        "auto-reply",
        "autoreply",
        "automatic reply",
        "auto response",
        "auto-response",
        "autoresponse",
        "out of office",
        "out of the office",
        "away from",
        "away until",
        "vacation",
        "on leave",
        "自动回复",
        "自動回覆",
        "自動返信",
        "自動応答",
        "abwesenheit",
        "automatische antwort",
        "réponse automatique",
        "absence",
        "respuesta automática",
        "fuera de la oficina",
    ];
    let subject = report.subject.to_lowercase();
    header_says || SUBJECTS.iter().any(|s| subject.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_a_notice_between_recipients() {
        let notice = "intro\n<a@b.example>: 550 unknown\n<c@d.example>: 552 full\n";
        let s = segments(notice, &["a@b.example", "c@d.example"]);
        assert_eq!(s[0], "<a@b.example>: 550 unknown\n");
        assert_eq!(s[1], "<c@d.example>: 552 full\n");
        // The preamble is never part of a recipient's segment.
        assert_eq!(
            segments(notice, &["a@b.example"]),
            vec!["<a@b.example>: 550 unknown\n<c@d.example>: 552 full\n"]
        );
        assert_eq!(segments(notice, &["a@b.example", "x@y.example"])[1], "");
    }

    #[test]
    fn diagnostics_leave_out_header_lines() {
        let d =
            diagnostic_of("<a@b.example>:\nMessage-id: <x@spam.example>\nDate: today\n550 5.1.1 unknown\n");
        assert_eq!(d, "<a@b.example>:\n550 5.1.1 unknown\n");
    }

    #[test]
    fn answer_lines_are_the_quoted_replies() {
        let notice = "Your message could not be delivered to one or more recipients.\n\
host mx said: 550 5.1.1 no such user\n   (in reply to RCPT TO)\nThanks.\n";
        assert_eq!(
            answer_lines(notice, false),
            "host mx said: 550 5.1.1 no such user\n   (in reply to RCPT TO)\n"
        );
        let exim = "A message could not be delivered.\n  save to inbox\n    mailbox is full\nBye.\n";
        assert_eq!(answer_lines(exim, true), "  save to inbox\n    mailbox is full\n");
    }

    #[test]
    fn a_reason_may_stand_above_the_address() {
        let notice =
            "------- Failure Reasons --------\nUser not listed in public Name & Address Book\na@b.example\n";
        let at = notice.find("a@b").unwrap_or_default();
        let lines = |n: &'static str| n.lines().map(|l| (l, l.to_lowercase())).collect::<Vec<_>>();
        let d = text_diagnostic(notice, &lines(notice), "a@b.example", &notice[at..], true);
        assert!(d.contains("User not listed"), "{d}");
        let notice = "Preamble that says nothing.\n\n<a@b.example>:\n550 no such user\n";
        let at = notice.find("<a@b").unwrap_or_default();
        assert!(
            !text_diagnostic(notice, &lines(notice), "a@b.example", &notice[at..], true).contains("Preamble")
        );
    }

    #[test]
    fn reason_line_prefers_the_server_answer() {
        assert_eq!(
            reason_line("<a@b.example>:\nhost said: 550 5.1.1 unknown\n"),
            "host said: 550 5.1.1 unknown"
        );
        assert_eq!(reason_line("a@b.example\nUser unknown\n"), "User unknown");
        assert_eq!(reason_line("only one line"), "only one line");
        assert_eq!(reason_line(""), "");
    }

    #[test]
    fn a_report_forwarded_inline_speaks_for_itself() {
        let raw = "From: help@isp.example\nTo: me@example.org\nSubject: Fwd: Undelivered Mail Returned to Sender\n\n\
I'm sorry to have to inform you that the message returned below could not be delivered.\n\
For further assistance, please contact <help@isp.example>.\n\
----------\n\
Return-Path: <>\nFrom: MAILER-DAEMON@mx.isp.example (Mail Delivery System)\n\
Subject: Undelivered Mail Returned to Sender\nTo: me@example.org\n\n\
This is the mail system at host mx.isp.example.\n\n\
<a@b.example>: host mx.b.example[192.0.2.1] said: 550 5.1.1 <a@b.example>: Recipient\n\
    address rejected: User unknown (in reply to RCPT TO command)\n";
        let f = classify(raw.as_bytes());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].recipient.as_str(), f[0].class),
            ("a@b.example", Class::NotExist)
        );
    }

    fn classes(raw: &str) -> Vec<(String, Class)> {
        classify(raw.as_bytes())
            .into_iter()
            .map(|f| (f.recipient, f.class))
            .collect()
    }

    fn pairs(list: &[(&str, Class)]) -> Vec<(String, Class)> {
        list.iter().map(|(a, c)| (a.to_string(), *c)).collect()
    }

    #[test]
    fn old_sendmail_names_every_failed_recipient() {
        let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\n\
Subject: Returned mail: User unknown\nTo: s@example.org\n\n\
The original message was received at Thu, 29 Apr 2010 23:34:45 +0900\nfrom localhost [127.0.0.1]\n\n\
   ----- The following addresses had permanent fatal errors -----\n\
<a@b.example>\n<c@b.example>\n<d@b.example>\n\n\
   ----- Transcript of session follows -----\n\
... while talking to mx.b.example.:\n>>> RCPT To:<a@b.example>\n<<< 550 5.1.1 <a@b.example>... User unknown\n\
550 5.1.1 <a@b.example>... User unknown\n>>> RCPT To:<c@b.example>\n<<< 552 5.2.2 <c@b.example>... Mailbox full\n\
552 5.2.2 <c@b.example>... Mailbox full\n>>> RCPT To:<d@b.example>\n<<< 550 5.1.1 <d@b.example>... User unknown\n\
550 5.1.1 <d@b.example>... User unknown\n\n   ----- Original message follows -----\n\nFrom: s@example.org\n";
        let got = classes(raw);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], ("a@b.example".into(), Class::NotExist));
        assert_eq!(got[2], ("d@b.example".into(), Class::NotExist));
    }

    #[test]
    fn v5_sendmail_transcript_names_every_recipient() {
        let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\n\
Subject: Returned mail: User unknown\n\n\
   ----- Transcript of session follows -----\n\
While talking to mx.b.example:\n>>> RCPT To:<a@b.example>\n<<< 550 <a@b.example>... User unknown\n550 <a@b.example>... User unknown\n\
>>> RCPT To:<c@b.example>\n<<< 550 <c@b.example>... User unknown\n550 <c@b.example>... User unknown\n\
>>> RCPT To:<e@b.example>\n<<< 550 <e@b.example>... User unknown\n550 <e@b.example>... User unknown\n\
>>> RCPT To:<g@b.example>\n<<< 550 <g@b.example>... User unknown\n550 <g@b.example>... User unknown\n\n\
   ----- Unsent message follows -----\nFrom: s@example.com\nTo: a@b.example, c@b.example\n\nhi\n";
        assert_eq!(
            classes(raw),
            pairs(&[
                ("a@b.example", Class::NotExist),
                ("c@b.example", Class::NotExist),
                ("e@b.example", Class::NotExist),
                ("g@b.example", Class::NotExist),
            ])
        );
    }

    #[test]
    fn qmail_exim_and_postfix_list_each_recipient_with_its_reason() {
        let qmail = "From: MAILER-DAEMON@mx.example.jp\nSubject: failure notice\n\n\
Hi. This is the qmail-send program at mx.example.jp.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
<a@b.example>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 <a@b.example>: Recipient address rejected: User unknown\nGiving up on 192.0.2.1.\n\n\
<c@d.example>:\nSorry, I couldn't find any host named d.example. (#5.1.2)\n\n\
<e@f.example>:\n192.0.2.3 failed after I sent the message.\nRemote host said: 554 5.7.1 Message rejected as spam\n\n\
--- Below this line is a copy of the message.\n\nReturn-Path: <s@mx.example.jp>\n";
        assert_eq!(
            classes(qmail),
            pairs(&[
                ("a@b.example", Class::NotExist),
                ("c@d.example", Class::InvalidAddr),
                ("e@f.example", Class::UserReject),
            ])
        );
        let exim = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nSubject: Mail delivery failed: returning message to sender\n\
X-Failed-Recipients: a@b.example, c@d.example\n\n\
This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n\
  a@b.example\n    SMTP error from remote mail server after RCPT TO:<a@b.example>:\n    host mx.b.example [192.0.2.1]: 550 5.1.1 No such user here\n\
  c@d.example\n    SMTP error from remote mail server after end of data:\n    host mx.d.example [192.0.2.2]: 552 5.2.2 Mailbox quota exceeded\n\n\
------ This is a copy of the message, including all the headers. ------\n\nMessage-Id: <spam-blocked@example.org>\n";
        assert_eq!(
            classes(exim),
            pairs(&[
                ("a@b.example", Class::NotExist),
                ("c@d.example", Class::OverQuota)
            ])
        );
        let postfix = "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\n\n\
This is the mail system at host mx.example.net.\n\n\
I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\n\
<a@b.example>: host mx.b.example[192.0.2.1] said: 550 5.1.1 <a@b.example>:\n    Recipient address rejected: User unknown in virtual mailbox table (in\n    reply to RCPT TO command)\n\n\
<c@b.example>: host mx.b.example[192.0.2.1] said: 452 4.2.2 <c@b.example>:\n    Mailbox full (in reply to RCPT TO command)\n";
        assert_eq!(
            classes(postfix),
            pairs(&[
                ("a@b.example", Class::NotExist),
                ("c@b.example", Class::OverQuota)
            ])
        );
    }

    #[test]
    fn google_groups_is_read_by_structure_in_any_language() {
        let notice = |body: &str| {
            format!(
                "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nTo: s@example.org\n\
Subject: Delivery Status Notification (Failure)\nX-Failed-Recipients: team@groups.example.com\n\
X-Google-Smtp-Source: abc\n\n{body}\n\nGoogle Groups\n\n----- Original message -----\n\nFrom: s@example.org\n"
            )
        };
        let german = notice(
            "Hallo s@example.org,\n\nleider konnte Ihre Nachricht nicht gepostet werden:\n\n \
* Der Gruppenname ist falsch geschrieben.\n * Die Gruppe wurde entfernt.\n \
* Sie müssen der Gruppe beitreten.\n * Die Gruppe erlaubt keine Beiträge.",
        );
        assert_eq!(
            classes(&german),
            pairs(&[("team@groups.example.com", Class::UserReject)])
        );
        let arabic = notice(
            "مرحبًا s@example.org،\n\n * قد تكون كتبت اسم المجموعة بشكل غير صحيح.\n * ربما أزال المالك هذه المجموعة.\n \
* قد تحتاج إلى الانضمام إلى المجموعة.\n * قد لا تكون هذه المجموعة مفتوحة للنشر.",
        );
        assert_eq!(
            classes(&arabic),
            pairs(&[("team@groups.example.com", Class::UserReject)])
        );
    }

    #[test]
    fn a_failed_action_is_a_failure_whatever_its_status_class() {
        let dsn = |status: &str, diagnostic: &str| {
            format!(
                "From: MAILER-DAEMON@mx.example.jp\nSubject: Delivery Status Notification (Failure)\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
--B\nContent-Type: text/plain\n\nYour message could not be delivered to one or more of its recipients.\n\
--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.jp\n\n\
Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: {status}\nDiagnostic-Code: smtp; {diagnostic}\n--B--\n"
            )
        };
        let class = |s: &str, d: &str| classes(&dsn(s, d))[0].1;
        assert_eq!(
            class("4.7.1", "421 4.7.1 Blocked by policy, try again later"),
            Class::UserReject
        );
        assert_eq!(class("4.2.2", "452 4.2.2 Mailbox full"), Class::OverQuota);
        assert_eq!(class("4.4.7", "Delivery time expired"), Class::Transient);
        assert_eq!(
            class("4.0.0", "421 Too many connections from your IP"),
            Class::Transient
        );
        // Neither the preamble nor a Message-id is a reason.
        assert_eq!(class("5.0.0", "550 go away"), Class::UserReject);
    }

    #[test]
    fn message_id_lines_are_no_reason() {
        let raw = "From: MAILER-DAEMON@mx.example.jp\nSubject: failure notice\n\n\
Hi. This is the qmail-send program at mx.example.jp.\n\n<a@b.example>:\nMessage-id: <over-quota-spam@mx.example.jp>\n\
Sorry, no mailbox here by that name. (#5.1.1)\n";
        assert_eq!(classes(raw), pairs(&[("a@b.example", Class::NotExist)]));
    }

    #[test]
    fn one_line_reasons_are_short() {
        assert_eq!(one_line(" a\n\tb "), "a b");
        assert!(one_line(&"é".repeat(300)).len() <= REASON_MAX);
    }
}
