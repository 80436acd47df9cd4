//! Which mail system wrote a report, told from its structure: the report's
//! own header fields (`From`, `X-Failed-Recipients`, `X-Mailer`,
//! `X-Google-*`, `X-SES-*` …), its MIME parts and the fixed layout of its
//! human-readable text (qmail's "This is the qmail-send program", Exim's
//! "The following address(es) failed", Sendmail's transcript banners …).
//! Never from the words a remote server answered: those are evidence about
//! the recipient, not about who reports.
//!
//! The family says where a report lists its recipients and, for a few
//! producers whose notice always means one thing, what it means (see
//! [`Family::knows`]).

use super::report::Report;
use super::status::{Status, find_reply_code};
use super::{Class, scan};

/// The format families real senders meet. `Dsn` is any RFC 3464 report
/// whose producer is not told apart; `Unknown` a free-text one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Arf,
    AmazonSes,
    SendGrid,
    Mailgun,
    GoogleGroups,
    Gmail,
    Yahoo,
    Aol,
    Exchange,
    Domino,
    Postfix,
    Sendmail,
    Exim,
    Qmail,
    Courier,
    OpenSmtpd,
    MessagingServer,
    IMail,
    MailFoundry,
    Gateway,
    ListManager,
    Tencent,
    NetEase,
    Sina,
    Au,
    Docomo,
    Dsn,
    Unknown,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Arf => "arf",
            Family::AmazonSes => "amazon ses",
            Family::SendGrid => "sendgrid",
            Family::Mailgun => "mailgun",
            Family::GoogleGroups => "google groups",
            Family::Gmail => "gmail",
            Family::Yahoo => "yahoo",
            Family::Aol => "aol",
            Family::Exchange => "exchange",
            Family::Domino => "domino",
            Family::Postfix => "postfix",
            Family::Sendmail => "sendmail",
            Family::Exim => "exim",
            Family::Qmail => "qmail",
            Family::Courier => "courier",
            Family::OpenSmtpd => "opensmtpd",
            Family::MessagingServer => "messaging server",
            Family::IMail => "imail",
            Family::MailFoundry => "mailfoundry",
            Family::Gateway => "filtering gateway",
            Family::ListManager => "mailing list manager",
            Family::Tencent => "qq mail",
            Family::NetEase => "netease",
            Family::Sina => "sina",
            Family::Au => "au/ezweb",
            Family::Docomo => "docomo",
            Family::Dsn => "rfc 3464",
            Family::Unknown => "free text",
        }
    }

    /// The producer's own knowledge: a notice whose meaning is fixed by
    /// its producer and structure, whatever language it is written in.
    /// Only for notices that carry no server answer of their own.
    pub fn knows(self, report: &Report) -> Option<(Class, &'static str)> {
        match self {
            // Google Groups answers a post in the poster's language. When
            // it refuses the post it lists the four reasons a group refuses
            // one (misspelled group, group removed, not a member, closed to
            // posting) as bullets; any other notice is no verdict.
            Family::GoogleGroups => Some(if bullets(&report.notice) >= 4 {
                (Class::UserReject, "group refuses the post")
            } else {
                (Class::Transient, "group notice without a verdict")
            }),
            // A list manager (fml, Mailman, Majordomo) answering a post
            // itself, with no server's reply: the list refuses the post
            // (not a member, closed list), a refusal by policy.
            Family::ListManager => Some((Class::UserReject, "the list refuses the post")),
            _ => None,
        }
    }

    /// Does the producer list every failed recipient in `X-Failed-Recipients`
    /// (and so that field, in its order, is the list)?
    pub fn lists_failed_recipients(self) -> bool {
        matches!(self, Family::Exim | Family::Gmail | Family::GoogleGroups)
    }
}

/// Lines of a list: `* item` or `• item`.
fn bullets(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("• ") || (t.starts_with('*') && t.len() > 1 && !t.starts_with("**"))
        })
        .count()
}

/// Recognises the producer from the report's structure.
pub fn recognise(report: &Report) -> Family {
    let h = |name: &str| report.header(name).unwrap_or_default().to_ascii_lowercase();
    let has = |name: &str| report.header(name).is_some();
    let from = h("from");
    let mailer = format!("{} {}", h("x-mailer"), h("x-mailer-daemon"));
    let notice = report.notice.to_ascii_lowercase();
    let subject = report.subject.to_ascii_lowercase();
    let received = report
        .headers
        .iter()
        .filter(|(n, _)| n == "received")
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("\n");

    if report.report_type.as_deref() == Some("feedback-report") || !report.feedback_parts.is_empty() {
        return Family::Arf;
    }
    // List-manager software marks its own messages.
    let list_manager = ["x-mlserver", "x-ml-name", "x-mailman-version"]
        .iter()
        .any(|n| has(n));
    if list_manager && report.status_parts.is_empty() && !has("x-failed-recipients") {
        return Family::ListManager;
    }
    if from.contains("amazonses.com")
        || from.contains("sns.amazonaws.com")
        || has("x-ses-outgoing")
        || report.headers.iter().any(|(n, _)| n.starts_with("x-amz-sns-"))
    {
        return Family::AmazonSes;
    }
    if from.contains("mailer-daemon@googlemail.com") || from.contains("mailer-daemon@google.com") {
        // Google Groups' notices come from Gmail's daemon without a
        // delivery-status part, name the group in X-Failed-Recipients and,
        // unlike Gmail's own bounces, quote no server's answer at all. They
        // are written in the poster's language: what is told apart is that
        // structure, its bullet list and the service's name or address.
        let quotes_a_server = report
            .notice
            .lines()
            .any(|l| find_reply_code(l).is_some() || Status::find(l).is_some());
        let groups = has("x-failed-recipients")
            && report.status_parts.is_empty()
            && !quotes_a_server
            && (bullets(&report.notice) >= 2
                || notice.contains("google groups")
                || notice.contains("groups.google.com")
                || notice.contains("google.com/support/"));
        return if groups {
            Family::GoogleGroups
        } else {
            Family::Gmail
        };
    }
    if from.contains("sendgrid") || has("x-sendgrid-eid") || received.contains("sendgrid.net") {
        return Family::SendGrid;
    }
    if has("x-mailgun-sid") || from.contains("mailgun") {
        return Family::Mailgun;
    }
    if from.contains("yahoo") || received.contains("yahoo.com") && notice.contains("yahoo") {
        return Family::Yahoo;
    }
    if from.contains("aol.com") || has("x-aol-ip") {
        return Family::Aol;
    }
    if from.contains("qq.com") || from.contains("foxmail.com") {
        return Family::Tencent;
    }
    if ["163.com", "126.com", "yeah.net", "netease.com"]
        .iter()
        .any(|d| from.contains(d))
    {
        return Family::NetEase;
    }
    if from.contains("sina.com") || from.contains("sina.cn") {
        return Family::Sina;
    }
    if from.contains("ezweb.ne.jp") || from.contains("au.com") || from.contains("dion.ne.jp") {
        return Family::Au;
    }
    if from.contains("docomo.ne.jp") {
        return Family::Docomo;
    }
    if has("x-ms-exchange-message-is-ndr")
        || has("x-ms-exchange-organization-scl")
        || notice.contains("delivery has failed to these recipients")
        || notice.contains("following recipient(s) cannot be reached")
        || notice.contains("did not reach the following recipient")
        || notice.contains("your message did not reach some or all")
        || from.contains("microsoftexchange")
        || from.contains("postmaster@outlook.com")
    {
        return Family::Exchange;
    }
    if notice.contains("was not delivered to:") && notice.contains("because:")
        || mailer.contains("lotus")
        || mailer.contains("domino")
        || notice.contains("domino directory")
    {
        return Family::Domino;
    }
    if notice.contains("this is the qmail-send program") || notice.contains("qmail-send program") {
        return Family::Qmail;
    }
    if notice.contains("this is the mail system at host")
        || notice.contains("the mail system\n")
        || report
            .status_parts
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("x-postfix"))
    {
        return Family::Postfix;
    }
    if has("x-failed-recipients")
        || notice.contains("the following address(es) failed")
        || notice.contains("this message was created automatically by mail delivery software")
    {
        return Family::Exim;
    }
    if notice.contains("transcript of session follows")
        || notice.contains("the following addresses had permanent fatal errors")
        || notice.contains("original message was received at")
        || subject.starts_with("returned mail:")
    {
        return Family::Sendmail;
    }
    if mailer.contains("courier") || notice.contains("courier mail server") {
        return Family::Courier;
    }
    if notice.contains("hi! this is the mailer-daemon")
        || notice.contains("opensmtpd")
        || subject.starts_with("delivery status notification: ")
    {
        return Family::OpenSmtpd;
    }
    if notice.contains("this report relates to a message you sent")
        || from.contains("internet mail delivery")
        || mailer.contains("messaging server")
    {
        return Family::MessagingServer;
    }
    if mailer.contains("imail") || subject.trim() == "undeliverable mail" {
        return Family::IMail;
    }
    if notice.contains("mailfoundry") {
        return Family::MailFoundry;
    }
    if [
        "mcafee",
        "trend micro",
        "interscan",
        "barracuda",
        "mimecast",
        "messagelabs",
        "symantec",
        "mxlogic",
        "surfcontrol",
    ]
    .iter()
    .any(|g| mailer.contains(g) || notice.contains(g) || from.contains(g))
    {
        return Family::Gateway;
    }
    if !report.status_parts.is_empty() || report.report_type.as_deref() == Some("delivery-status") {
        return Family::Dsn;
    }
    Family::Unknown
}

/// The addresses a free-text notice names as failed recipients, by the
/// layouts producers use, in the order the notice names them:
/// - the address begins its line (Postfix `<a@b>: …`, qmail `<a@b>:`,
///   Exim's indented address, Exchange's and Gmail's lists);
/// - Sendmail's status lines `550 <a@b>... User unknown` and the
///   transcript's `>>> RCPT To:<a@b>`;
/// - a label and an address in angle brackets (`Recipient: <a@b>`,
///   `Could not be delivered to: <a@b>`);
/// - a line that holds nothing but addresses (`<a@b>, <c@d>`).
pub fn named_in_text(notice: &str) -> Vec<scan::Found> {
    scan::addresses(notice)
        .into_iter()
        .filter(|f| {
            f.leads_line || sendmail_line(notice, f.at) || labelled(notice, f.at) || list_line(notice, f.at)
        })
        .collect()
}

/// The line around `at` is a list of addresses and nothing else.
fn list_line(text: &str, at: usize) -> bool {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[start..end];
    let mut rest = line.to_string();
    for f in scan::addresses(line) {
        rest = rest.replacen(&f.addr, "", 1);
    }
    rest.chars().all(|c| c.is_whitespace() || "<>,;\"'".contains(c))
}

fn line_before(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    &text[start..at]
}

/// `550 <a@b>...`, `550 5.1.1 a@b...`, `>>> RCPT To:<a@b>`.
fn sendmail_line(text: &str, at: usize) -> bool {
    let before = line_before(text, at).trim_start();
    let rest = &text[at..];
    let quoted_dots = rest
        .split(['\n', ' '])
        .next()
        .is_some_and(|w| w.trim_end_matches('>').ends_with("..."));
    let code_lead = before.len() >= 3
        && before.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && before[3..]
            .trim_start_matches(['-', ' '])
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .trim()
            .trim_end_matches('<')
            .is_empty();
    let rcpt = before
        .to_ascii_lowercase()
        .trim_end_matches('<')
        .trim_end()
        .ends_with("rcpt to:");
    (code_lead && quoted_dots) || rcpt && before.starts_with(">>>")
}

/// A short label, a colon and the address in angle brackets.
fn labelled(text: &str, at: usize) -> bool {
    let before = line_before(text, at);
    let Some(label) = before.trim_start().strip_suffix('<') else {
        return false;
    };
    let label = label.trim_end();
    let Some(words) = label.strip_suffix(':') else {
        return false;
    };
    let lower = words.to_ascii_lowercase();
    !words.is_empty()
        && words.len() <= 40
        && words.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '-')
        && !lower.trim().ends_with("id")
        && ![
            "in-reply-to",
            "references",
            "from",
            "sender",
            "reply-to",
            "return-path",
            "to",
            "cc",
            "mail from",
        ]
        .contains(&lower.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(raw: &str) -> Family {
        recognise(&Report::read(raw.as_bytes()))
    }

    fn named(notice: &str) -> Vec<String> {
        named_in_text(notice).into_iter().map(|f| f.addr).collect()
    }

    #[test]
    fn producers_are_told_by_structure() {
        assert_eq!(
            family(
                "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\nHi. This is the qmail-send program at x.example.\n"
            ),
            Family::Qmail
        );
        assert_eq!(
            family(
                "From: Mail Delivery System <Mailer-Daemon@x.example>\nX-Failed-Recipients: a@b.example\n\nThis message was created automatically by mail delivery software.\n"
            ),
            Family::Exim
        );
        assert_eq!(
            family(
                "From: MAILER-DAEMON@x.example (Mail Delivery System)\n\nThis is the mail system at host x.example.\n"
            ),
            Family::Postfix
        );
        assert_eq!(
            family(
                "From: Mail Delivery Subsystem <MAILER-DAEMON@x.example>\nSubject: Returned mail: see transcript for details\n\n   ----- Transcript of session follows -----\n"
            ),
            Family::Sendmail
        );
        assert_eq!(
            family(
                "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nX-Failed-Recipients: g@groups.example\n\nHallo,\n * a\n * b\n * c\n * d\n\nGoogle Groups\n"
            ),
            Family::GoogleGroups
        );
        assert_eq!(
            family(
                "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n\nDelivery to the following recipient failed permanently:\n"
            ),
            Family::Gmail
        );
        assert_eq!(
            family(
                "From: list-admin@x.example\nX-Mailman-Version: 2.1\nSubject: Your message awaits\n\nYou are not allowed to post.\n"
            ),
            Family::ListManager
        );
        assert_eq!(
            family("From: friend@example.org\nSubject: lunch\n\nSee you.\n"),
            Family::Unknown
        );
    }

    #[test]
    fn google_groups_knows_by_its_bullets_in_any_language() {
        let refused = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nX-Failed-Recipients: g@groups.example\n\n\
Merhaba,\n\n * bir\n * iki\n * üç\n * dört\n\nGoogle Groups\n";
        let r = Report::read(refused.as_bytes());
        assert_eq!(recognise(&r).knows(&r).map(|k| k.0), Some(Class::UserReject));
        let other = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nX-Failed-Recipients: g@groups.example\n\n\
مرحبا\n\nGoogle Groups\n";
        let r = Report::read(other.as_bytes());
        assert_eq!(recognise(&r).knows(&r).map(|k| k.0), Some(Class::Transient));
        let r = Report::read(b"From: x@y.example\n\nhi\n");
        assert_eq!(recognise(&r).knows(&r), None);
    }

    #[test]
    fn recipients_by_layout() {
        assert_eq!(
            named("<a@b.example>: host mx said: 550 unknown\n<c@d.example>: 552 full\n"),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(
            named(
                "... while talking to mx.example:\n>>> RCPT To:<a@b.example>\n<<< 550 <a@b.example>, User Unknown\n550 <a@b.example>... User unknown\n>>> RCPT To:<c@b.example>\n550 5.1.1 c@b.example... User unknown\n"
            ),
            ["a@b.example", "a@b.example", "c@b.example", "c@b.example"]
        );
        assert_eq!(
            named("    Recipient: <a@b.example>\n    Could not be delivered to: <c@d.example>\n"),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(
            named(
                "The following addresses had permanent fatal errors:\n<a@b.example>, <c@d.example>,\n    e@f.example\n"
            ),
            ["a@b.example", "c@d.example", "e@f.example"]
        );
        assert!(named("From: <s@x.example>\nsent by s@x.example to nobody\n").is_empty());
        assert!(named("Message-id: <1234@mx.example>\nOriginal-Message-ID: <5@mx.example>\n").is_empty());
    }
}
