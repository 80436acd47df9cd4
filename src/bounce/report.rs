//! Reading a report: the MIME tree (mail-parser) flattened into what the
//! classifier looks at — the report's own headers, the human-readable
//! notice, the machine-readable parts (delivery-status, feedback-report) and
//! the headers of the returned original message.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::scan;

/// Bounded so that a huge attachment can't make scanning slow; bounce
/// notices are a few kilobytes.
const NOTICE_MAX: usize = 64 * 1024;
const PART_MAX: usize = 256 * 1024;

#[derive(Default, Debug)]
pub struct Report {
    /// Top-level header fields, names lower-cased, values unfolded.
    pub headers: Vec<(String, String)>,
    pub subject: String,
    /// `report-type` of a top-level `multipart/report`, lower-cased.
    pub report_type: Option<String>,
    /// The human-readable text, without the copy of the original message.
    pub notice: String,
    /// Bodies of `message/delivery-status` parts.
    pub status_parts: Vec<String>,
    /// Bodies of `message/feedback-report` parts.
    pub feedback_parts: Vec<String>,
    /// Header fields of the returned original message, when there is one.
    pub original: Vec<(String, String)>,
    /// Delivery-status parts of a bounce that came forwarded inside another
    /// message; used when the outer message has none of its own.
    forwarded_status: Vec<String>,
    /// What followed the notice when the original message was copied into
    /// the text part: a returned message, or a whole report forwarded
    /// inside this one.
    pub inline_original: String,
}

impl Report {
    pub fn read(raw: &[u8]) -> Report {
        let raw = skip_mbox_line(raw);
        let parser = MessageParser::default();
        let Some(message) = parser.parse(raw) else {
            // No header block at all: keep the text so it can still be judged.
            return Report {
                notice: lossy(raw, NOTICE_MAX),
                ..Report::default()
            };
        };
        let mut report = Report {
            headers: header_fields(&message),
            subject: message.subject().unwrap_or_default().to_string(),
            ..Report::default()
        };
        if let Some(ct) = message.content_type()
            && ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        {
            report.report_type = ct.attribute("report-type").map(|t| t.trim().to_ascii_lowercase());
        }
        for part in &message.parts {
            report.take(&parser, part);
        }
        if report.status_parts.is_empty() {
            report.status_parts = std::mem::take(&mut report.forwarded_status);
        }
        report.split_inline_original();
        report
    }

    /// The first value of a top-level header field.
    pub fn header(&self, name: &str) -> Option<&str> {
        field(&self.headers, name)
    }

    pub fn original_header(&self, name: &str) -> Option<&str> {
        field(&self.original, name)
    }

    fn take(&mut self, parser: &MessageParser, part: &MessagePart<'_>) {
        let (ctype, subtype) = part
            .content_type()
            .map(|ct| {
                (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(nested) => {
                if self.original.is_empty() {
                    self.original = header_fields(nested);
                }
                for inner in &nested.parts {
                    let status = inner.content_type().is_some_and(|ct| {
                        ct.ctype().eq_ignore_ascii_case("message")
                            && ct
                                .subtype()
                                .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
                    });
                    if status {
                        self.forwarded_status.push(lossy(inner.contents(), PART_MAX));
                    }
                }
            }
            PartType::Text(text) | PartType::Html(text) => match (ctype.as_str(), subtype.as_str()) {
                ("text", "rfc822-headers") | ("message", _) => {
                    self.take_machine_part(parser, &subtype, text.as_bytes())
                }
                (_, "html") => self.push_notice(&scan::strip_html(text)),
                _ => self.push_notice(text),
            },
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                if ctype == "message" || subtype == "rfc822-headers" {
                    self.take_machine_part(parser, &subtype, bytes);
                } else if ctype == "multipart" || ctype == "text" {
                    // A multipart without a usable boundary, or text the
                    // parser could not place: still the notice's words.
                    self.push_notice(&decode(bytes, None));
                }
            }
        }
    }

    fn take_machine_part(&mut self, parser: &MessageParser, subtype: &str, bytes: &[u8]) {
        match subtype {
            "delivery-status" | "global-delivery-status" => self.status_parts.push(lossy(bytes, PART_MAX)),
            "feedback-report" => self.feedback_parts.push(lossy(bytes, PART_MAX)),
            "rfc822" | "global" | "rfc822-headers" | "global-headers" | "partial" => {
                if self.original.is_empty()
                    && let Some(headers) = parser.parse_headers(bytes)
                {
                    self.original = header_fields(&headers);
                }
            }
            _ => {}
        }
    }

    fn push_notice(&mut self, text: &str) {
        if self.notice.len() >= NOTICE_MAX {
            return;
        }
        if !self.notice.is_empty() {
            self.notice.push('\n');
        }
        let room = NOTICE_MAX - self.notice.len();
        self.notice.push_str(prefix(text, room));
    }

    /// Bounces that are one text part carry the original message after a
    /// marker line or as a bare header block; what follows is not the notice.
    fn split_inline_original(&mut self) {
        let Some(at) = scan::original_starts(&self.notice) else {
            return;
        };
        let rest = self.notice[at..].to_string();
        self.notice.truncate(at);
        self.inline_original = scan::header_block(&rest);
        if self.original.is_empty() {
            // The header block begins at the first header-looking line.
            let block = scan::header_block(&rest);
            if let Some(headers) = MessageParser::default().parse_headers(block.as_bytes()) {
                self.original = header_fields(&headers);
            }
        }
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every header field of a message, unfolded, as raw text (values are
/// scanned for addresses and keywords, which RFC 2047 never hides).
fn header_fields(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .headers_raw()
        .map(|(name, value)| (name.to_ascii_lowercase(), scan::unfold(value)))
        .collect()
}

/// The messages of a file: the file itself, or each message of an mbox
/// (one that starts with a `From sender date` line; later messages start
/// at the next such line, whose date ends in the year).
pub fn mbox_messages(raw: &[u8]) -> Vec<&[u8]> {
    if !raw.starts_with(b"From ") {
        return vec![raw];
    }
    let from_line = |line: &[u8]| {
        line.starts_with(b"From ")
            && line
                .trim_ascii_end()
                .rsplit(|b| *b == b' ')
                .next()
                .is_some_and(|year| year.len() == 4 && year.iter().all(u8::is_ascii_digit))
    };
    let mut starts = vec![0];
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if at > 0 && from_line(line) {
            starts.push(at);
        }
        at += line.len();
    }
    starts.push(raw.len());
    starts.windows(2).map(|w| &raw[w[0]..w[1]]).collect()
}

/// An mbox file starts with `From sender date`, which is no header field.
fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(nl) => &raw[nl + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

fn lossy(bytes: &[u8], max: usize) -> String {
    decode(&bytes[..bytes.len().min(max)], None)
}

/// Text of a part the parser left as bytes. Japanese servers write
/// ISO-2022-JP into delivery-status fields, which is 7-bit and so passes
/// for ASCII; its escape sequences give it away.
fn decode(bytes: &[u8], charset: Option<&str>) -> String {
    let jis = bytes.windows(2).any(|w| w == b"\x1b$");
    let encoding = if jis {
        Some(encoding_rs::ISO_2022_JP)
    } else {
        charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
    };
    match encoding {
        Some(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: sender@example.org\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
<rcpt@example.net>: host mx.example.net said: 550 5.1.1 User unknown\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.jp\r\n\
\r\n\
Final-Recipient: rfc822; rcpt@example.net\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
--B\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: sender@example.org\r\n\
To: rcpt@example.net\r\n\
Subject: hello\r\n\
\r\n\
body\r\n\
--B--\r\n";

    #[test]
    fn reads_the_parts_of_a_dsn() {
        let r = Report::read(DSN.as_bytes());
        assert_eq!(r.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(r.subject, "Undelivered Mail Returned to Sender");
        assert!(r.notice.contains("550 5.1.1 User unknown"), "{}", r.notice);
        assert_eq!(r.status_parts.len(), 1);
        assert!(r.status_parts[0].contains("Final-Recipient: rfc822; rcpt@example.net"));
        assert_eq!(r.original_header("to"), Some("rcpt@example.net"));
        assert_eq!(r.header("TO"), Some("sender@example.org"));
    }

    #[test]
    fn cuts_an_inline_original_from_the_notice() {
        let raw = "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n\
Hi. This is the qmail-send program.\n\n<a@b.example>:\nSorry, no mailbox here by that name.\n\n\
--- Below this line is a copy of the message.\n\nReturn-Path: <s@x.example>\nTo: a@b.example\nSubject: x\n\nhello\n";
        let r = Report::read(raw.as_bytes());
        assert!(r.notice.contains("no mailbox here"));
        assert!(!r.notice.contains("Return-Path"));
        assert_eq!(r.original_header("to"), Some("a@b.example"));
    }

    #[test]
    fn survives_what_is_no_message() {
        for raw in [
            &b""[..],
            b"\xff\xfe\x00",
            b"From x\n",
            b"just text without headers",
            b"A: b\n\n--",
        ] {
            let _ = Report::read(raw);
        }
        let r = Report::read(b"From MAILER-DAEMON Mon Sep 20 19:29:27 2021\nSubject: hi\n\nbody\n");
        assert_eq!(r.subject, "hi");
    }

    #[test]
    fn decodes_jis_left_in_a_binary_part() {
        assert_eq!(decode(b"\x1b$B%f!<%6!<\x1b(B", None), "ユーザー");
        assert_eq!(decode(b"plain", None), "plain");
        assert_eq!(decode(b"\xc4\xe3", Some("gb2312")), "你");
    }

    #[test]
    fn splits_an_mbox_at_its_from_lines() {
        let one = b"Subject: x\n\nFrom here on, text.\n";
        assert_eq!(mbox_messages(one), vec![&one[..]]);
        let mbox = b"From MAILER-DAEMON  Thu Jul  2 12:05:05 2020\nSubject: a\n\nFrom here on\n\
From double-bounce@mx.example  Thu Jul  2 12:05:05 2020\nSubject: b\n\nbody\n";
        let parts = mbox_messages(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with(b"From here on\n"));
        assert!(parts[1].starts_with(b"From double-bounce@"));
    }

    #[test]
    fn prefix_respects_characters() {
        assert_eq!(prefix("日本", 4), "日");
        assert_eq!(prefix("ab", 5), "ab");
    }
}
