//! A whole report → one finding per recipient it names. The kinds are tried
//! from the most to the least structured: complaints (ARF and its cousins),
//! Amazon SES JSON notifications, RFC 3464 delivery-status fields, then the
//! free-text bounces; auto-replies and anything else are `ignore`.

use std::collections::HashSet;

use serde_json::Value;

use super::dsn::{self, Action};
use super::judge::{Evidence, Judgement, judge};
use super::report::{Report, prefix};
use super::status::Status;
use super::{Class, Finding, scan};

const REASON_MAX: usize = 200;

pub fn classify(raw: &[u8]) -> Vec<Finding> {
    let report = Report::read(raw);
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
        return from_status_fields(&report, &recipients);
    }
    let bounce = is_bounce(&report);
    if !bounce && is_auto_reply(&report) {
        let who = scan::header_addresses(report.header("from").unwrap_or_default());
        return vec![ignore(who.into_iter().next().unwrap_or_default(), "auto-reply")];
    }
    if !bounce {
        return vec![ignore(String::new(), "not a delivery report")];
    }
    from_text(&report)
}

fn ignore(recipient: String, reason: &str) -> Finding {
    Finding {
        recipient,
        class: Class::Ignore,
        status: None,
        code: None,
        reason: reason.to_string(),
        delayed: false,
        rule: "message kind",
    }
}

fn finding(recipient: String, j: Judgement, reason_text: &str, delayed: bool) -> Finding {
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
                    finding(addr_of(r), j, diagnostic, !permanent)
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

fn from_status_fields(report: &Report, recipients: &[dsn::Recipient]) -> Vec<Finding> {
    let addrs: Vec<&str> = recipients.iter().map(|r| r.addr.as_str()).collect();
    let segments = segments(&report.notice, &addrs);
    recipients
        .iter()
        .zip(segments)
        .map(|(r, context)| {
            let j = judge(&Evidence {
                action: Some(r.action),
                status: r.status,
                diagnostic: &r.diagnostic,
                context,
                notice: &report.notice,
                subject: &report.subject,
                ..Evidence::default()
            });
            let reason = if r.diagnostic.is_empty() {
                reason_line(context)
            } else {
                r.diagnostic.as_str()
            };
            finding(r.addr.clone(), j, reason, r.action == Action::Delayed)
        })
        .collect()
}

/// The part of the notice about each address: from where it is first
/// listed to where the next one is. One recipient owns the whole notice.
fn segments<'a>(notice: &'a str, addrs: &[&str]) -> Vec<&'a str> {
    if addrs.len() <= 1 {
        return vec![notice; addrs.len()];
    }
    let found = scan::addresses(notice);
    let first_at = |addr: &str| -> Option<usize> {
        let lead = found
            .iter()
            .find(|f| f.leads_line && f.addr.eq_ignore_ascii_case(addr));
        lead.or_else(|| found.iter().find(|f| f.addr.eq_ignore_ascii_case(addr)))
            // From the start of its line: "<a@b>:" keeps its bracket.
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

/// The line of a notice segment that carries the server's answer: the first
/// with a reply or status code, else the first after the address line.
fn reason_line(segment: &str) -> &str {
    let lines: Vec<&str> = segment.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .find(|l| super::status::find_reply_code(l).is_some() || Status::find(l).is_some())
        .or_else(|| lines.get(1))
        .or_else(|| lines.first())
        .copied()
        .unwrap_or_default()
}

// ---- free-text bounces -------------------------------------------------------

fn from_text(report: &Report) -> Vec<Finding> {
    let recipients = text_recipients(report);
    let addrs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let mut segments = segments(&report.notice, &addrs);
    for s in segments.iter_mut() {
        if s.is_empty() {
            *s = &report.notice;
        }
    }
    let delayed = is_delay_warning(report);
    recipients
        .iter()
        .zip(segments)
        .map(|(r, context)| {
            let j = judge(&Evidence {
                action: Some(if delayed { Action::Delayed } else { Action::Failed }),
                context,
                notice: &report.notice,
                subject: &report.subject,
                ..Evidence::default()
            });
            finding(r.clone(), j, reason_line(context), delayed)
        })
        .collect()
}

/// The recipients a free-text bounce reports on, in its order.
fn text_recipients(report: &Report) -> Vec<String> {
    if let Some(failed) = report.header("x-failed-recipients") {
        let list = distinct(scan::header_addresses(failed));
        if !list.is_empty() {
            return list;
        }
    }
    let ours: HashSet<String> = senders(report);
    let found: Vec<scan::Found> = scan::addresses(&report.notice)
        .into_iter()
        .filter(|f| !ours.contains(&f.addr.to_lowercase()))
        .collect();
    let leading = distinct(
        found
            .iter()
            .filter(|f| f.leads_line)
            .map(|f| f.addr.to_lowercase()),
    );
    if !leading.is_empty() {
        return leading;
    }
    let original = original_recipients(report);
    let mentioned = distinct(found.iter().map(|f| f.addr.to_lowercase()));
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
        assert_eq!(segments(notice, &["a@b.example"]), vec![notice]);
        assert_eq!(segments(notice, &["a@b.example", "x@y.example"])[1], "");
    }

    #[test]
    fn reason_line_prefers_the_server_answer() {
        assert_eq!(
            reason_line("<a@b.example>:\nhost said: 550 5.1.1 unknown\n"),
            "host said: 550 5.1.1 unknown"
        );
        assert_eq!(reason_line("a@b.example\nUser unknown\n"), "User unknown");
        assert_eq!(reason_line(""), "");
    }

    #[test]
    fn one_line_reasons_are_short() {
        assert_eq!(one_line(" a\n\tb "), "a b");
        assert!(one_line(&"é".repeat(300)).len() <= REASON_MAX);
    }
}
