//! Click tracking (`track_status=2`): the links of a template's HTML part
//! are found once per task, in the template's source, and each `href` is
//! replaced by a placeholder that renders the recipient's signed click URL
//! (`{base}/t/c/{token}`, the token naming the delivery and the link).
//! So the link table (link id → original URL) is the task's, not each
//! message's, and rendering a message costs one HMAC per link it shows.
//!
//! Which `href`s count: those of `<a>`, `<area>` and Outlook's VML shapes
//! (`<v:roundrect href>` and the like, the "bulletproof buttons" inside
//! `<!--[if mso]>` comments), whose value, HTML entities decoded and
//! surrounding white space trimmed, is an absolute `http://` or `https://`
//! URL. Left as written: `mailto:`, `tel:`, `#anchors` and other schemes;
//! `<link>`/`<base>` (a stylesheet fetched through a click link would count
//! a click at every open); links inside plain HTML comments, `<style>`,
//! `<script>` and template comments; and every `href` whose value holds a
//! placeholder (`{{ … }}` or `{% … %}`), such as the platform's own
//! `{{ unsubscribe_url }}` — its target differs per recipient, so a per-task
//! table can't hold it; such links reach the recipient untracked.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;

/// The name under which a rewritten template finds its click URLs:
/// `{{ __qunfa_click[3] }}` renders link 3's URL.
pub const CLICK_URLS: &str = "__qunfa_click";

/// A template's HTML with its trackable `href`s replaced, and their
/// original URLs: `links[0]` is link id 1.
#[derive(Debug, PartialEq, Eq)]
pub struct RewrittenHtml {
    pub source: String,
    pub links: Vec<String>,
}

/// Replaces every trackable `href` value of the HTML template `source` with
/// `"{{ __qunfa_click[N] }}"`, N counting from 1 in document order.
pub fn rewrite_hrefs(source: &str) -> RewrittenHtml {
    let mut out = String::with_capacity(source.len() + 64);
    let mut links = Vec::new();
    let mut copied = 0;
    for value in find_hrefs(source) {
        let Some(url) = trackable(&source[value.clone()]) else {
            continue;
        };
        links.push(url);
        out.push_str(&source[copied..value.start]);
        let _ = write!(out, "\"{{{{ {CLICK_URLS}[{}] }}}}\"", links.len());
        copied = value.end;
    }
    out.push_str(&source[copied..]);
    RewrittenHtml { source: out, links }
}

/// The URL a raw attribute value (quotes included) stands for, if it is to
/// be tracked.
fn trackable(raw: &str) -> Option<String> {
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(raw);
    if unquoted.contains("{{") || unquoted.contains("{%") {
        return None;
    }
    let decoded = decode_entities(unquoted);
    // What a browser does to an href: trim, drop tabs and line breaks.
    let url: String = decoded
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let web = ["http://", "https://"].iter().any(|scheme| {
        url.len() > scheme.len() && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    });
    web.then_some(url)
}

/// Whether an element's `href` is a link a person clicks.
fn clickable(tag: &str) -> bool {
    tag.eq_ignore_ascii_case("a")
        || tag.eq_ignore_ascii_case("area")
        || tag.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("v:"))
}

/// The values (byte ranges, quotes included) of the clickable `href`s of a
/// template's HTML, in document order. A small
/// scanner, not an HTML parser: it knows tags, quoted and unquoted
/// attribute values, comments, raw-text elements and MiniJinja's
/// `{{ }}`/`{% %}`/`{# #}` (opaque wherever they appear, so quotes inside
/// an expression don't end an attribute).
fn find_hrefs(s: &str) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = template_construct(s, i) {
            i = end;
        } else if b[i..].starts_with(b"<!--") {
            // Outlook's conditional comments hold real markup; others are
            // skipped (`<!-->` is an empty comment, hence the search from `--`).
            i = if b[i + 4..].starts_with(b"[if") {
                i + 4
            } else {
                find_from(s, i + 2, "-->").map_or(b.len(), |e| e + 3)
            };
        } else if b[i] == b'<' && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            i = scan_tag(s, i, &mut found);
        } else {
            i += 1;
        }
    }
    found
}

/// The end of a `{{ }}`, `{% %}` or `{# #}` starting at `i` (a
/// `{% raw %}` block as a whole), or `None` when none starts there.
fn template_construct(s: &str, i: usize) -> Option<usize> {
    let rest = s.get(i..)?;
    let close = if rest.starts_with("{{") {
        "}}"
    } else if rest.starts_with("{%") {
        "%}"
    } else if rest.starts_with("{#") {
        "#}"
    } else {
        return None;
    };
    let Some(closed) = find_from(s, i + 2, close) else {
        return Some(s.len());
    };
    if close == "%}" && is_statement(&s[i + 2..closed], "raw") {
        let mut from = closed + 2;
        while let Some(open) = find_from(s, from, "{%") {
            let Some(closed) = find_from(s, open + 2, "%}") else {
                break;
            };
            if is_statement(&s[open + 2..closed], "endraw") {
                return Some(closed + 2);
            }
            from = closed + 2;
        }
        return Some(s.len());
    }
    Some(closed + 2)
}

/// Whether the inside of a `{% %}` is the bare statement `name`, with any
/// white-space control (`{%- raw +%}`).
fn is_statement(inner: &str, name: &str) -> bool {
    inner.trim_matches(['-', '+']).trim() == name
}

fn find_from(s: &str, from: usize, needle: &str) -> Option<usize> {
    s.get(from..)?.find(needle).map(|p| from + p)
}

/// Scans the tag starting at `start` (`<` then a letter), records a
/// clickable `href`, and returns where scanning goes on.
fn scan_tag(s: &str, start: usize, found: &mut Vec<Range<usize>>) -> usize {
    let b = s.as_bytes();
    let name_end = (start + 1..b.len())
        .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b':' || b[j] == b'-'))
        .unwrap_or(b.len());
    let tag = &s[start + 1..name_end];
    let mut i = name_end;
    while i < b.len() {
        if let Some(end) = template_construct(s, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'>' => {
                i += 1;
                break;
            }
            c if c.is_ascii_whitespace() || c == b'/' => i += 1,
            _ => {
                let name_start = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'=' | b'>' | b'/')
                    && template_construct(s, i).is_none()
                {
                    i += 1;
                }
                let name = &s[name_start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) != Some(&b'=') || name.is_empty() {
                    if name.is_empty() {
                        i += 1;
                    }
                    continue;
                }
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let value_start = j;
                let value_end = attribute_value_end(s, j);
                if name.eq_ignore_ascii_case("href") && clickable(tag) {
                    found.push(value_start..value_end);
                }
                i = value_end;
            }
        }
    }
    // Raw text: nothing inside is markup.
    for raw in ["style", "script"] {
        if tag.eq_ignore_ascii_case(raw) {
            return find_ignore_case(s, i, &format!("</{raw}")).unwrap_or(b.len());
        }
    }
    i
}

/// The end of the attribute value starting at `j`: after its closing quote,
/// or at white space or `>` when unquoted; template constructs are skipped
/// whole.
fn attribute_value_end(s: &str, mut j: usize) -> usize {
    let b = s.as_bytes();
    let quote = match b.get(j) {
        Some(&q @ (b'"' | b'\'')) => {
            j += 1;
            Some(q)
        }
        _ => None,
    };
    while j < b.len() {
        if let Some(end) = template_construct(s, j) {
            j = end;
            continue;
        }
        match quote {
            Some(q) if b[j] == q => return j + 1,
            None if b[j].is_ascii_whitespace() || b[j] == b'>' => return j,
            _ => j += 1,
        }
    }
    b.len()
}

fn find_ignore_case(s: &str, from: usize, needle: &str) -> Option<usize> {
    let hay = s.as_bytes().get(from..)?;
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        .map(|p| from + p)
}

/// Decodes the character references of an attribute value: numeric ones and
/// the named ones URLs meet (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`,
/// `&nbsp;`), each with its `;`. Anything else stays as written, as a
/// browser keeps an unknown reference.
pub fn decode_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match decode_reference(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference at the start of `s` (`&…;`) stands for and
/// the reference's length.
fn decode_reference(s: &str) -> Option<(char, usize)> {
    // The longest reference decoded here is `&#x10FFFF;`; 32 bytes is ample.
    let semi = s.bytes().take(34).position(|b| b == b';')?;
    let body = &s[1..semi];
    let c = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        // As HTML does: NUL and the surrogates become U+FFFD.
        char::from_u32(code).filter(|c| *c != '\0').unwrap_or('\u{fffd}')
    } else {
        match body {
            "amp" | "AMP" => '&',
            "lt" | "LT" => '<',
            "gt" | "GT" => '>',
            "quot" | "QUOT" => '"',
            "apos" => '\'',
            "nbsp" => '\u{a0}',
            _ => return None,
        }
    };
    Some((c, semi + 1))
}

/// The base of a task's links: `scheme://track_domain` when the task names
/// a tracking domain (the public URL's scheme: a platform served over https
/// serves its customers' tracking domains over https too), else the public
/// URL (`QUNFA_PUBLIC_URL`, no trailing `/`).
pub fn link_base(public_url: &str, track_domain: Option<&str>) -> String {
    match track_domain.map(str::trim).filter(|d| !d.is_empty()) {
        Some(domain) => {
            let scheme = if public_url.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", domain.trim_end_matches('/'))
        }
        None => public_url.trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> (String, Vec<String>) {
        let r = rewrite_hrefs(s);
        (r.source, r.links)
    }

    #[test]
    fn links_are_numbered_in_document_order_with_entities_decoded() {
        let (source, links) = rewrite(concat!(
            "<p><a class=\"x\" href=\"https://shop.cn/a?x=1&amp;y=2&#38;z=&#x33;\">A</a>\n",
            "<A HREF='http://B.cn/p?q=&quot;s&quot;' target=_blank>B</A>\n",
            "<a href=https://c.cn/?a=b&lt;c>C</a>",
            "<area shape=rect href=\"  https://d.cn/&#x4E2D;\n \">",
            "</p>"
        ));
        assert_eq!(
            links,
            [
                "https://shop.cn/a?x=1&y=2&z=3",
                "http://B.cn/p?q=\"s\"",
                "https://c.cn/?a=b<c",
                "https://d.cn/中",
            ]
        );
        assert_eq!(
            source,
            concat!(
                "<p><a class=\"x\" href=\"{{ __qunfa_click[1] }}\">A</a>\n",
                "<A HREF=\"{{ __qunfa_click[2] }}\" target=_blank>B</A>\n",
                "<a href=\"{{ __qunfa_click[3] }}\">C</a>",
                "<area shape=rect href=\"{{ __qunfa_click[4] }}\">",
                "</p>"
            )
        );
    }

    #[test]
    fn mailto_anchors_other_schemes_and_placeholders_are_left_alone() {
        let html = concat!(
            "<a href=\"mailto:sales@shop.cn?subject=hi\">m</a>",
            "<a href=\"#top\">t</a><a href=\"tel:+8610\">p</a><a href=\"javascript:x()\">j</a>",
            "<a href=\"/relative\">r</a><a href=\"https://\">empty</a>",
            "<a href=\"{{ unsubscribe_url }}\">退订</a>",
            "<a href=\"https://shop.cn/u?e={{ email|urlencode }}\">mine</a>",
            "<a href='{% if var1 %}https://a.cn{% else %}https://b.cn{% endif %}'>c</a>",
            "<a href=\"https://kept.cn/\">k</a>"
        );
        let (source, links) = rewrite(html);
        assert_eq!(links, ["https://kept.cn/"]);
        assert_eq!(
            source,
            html.replace("\"https://kept.cn/\"", "\"{{ __qunfa_click[1] }}\"")
        );
    }

    #[test]
    fn stylesheets_comments_and_raw_text_are_not_links() {
        let html = concat!(
            "<link rel=stylesheet href=\"https://cdn.cn/s.css\"><base href=\"https://x.cn/\">",
            "<style>a[href=\"https://no.cn\"] { color: red } <a href=\"https://no.cn\"></style>",
            "<!-- <a href=\"https://old.cn\">old</a> -->",
            "{# <a href=\"https://note.cn\"> #}",
            "{% raw %}<a href=\"https://raw.cn\">{% endraw %}",
            "<!--[if mso]><v:roundrect href=\"https://btn.cn/\" arcsize=\"10%\"></v:roundrect><![endif]-->",
            "<a title=\"{{ fullname|default(\"a > b\") }}\" href=\"https://btn.cn/\">go</a>",
        );
        let (source, links) = rewrite(html);
        assert_eq!(links, ["https://btn.cn/", "https://btn.cn/"]);
        assert!(
            source.contains("<v:roundrect href=\"{{ __qunfa_click[1] }}\""),
            "{source}"
        );
        assert!(
            source.contains("a > b\") }}\" href=\"{{ __qunfa_click[2] }}\">go"),
            "{source}"
        );
        assert!(source.contains("https://raw.cn") && source.contains("https://cdn.cn/s.css"));
    }

    #[test]
    fn broken_markup_ends_without_panicking() {
        for s in [
            "<a href=\"https://x.cn",
            "<a href=",
            "<a href",
            "<",
            "<a {{ ",
            "{% raw %}",
            "<!--",
            "<style>",
            "&",
            "<a href='&#xZZ;https://x'>",
        ] {
            let _ = rewrite(s);
        }
        assert_eq!(rewrite("<a href=\"https://x.cn").1, Vec::<String>::new());
    }

    #[test]
    fn entities() {
        assert_eq!(decode_entities("a&amp;b&#60;&#x3E;&AMP;"), "a&b<>&");
        assert_eq!(
            decode_entities("&copy; &unknown; & &#0; &#xD800;"),
            "&copy; &unknown; & \u{fffd} \u{fffd}"
        );
        assert_eq!(decode_entities("&nbsp"), "&nbsp");
        assert!(matches!(decode_entities("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn link_bases() {
        assert_eq!(link_base("https://mail.qunfa.cn/", None), "https://mail.qunfa.cn");
        assert_eq!(
            link_base("https://mail.qunfa.cn", Some("t.shop.cn")),
            "https://t.shop.cn"
        );
        assert_eq!(
            link_base("http://127.0.0.1:8080", Some("t.shop.cn")),
            "http://t.shop.cn"
        );
        assert_eq!(
            link_base("http://127.0.0.1:8080", Some(" ")),
            "http://127.0.0.1:8080"
        );
    }
}
