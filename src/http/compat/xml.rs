//! The one XML writer of the vendor API (A.5.1, D-7): a declaration, two-space
//! indentation like the original's examples, `&`/`<`/`>` escaped, CDATA only
//! where the caller asks (split around `]]>`), empty elements as a start and an
//! end tag, and no code point XML 1.0 can't carry.

use crate::http::text::xml_chars;

/// Written by hand rather than with quick-xml's writer: a page of 50
/// addresses is a thousand small elements, and building each as events
/// (with an owned name per element and a second pass to indent a fragment)
/// was a fifth of such a request's time. The format is small and fixed.
pub struct Xml {
    out: Vec<u8>,
    /// Where the writer's own bytes start in `out` (after a head it was
    /// given).
    start: usize,
    /// Open elements.
    depth: usize,
    /// The last element opened has no content yet: closed now, it is
    /// written `<name></name>` on one line (D-13).
    just_opened: bool,
    /// Indentation every line starts with (a fragment inside a document).
    base: usize,
}

impl Xml {
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        Xml {
            out,
            start: 0,
            depth: 0,
            just_opened: false,
            base: 0,
        }
    }

    /// Elements without a declaration, to be streamed inside a document
    /// started with [`Xml::head`], each line indented `level` steps; room
    /// for about `bytes` of them.
    pub fn fragment_at(level: usize, bytes: usize) -> Self {
        Xml {
            out: Vec::with_capacity(bytes.max(64)),
            start: 0,
            depth: 0,
            just_opened: false,
            base: level,
        }
    }

    /// Like [`Xml::fragment_at`], written after the bytes `before` (the
    /// document's head), so that the whole answer is one buffer.
    pub fn fragment_after(mut before: Vec<u8>, level: usize, bytes: usize) -> Self {
        before.reserve(bytes + 16);
        Xml {
            start: before.len(),
            out: before,
            depth: 0,
            just_opened: false,
            base: level,
        }
    }

    /// The declaration and the start tag of a document whose children are
    /// streamed as fragments.
    pub fn head(root: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>\n").into_bytes()
    }

    /// A fragment's bytes, ending in LF (nothing when it holds nothing).
    pub fn finish_fragment(mut self) -> Vec<u8> {
        if self.out.len() > self.start {
            self.out.push(b'\n');
        }
        self.out
    }

    /// A new line at the current depth (none before a fragment's first).
    fn line(&mut self) {
        if self.out.len() > self.start {
            self.out.push(b'\n');
        }
        self.indent(self.base + self.depth);
    }

    fn indent(&mut self, level: usize) {
        const SPACES: &[u8] = b"                                ";
        let mut n = level * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..k]);
            n -= k;
        }
    }

    fn start(&mut self, name: &str) {
        self.line();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    fn end(&mut self, name: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    /// Content: in a fragment, a line break inside it is followed by the
    /// fragment's indentation, as every line of a fragment is.
    fn content(&mut self, s: &str) {
        if self.base == 0 || !s.contains('\n') {
            self.out.extend_from_slice(s.as_bytes());
            return;
        }
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.out.push(b'\n');
                self.indent(self.base);
            }
            self.out.extend_from_slice(part.as_bytes());
        }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.start(name);
        self.depth += 1;
        self.just_opened = true;
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.depth = self.depth.saturating_sub(1);
        if !self.just_opened {
            self.line();
        }
        self.end(name);
        self.just_opened = false;
        self
    }

    /// `<name>escaped value</name>`: `&`, `<` and `>` escaped.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.start(name);
        let clean = xml_chars(value);
        let mut rest = clean.as_ref();
        while let Some(i) = rest.find(['&', '<', '>']) {
            self.content(&rest[..i]);
            self.out.extend_from_slice(match rest.as_bytes()[i] {
                b'&' => b"&amp;".as_slice(),
                b'<' => b"&lt;",
                _ => b"&gt;",
            });
            rest = &rest[i + 1..];
        }
        self.content(rest);
        self.end(name);
        self.just_opened = false;
        self
    }

    /// A number, as decimal text.
    pub fn num(&mut self, name: &str, value: impl Into<i64>) -> &mut Self {
        use std::io::Write;
        self.start(name);
        write!(self.out, "{}", value.into()).expect("writing into memory");
        self.end(name);
        self.just_opened = false;
        self
    }

    /// `<name><![CDATA[value]]></name>`, `]]>` split across sections.
    pub fn cdata(&mut self, name: &str, value: &str) -> &mut Self {
        self.start(name);
        let clean = xml_chars(value);
        let mut rest = clean.as_ref();
        loop {
            self.out.extend_from_slice(b"<![CDATA[");
            match rest.find("]]>") {
                Some(i) => {
                    self.content(&rest[..i + 2]);
                    self.out.extend_from_slice(b"]]>");
                    rest = &rest[i + 2..];
                }
                None => {
                    self.content(rest);
                    self.out.extend_from_slice(b"]]>");
                    break;
                }
            }
        }
        self.end(name);
        self.just_opened = false;
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'\n');
        self.out
    }
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
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
    fn a_fragment_after_a_head_is_the_head_and_the_fragment() {
        let write = |x: &mut Xml| {
            x.open("addr").num("id", 1).text("v", "a\nb").close("addr");
        };
        let mut alone = Xml::fragment_at(1, 0);
        write(&mut alone);
        let mut after = Xml::fragment_after(Xml::head("data"), 1, 0);
        write(&mut after);
        let mut expected = Xml::head("data");
        expected.extend_from_slice(&alone.finish_fragment());
        assert_eq!(after.finish_fragment(), expected);
        assert_eq!(
            Xml::fragment_after(b"<d>\n".to_vec(), 1, 0).finish_fragment(),
            b"<d>\n"
        );
    }

    #[test]
    fn control_characters_are_dropped() {
        let s = render(|x| {
            x.text("v", "a\u{0}b\u{1f}c\u{FFFF}d\te");
        });
        assert!(s.contains("<v>abcd\te</v>"), "{s}");
    }
}
