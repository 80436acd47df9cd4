//! The one XML writer of the vendor API (A.5.1, D-7): a declaration, two-space
//! indentation like the original's examples, `&`/`<`/`>` escaped, CDATA only
//! where the caller asks (split around `]]>`), empty elements as a start and an
//! end tag, and no code point XML 1.0 can't carry.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};

pub struct Xml {
    w: Writer<Vec<u8>>,
    /// An element opened but not written yet: if it is closed before it gets
    /// a child, it is written `<name></name>` (D-13), not across two lines.
    pending: Option<String>,
}

/// Writing into a `Vec` cannot fail.
fn ok(r: std::io::Result<()>) {
    r.expect("writing XML into memory");
}

impl Xml {
    pub fn new() -> Self {
        let mut w = Writer::new_with_indent(Vec::with_capacity(512), b' ', 2);
        ok(w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))));
        Xml { w, pending: None }
    }

    fn flush_pending(&mut self) {
        if let Some(name) = self.pending.take() {
            ok(self.w.write_event(Event::Start(BytesStart::new(name))));
        }
    }

    /// Elements without a declaration, to be streamed inside a document
    /// started with [`Xml::head`].
    pub fn fragment() -> Self {
        Xml {
            w: Writer::new_with_indent(Vec::with_capacity(512), b' ', 2),
            pending: None,
        }
    }

    /// The declaration and the start tag of a document whose children are
    /// streamed as fragments.
    pub fn head(root: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>\n").into_bytes()
    }

    /// A fragment's bytes, every line indented `level` steps, ending in LF.
    pub fn finish_fragment(mut self, level: usize) -> Vec<u8> {
        self.flush_pending();
        let raw = self.w.into_inner();
        let pad = "  ".repeat(level);
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 16 + 8);
        for line in raw.split(|b| *b == b'\n') {
            out.extend_from_slice(pad.as_bytes());
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.flush_pending();
        self.pending = Some(name.to_string());
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        if self.pending.as_deref() == Some(name) {
            self.pending = None;
            return self.text(name, "");
        }
        self.flush_pending();
        ok(self.w.write_event(Event::End(BytesEnd::new(name))));
        self
    }

    /// `<name>escaped value</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.flush_pending();
        let clean = xml_chars(value);
        ok(self.w.write_event(Event::Start(BytesStart::new(name))));
        ok(self
            .w
            .write_event(Event::Text(BytesText::from_escaped(partial_escape(
                clean.as_ref(),
            )))));
        ok(self.w.write_event(Event::End(BytesEnd::new(name))));
        self
    }

    /// A number, as decimal text.
    pub fn num(&mut self, name: &str, value: i64) -> &mut Self {
        self.text(name, &value.to_string())
    }

    /// `<name><![CDATA[value]]></name>`, `]]>` split across sections.
    pub fn cdata(&mut self, name: &str, value: &str) -> &mut Self {
        self.flush_pending();
        let clean = xml_chars(value);
        ok(self.w.write_event(Event::Start(BytesStart::new(name))));
        for section in BytesCData::escaped(clean.as_ref()) {
            ok(self.w.write_event(Event::CData(section)));
        }
        ok(self.w.write_event(Event::End(BytesEnd::new(name))));
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.flush_pending();
        let mut out = self.w.into_inner();
        out.push(b'\n');
        out
    }
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

/// Drops the code points XML 1.0 can't carry (D-6).
pub fn xml_chars(s: &str) -> Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || (('\u{20}'..='\u{D7FF}').contains(&c))
            || (('\u{E000}'..='\u{FFFD}').contains(&c))
            || c >= '\u{10000}'
    };
    if s.chars().all(allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|c| allowed(*c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut Xml)) -> String {
        let mut x = Xml::new();
        f(&mut x);
        String::from_utf8(x.finish()).unwrap()
    }

    #[test]
    fn declaration_nesting_and_empty_elements() {
        let s = render(|x| {
            x.open("customer")
                .num("id", 7)
                .text("company", "")
                .close("customer");
        });
        assert_eq!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<customer>\n  <id>7</id>\n  <company></company>\n</customer>\n"
        );
    }

    #[test]
    fn empty_containers_are_one_start_and_end_tag() {
        let s = render(|x| {
            x.open("list").open("item").close("item").close("list");
        });
        assert!(s.contains("<list>\n  <item></item>\n</list>"), "{s}");
        let s = render(|x| {
            x.open("list").close("list");
        });
        assert!(s.ends_with("<list></list>\n"), "{s}");
    }

    #[test]
    fn text_is_escaped_and_cdata_is_split() {
        let s = render(|x| {
            x.open("r")
                .text("link", "http://a/?x=1&y=<2>")
                .cdata("name", "a]]>b")
                .close("r");
        });
        assert!(s.contains("<link>http://a/?x=1&amp;y=&lt;2&gt;</link>"), "{s}");
        assert!(s.contains("<name><![CDATA[a]]]]><![CDATA[>b]]></name>"), "{s}");
    }

    #[test]
    fn control_characters_are_dropped() {
        let s = render(|x| {
            x.text("v", "a\u{0}b\u{1f}c\u{FFFF}d\te");
        });
        assert!(s.contains("<v>abcd\te</v>"), "{s}");
    }
}
