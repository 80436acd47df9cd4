//! One task's messages: [`PreparedTask::new`] once per task (template
//! rewritten for click tracking and compiled, attachments encoded, headers
//! that never change written), then [`PreparedTask::build`] per recipient
//! (render, pixel and unsubscribe link, MIME, DKIM) — the exact bytes to
//! hand to SMTP, with [`PreparedTask::envelope_sender`] as `MAIL FROM`.
//!
//! The shape of a message (docs/interface.md, "Messages"):
//!
//! ```text
//! DKIM-Signature: (RSA)            ┐ one per key of the sending domain
//! DKIM-Signature: (Ed25519)        ┘
//! From, To, Reply-To, Subject, Date, Message-ID, MIME-Version,
//! List-Unsubscribe, List-Unsubscribe-Post       (subs_link=1)
//! multipart/mixed                               (with attachments)
//! ├─ multipart/alternative
//! │  ├─ text/plain; charset=utf-8               (template's encoding)
//! │  └─ text/html; charset=utf-8                (template's encoding)
//! └─ application/pdf; name=… (base64) …
//! ```
//!
//! The text part is the template's own, or, when it has none, the text the
//! rendered HTML shows ([`crate::mail::text`]): every message has one, as
//! readers without HTML and spam filters expect (SpamAssassin's
//! `MIME_HTML_ONLY`). The unsubscribe footer speaks the template's
//! language ([`crate::mail::footer`]).

use std::fmt::Write;
use std::sync::Arc;

use jiff::ZonedDateTime;
use minijinja::Value;
use minijinja::value::Object;

use crate::domain::email::EmailAddress;
use crate::domain::templates::{CompiledTemplate, Encoding, Part, Recipient, TemplateError};
use crate::mail::dkim::{DkimError, DomainSigner};
use crate::mail::footer::{self, FooterLanguage, Language};
use crate::mail::links::{CLICK_URLS, rewrite_hrefs};
use crate::mail::mime;
use crate::mail::text::TextDeriver;
use crate::mail::tokens::{CLICK_PATH, Claim, LinkSigner, OPEN_PATH, UNSUBSCRIBE_PATH};

/// What a task sends (`track_status`, docs/vendor-api.md A.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    Off,
    /// `1`: an open pixel.
    Opens,
    /// `2`: an open pixel and every link through a click URL.
    OpensAndClicks,
}

impl Tracking {
    pub fn from_status(status: i64) -> Option<Tracking> {
        match status {
            0 => Some(Tracking::Off),
            1 => Some(Tracking::Opens),
            2 => Some(Tracking::OpensAndClicks),
            _ => None,
        }
    }
}

/// An attachment's bytes as the engine read them from the file store.
pub struct AttachmentFile<'a> {
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub content: &'a [u8],
}

/// Everything about a task's messages that is the same for every recipient.
pub struct TaskMessage<'a> {
    pub subject: &'a str,
    pub html: &'a str,
    /// Empty: the text part is derived from each message's HTML.
    pub text: &'a str,
    /// Transfer encoding of the text and HTML parts.
    pub encoding: Encoding,
    pub attachments: &'a [AttachmentFile<'a>],
    /// `send_fullname`; empty for none.
    pub sender_name: &'a str,
    /// `replyto`; `None` or empty for none.
    pub reply_to: Option<&'a str>,
    /// `subs_link=1`: List-Unsubscribe headers, and a visible link in each
    /// part whose template doesn't place `{{ unsubscribe_url }}` itself.
    pub unsubscribe_link: bool,
    /// The language of that link's sentence: the task's `footer_language`,
    /// else its customer's ([`FooterLanguage::or`]); `Auto` follows the template.
    pub footer_language: FooterLanguage,
    pub tracking: Tracking,
    /// Base of pixel, click and unsubscribe URLs: [`crate::mail::links::link_base`].
    pub link_base: &'a str,
    /// Right-hand side of Message-IDs (`QUNFA_HELO_NAME`).
    pub helo_name: &'a str,
    /// Domain of the VERP envelope sender (`QUNFA_BOUNCE_DOMAIN`).
    pub bounce_domain: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    #[error("reply-to '{0}' is not an e-mail address")]
    ReplyTo(String),
    #[error("link base '{0}' is not an http(s) URL of plain characters")]
    LinkBase(String),
    #[error("'{0}' is not a domain name")]
    Domain(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    #[error("'{0}' is not an e-mail address")]
    Address(String),
    #[error(transparent)]
    Dkim(#[from] DkimError),
    #[error("cannot write the date: {0}")]
    Date(String),
}

/// What the click URLs of a message are made from, shared by its messages.
#[derive(Debug)]
struct Links {
    base: String,
    signer: LinkSigner,
    count: u32,
}

/// The click URLs of one message, computed as the template asks for them
/// (`{{ __qunfa_click[N] }}`): one HMAC per link shown.
#[derive(Debug)]
struct ClickUrls {
    links: Arc<Links>,
    delivery: i64,
}

impl Object for ClickUrls {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let link = u32::try_from(key.as_usize()?).ok()?;
        if !(1..=self.links.count).contains(&link) {
            return None;
        }
        let mut url = self.links.url(CLICK_PATH);
        self.links.signer.sign_into(
            Claim::Click {
                delivery: self.delivery,
                link,
            },
            &mut url,
        );
        // Base and token are URL characters only: nothing to escape.
        Some(Value::from_safe_string(url))
    }
}

impl Links {
    /// `{base}{path}`, with room for a token.
    fn url(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.base.len() + path.len() + 32);
        url.push_str(&self.base);
        url.push_str(path);
        url
    }

    fn signed_url(&self, path: &str, claim: Claim) -> String {
        let mut url = self.url(path);
        self.signer.sign_into(claim, &mut url);
        url
    }
}

/// A task ready to build its messages.
pub struct PreparedTask {
    template: CompiledTemplate,
    link_table: Vec<String>,
    links: Arc<Links>,
    encoding: Encoding,
    tracking: Tracking,
    unsubscribe_headers: bool,
    html_footer: bool,
    text_footer: bool,
    footer_language: Language,
    /// Derives the text part of each message (a template without text).
    text_deriver: TextDeriver,
    /// `"Name" ` or encoded words, or empty.
    from_phrase: Vec<u8>,
    /// `Reply-To: …\r\n`, or empty.
    reply_to_line: String,
    /// Each attachment's part: headers, blank line, base64 lines.
    attachments: Vec<Vec<u8>>,
    attachments_len: usize,
    helo_name: String,
    bounce_domain: String,
}

impl std::fmt::Debug for PreparedTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTask")
            .field("links", &self.link_table.len())
            .field("attachments", &self.attachments.len())
            .field("tracking", &self.tracking)
            .finish_non_exhaustive()
    }
}

/// A host name (the settings checked it; a machine's name may be one label).
fn host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Characters a link base may hold: enough for any host, port and path,
/// and none that HTML or a header would need escaped.
fn plain_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://"))
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/[]@!$()*+,;=%".contains(&b))
}

impl PreparedTask {
    /// Prepares a task's messages; `link_secret` is `App::link_secret`.
    pub fn new(task: &TaskMessage<'_>, link_secret: &[u8; 32]) -> Result<PreparedTask, PrepareError> {
        let base = task.link_base.trim_end_matches('/');
        if !plain_url(base) {
            return Err(PrepareError::LinkBase(task.link_base.to_string()));
        }
        for name in [task.helo_name, task.bounce_domain] {
            if !host_name(name) {
                return Err(PrepareError::Domain(name.to_string()));
            }
        }
        let reply_to_line = match task.reply_to.map(str::trim).filter(|r| !r.is_empty()) {
            None => String::new(),
            Some(r) => {
                let a = EmailAddress::parse(r).ok_or_else(|| PrepareError::ReplyTo(r.to_string()))?;
                format!("Reply-To: {}\r\n", a.ascii())
            }
        };

        // Canonical line breaks once, so the per-message encoders meet CRLF.
        let html = crlf(task.html);
        let text = crlf(task.text);
        let (html, link_table) = if task.tracking == Tracking::OpensAndClicks {
            let r = rewrite_hrefs(&html);
            (r.source, r.links)
        } else {
            (html, Vec::new())
        };
        let template = CompiledTemplate::compile_with_internal(task.subject, &html, &text, &[CLICK_URLS])?;
        let has_text = !text.is_empty();
        let html_footer = task.unsubscribe_link && !template.uses(Part::Html, "unsubscribe_url");

        let mut attachments = Vec::with_capacity(task.attachments.len());
        for a in task.attachments {
            let mut part = Vec::with_capacity(mime::base64_len(a.content.len()) + 256);
            mime::attachment_headers(&mut part, &mime::safe_content_type(a.content_type), a.file_name);
            part.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
            mime::base64_lines(a.content, &mut part);
            attachments.push(part);
        }

        Ok(PreparedTask {
            html_footer,
            // A derived text shows the HTML's own link when the HTML places one.
            text_footer: if has_text {
                task.unsubscribe_link && !template.uses(Part::Text, "unsubscribe_url")
            } else {
                html_footer
            },
            footer_language: footer::resolve(task.footer_language, task.subject, task.html, task.text),
            text_deriver: TextDeriver::default(),
            template,
            links: Arc::new(Links {
                base: base.to_string(),
                signer: LinkSigner::new(link_secret),
                count: u32::try_from(link_table.len()).unwrap_or(u32::MAX),
            }),
            link_table,
            encoding: task.encoding,
            tracking: task.tracking,
            unsubscribe_headers: task.unsubscribe_link,
            from_phrase: mime::display_name(task.sender_name),
            reply_to_line,
            attachments_len: attachments.iter().map(Vec::len).sum(),
            attachments,
            helo_name: task.helo_name.to_ascii_lowercase(),
            bounce_domain: task.bounce_domain.to_ascii_lowercase(),
        })
    }

    /// The task's tracked links in document order: `links()[0]` is link id
    /// 1 of the click tokens. Empty unless tracking is `OpensAndClicks`.
    pub fn links(&self) -> &[String] {
        &self.link_table
    }

    /// `MAIL FROM` of a delivery: `bounce+{token}@{bounce domain}` (VERP),
    /// so a later bounce names the delivery it belongs to.
    pub fn envelope_sender(&self, delivery: i64) -> String {
        self.links.signer.verp_address(delivery, &self.bounce_domain)
    }

    /// The message to `recipient` (whose `unsubscribe_url` is ignored: it
    /// is made here) from the mailbox `from`, signed by `signer` (the
    /// mailbox's domain), for the delivery row `delivery`, dated `now`.
    pub fn build(
        &self,
        from: &str,
        signer: &DomainSigner,
        recipient: &Recipient<'_>,
        delivery: i64,
        now: &ZonedDateTime,
    ) -> Result<Vec<u8>, BuildError> {
        let from = EmailAddress::parse(from).ok_or_else(|| BuildError::Address(from.to_string()))?;
        let to = EmailAddress::parse(recipient.email)
            .ok_or_else(|| BuildError::Address(recipient.email.to_string()))?;

        let unsubscribe_url = self
            .links
            .signed_url(UNSUBSCRIBE_PATH, Claim::Unsubscribe { delivery });
        let mut extra = vec![(
            "unsubscribe_url",
            Value::from_safe_string(unsubscribe_url.clone()),
        )];
        if !self.link_table.is_empty() {
            extra.push((
                CLICK_URLS,
                Value::from_object(ClickUrls {
                    links: self.links.clone(),
                    delivery,
                }),
            ));
        }
        let personal = Recipient {
            unsubscribe_url: &unsubscribe_url,
            ..recipient.clone()
        };
        let rendered = self.template.render_with(&personal, extra)?;

        let mut text = match rendered.text {
            Some(text) => text,
            None => self
                .text_deriver
                .derive(&rendered.html, rendered.html_values.as_deref()),
        };
        if self.text_footer {
            footer::push_text_footer(&mut text, self.footer_language, &unsubscribe_url);
        }
        let mut html = rendered.html;
        let mut tail = String::new();
        if self.html_footer {
            tail.push_str(&footer::html_footer(self.footer_language, &unsubscribe_url));
        }
        if self.tracking != Tracking::Off {
            let pixel = self.links.signed_url(OPEN_PATH, Claim::Open { delivery });
            let _ = write!(tail, "<img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\">");
        }
        if !tail.is_empty() {
            html.insert_str(body_end(&html), &tail);
        }

        let date = jiff::fmt::rfc2822::to_string(now).map_err(|e| BuildError::Date(e.to_string()))?;
        let unique = format!("{delivery:x}.{:x}", now.timestamp().as_microsecond());
        let body_len = mime::base64_len(html.len()) + mime::base64_len(text.len());
        // The DKIM headers are put in front at the end: room for them now.
        let mut out = Vec::with_capacity(2048 + body_len + self.attachments_len + 1024);

        out.extend_from_slice(b"From: ");
        if self.from_phrase.is_empty() {
            out.extend_from_slice(from.ascii().as_bytes());
        } else {
            out.extend_from_slice(&self.from_phrase);
            out.push(b'<');
            out.extend_from_slice(from.ascii().as_bytes());
            out.push(b'>');
        }
        for line in ["\r\nTo: ", to.ascii(), "\r\n", self.reply_to_line.as_str()] {
            out.extend_from_slice(line.as_bytes());
        }
        mime::text_header(&mut out, "Subject", &rendered.subject);
        for line in [
            "Date: ",
            date.as_str(),
            "\r\nMessage-ID: <",
            unique.as_str(),
            "@",
            self.helo_name.as_str(),
            ">\r\nMIME-Version: 1.0\r\n",
        ] {
            out.extend_from_slice(line.as_bytes());
        }
        if self.unsubscribe_headers {
            for line in [
                "List-Unsubscribe: <",
                unsubscribe_url.as_str(),
                ">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            ] {
                out.extend_from_slice(line.as_bytes());
            }
        }

        // Boundaries start with `=_`, which neither base64 nor
        // quoted-printable ever writes: no body can contain one.
        let mixed = format!("=_qunfa_m_{unique}");
        if !self.attachments.is_empty() {
            multipart_header(&mut out, "mixed", &mixed);
            first_part(&mut out, &mixed);
        }
        let alternative = format!("=_qunfa_a_{unique}");
        multipart_header(&mut out, "alternative", &alternative);
        first_part(&mut out, &alternative);
        self.text_part(&mut out, "text/plain", &text);
        next_part(&mut out, &alternative);
        self.text_part(&mut out, "text/html", &html);
        close_parts(&mut out, &alternative);
        if !self.attachments.is_empty() {
            for part in &self.attachments {
                next_part(&mut out, &mixed);
                out.extend_from_slice(part);
            }
            close_parts(&mut out, &mixed);
        }

        let signatures = signer.sign(&out)?;
        out.splice(0..0, signatures.into_bytes());
        Ok(out)
    }

    /// A text part's headers and its body in the template's encoding.
    fn text_part(&self, out: &mut Vec<u8>, mime_type: &str, body: &str) {
        for s in [
            "Content-Type: ",
            mime_type,
            "; charset=utf-8\r\nContent-Transfer-Encoding: ",
            self.encoding.as_str(),
            "\r\n\r\n",
        ] {
            out.extend_from_slice(s.as_bytes());
        }
        match self.encoding {
            Encoding::Base64 => mime::base64_lines(body.as_bytes(), out),
            Encoding::QuotedPrintable => mime::quoted_printable(body.as_bytes(), out),
        }
    }
}

fn multipart_header(out: &mut Vec<u8>, subtype: &str, boundary: &str) {
    for s in [
        "Content-Type: multipart/",
        subtype,
        ";\r\n boundary=\"",
        boundary,
        "\"\r\n\r\n",
    ] {
        out.extend_from_slice(s.as_bytes());
    }
}

/// The first boundary line, right after the multipart's headers.
fn first_part(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A boundary line after a part. Every part written here ends with CRLF;
/// the CRLF before `--` belongs to the delimiter (RFC 2046 5.1.1), so a
/// part keeps its last line break.
fn next_part(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"\r\n");
    first_part(out, boundary);
}

fn close_parts(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
}

/// Where the pixel and the unsubscribe link go: before the last `</body`,
/// else before the last `</html`, else at the end.
fn body_end(html: &str) -> usize {
    rfind_ignore_case(html, "</body")
        .or_else(|| rfind_ignore_case(html, "</html"))
        .unwrap_or(html.len())
}

fn rfind_ignore_case(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `s` with every line break as CRLF.
fn crlf(s: &str) -> String {
    if !s.contains('\n') && !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pixel_goes_before_the_last_body_end_tag() {
        assert_eq!(body_end("<html><body>x</BODY></html>"), 13);
        assert_eq!(body_end("<body></body><p></body>"), 16);
        assert_eq!(body_end("<html>x</html>"), 7);
        assert_eq!(body_end("x"), 1);
    }

    #[test]
    fn line_breaks_become_crlf() {
        assert_eq!(crlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
        assert_eq!(crlf("plain"), "plain");
    }

    #[test]
    fn prepared_tasks_and_signers_are_shared_by_the_workers() {
        fn shared<T: Send + Sync>() {}
        shared::<PreparedTask>();
        shared::<DomainSigner>();
    }

    #[test]
    fn tracking_levels() {
        assert_eq!(Tracking::from_status(2), Some(Tracking::OpensAndClicks));
        assert_eq!(Tracking::from_status(3), None);
    }
}
