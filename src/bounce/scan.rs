//! Text scanning shared by every report format: addresses in free text,
//! where a returned original message begins, and which addresses of a
//! notice are the recipients it reports on.

/// An address found in text, at a byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub at: usize,
    pub addr: String,
    /// The address begins its line (after indentation, quotes, `<` or `>>>`),
    /// where notices list the recipients they report on.
    pub leads_line: bool,
}

fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-!#$'*^`{|}~".contains(c)
}

fn domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
}

/// Every address-shaped `local@domain` in `text`, in order.
pub fn addresses(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(rel) = text[search..].find('@') {
        let at = search + rel;
        search = at + 1;
        let local_start = text[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| local_char(c))
            .last()
            .map_or(at, |(i, _)| i);
        let domain_end = text[at + 1..]
            .char_indices()
            .take_while(|&(_, c)| domain_char(c))
            .last()
            .map_or(at + 1, |(i, c)| at + 1 + i + c.len_utf8());
        let local = text[local_start..at].trim_start_matches('.');
        let domain = text[at + 1..domain_end].trim_end_matches(['.', '-']);
        if local.is_empty() || !domain_ok(domain) {
            continue;
        }
        let start = at - local.len();
        // Inside a URL or a query string (`?to=a@b`, `mailto:`) it is no recipient.
        let before = text[..start].chars().next_back();
        if matches!(before, Some('=' | '/' | '&' | '?')) {
            continue;
        }
        out.push(Found {
            at: start,
            addr: format!("{local}@{domain}"),
            leads_line: leads_line(text, start),
        });
    }
    out
}

fn domain_ok(domain: &str) -> bool {
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    !domain.starts_with(['.', '-'])
        && !domain.contains("..")
        && tld.chars().count() >= 2
        && tld.chars().all(|c| c.is_alphabetic() || c == '-')
}

fn leads_line(text: &str, start: usize) -> bool {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..start]
        .chars()
        .all(|c| c.is_whitespace() || "<>\"'*-•:".contains(c))
}

/// Addresses in a header value (`"Name" <a@b>, c@d`), lower-cased.
pub fn header_addresses(value: &str) -> Vec<String> {
    addresses(value)
        .into_iter()
        .map(|f| f.addr.to_lowercase())
        .collect()
}

/// A folded header value on one line.
pub fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, line) in value.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

/// HTML as text: tags dropped (block tags become line breaks), the common
/// entities decoded. Enough for the phrases and addresses a notice carries.
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[1..gt].trim_start_matches('/').to_ascii_lowercase();
        let name = tag
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        if matches!(
            name,
            "br" | "p" | "div" | "tr" | "li" | "table" | "h1" | "h2" | "h3" | "td"
        ) {
            out.push('\n');
        }
        // Skip scripts and styles whole.
        if matches!(name, "style" | "script") && !after[1..].starts_with('/') {
            let close = format!("</{name}");
            match after.to_ascii_lowercase().find(&close) {
                Some(end) => {
                    rest = &after[end..];
                    continue;
                }
                None => {
                    rest = "";
                    break;
                }
            }
        }
        rest = &after[gt + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Where the copy of the original message begins in a one-part notice: a
/// marker line ("--- Below this line is a copy of the message."), or the
/// first line of a bare header block (`Received:`, `Return-Path:` …).
pub fn original_starts(notice: &str) -> Option<usize> {
    let mut offset = 0;
    for line in notice.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        let l = line.trim().to_lowercase();
        if l.is_empty() {
            continue;
        }
        if is_marker(&l) || (starts_header_block(line) && header_follows(&notice[offset..])) {
            return Some(at);
        }
    }
    None
}

fn is_marker(l: &str) -> bool {
    const SAYS: &[&str] = &[
        "below this line is a copy of the message",
        "this is a copy of the message",
        "this is a copy of your message",
        "copy of the original message",
        "original message follows",
        "original message is attached",
        "original message below",
        "message headers follow",
        "header of the original message",
        "headers of the original message",
        "original message header",
        "unsent message below",
        "returned message below",
        "returned mail follows",
        "your message is attached",
        "以下原始邮件",
        "原始邮件",
        "元のメッセージ",
    ];
    let separator =
        l.starts_with("---") || l.starts_with("===") || l.starts_with("***") || l.starts_with("___");
    // A heading of its own ("Original Message:"), as MMS gateways and
    // many clients write it.
    let heading = l.trim_end_matches([':', ' ']) == "original message";
    heading
        || SAYS.iter().any(|s| l.contains(s))
        || (separator
            && [
                "original",
                "copy of",
                "header",
                "returned message",
                "undelivered message",
                "forwarded message",
            ]
            .iter()
            .any(|w| l.contains(w)))
}

/// The next non-empty line is a header field too (or there is none): a lone
/// `Message-id:` line inside a notice is the notice's, not a copied header.
fn header_follows(rest: &str) -> bool {
    let Some(next) = rest.lines().find(|l| !l.trim().is_empty()) else {
        return true;
    };
    if next.starts_with([' ', '\t']) {
        return true;
    }
    next.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// A line that can only be the first of a copied message's header block.
fn starts_header_block(line: &str) -> bool {
    const FIRST: &[&str] = &[
        "received: ",
        "return-path: ",
        "return-path:<",
        "dkim-signature: ",
        "arc-seal: ",
        "x-received: ",
        "delivered-to: ",
        "message-id: ",
    ];
    let lower = line.to_ascii_lowercase();
    FIRST.iter().any(|f| lower.starts_with(f))
}

/// From the first header-looking line of `text` on: the part a header
/// parser should read.
pub fn header_block(text: &str) -> String {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let name_end = line.find(':').unwrap_or(0);
        let looks = name_end > 0
            && line[..name_end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if looks {
            return text[offset..].to_string();
        }
        offset += line.len();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(text: &str) -> Vec<(String, bool)> {
        addresses(text)
            .into_iter()
            .map(|f| (f.addr, f.leads_line))
            .collect()
    }

    #[test]
    fn finds_addresses_and_whether_they_lead_a_line() {
        assert_eq!(
            addrs("<kijitora@example.net>: host mx said: 550 Unknown user kijitora@example.net"),
            vec![
                ("kijitora@example.net".into(), true),
                ("kijitora@example.net".into(), false)
            ]
        );
        assert_eq!(
            addrs("  >>> a.b+c@sub.example.jp <a.b+c@sub.example.jp>")[0],
            ("a.b+c@sub.example.jp".into(), true)
        );
        assert_eq!(
            addrs("mail to <x@y.example>."),
            vec![("x@y.example".into(), false)]
        );
        assert_eq!(addrs("\"a@b.example\":"), vec![("a@b.example".into(), true)]);
    }

    #[test]
    fn skips_what_is_no_address() {
        assert!(addrs("a@b, @example.com, x@localhost, user@[192.0.2.1], a@b.c1").is_empty());
        assert!(addrs("https://x.example/?email=a@b.example&x=1").is_empty());
        assert!(addrs("").is_empty());
        assert!(addrs("@@@").is_empty());
        assert_eq!(addrs("end a@b.example."), vec![("a@b.example".into(), false)]);
        assert_eq!(
            addrs("用户@例子.中国").len(),
            0,
            "non-ASCII local parts are not accepted"
        );
        assert_eq!(addrs("to a@例子.中国"), vec![("a@例子.中国".into(), false)]);
    }

    #[test]
    fn header_values() {
        assert_eq!(
            header_addresses("\"Neko, Nyaan\" <Neko@Example.ORG>, b@c.example"),
            ["neko@example.org", "b@c.example"]
        );
        assert_eq!(unfold("a\r\n\tb\n c"), "a b c");
    }

    #[test]
    fn html_becomes_text() {
        assert_eq!(
            strip_html("<p>User&nbsp;unknown</p><style>p{}</style>x &lt;a@b.example&gt;"),
            "\nUser unknown\nx <a@b.example>"
        );
        assert_eq!(strip_html("a < b"), "a ");
        assert_eq!(strip_html("<style>never closed"), "");
    }

    #[test]
    fn finds_where_the_original_begins() {
        let n = "Hi.\n<a@b.example>:\nSorry.\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <x@y.example>\n";
        assert_eq!(&n[original_starts(n).unwrap()..][..8], "--- Belo");
        let n = "There was an error.\nMessage headers follow.\nReceived: from x\n";
        assert!(n[original_starts(n).unwrap()..].starts_with("Message headers"));
        let n = "error text\nReceived: from root (uid 0)\nTo: <a@b.example>\n";
        assert!(n[original_starts(n).unwrap()..].starts_with("Received"));
        let n = "<a@b.example>:\nMessage-id: <x@y.example>\nSorry, no mailbox here by that name.\n";
        assert_eq!(original_starts(n), None);
        let n = "error\nMessage-ID: <x@y.example>\nSubject: hi\n";
        assert!(n[original_starts(n).unwrap()..].starts_with("Message-ID"));
        let n = "The original message was received at Thu\n----- Transcript of session follows -----\n";
        assert_eq!(original_starts(n), None);
        let n = "Error: no valid recipients\n\nOriginal Message:\nFrom: x <x@y.example>\n";
        assert!(n[original_starts(n).unwrap()..].starts_with("Original Message:"));
        assert_eq!(original_starts(""), None);
    }

    #[test]
    fn header_block_starts_at_a_field() {
        assert_eq!(
            header_block("--- marker\n\nTo: a@b.example\n\nbody"),
            "To: a@b.example\n\nbody"
        );
        assert_eq!(header_block("no fields"), "");
    }
}
