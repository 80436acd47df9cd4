//! The text/plain alternative of an HTML part, for a template that has no
//! text of its own: what a reader of the HTML sees, as plain text.
//!
//! - Paragraphs, headings, lists, quotes and tables' rows are blocks:
//!   paragraphs, headings, lists and quotes are set off by a blank line,
//!   rows, cells, `<div>`s and list items start a new line; `<br>` breaks
//!   the line. `<pre>` keeps its spacing.
//! - Headings are underlined (`=` under `<h1>`, `-` under the others), list
//!   items start with `- ` or their number (`1. `), quotes with `> `; an
//!   item's or a quote's later lines are indented to match.
//! - A link reads `text <url>` (the URL alone when the text is the URL or
//!   there is none): `http(s):`, `mailto:` (its address) and `tel:` links.
//!   Anchors, `javascript:` and relative links keep their text only.
//! - An image reads as its `alt` text; the open pixel (`alt=""`) as nothing.
//! - Scripts, styles, the title, comments (Outlook's conditional markup
//!   too) and elements hidden with `display:none` or `hidden` are dropped;
//!   white space collapses as a browser collapses it, and a line break
//!   between two CJK characters is no space (CSS Text 3, segment breaks).
//!   Character references are decoded; invisible formatting characters
//!   (zero-width space, soft hyphen …) are dropped.
//! - Lines are at most [`WIDTH`] columns (a CJK character is two), broken
//!   where Unicode's line breaking algorithm (UAX #14) allows: at spaces,
//!   and between CJK characters but never before a closing mark such as
//!   `，` or `。`. A URL is never broken; one longer than a line stands
//!   alone on its line.
//!
//! The tokenizer is html5ever's (the HTML standard's tokenizer: character
//! references, raw-text elements, broken markup); the tree builder is not
//! needed, and the small renderer below costs a fraction of a full
//! HTML-to-text layout engine on the per-message path (README "Messages").

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock, RwLock};

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Longest line, in columns (RFC 5322's recommended line length).
pub const WIDTH: usize = 78;

/// The plain text a reader of `html` sees: lines ending in CRLF, the last
/// one too; empty when the HTML shows no text.
pub fn html_to_text(html: &str) -> String {
    render(html, None)
}

/// Derives the text of many messages of one template: it remembers how it
/// wrapped each paragraph, as a task's messages share most of their
/// paragraphs (those that hold no placeholder), and line breaking is the
/// larger part of the work. Shared by the threads that build messages.
///
/// When the renderer of the template says where each recipient's values
/// went in the HTML and all else is the same for every recipient, it
/// tokenizes the HTML once, with a stand-in for each value ([`Skeleton`]),
/// and renders each message from those tokens with the recipient's values
/// put in: the tokenizer is half the work of a derivation.
#[derive(Default)]
pub struct TextDeriver {
    wrapped: RwLock<Wrapped>,
    /// Made from the first message whose values' places are known; `None`
    /// when its HTML does not allow it.
    skeleton: OnceLock<Option<Skeleton>>,
}

#[derive(Default)]
struct Wrapped {
    lines: HashMap<WrapKey, Arc<[Range<u32>]>>,
    /// Bytes of paragraph text held, bounded by [`TextDeriver::MAX_BYTES`].
    bytes: usize,
}

/// A paragraph, the width it was wrapped to and its unbreakable ranges.
#[derive(PartialEq, Eq, Hash)]
struct WrapKey {
    width: usize,
    protected: Vec<Range<usize>>,
    text: Box<str>,
}

impl TextDeriver {
    /// Paragraph text remembered at most, per template.
    const MAX_BYTES: usize = 1 << 20;

    /// [`html_to_text`], wrapping each paragraph once. `values`: where
    /// each placeholder's value is in `html`, when the template says so
    /// (`Rendered::html_values`); all of `html` outside them is the same
    /// for every message of the template.
    pub fn derive(&self, html: &str, values: Option<&[Range<usize>]>) -> String {
        values
            .and_then(|values| {
                self.skeleton
                    .get_or_init(|| Skeleton::new(html, values))
                    .as_ref()?
                    .fill(html, values, self)
            })
            .unwrap_or_else(|| render(html, Some(self)))
    }

    fn wrap<'a>(&self, text: &'a str, protected: &[Range<usize>], width: usize) -> Vec<&'a str> {
        if fits(text, width) {
            return vec![text];
        }
        let key = WrapKey {
            width,
            protected: protected.to_vec(),
            text: text.into(),
        };
        let known = self.wrapped.read().ok().and_then(|w| w.lines.get(&key).cloned());
        let spans = match known {
            Some(spans) => spans,
            None => {
                let lines = wrap(text, protected, width);
                let base = text.as_ptr() as usize;
                let spans: Arc<[Range<u32>]> = lines
                    .iter()
                    .map(|l| {
                        let start = (l.as_ptr() as usize - base) as u32;
                        start..start + l.len() as u32
                    })
                    .collect();
                if let Ok(mut w) = self.wrapped.write()
                    && w.bytes + text.len() <= Self::MAX_BYTES
                {
                    w.bytes += text.len();
                    w.lines.insert(key, spans);
                }
                return lines;
            }
        };
        spans
            .iter()
            .map(|r| &text[r.start as usize..r.end as usize])
            .collect()
    }
}

fn render(html: &str, deriver: Option<&TextDeriver>) -> String {
    let tokenizer = Tokenizer::new(
        Sink(RefCell::new(Renderer::new(html.len(), deriver))),
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.into_inner().finish()
}

struct Sink<'d>(RefCell<Renderer<'d>>);

impl TokenSink for Sink<'_> {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().token(&token)
    }
}

/// The first value's stand-in in a [`Skeleton`]'s HTML: characters of
/// Unicode's supplementary private use area A, one per value.
const STAND_IN: u32 = 0xF0000;
/// Values a skeleton can stand in for.
const STAND_INS: usize = 0xFFFE;

fn stand_in(c: char) -> Option<usize> {
    (c as u32)
        .checked_sub(STAND_IN)
        .map(|i| i as usize)
        .filter(|i| *i < STAND_INS)
}

fn holds_stand_in(text: &str) -> bool {
    text.chars().any(|c| stand_in(c).is_some())
}

/// The tokens of a template's HTML, a stand-in for each value, recorded
/// once; a message's text is rendered from them with its own values put
/// in. That gives the text the message's own HTML would give, because:
///
/// - the HTML between the values is checked to be the skeleton's, and no
///   value stands where it could join that HTML into markup or a character
///   reference (after `<`, `</p`, `<!-` or `&am`);
/// - no value is in a tag's or attribute's name, a comment, a doctype, or
///   an attribute that decides whether an element is shown (`style`,
///   `hidden`): those decide how the tokenizer reads what follows;
/// - each value, as the template wrote it, tokenizes as text: no `<`, CR or
///   NUL, and `&` only in the six references MiniJinja's escaping writes;
///   in an attribute also no white space, quote, `=`, `>` or backquote and
///   not empty, so it reads alike whether the attribute is quoted or not.
///
/// A message whose values do not meet these is derived in full.
struct Skeleton {
    /// The HTML before each value, and after the last.
    between: Vec<Box<str>>,
    tokens: Vec<Recorded>,
    /// Whether a value stands in an attribute.
    in_attribute: Vec<bool>,
}

enum Recorded {
    Text(Box<str>),
    Value(usize),
    Tag(OwnedTag),
    /// A tag some of whose attributes' values hold stand-ins.
    TagWithValues(OwnedTag),
    End,
}

/// A tag kept beyond the tokenizer (whose strings are not `Send`).
struct OwnedTag {
    name: Box<str>,
    start: bool,
    self_closing: bool,
    attrs: Vec<(Box<str>, Box<str>)>,
}

impl OwnedTag {
    fn new(tag: &Tag) -> OwnedTag {
        OwnedTag {
            name: (*tag.name).into(),
            start: tag.kind == TagKind::StartTag,
            self_closing: tag.self_closing,
            attrs: tag
                .attrs
                .iter()
                .map(|a| ((*a.name.local).into(), (*a.value).into()))
                .collect(),
        }
    }

    fn read(&self) -> TagRead<'_> {
        TagRead {
            name: &self.name,
            start: self.start,
            self_closing: self.self_closing,
            attrs: Attrs::Kept(&self.attrs),
        }
    }
}

/// A tag as the renderer reads it, from the tokenizer or from a skeleton.
struct TagRead<'a> {
    name: &'a str,
    start: bool,
    self_closing: bool,
    attrs: Attrs<'a>,
}

enum Attrs<'a> {
    Tokenized(&'a [html5ever::Attribute]),
    Kept(&'a [(Box<str>, Box<str>)]),
}

impl<'a> TagRead<'a> {
    fn tokenized(tag: &'a Tag) -> TagRead<'a> {
        TagRead {
            name: &tag.name,
            start: tag.kind == TagKind::StartTag,
            self_closing: tag.self_closing,
            attrs: Attrs::Tokenized(&tag.attrs),
        }
    }

    /// The value of the attribute `name` (the first, as a browser reads it).
    fn attribute(&self, name: &str) -> Option<&'a str> {
        match self.attrs {
            Attrs::Tokenized(attrs) => attrs.iter().find(|a| &*a.name.local == name).map(|a| &*a.value),
            Attrs::Kept(attrs) => attrs.iter().find(|(n, _)| &**n == name).map(|(_, v)| &**v),
        }
    }
}

impl Skeleton {
    fn new(html: &str, values: &[Range<usize>]) -> Option<Skeleton> {
        if values.len() > STAND_INS {
            return None;
        }
        let mut between: Vec<Box<str>> = Vec::with_capacity(values.len() + 1);
        let mut at = 0;
        for value in values {
            between.push(html.get(at..value.start)?.into());
            at = value.end;
        }
        between.push(html.get(at..)?.into());
        if between.iter().any(|b| holds_stand_in(b)) {
            return None;
        }
        let mut source = String::with_capacity(html.len() + 4 * values.len());
        for (i, before) in between.iter().enumerate() {
            source.push_str(before);
            if i < values.len() {
                if !value_may_follow(&source) {
                    return None;
                }
                source.push(char::from_u32(STAND_IN + i as u32)?);
            }
        }

        let recorder = Recorder {
            renderer: RefCell::new(Renderer::new(source.len(), None)),
            tokens: RefCell::new(Vec::new()),
            in_attribute: RefCell::new(vec![false; values.len()]),
            fits: std::cell::Cell::new(true),
            in_script: std::cell::Cell::new(false),
        };
        let tokenizer = Tokenizer::new(recorder, TokenizerOpts::default());
        let input = BufferQueue::default();
        input.push_back(source.as_str().into());
        let _ = tokenizer.feed(&input);
        tokenizer.end();
        let recorder = tokenizer.sink;
        recorder.fits.get().then(|| Skeleton {
            between,
            tokens: recorder.tokens.into_inner(),
            in_attribute: recorder.in_attribute.into_inner(),
        })
    }

    /// The text of `html`, whose values are at `values`; `None` when it is
    /// not this skeleton's or a value does not fit (see [`Skeleton`]).
    fn fill(&self, html: &str, values: &[Range<usize>], deriver: &TextDeriver) -> Option<String> {
        if values.len() + 1 != self.between.len() {
            return None;
        }
        let mut at = 0;
        let mut decoded = Vec::with_capacity(values.len());
        for ((value, before), in_attribute) in values.iter().zip(&self.between).zip(&self.in_attribute) {
            if html.get(at..value.start)? != &**before {
                return None;
            }
            decoded.push(value_text(html.get(value.clone())?, *in_attribute)?);
            at = value.end;
        }
        if html.get(at..)? != &**self.between.last()? {
            return None;
        }

        let mut r = Renderer::new(html.len(), Some(deriver));
        for token in &self.tokens {
            match token {
                Recorded::Text(text) => r.text(text),
                Recorded::Value(i) => {
                    r.valued = true;
                    r.text(&decoded[*i]);
                }
                Recorded::Tag(tag) => {
                    let _ = r.tag(&tag.read());
                }
                Recorded::TagWithValues(tag) => {
                    r.valued = true;
                    let attrs: Vec<(Box<str>, Box<str>)> = tag
                        .attrs
                        .iter()
                        .map(|(name, value)| {
                            if !holds_stand_in(value) {
                                return (name.clone(), value.clone());
                            }
                            let mut filled = String::with_capacity(value.len() + 64);
                            for c in value.chars() {
                                match stand_in(c) {
                                    Some(i) => filled.push_str(&decoded[i]),
                                    None => filled.push(c),
                                }
                            }
                            (name.clone(), filled.into())
                        })
                        .collect();
                    let _ = r.tag(&TagRead {
                        attrs: Attrs::Kept(&attrs),
                        ..tag.read()
                    });
                }
                Recorded::End => r.end(),
            }
        }
        Some(r.finish())
    }
}

/// Whether a value may come right after `html`: not where it could join
/// what is before it into a character reference (`&`, `&am`, `&#003`), into
/// markup not yet decided (`<`, `</`, `<!-`, `<?`, a tag's name), or a CR
/// into a line break with a LF it begins with.
fn value_may_follow(html: &str) -> bool {
    let bytes = html.as_bytes();
    if bytes.last() == Some(&b'\r') {
        return false;
    }
    // The run of `allowed` bytes that ends `html` starts right after `lead`.
    let unfinished = |lead: u8, allowed: fn(u8) -> bool| {
        let run = bytes.iter().rev().take_while(|b| allowed(**b)).count();
        bytes.len() > run && bytes[bytes.len() - run - 1] == lead
    };
    !unfinished(b'&', |b| b.is_ascii_alphanumeric() || b == b'#')
        && !unfinished(b'<', |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'!' | b'/' | b'?' | b'-')
        })
}

/// A value as the tokenizer reads it, if it reads as text wherever it
/// stands (see [`Skeleton`]).
fn value_text(value: &str, in_attribute: bool) -> Option<Cow<'_, str>> {
    if value.contains(['<', '\r', '\0']) {
        return None;
    }
    if in_attribute
        && (value.is_empty()
            || value.contains(|c: char| c.is_ascii_whitespace() || matches!(c, '"' | '\'' | '=' | '>' | '`')))
    {
        return None;
    }
    if !value.contains('&') {
        return Some(Cow::Borrowed(value));
    }
    const ESCAPES: [(&str, char); 6] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#x27;", '\''),
        ("&#x2f;", '/'),
    ];
    let mut text = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        text.push_str(&rest[..at]);
        let (escape, c) = ESCAPES.iter().find(|(e, _)| rest[at..].starts_with(e))?;
        text.push(*c);
        rest = &rest[at + escape.len()..];
    }
    text.push_str(rest);
    Some(Cow::Owned(text))
}

/// Records a skeleton's tokens while a renderer reads them, so that the
/// tokenizer switches state exactly as it does for a message's HTML.
struct Recorder {
    renderer: RefCell<Renderer<'static>>,
    tokens: RefCell<Vec<Recorded>>,
    in_attribute: RefCell<Vec<bool>>,
    fits: std::cell::Cell<bool>,
    /// The tokenizer reads a script's content, where `-` and `>` change its
    /// state (`<!--` … `-->`): no value may stand there.
    in_script: std::cell::Cell<bool>,
}

impl TokenSink for Recorder {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut tokens = self.tokens.borrow_mut();
        match &token {
            Token::CharacterTokens(text) => {
                let mut rest: &str = text;
                if self.in_script.get() && holds_stand_in(text) {
                    self.fits.set(false);
                }
                while let Some((at, c, i)) = rest
                    .char_indices()
                    .find_map(|(at, c)| stand_in(c).map(|i| (at, c, i)))
                {
                    if at > 0 {
                        tokens.push(Recorded::Text(rest[..at].into()));
                    }
                    tokens.push(Recorded::Value(i));
                    rest = &rest[at + c.len_utf8()..];
                }
                if !rest.is_empty() {
                    tokens.push(Recorded::Text(rest.into()));
                }
            }
            Token::TagToken(tag) => {
                if holds_stand_in(&tag.name) || tag.attrs.iter().any(|a| holds_stand_in(&a.name.local)) {
                    self.fits.set(false);
                }
                let mut with_values = false;
                for a in &tag.attrs {
                    for i in a.value.chars().filter_map(stand_in) {
                        with_values = true;
                        self.in_attribute.borrow_mut()[i] = true;
                        if matches!(&*a.name.local, "style" | "hidden") {
                            self.fits.set(false);
                        }
                    }
                }
                tokens.push(if with_values {
                    Recorded::TagWithValues(OwnedTag::new(tag))
                } else {
                    Recorded::Tag(OwnedTag::new(tag))
                });
            }
            Token::CommentToken(text) if holds_stand_in(text) => self.fits.set(false),
            Token::DoctypeToken(d)
                if [&d.name, &d.public_id, &d.system_id]
                    .into_iter()
                    .flatten()
                    .any(|t| holds_stand_in(t)) =>
            {
                self.fits.set(false)
            }
            Token::EOFToken => tokens.push(Recorded::End),
            _ => {}
        }
        drop(tokens);
        let next = self.renderer.borrow_mut().token(&token);
        if let Token::TagToken(_) = &token {
            // In a raw state the only tag read is the end of the element.
            self.in_script
                .set(matches!(next, TokenSinkResult::RawData(RawKind::ScriptData)));
        }
        next
    }
}

/// What an element does to the layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Set off by blank lines.
    Paragraph,
    /// Starts and ends a line.
    Line,
    Inline,
}

fn kind(name: &str) -> Kind {
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "dl" | "blockquote" | "pre" | "hr"
        | "table" | "figure" | "address" | "fieldset" | "details" | "menu" => Kind::Paragraph,
        "div" | "li" | "tr" | "td" | "th" | "dt" | "dd" | "section" | "article" | "header" | "footer"
        | "nav" | "aside" | "main" | "center" | "caption" | "figcaption" | "form" | "summary" | "tbody"
        | "thead" | "tfoot" | "legend" | "option" | "body" | "html" => Kind::Line,
        _ => Kind::Inline,
    }
}

/// Elements whose content is never shown as text.
fn unseen(name: &str) -> bool {
    matches!(name, "script" | "style" | "title" | "template")
}

/// Elements that have no content and no end tag.
fn void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

/// An open container that indents the lines inside it.
enum Container {
    List {
        ordered: bool,
        next: u64,
    },
    /// A list item: its marker (`- `, `12. `), written on its first line.
    Item {
        marker: String,
        written: bool,
    },
    Quote,
}

struct OpenLink {
    url: String,
    /// Where its text starts in the paragraph.
    start: usize,
    /// The paragraph it started in ([`Renderer::paragraphs`]).
    paragraph: u64,
}

#[derive(Default)]
struct Renderer<'d> {
    deriver: Option<&'d TextDeriver>,
    /// The text written so far, lines ending in CRLF.
    out: String,
    /// The last line written is blank (or only quote marks).
    last_blank: bool,
    /// A blank line goes before the next line written.
    blank_wanted: bool,
    /// The current block's text, white space collapsed.
    paragraph: String,
    /// Ranges of `paragraph` that are never broken (URLs).
    protected: Vec<Range<usize>>,
    /// White space seen after the paragraph's last character: whether it
    /// held a line break.
    pending_space: Option<bool>,
    /// Paragraphs flushed so far.
    paragraphs: u64,
    containers: Vec<Container>,
    links: Vec<OpenLink>,
    /// An element being skipped (hidden, script, style …): its name and
    /// how many of that name are open inside it.
    skipping: Option<(String, u32)>,
    pre: u32,
    /// Inside a heading: its level.
    heading: Option<u8>,
    /// A recipient's value went into the current block ([`Skeleton`]).
    valued: bool,
}

impl<'d> Renderer<'d> {
    fn new(html_len: usize, deriver: Option<&'d TextDeriver>) -> Self {
        Renderer {
            out: String::with_capacity(html_len / 2),
            paragraph: String::with_capacity(1024),
            deriver,
            ..Renderer::default()
        }
    }

    fn token(&mut self, token: &Token) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(text) => self.text(text),
            Token::TagToken(tag) => return self.tag(&TagRead::tokenized(tag)),
            Token::EOFToken => self.end(),
            _ => {}
        }
        TokenSinkResult::Continue
    }

    /// The end of the document.
    fn end(&mut self) {
        self.skipping = None;
        self.end_link();
        self.flush();
    }

    fn tag(&mut self, tag: &TagRead<'_>) -> TokenSinkResult<()> {
        let name = tag.name;
        let start = tag.start;
        if let Some((skipped, depth)) = &mut self.skipping {
            if skipped == "p" && start && kind(name) != Kind::Inline {
                // A block closes an open paragraph (HTML's implied end tag).
                self.skipping = None;
                return self.tag(tag);
            }
            if name == skipped.as_str() {
                if start && !void(name) {
                    *depth += 1;
                } else if !start {
                    *depth -= 1;
                    if *depth == 0 {
                        self.skipping = None;
                    }
                }
            }
            return raw_state(name, start);
        }
        if start {
            if (unseen(name) || hidden(tag)) && !void(name) && !tag.self_closing {
                self.skipping = Some((name.to_string(), 1));
                return raw_state(name, start);
            }
            self.start_tag(name, tag);
        } else {
            self.end_tag(name);
        }
        TokenSinkResult::Continue
    }

    fn start_tag(&mut self, name: &str, tag: &TagRead<'_>) {
        match name {
            "br" => self.line_break(),
            "hr" => {
                self.block(true);
                let rule = "-".repeat(WIDTH.saturating_sub(self.indent_width()).clamp(3, 40));
                self.write_lines(&[&rule]);
                self.blank_wanted = true;
            }
            "img" => {
                if let Some(alt) = tag.attribute("alt") {
                    self.space();
                    self.text(alt);
                    self.space();
                }
            }
            "a" => {
                self.end_link();
                if let Some(url) = tag.attribute("href").and_then(shown_url) {
                    self.links.push(OpenLink {
                        url,
                        start: self.paragraph.len(),
                        paragraph: self.paragraphs,
                    });
                }
            }
            "ul" | "ol" | "menu" => {
                let nested = self
                    .containers
                    .iter()
                    .any(|c| matches!(c, Container::List { .. }));
                self.block(!nested);
                let next = tag
                    .attribute("start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1);
                self.containers.push(Container::List {
                    ordered: name == "ol",
                    next,
                });
            }
            "li" => {
                self.block(false);
                if matches!(self.containers.last(), Some(Container::Item { .. })) {
                    self.containers.pop();
                }
                let value = tag.attribute("value").and_then(|s| s.trim().parse::<u64>().ok());
                let marker = match self.containers.last_mut() {
                    Some(Container::List { ordered: true, next }) => {
                        let n = value.unwrap_or(*next);
                        *next = n + 1;
                        format!("{n}. ")
                    }
                    _ => "- ".to_string(),
                };
                self.containers.push(Container::Item {
                    marker,
                    written: false,
                });
            }
            "blockquote" => {
                self.block(true);
                self.containers.push(Container::Quote);
            }
            "pre" => {
                self.block(true);
                self.pre += 1;
            }
            _ => {
                if let Some(level) = heading_level(name) {
                    self.block(true);
                    self.heading = Some(level);
                } else {
                    match kind(name) {
                        Kind::Paragraph => self.block(true),
                        Kind::Line => self.block(false),
                        Kind::Inline => {}
                    }
                }
            }
        }
    }

    fn end_tag(&mut self, name: &str) {
        match name {
            "a" => self.end_link(),
            "ul" | "ol" | "menu" => {
                self.block(false);
                if let Some(at) = self
                    .containers
                    .iter()
                    .rposition(|c| matches!(c, Container::List { .. }))
                {
                    self.containers.truncate(at);
                }
                let nested = self
                    .containers
                    .iter()
                    .any(|c| matches!(c, Container::List { .. }));
                self.blank_wanted |= !nested;
            }
            "li" => {
                self.block(false);
                if matches!(self.containers.last(), Some(Container::Item { .. })) {
                    self.containers.pop();
                }
            }
            "blockquote" => {
                self.block(true);
                if let Some(at) = self
                    .containers
                    .iter()
                    .rposition(|c| matches!(c, Container::Quote))
                {
                    self.containers.truncate(at);
                }
            }
            "pre" => {
                self.block(true);
                self.pre = self.pre.saturating_sub(1);
            }
            _ => {
                if heading_level(name).is_some() {
                    self.block(true);
                    self.heading = None;
                } else {
                    match kind(name) {
                        Kind::Paragraph => self.block(true),
                        Kind::Line => self.block(false),
                        Kind::Inline => {}
                    }
                }
            }
        }
    }

    /// Text of the document, character references decoded.
    fn text(&mut self, text: &str) {
        if self.skipping.is_some() {
            return;
        }
        if self.pre > 0 {
            for c in text.chars() {
                if c != '\r' && !invisible(c) {
                    self.paragraph.push(c);
                }
            }
            return;
        }
        // Runs of characters that are neither white space nor invisible are
        // copied whole; only the lead bytes of those ([`LOOK`]) need a
        // closer look.
        let bytes = text.as_bytes();
        let mut run = 0;
        let mut i = 0;
        loop {
            if i == run
                && i < bytes.len()
                && let Some(line_break) = self.pending_space
                && let Some(c) = text[i..].chars().next()
                && !is_space(c)
                && !invisible(c)
            {
                // The white space before this run is one space, or none
                // between two CJK characters across a line break.
                self.pending_space = None;
                if let Some(previous) = self.paragraph.chars().next_back()
                    && previous != ' '
                    && !(line_break && wide(previous) && wide(c))
                {
                    self.paragraph.push(' ');
                }
            }
            while i < bytes.len() && !LOOK[usize::from(bytes[i])] {
                i += 1;
            }
            let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            if is_space(c) {
                self.paragraph.push_str(&text[run..i - c.len_utf8()]);
                run = i;
                let line_break = matches!(c, '\n' | '\r');
                self.pending_space = Some(self.pending_space.unwrap_or(false) || line_break);
            } else if invisible(c) {
                self.paragraph.push_str(&text[run..i - c.len_utf8()]);
                run = i;
            }
        }
        self.paragraph.push_str(&text[run..]);
    }

    /// White space between inline pieces (an image's alt text).
    fn space(&mut self) {
        if self.pre == 0 {
            self.pending_space = Some(self.pending_space.unwrap_or(false));
        }
    }

    /// Closes the open link, if any: its URL after its text.
    fn end_link(&mut self) {
        let Some(link) = self.links.pop() else {
            return;
        };
        let text = match self.paragraph.get(link.start..) {
            Some(text) if link.paragraph == self.paragraphs => text.trim(),
            _ => "",
        };
        if text == link.url || text == link.url.trim_start_matches("mailto:") {
            // The text is the URL: keep it whole.
            let end = self.paragraph.len();
            self.protected.push(end - text.len()..end);
            return;
        }
        self.pending_space = None;
        if !self.paragraph.is_empty() && !self.paragraph.ends_with(' ') {
            self.paragraph.push(' ');
        }
        let start = self.paragraph.len();
        self.paragraph.push('<');
        self.paragraph.push_str(link.url.trim_start_matches("mailto:"));
        self.paragraph.push('>');
        self.protected.push(start..self.paragraph.len());
    }

    fn line_break(&mut self) {
        if self.paragraph.is_empty() {
            // `<br><br>`: a blank line (one at most).
            if !self.out.is_empty() && !self.last_blank {
                self.blank_wanted = true;
            }
            return;
        }
        if self.pre > 0 {
            self.paragraph.push('\n');
            return;
        }
        self.flush();
    }

    /// A block starts or ends: the text so far is written.
    fn block(&mut self, blank: bool) {
        self.flush();
        self.blank_wanted |= blank;
    }

    /// The width of the indentation of the current containers.
    fn indent_width(&self) -> usize {
        self.containers
            .iter()
            .map(|c| match c {
                Container::List { .. } => 0,
                Container::Item { marker, .. } => marker.width(),
                Container::Quote => 2,
            })
            .sum()
    }

    /// Writes the prefix of the next line: quotes' `> `, items'
    /// indentation, and the marker of an item whose first line this is.
    fn push_prefix(&mut self) {
        let Renderer { out, containers, .. } = self;
        for c in containers {
            match c {
                Container::List { .. } => {}
                Container::Quote => out.push_str("> "),
                Container::Item { marker, written } => {
                    if *written {
                        out.extend(std::iter::repeat_n(' ', marker.width()));
                    } else {
                        out.push_str(marker);
                        *written = true;
                    }
                }
            }
        }
    }

    /// Writes the current block's text, wrapped.
    fn flush(&mut self) {
        self.pending_space = None;
        // The buffers are taken for the writing and given back, emptied,
        // to be filled again without allocating.
        let mut paragraph = std::mem::take(&mut self.paragraph);
        let mut protected = std::mem::take(&mut self.protected);
        if !paragraph.is_empty() {
            // Offsets into it (open links) no longer hold.
            self.paragraphs += 1;
        }
        let end = paragraph.trim_end().len();
        paragraph.truncate(end);
        let lines: Vec<&str> = if self.pre > 0 {
            let text = paragraph.strip_prefix('\n').unwrap_or(&paragraph);
            if text.trim().is_empty() {
                Vec::new()
            } else {
                text.split('\n').collect()
            }
        } else if paragraph.is_empty() {
            Vec::new()
        } else {
            protect_bare_urls(&paragraph, &mut protected);
            let width = WIDTH.saturating_sub(self.indent_width()).max(20);
            match self.deriver {
                // A recipient's paragraph is seldom another's: not kept.
                Some(d) if !self.valued => d.wrap(&paragraph, &protected, width),
                _ => wrap(&paragraph, &protected, width),
            }
        };
        if !lines.is_empty() {
            self.write_lines(&lines);
            if let Some(level) = self.heading {
                let width = lines.iter().map(|l| columns(l)).max().unwrap_or(0);
                let underline = if level == 1 { "=" } else { "-" }.repeat(width);
                self.write_lines(&[&underline]);
            }
        }
        paragraph.clear();
        protected.clear();
        self.valued = false;
        self.paragraph = paragraph;
        self.protected = protected;
    }

    fn write_lines(&mut self, lines: &[&str]) {
        if self.blank_wanted && !self.out.is_empty() && !self.last_blank {
            for c in &self.containers {
                if matches!(c, Container::Quote) {
                    self.out.push('>');
                }
            }
            self.out.push_str("\r\n");
            self.last_blank = true;
        }
        self.blank_wanted = false;
        for line in lines {
            let start = self.out.len();
            self.push_prefix();
            self.out.push_str(line);
            let end = self.out.trim_end().len().max(start);
            self.out.truncate(end);
            self.last_blank = self.out[start..].bytes().all(|b| b == b'>' || b == b' ');
            self.out.push_str("\r\n");
        }
    }

    fn finish(mut self) -> String {
        self.end();
        self.out
    }
}

/// After a start tag of a raw-text element, the tokenizer reads its content
/// as text (a `<style>`'s `<p>` is no paragraph).
fn raw_state(name: &str, start: bool) -> TokenSinkResult<()> {
    if !start {
        return TokenSinkResult::Continue;
    }
    match name {
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" => TokenSinkResult::RawData(RawKind::Rawtext),
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "plaintext" => TokenSinkResult::Plaintext,
        _ => TokenSinkResult::Continue,
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}

/// Whether an element is hidden from every reader: the `hidden` attribute,
/// or `display:none` in its style (Outlook-only hiding, `mso-hide`, is not).
fn hidden(tag: &TagRead<'_>) -> bool {
    if tag.attribute("hidden").is_some() {
        return true;
    }
    tag.attribute("style")
        .filter(|style| contains_ignore_case(style, "display"))
        .is_some_and(|style| {
            let style: String = style
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            style
                .split(';')
                .any(|d| d == "display:none" || d == "display:none!important")
        })
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The URL a link shows after its text, if it is one a reader can use.
fn shown_url(href: &str) -> Option<String> {
    let url: String = href
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" | "tel" if url.len() > scheme.len() + 1 => Some(url),
        // The address alone, without `?subject=`.
        "mailto" => {
            let address = url[7..].split('?').next().unwrap_or("");
            (!address.is_empty()).then(|| format!("mailto:{address}"))
        }
        _ => None,
    }
}

/// White space that collapses (the no-break space too: plain text has no
/// other way to keep it).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\u{a0}')
}

/// The bytes that may start white space or an invisible character: ASCII
/// white space, and the lead bytes of U+00A0 and U+00AD (C2), U+034F (CD),
/// U+200B, U+200C and U+2060 (E2), U+FEFF (EF).
const LOOK: [bool; 256] = {
    let mut look = [false; 256];
    let mut i = 0;
    while i < 256 {
        look[i] = matches!(
            i as u8,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0xc2 | 0xcd | 0xe2 | 0xef
        );
        i += 1;
    }
    look
};

/// Characters that show nothing: zero-width space and non-joiner, word
/// joiner, byte order mark, soft hyphen, combining grapheme joiner.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{2060}' | '\u{feff}' | '\u{ad}' | '\u{34f}'
    )
}

/// A character of a script written without spaces between words (Han,
/// kana, Hangul, their punctuation): two columns wide.
fn wide(c: char) -> bool {
    char_columns(c) == 2
}

/// Marks the URLs written in the text itself (`http://…`, `https://…`) as
/// unbreakable, up to the first space, `<`, `>` or wide character.
fn protect_bare_urls(text: &str, protected: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&text.as_bytes()[from..], b"://") {
        let at = from + found;
        let start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = text[at..]
            .find(|c: char| c == ' ' || c == '<' || c == '>' || wide(c))
            .map_or(text.len(), |i| at + i);
        if start < at {
            protected.push(start..end);
        }
        from = end.max(at + 3);
    }
}

/// The columns `c` takes: a CJK character two, a combining mark none (the
/// commonest ranges first: this runs for every character of every message).
fn char_columns(c: char) -> usize {
    match c {
        ' '..='~' => 1,
        '\u{4e00}'..='\u{9fff}' | '\u{3000}'..='\u{303e}' | '\u{ff01}'..='\u{ff60}' => 2,
        _ => c.width().unwrap_or(0),
    }
}

/// Whether `s` fits in `width` columns (it stops counting past them).
fn fits(s: &str, width: usize) -> bool {
    // A byte is at most a column: a wider character takes more bytes.
    if s.len() <= width {
        return true;
    }
    let mut w = 0;
    for c in s.chars() {
        w += char_columns(c);
        if w > width {
            return false;
        }
    }
    true
}

/// The columns `s` takes.
fn columns(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char_columns).sum()
    }
}

/// `text` in lines of at most `width` columns (one unbreakable piece
/// longer than that stands alone), broken where UAX #14 allows and never
/// inside a `protected` range. `text` has single spaces only (collapsed).
fn wrap<'a>(text: &'a str, protected: &[Range<usize>], width: usize) -> Vec<&'a str> {
    if fits(text, width) {
        return vec![text];
    }
    let inside = |at: usize| protected.iter().any(|r| r.start < at && at < r.end);
    if text.is_ascii() {
        // Plain ASCII: at spaces only (not after every hyphen, as UAX #14 allows).
        let breaks = text.match_indices(' ').map(|(i, _)| i + 1);
        fill(
            text,
            breaks.filter(|&i| i < text.len() && !inside(i)),
            &inside,
            width,
        )
    } else {
        let breaks = unicode_linebreak::linebreaks(text).map(|(i, _)| i);
        fill(
            text,
            breaks.filter(|&i| i < text.len() && !inside(i)),
            &inside,
            width,
        )
    }
}

/// Greedy filling of lines from the pieces between `breaks`.
fn fill<'a>(
    text: &'a str,
    breaks: impl Iterator<Item = usize>,
    inside: &dyn Fn(usize) -> bool,
    width: usize,
) -> Vec<&'a str> {
    let mut lines = Vec::new();
    let mut line_start = 0;
    // Columns of text[line_start..segment_start], its trailing space included.
    let mut line_width = 0;
    let mut segment_start = 0;
    for end in breaks.chain(std::iter::once(text.len())) {
        let segment = &text[segment_start..end];
        let full = columns(segment);
        let visible = full - usize::from(segment.ends_with(' '));
        if line_width > 0 && line_width + visible > width {
            lines.push(text[line_start..segment_start].trim_end());
            line_start = segment_start;
            line_width = 0;
        }
        if line_width == 0 && visible > width && !inside(segment_start + 1) {
            // A word with no break in it, longer than a line: cut it.
            let mut cut = segment_start;
            let mut w = 0;
            for (i, c) in segment.trim_end().char_indices() {
                let cw = char_columns(c);
                if w + cw > width {
                    lines.push(&text[cut..segment_start + i]);
                    cut = segment_start + i;
                    w = 0;
                }
                w += cw;
            }
            line_start = cut;
            line_width = columns(&text[cut..end]);
        } else {
            line_width += full;
        }
        segment_start = end;
    }
    let last = text[line_start..].trim_end();
    if !last.is_empty() {
        lines.push(last);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        html_to_text(html).replace("\r\n", "\n")
    }

    #[test]
    fn paragraphs_line_breaks_and_headings() {
        assert_eq!(
            text(
                "<html><head><title>T</title><style>p{color:red}</style></head><body>\
                 <h1>Spring   sale</h1><p>Hello\n  <b>there</b>,<br>friend.</p><p>Bye</p>\
                 <h2>春季促销</h2><div>a</div><div>b</div></body></html>"
            ),
            "Spring sale\n===========\n\nHello there,\nfriend.\n\nBye\n\n春季促销\n--------\n\na\nb\n"
        );
    }

    #[test]
    fn links_images_and_lists() {
        assert_eq!(
            text(
                "<p>Visit <a href=\"https://shop.cn/a?x=1&amp;y=2\">our shop</a> or \
                 <a href=\"https://shop.cn/\">https://shop.cn/</a>, \
                 <a href=\"mailto:s@shop.cn?subject=Hi\">write</a>, <a href=\"#top\">top</a>.</p>\
                 <p><a href=\"https://shop.cn/b\"><img src=\"x.png\" alt=\"Buy now\"></a>\
                 <img src=\"https://t.cn/t/o/x\" width=\"1\" height=\"1\" alt=\"\"></p>\
                 <ul><li>one<li>two<ol start=\"3\"><li>three</li><li>four</li></ol></li></ul><p>end</p>"
            ),
            "Visit our shop <https://shop.cn/a?x=1&y=2> or https://shop.cn/, write\n\
             <s@shop.cn>, top.\n\
             \n\
             Buy now <https://shop.cn/b>\n\
             \n\
             - one\n\
             - two\n  3. three\n  4. four\n\
             \n\
             end\n"
        );
    }

    #[test]
    fn hidden_and_raw_text_are_dropped_and_references_decoded() {
        assert_eq!(
            text(
                "<div style=\"display: none; max-height:0\">preheader<div>x</div></div>\
                 <script>if (a < b) { document.write('<p>no</p>') }</script>\
                 <!--[if mso]><p>Outlook only</p><![endif]-->\
                 <p hidden>gone</p><p>&copy; 2026 Acme &amp; Co &mdash; 5&nbsp;%&zwnj;&#x4e2d;&#25991;</p>"
            ),
            "© 2026 Acme & Co — 5 %中文\n"
        );
    }

    #[test]
    fn quotes_and_pre() {
        assert_eq!(
            text("<blockquote><p>a</p><p>b</p></blockquote><pre>\n x  y\n  z</pre>"),
            "> a\n>\n> b\n\n x  y\n  z\n"
        );
    }

    #[test]
    fn cjk_line_breaks_join_without_spaces() {
        assert_eq!(
            text("<p>春季新品\n上市 Spring\nsale</p>"),
            "春季新品上市 Spring sale\n"
        );
    }

    #[test]
    fn long_lines_wrap_at_78_columns_and_urls_stay_whole() {
        let url = format!("https://shop.example.cn/{}", "x".repeat(90));
        let html = format!(
            "<p>{}</p><p>{}</p><p>see <a href=\"{url}\">this</a> and {url} now</p>",
            "word ".repeat(40),
            "春季新品上市，全场满三百减五十，会员再享九五折。".repeat(5),
        );
        let out = text(&html);
        for line in out.lines() {
            assert!(
                line.width() <= WIDTH || line.contains(&url),
                "{} > 78: {line}",
                line.width()
            );
        }
        let cjk: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with('春') || l.contains('，'))
            .collect();
        assert_eq!(cjk.len(), 3, "{out}");
        for line in &cjk {
            // Never a closing mark at the start of a line (UAX #14).
            assert!(!line.starts_with(['，', '。']), "{line}");
            assert!(line.width() >= WIDTH - 4, "filled: {line}");
        }
        assert!(
            out.contains(&format!("see this\n<{url}>\nand\n{url}\nnow")),
            "{out}"
        );
        assert_eq!(out.lines().filter(|l| l.starts_with("word")).count(), 3);
    }

    #[test]
    fn nothing_shown_is_empty() {
        assert_eq!(text(""), "");
        assert_eq!(text("<img src=x alt=\"\"><p> &nbsp; </p>"), "");
        assert_eq!(
            text("<p>unclosed <a href=\"https://a.cn\">link"),
            "unclosed link <https://a.cn>\n"
        );
    }

    #[test]
    fn a_deriver_remembers_paragraphs_and_derives_the_same_text() {
        let deriver = TextDeriver::default();
        let body = "<p>春季新品上市，全场满三百减五十，会员再享九五折。Spring arrivals are here: spend 300, save 50, \
                    and members save another 5%.</p>";
        for name in ["李四", "Tom Jones", "李四"] {
            let html = format!(
                "<p>Dear {name}, welcome to the club of the friends of tea and coffee and cake.</p>{body}{body}"
            );
            assert_eq!(deriver.derive(&html, None), html_to_text(&html));
        }
        // The long paragraph, once; the short ones need no wrapping.
        assert_eq!(deriver.wrapped.read().unwrap().lines.len(), 1);
    }

    #[test]
    fn a_link_across_a_preformatted_block_keeps_its_url() {
        assert_eq!(
            text("<pre>  <a href=\"http://a.cn/\"></pre>字</a>"),
            "字 <http://a.cn/>\n"
        );
    }

    #[test]
    fn broken_markup_gives_text_not_a_panic() {
        let long = "长".repeat(100);
        for html in [
            "<li>x</ul></ol></blockquote><li>y",
            "<ol start=\"99999999999999999999\"><li>a</li></ol>",
            "<div style=\"display:none\"><p hidden>x<div>y",
            "<p style=\"DISPLAY: NONE !important\">x<p>shown",
            "<pre><a href=\"https://a.cn\">x<br>y</a>\r\nz</pre>",
            "<h1><a href=\"https://a.cn\"><h2>x</a></h1>",
            "<a href=\"javascript:alert(1)\">js</a> <a href=\"mailto:\">none</a> <a href=\"tel:+861\">call</a>",
            "<table><tr><td>a<td>b<tr><td>c</table><hr><hr>",
            "\0<p>\u{200b}\u{feff}&#0;&#xD800;&bogus; &amp</p>",
            "<script>never</script><style>p{}</style><title>t</title><template><p>t</template>ok",
            "<plaintext><p>not markup",
            "<blockquote><blockquote><ul><li><ol><li>deep</li></ol></li></ul></blockquote></blockquote>",
            &format!("<p>{long}</p><p>https://a.cn/{long}</p><blockquote>{long}</blockquote>"),
            "👨\u{200d}👩\u{200d}👧 مرحبا <b>bold</b>\u{301}",
        ] {
            let out = html_to_text(html);
            assert!(out.is_empty() || out.ends_with("\r\n"), "{html:?}: {out:?}");
            assert!(
                !out.replace("\r\n", "").contains(['\r', '\n']),
                "{html:?}: {out:?}"
            );
            for line in out.lines() {
                assert!(columns(line) <= WIDTH || line.contains("://"), "{html:?}: {line}");
            }
        }
        assert_eq!(text("<p style=\"DISPLAY: NONE !important\">x<p>shown"), "shown\n");
        assert_eq!(text("<a href=\"tel:+861\">call</a>"), "call <tel:+861>\n");
    }

    #[test]
    fn a_long_word_is_cut() {
        let out = text(&format!("<p>{}</p>", "a".repeat(100)));
        assert_eq!(out, format!("{}\n{}\n", "a".repeat(78), "a".repeat(22)));
    }

    /// Templates whose text is derived from a skeleton, and some that
    /// cannot be: every recipient's text is the one its own HTML gives.
    #[test]
    fn text_filled_into_a_skeleton_is_the_text_of_the_html() {
        use crate::domain::templates::{CompiledTemplate, Recipient};

        let long =
            "春季新品上市，全场满三百减五十，会员再享九五折。Spring arrivals are here: spend 300, save 50.";
        let paragraphs = format!("<p>{long} {long}</p>").repeat(3);
        // (template, whether it has a skeleton)
        let templates = [
            (format!("<html><body><h1>Dear {{{{ fullname }}}}</h1><p>Your code: <b>{{{{ var1 }}}}</b>, {long}</p>{paragraphs}</body></html>"), true),
            ("<ol start=\"{{ var2 }}\"><li>{{ fullname }}<li value=\"{{ var2 }}\">x</ol><img src=\"a.png\" alt=\"{{ var1 }}\"><pre>  {{ fullname }}\n {{ var1 }}</pre>".to_string(), true),
            ("<p><a href=\"{{ var3 }}\">{{ var3 }}</a> and <a href=\"https://a.cn/?u={{ var3 }}\">{{ fullname }}</a>. <a href={{ var3 }}>unquoted</a></p><blockquote>{{ var1 }}{{ var1 }}</blockquote>".to_string(), true),
            ("<div hidden>{{ var1 }}</div><style>p {{ '{' }} color: {{ var1 }} }</style><p>x{{ var1 }}y</p><!-- note -->{{ fullname }}".to_string(), true),
            ("<p style=\"{{ var1 }}\">shown or not</p>{{ fullname }}".to_string(), false),
            ("<html><head><title>{{ fullname }}</title></head><body><textarea>{{ var1 }}</textarea>{{ fullname }}</body></html>".to_string(), true),
            ("<script><!--<script>x{{ var1 }}>y</script><p>{{ fullname }}</p>".to_string(), false),
            ("<p>&#000000000000000000000000000000000000000000000000{{ var2 }}</p>".to_string(), false),
            ("<p>&{{ var1 }} and <{{ var1 }}>x</p>".to_string(), false),
            ("<p><!-- {{ fullname }} --></p>".to_string(), false),
            ("<p {{ var1 }}>attribute</p>".to_string(), false),
        ];
        let people = [
            ("Tom", "VIP-0042", "3", "https://shop.example.cn/a?b=1&c=2"),
            ("", "", "", ""),
            ("  spaced   out  ", " x ", " 7", "https://a.cn/x y"),
            ("李四", "会员号１２３", "12", "mailto:a@b.cn"),
            ("two\nlines", "a\r\nb", "x", "tel:+8612345"),
            ("Tom & <Jerry>", "x'y\"z", "=", "https://a.cn/\"q\""),
            ("&amp; &#x2f; &lt;", "display:none", "1", "javascript:alert(1)"),
            (long, long, "99999999999999999999999", long),
        ];
        for (html, has_skeleton) in &templates {
            let template = CompiledTemplate::compile("s", html, "").unwrap();
            let deriver = TextDeriver::default();
            for (fullname, var1, var2, var3) in people {
                let recipient = Recipient {
                    email: "a@b.cn",
                    fullname,
                    vars: [var1, var2, var3, "", "", "", "", "", "", ""],
                    unsubscribe_url: "",
                };
                let rendered = template.render(&recipient).unwrap();
                assert_eq!(
                    deriver.derive(&rendered.html, rendered.html_values.as_deref()),
                    html_to_text(&rendered.html),
                    "{html} with {recipient:?}"
                );
            }
            assert_eq!(
                deriver.skeleton.get().is_some_and(Option::is_some),
                *has_skeleton,
                "{html}"
            );
        }
    }

    #[test]
    fn a_value_fills_a_skeleton_only_where_it_reads_as_text() {
        let html = "<p>Dear NAME</p><a href=\"URL\">go</a>";
        let at = |s: &str, v: &str| {
            let start = s.find(v).unwrap();
            start..start + v.len()
        };
        let values = [at(html, "NAME"), at(html, "URL")];
        let skeleton = Skeleton::new(html, &values).unwrap();
        assert_eq!(skeleton.in_attribute, [false, true]);
        let deriver = TextDeriver::default();
        let fill = |name: &str, url: &str| {
            let html = format!("<p>Dear {name}</p><a href=\"{url}\">go</a>");
            let values = [at(&html, name), at(&html, url)];
            skeleton.fill(&html, &values, &deriver)
        };
        assert_eq!(
            fill("Tom &amp; Jerry", "https://a.cn/").as_deref(),
            Some("Dear Tom & Jerry\r\n\r\ngo <https://a.cn/>\r\n")
        );
        assert_eq!(
            fill("Tom", "https:&#x2f;&#x2f;a.cn&#x2f;").as_deref(),
            Some("Dear Tom\r\n\r\ngo <https://a.cn/>\r\n")
        );
        // Markup, a reference MiniJinja does not write, CR; in an attribute
        // white space, quotes, nothing.
        for (name, url) in [
            ("<b>", "u"),
            ("&nbsp;", "u"),
            ("a\rb", "u"),
            ("Tom", "a b"),
            ("Tom", "a\"b"),
            ("Tom", ""),
        ] {
            assert_eq!(fill(name, url), None, "{name} {url}");
        }
        // HTML that is not the skeleton's.
        let values = std::slice::from_ref(&(9..12));
        assert_eq!(skeleton.fill("<p>Dear Tom</p>", values, &deriver), None);
    }
}
