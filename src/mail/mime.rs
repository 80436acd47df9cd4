//! The MIME pieces a message is written from: transfer encodings of bodies
//! (base64, quoted-printable), header text in RFC 2047 encoded words, file
//! names in RFC 2231 parameters. Every line written ends in CRLF and stays
//! within 78 characters (bodies 76), far below SMTP's 998.
//!
//! Written here rather than taken from mail-builder (0.4, already in the
//! tree through mail-auth): it picks a part's transfer encoding itself while
//! the template decides ours, encodes file names in parameters with RFC 2047
//! only (not RFC 2231), and its quoted-printable encoder allocates per
//! encoded byte; the engine writes 100,000s of messages per task.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Longest line of a header written here, CRLF not counted (RFC 5322's
/// recommended limit).
const HEADER_LINE: usize = 78;
/// Bytes of text per encoded word: 39 bytes are 52 base64 characters, so
/// `=?UTF-8?B?…?=` is 64 and fits a line after any header name used here.
const WORD_BYTES: usize = 39;
/// Bytes of input per base64 line of 76 characters.
const BASE64_LINE_INPUT: usize = 57;
/// Longest quoted-printable line, the soft-break `=` included.
const QP_LINE: usize = 76;

/// Appends `data` in base64, 76 characters a line, each line ending in CRLF.
pub fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(base64_len(data.len()));
    for chunk in data.chunks(BASE64_LINE_INPUT) {
        let start = out.len();
        out.resize(start + 76, 0);
        let n = STANDARD
            .encode_slice(chunk, &mut out[start..])
            .expect("76 bytes hold 57 bytes in base64");
        out.truncate(start + n);
        out.extend_from_slice(b"\r\n");
    }
}

/// The length of [`base64_lines`]' output for `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4 + n.div_ceil(BASE64_LINE_INPUT) * 2
}

/// Appends `text` in quoted-printable (RFC 2045 6.7), as a text body: its
/// line breaks (LF or CRLF) become CRLF, other bytes outside printable
/// ASCII, `=`, white space before a line break and a `.` that starts a line
/// (some relays mishandle it) are encoded, and lines are soft-broken to
/// stay within 76 characters. The output ends with a line break.
pub fn quoted_printable(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(text.len() + text.len() / 8 + 2);
    let mut col = 0;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let line_break = match b {
            b'\n' => Some(1),
            b'\r' if text.get(i + 1) == Some(&b'\n') => Some(2),
            _ => None,
        };
        if let Some(len) = line_break {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += len;
            continue;
        }
        let at_line_end = match text.get(i + 1) {
            None | Some(b'\n') => true,
            Some(b'\r') => text.get(i + 2) == Some(&b'\n'),
            _ => false,
        };
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !at_line_end,
            b'.' => col > 0,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // Room for the token and, unless the line ends right after it, a soft break.
        let room = if at_line_end { QP_LINE } else { QP_LINE - 1 };
        if col + width > room {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
        i += 1;
    }
    if col > 0 {
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the header `name: text` for unstructured text (a subject):
/// as it is when it is short plain ASCII (folded at spaces), else as
/// RFC 2047 encoded words, one a line.
pub fn text_header(out: &mut Vec<u8>, name: &str, text: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    if !plain_folded(out, name.len() + 2, text) {
        encoded_words(out, text);
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `text` folded at its spaces when it is printable ASCII that needs
/// no encoding and every word fits a line; otherwise writes nothing and
/// answers false.
fn plain_folded(out: &mut Vec<u8>, mut col: usize, text: &str) -> bool {
    let plain = text.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !text.contains("=?")
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && text.split(' ').all(|w| w.len() < HEADER_LINE - 1);
    if !plain {
        return false;
    }
    for (n, word) in text.split(' ').enumerate() {
        if n > 0 {
            if col + 1 + word.len() > HEADER_LINE {
                out.extend_from_slice(b"\r\n");
                col = 0;
            }
            out.push(b' ');
            col += 1;
        }
        out.extend_from_slice(word.as_bytes());
        col += word.len();
    }
    true
}

/// Writes `text` as `=?UTF-8?B?…?=` words of whole characters, separated by
/// a fold (which a reader drops between encoded words).
fn encoded_words(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        return;
    }
    let mut rest = text;
    let mut first = true;
    while !rest.is_empty() {
        let mut cut = rest.len().min(WORD_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (word, tail) = rest.split_at(cut);
        if !first {
            out.extend_from_slice(b"\r\n ");
        }
        out.extend_from_slice(b"=?UTF-8?B?");
        let start = out.len();
        out.resize(start + word.len().div_ceil(3) * 4, 0);
        let n = STANDARD
            .encode_slice(word.as_bytes(), &mut out[start..])
            .expect("room for the word in base64");
        out.truncate(start + n);
        out.extend_from_slice(b"?=");
        first = false;
        rest = tail;
    }
}

/// The display-name part of an address header, ready to be followed by
/// `<address>`: `"Name" ` in a quoted string, RFC 2047 words for any other
/// text, nothing for an empty name.
pub fn display_name(name: &str) -> Vec<u8> {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    let mut out = Vec::with_capacity(name.len() * 2);
    if name.is_empty() {
        return out;
    }
    if name.is_ascii() && name.len() <= 60 {
        out.push(b'"');
        for b in name.bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        encoded_words(&mut out, name);
    }
    out.extend_from_slice(b" ");
    out
}

/// An attachment's `Content-Type` and `Content-Disposition` lines, file
/// name included: RFC 2231 (`filename*=UTF-8''…`, continued over lines when
/// long) in the disposition, which current readers take, and RFC 2047
/// words in the type's `name`, for the readers that only know those.
pub fn attachment_headers(out: &mut Vec<u8>, content_type: &str, file_name: &str) {
    let file_name: String = file_name.chars().filter(|c| !c.is_control()).collect();
    let file_name = if file_name.trim().is_empty() {
        "attachment".to_string()
    } else {
        file_name
    };
    let quotable = file_name.is_ascii() && file_name.len() <= 50;
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b";\r\n name=\"");
    if quotable {
        quoted_content(out, &file_name);
    } else {
        encoded_words(out, &file_name);
    }
    out.extend_from_slice(b"\"\r\nContent-Disposition: attachment;\r\n");
    if quotable {
        out.extend_from_slice(b" filename=\"");
        quoted_content(out, &file_name);
        out.extend_from_slice(b"\"\r\n");
    } else {
        rfc2231_filename(out, &file_name);
    }
}

fn quoted_content(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// ` filename*=UTF-8''%E6…` lines, or ` filename*0*=UTF-8''…;` ` filename*1*=…`
/// when the encoded name is longer than a line holds.
fn rfc2231_filename(out: &mut Vec<u8>, name: &str) {
    const SEGMENT: usize = 54;
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // attribute-char of RFC 2231: a token character other than * ' %.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    if encoded.len() <= SEGMENT {
        out.extend_from_slice(b" filename*=UTF-8''");
        out.extend_from_slice(encoded.as_bytes());
        out.extend_from_slice(b"\r\n");
        return;
    }
    let mut rest = encoded.as_str();
    let mut n = 0;
    while !rest.is_empty() {
        let mut cut = rest.len().min(SEGMENT);
        // Never split a %XX triplet.
        if let Some(pct) = rest[..cut].rfind('%')
            && pct + 3 > cut
        {
            cut = pct;
        }
        let (segment, tail) = rest.split_at(cut);
        let charset = if n == 0 { "UTF-8''" } else { "" };
        let end = if tail.is_empty() { "\r\n" } else { ";\r\n" };
        out.extend_from_slice(format!(" filename*{n}*={charset}{segment}{end}").as_bytes());
        rest = tail;
        n += 1;
    }
}

/// `type/subtype` of a stored attachment when it is one (its parameters
/// dropped, but a charset kept), else `application/octet-stream`.
pub fn safe_content_type(stored: &str) -> String {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let mut params = stored.split(';');
    let essence = params.next().unwrap_or("").trim();
    let valid = essence
        .split_once('/')
        .is_some_and(|(t, s)| is_token(t) && is_token(s));
    if !valid {
        return "application/octet-stream".to_string();
    }
    let mut out = essence.to_ascii_lowercase();
    for p in params {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            let v = v.trim().trim_matches('"');
            if is_token(v) {
                out.push_str("; charset=");
                out.push_str(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use mail_parser::MimeHeaders;

    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    fn lines_ok(text: &str, max: usize) {
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n']),
            "bare CR or LF: {text:?}"
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= max, "{} > {max}: {line:?}", line.len());
        }
    }

    #[test]
    fn base64_lines_are_76_characters() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut out = Vec::new();
        base64_lines(&data, &mut out);
        assert_eq!(out.len(), base64_len(data.len()));
        let text = s(out);
        lines_ok(&text, 76);
        assert_eq!(text.split("\r\n").next().unwrap().len(), 76);
        assert_eq!(STANDARD.decode(text.replace("\r\n", "")).unwrap(), data);
        let mut empty = Vec::new();
        base64_lines(b"", &mut empty);
        assert!(empty.is_empty());
    }

    fn qp(text: &str) -> String {
        let mut out = Vec::new();
        quoted_printable(text.as_bytes(), &mut out);
        s(out)
    }

    #[test]
    fn quoted_printable_encodes_what_it_must() {
        assert_eq!(qp("a=b\n"), "a=3Db\r\n");
        assert_eq!(qp("tail \nx\t\r\ny "), "tail=20\r\nx=09\r\ny=20\r\n");
        assert_eq!(qp("中"), "=E4=B8=AD\r\n");
        assert_eq!(qp(".\n..\na.b"), "=2E\r\n=2E.\r\na.b\r\n");
        assert_eq!(qp("a\rb"), "a=0Db\r\n");
        assert_eq!(qp(""), "");
    }

    #[test]
    fn quoted_printable_lines_are_soft_broken_and_decode_back() {
        let text = format!("{}\n{}\n{}", "x".repeat(200), "中文".repeat(40), "y ".repeat(60));
        let encoded = qp(&text);
        lines_ok(&encoded, 76);
        let message = format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{encoded}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            format!("{text}\n")
        );
    }

    fn header(name: &str, text: &str) -> String {
        let mut out = Vec::new();
        text_header(&mut out, name, text);
        s(out)
    }

    #[test]
    fn subjects_plain_folded_or_encoded() {
        assert_eq!(header("Subject", "Spring sale"), "Subject: Spring sale\r\n");
        let long = "word ".repeat(30);
        let folded = header("Subject", long.trim());
        lines_ok(folded.trim_end(), HEADER_LINE);
        assert_eq!(
            folded.replace("\r\n", ""),
            format!("Subject: {}\r\n", long.trim()).replace("\r\n", "")
        );
        assert_eq!(
            header("Subject", "春季促销"),
            "Subject: =?UTF-8?B?5pil5a2j5L+D6ZSA?=\r\n"
        );
        // Text that looks like an encoded word, or can't be folded, is encoded.
        assert!(header("Subject", "=?UTF-8?B?x?=").contains("=?UTF-8?B?PT9VVEYtOD9CP3g/PQ==?="));
        assert!(header("Subject", &"x".repeat(100)).starts_with("Subject: =?UTF-8?B?"));
    }

    #[test]
    fn encoded_words_split_between_characters_and_decode_back() {
        let subject = "【限时】春季促销：全场五折，仅此三天！Spring sale – 50% off everything 🎉";
        let h = header("Subject", subject);
        lines_ok(h.trim_end(), HEADER_LINE);
        for word in h.split_whitespace().filter(|w| w.starts_with("=?")) {
            assert!(word.len() <= 75, "{word}");
        }
        let message = format!("{h}\r\nbody");
        let parsed = mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some(subject));
    }

    #[test]
    fn display_names() {
        assert_eq!(
            s(display_name("Acme \"Best\" Sales")),
            "\"Acme \\\"Best\\\" Sales\" "
        );
        assert_eq!(s(display_name("张三")), "=?UTF-8?B?5byg5LiJ?= ");
        assert_eq!(s(display_name(" \r\n")), "");
        assert_eq!(s(display_name("A\r\nBcc: x@y.cn")), "\"ABcc: x@y.cn\" ");
    }

    #[test]
    fn attachment_names() {
        let mut out = Vec::new();
        attachment_headers(&mut out, "application/pdf", "report \"Q1\".pdf");
        assert_eq!(
            s(out),
            "Content-Type: application/pdf;\r\n name=\"report \\\"Q1\\\".pdf\"\r\n\
             Content-Disposition: attachment;\r\n filename=\"report \\\"Q1\\\".pdf\"\r\n"
        );
        let mut out = Vec::new();
        attachment_headers(&mut out, "text/plain", "价格表.txt");
        assert_eq!(
            s(out),
            "Content-Type: text/plain;\r\n name=\"=?UTF-8?B?5Lu35qC86KGoLnR4dA==?=\"\r\n\
             Content-Disposition: attachment;\r\n filename*=UTF-8''%E4%BB%B7%E6%A0%BC%E8%A1%A8.txt\r\n"
        );
        let long = format!("{}.docx", "二〇二六年第一季度产品价格表及说明".repeat(3));
        let mut out = Vec::new();
        attachment_headers(&mut out, "application/octet-stream", &long);
        let h = s(out);
        lines_ok(h.trim_end(), HEADER_LINE);
        assert!(h.contains(" filename*0*=UTF-8''%E4"), "{h}");
        assert!(h.contains(" filename*1*=%"), "{h}");
        let message = format!("MIME-Version: 1.0\r\n{h}Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n");
        let parsed = mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .unwrap();
        assert_eq!(parsed.parts[0].attachment_name(), Some(long.as_str()));
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(safe_content_type("application/PDF"), "application/pdf");
        assert_eq!(
            safe_content_type("text/plain; charset=\"GBK\"; x=y"),
            "text/plain; charset=GBK"
        );
        assert_eq!(
            safe_content_type("text/plain\r\nBcc: x"),
            "application/octet-stream"
        );
        assert_eq!(safe_content_type(""), "application/octet-stream");
        assert_eq!(safe_content_type("pdf"), "application/octet-stream");
    }
}
