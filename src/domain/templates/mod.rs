//! E-mail templates (5.2–5.7 and D-17 of the vendor API) and their
//! placeholders (docs/templates-and-messages.md).
//!
//! Subject, HTML and text are MiniJinja templates over the placeholders of
//! [`PLACEHOLDERS`]. A template is checked when it is uploaded or edited
//! (syntax, unknown placeholders, a trial render), so that sending never meets
//! a broken one; the send engine compiles it once per task
//! ([`CompiledTemplate`]) and renders it per recipient. Values are escaped in
//! the HTML part only.

mod cases;
mod test_message;

pub use cases::*;
pub use test_message::*;

use std::fmt;
use std::ops::Range;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// Largest attachment (D-17).
pub const ATTACHMENT_MAX: u64 = 10 << 20;
/// Largest sum of a template's attachments (D-17).
pub const ATTACHMENTS_PER_TEMPLATE_MAX: u64 = 20 << 20;
/// Largest `content` or `text_content`, in bytes (D-17).
pub const CONTENT_MAX: usize = 2 << 20;

/// The names a template may use; a missing value renders as empty text.
pub const PLACEHOLDERS: &[&str] = &[
    "email",
    "fullname",
    "var1",
    "var2",
    "var3",
    "var4",
    "var5",
    "var6",
    "var7",
    "var8",
    "var9",
    "var10",
    "unsubscribe_url",
];

/// Bounds the work of one render, so a template with runaway loops fails
/// instead of stalling a delivery worker.
const FUEL: u64 = 2_000_000;

/// The transfer encoding of the message body (5.2 `encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Base64,
    QuotedPrintable,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::QuotedPrintable => "quoted-printable",
        }
    }

    /// Case-sensitive as printed, except that `quoted-printable` is also
    /// accepted in upper case (D-19).
    pub fn parse(s: &str) -> Option<Encoding> {
        match s {
            "base64" => Some(Encoding::Base64),
            _ if s.eq_ignore_ascii_case("quoted-printable") => Some(Encoding::QuotedPrintable),
            _ => None,
        }
    }
}

/// The language of the unsubscribe footer a task's messages carry (and of
/// the unsubscribe page's first view): `footer_language` of a task or a
/// customer. `Auto` lets the template's language decide (`mail::footer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FooterLanguage {
    #[default]
    Auto,
    Zh,
    En,
    Both,
}

impl FooterLanguage {
    pub const VALUES: &'static str = "zh, en, both or auto";

    /// `zh`, `en`, `both` or `auto` (surrounding white space and case ignored).
    pub fn parse(s: &str) -> Option<FooterLanguage> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(FooterLanguage::Auto),
            "zh" => Some(FooterLanguage::Zh),
            "en" => Some(FooterLanguage::En),
            "both" => Some(FooterLanguage::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FooterLanguage::Auto => "auto",
            FooterLanguage::Zh => "zh",
            FooterLanguage::En => "en",
            FooterLanguage::Both => "both",
        }
    }

    /// This setting, or `fallback` when this one is `auto` (a task's
    /// setting over its customer's).
    pub fn or(self, fallback: FooterLanguage) -> FooterLanguage {
        match self {
            FooterLanguage::Auto => fallback,
            set => set,
        }
    }
}

impl fmt::Display for FooterLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three texts of a template, named by their API parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Subject,
    Html,
    Text,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Subject, Part::Html, Part::Text];

    /// The API parameter that carries this part.
    pub fn param(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "content",
            Part::Text => "text_content",
        }
    }
}

/// Why a template was refused or failed to render: the part, the line
/// (1-based) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub part: Part,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.part.param(), self.reason),
            None => write!(f, "{}: {}", self.part.param(), self.reason),
        }
    }
}

fn from_minijinja(part: Part, e: &minijinja::Error) -> TemplateError {
    TemplateError {
        part,
        line: e.line(),
        reason: match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        },
    }
}

/// The values of one recipient.
#[derive(Clone, Debug, Default)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub fullname: &'a str,
    /// `var1` … `var10`.
    pub vars: [&'a str; 10],
    pub unsubscribe_url: &'a str,
}

impl Recipient<'_> {
    fn context(&self) -> Value {
        self.context_with(std::iter::empty())
    }

    /// The values, then `extra` (which win over a value of the same name).
    fn context_with(&self, extra: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
        let mut values: Vec<(&'static str, Value)> = Vec::with_capacity(PLACEHOLDERS.len() + 2);
        values.extend(extra);
        values.extend([
            ("email", Value::from(self.email)),
            ("fullname", Value::from(self.fullname)),
            ("unsubscribe_url", Value::from(self.unsubscribe_url)),
        ]);
        for (name, value) in PLACEHOLDERS[2..12].iter().zip(self.vars) {
            values.push((name, Value::from(value)));
        }
        Value::from_object(Values(values))
    }
}

/// A render's values by name, the first of a name winning. A template looks
/// a name up at every placeholder: a few string compares in this short list,
/// where a map value compared `Value`s (a tenth of building a message).
#[derive(Debug)]
struct Values(Vec<(&'static str, Value)>);

impl minijinja::value::Object for Values {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        let mut names: Vec<&'static str> = Vec::with_capacity(self.0.len());
        for (name, _) in &self.0 {
            if !names.contains(name) {
                names.push(name);
            }
        }
        minijinja::value::Enumerator::Values(names.into_iter().map(Value::from).collect())
    }
}

/// A recipient with every value set, for the trial render of a check.
const SAMPLE: Recipient<'static> = Recipient {
    email: "sample@example.com",
    fullname: "Sample",
    vars: ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"],
    unsubscribe_url: "https://example.com/u/sample",
};

/// One message's texts for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line: line breaks a value brought in are turned into spaces.
    pub subject: String,
    pub html: String,
    /// `None` when the template has no text part.
    pub text: Option<String>,
    /// Where each placeholder's value went in `html`, in order, when the
    /// template has no text part and its HTML is only text and `{{ }}`
    /// (see [`CompiledTemplate::compile_with_internal`]): everything
    /// between them is the same for every recipient, so the text derived
    /// from the HTML can be derived once and filled in (`mail::text`).
    pub html_values: Option<Vec<Range<usize>>>,
}

/// A template compiled once, rendered per recipient.
pub struct CompiledTemplate {
    env: Environment<'static>,
    has_text: bool,
    /// The number of placeholders of the HTML part when it also has a
    /// marked twin ([`marked`]).
    marked: Option<usize>,
}

/// Set off each placeholder's value in the marked twin of an HTML part: a
/// Unicode noncharacter, which no template is expected to hold; a value that
/// holds one only costs that recipient the twin.
const MARK: char = '\u{FDD0}';
const MARKED_HTML: &str = "html_marked";

/// A rendered HTML part and where each placeholder's value went in it.
type PlacedHtml = (String, Vec<Range<usize>>);

/// The twin of an HTML part whose every placeholder is marked on both sides
/// (`a{{ x }}b` → `a·{{ x }}·b`) and the number of placeholders, when the
/// part is only text and `{{ }}`: no statements or comments (`{%`, `{#`),
/// no white-space control (`{{-`, `-}}`) and quotes that close within each
/// `{{ }}`. Then whatever a recipient's values are, the text between the
/// placeholders is the part's own.
fn marked(html: &str) -> Option<(String, usize)> {
    if html.contains("{%") || html.contains("{#") || html.contains(MARK) {
        return None;
    }
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    let mut count = 0;
    while let Some(open) = rest.find("{{") {
        let close = open + rest[open..].find("}}")? + 2;
        let expression = &rest[open + 2..close - 2];
        if expression.starts_with('-')
            || expression.ends_with('-')
            || expression.matches('"').count() % 2 == 1
            || expression.matches('\'').count() % 2 == 1
        {
            return None;
        }
        out.push_str(&rest[..open]);
        out.push(MARK);
        out.push_str(&rest[open..close]);
        out.push(MARK);
        count += 1;
        rest = &rest[close..];
    }
    out.push_str(rest);
    Some((out, count))
}

fn template_name(part: Part) -> &'static str {
    match part {
        Part::Subject => "subject",
        Part::Html => "html",
        Part::Text => "text",
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name == "html" || name == MARKED_HTML {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    // minijinja 3.1's printf-like `format` filter slices its format string
    // off a character boundary and panics on some inputs (found by
    // fuzz/templates); a mail template has no need of it.
    env.remove_filter("format");
    // Keep the text exactly as written, trailing newline included.
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    env
}

impl CompiledTemplate {
    /// Compiles and checks the three parts (an empty text part is "none").
    pub fn compile(subject: &str, html: &str, text: &str) -> Result<CompiledTemplate, TemplateError> {
        Self::compile_with_internal(subject, html, text, &[])
    }

    /// Like [`Self::compile`], for a template the platform has rewritten
    /// (`mail::links`): the `internal` names are allowed besides the
    /// placeholders. They are never allowed in what users upload, so the
    /// values given for them by [`Self::render_with`] can be trusted.
    pub fn compile_with_internal(
        subject: &str,
        html: &str,
        text: &str,
        internal: &[&str],
    ) -> Result<CompiledTemplate, TemplateError> {
        let mut env = environment();
        for (part, source) in [(Part::Subject, subject), (Part::Html, html), (Part::Text, text)] {
            add_checked(&mut env, part, source, internal)?;
        }
        // The marked twin serves only a text derived from the HTML.
        let marked = match marked(html) {
            Some((source, count)) if text.is_empty() => env
                .add_template_owned(MARKED_HTML, source)
                .is_ok()
                .then_some(count),
            _ => None,
        };
        let compiled = CompiledTemplate {
            env,
            has_text: !text.is_empty(),
            marked,
        };
        compiled.render(&SAMPLE)?;
        Ok(compiled)
    }

    pub fn render(&self, r: &Recipient<'_>) -> Result<Rendered, TemplateError> {
        self.render_with(r, std::iter::empty())
    }

    /// Renders with the platform's own values besides the recipient's:
    /// the internal names of [`Self::compile_with_internal`], or a
    /// placeholder's value in another form (a link marked safe).
    pub fn render_with(
        &self,
        r: &Recipient<'_>,
        extra: impl IntoIterator<Item = (&'static str, Value)>,
    ) -> Result<Rendered, TemplateError> {
        let ctx = r.context_with(extra);
        let render = |part: Part| -> Result<String, TemplateError> {
            self.env
                .get_template(template_name(part))
                .and_then(|t| t.render(&ctx))
                .map_err(|e| from_minijinja(part, &e))
        };
        let subject = render(Part::Subject)?
            .split(['\r', '\n'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let (html, html_values) = match self.render_marked(&ctx)? {
            Some((html, values)) => (html, Some(values)),
            None => (render(Part::Html)?, None),
        };
        Ok(Rendered {
            subject,
            html,
            text: if self.has_text {
                Some(render(Part::Text)?)
            } else {
                None
            },
            html_values,
        })
    }

    /// The HTML part rendered through its marked twin: the HTML and where
    /// each value went; `None` without a twin, or when a value held the
    /// mark.
    fn render_marked(&self, ctx: &Value) -> Result<Option<PlacedHtml>, TemplateError> {
        let Some(count) = self.marked else {
            return Ok(None);
        };
        let marked = self
            .env
            .get_template(MARKED_HTML)
            .and_then(|t| t.render(ctx))
            .map_err(|e| from_minijinja(Part::Html, &e))?;
        let mut html = String::with_capacity(marked.len());
        let mut values = Vec::with_capacity(count);
        let mut pieces = 0;
        for (i, piece) in marked.split(MARK).enumerate() {
            let start = html.len();
            html.push_str(piece);
            if i % 2 == 1 {
                values.push(start..html.len());
            }
            pieces = i + 1;
        }
        // A value that held the mark made more pieces than the twin has.
        Ok((pieces == 2 * count + 1).then_some((html, values)))
    }

    /// Whether `part` names the placeholder `name` anywhere (a branch not
    /// taken counts too).
    pub fn uses(&self, part: Part, name: &str) -> bool {
        self.env
            .get_template(template_name(part))
            .is_ok_and(|t| t.undeclared_variables(false).contains(name))
    }
}

/// Checks one part on its own (an edit changes only some): it parses, uses
/// only known placeholders, and renders.
pub fn check_part(part: Part, source: &str) -> Result<(), TemplateError> {
    let mut env = environment();
    add_checked(&mut env, part, source, &[])?;
    env.get_template(template_name(part))
        .and_then(|t| t.render(SAMPLE.context()))
        .map(|_| ())
        .map_err(|e| from_minijinja(part, &e))
}

fn add_checked(
    env: &mut Environment<'static>,
    part: Part,
    source: &str,
    internal: &[&str],
) -> Result<(), TemplateError> {
    if matches!(part, Part::Html | Part::Text) && source.len() > CONTENT_MAX {
        return Err(TemplateError {
            part,
            line: None,
            reason: format!("longer than {} bytes", CONTENT_MAX),
        });
    }
    let name = template_name(part);
    env.add_template_owned(name, source.to_string())
        .map_err(|e| from_minijinja(part, &e))?;
    let template = env.get_template(name).map_err(|e| from_minijinja(part, &e))?;
    let globals: Vec<String> = env.globals().map(|(n, _)| n.to_string()).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| {
            !PLACEHOLDERS.contains(&v.as_str()) && !internal.contains(&v.as_str()) && !globals.contains(v)
        })
        .collect();
    unknown.sort();
    if let Some(first) = unknown.first() {
        return Err(TemplateError {
            part,
            line: line_in_tag(source, first),
            reason: format!(
                "unknown placeholder '{first}' (known: {})",
                PLACEHOLDERS.join(", ")
            ),
        });
    }
    Ok(())
}

/// The line where `name` first appears as a whole word inside `{{ }}` or
/// `{% %}`, to point at an unknown placeholder.
fn line_in_tag(source: &str, name: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = source[from..].find(name) {
        let at = from + found;
        let end = at + name.len();
        let before = source[..at].chars().next_back();
        let after = source[end..].chars().next();
        let open = source[..at].rfind("{{").max(source[..at].rfind("{%"));
        let closed = source[..at].rfind("}}").max(source[..at].rfind("%}"));
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) && open > closed {
            return Some(source[..at].matches('\n').count() + 1);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient<'a>(email: &'a str, fullname: &'a str) -> Recipient<'a> {
        Recipient {
            email,
            fullname,
            vars: ["一", "", "", "", "", "", "", "", "", "十"],
            unsubscribe_url: "https://t.example/u?a=1&b=2",
        }
    }

    #[test]
    fn placeholders_render_and_are_escaped_in_html_only() {
        let t = CompiledTemplate::compile(
            "Hi {{ fullname }}",
            "<p>{{ fullname }} {{ var1 }}{{ var10 }} <a href=\"{{ unsubscribe_url }}\">退订</a></p>\n",
            "{{ fullname }} <{{ email }}>\n{{ unsubscribe_url }}\n",
        )
        .unwrap();
        let r = t.render(&recipient("a@b.cn", "Tom & <Jerry>")).unwrap();
        assert_eq!(r.subject, "Hi Tom & <Jerry>");
        assert_eq!(
            r.html,
            "<p>Tom &amp; &lt;Jerry&gt; 一十 <a href=\"https:&#x2f;&#x2f;t.example&#x2f;u?a=1&amp;b=2\">退订</a></p>\n"
        );
        assert_eq!(
            r.text.as_deref(),
            Some("Tom & <Jerry> <a@b.cn>\nhttps://t.example/u?a=1&b=2\n")
        );
    }

    #[test]
    fn missing_values_are_empty_and_no_text_part_is_none() {
        let t = CompiledTemplate::compile(
            "{{ var3 }}x",
            "{% if fullname %}Dear {{ fullname }}{% else %}Hello{% endif %}",
            "",
        )
        .unwrap();
        let r = t.render(&Recipient::default()).unwrap();
        assert_eq!(
            (r.subject.as_str(), r.html.as_str(), r.text),
            ("x", "Hello", None)
        );
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let t = CompiledTemplate::compile("Hi {{ fullname }}!", "x", "").unwrap();
        let r = t.render(&recipient("a@b.cn", "A\r\nBcc: evil@x.cn")).unwrap();
        assert_eq!(r.subject, "Hi A Bcc: evil@x.cn!");
    }

    #[test]
    fn syntax_errors_name_the_part_and_line() {
        let e = CompiledTemplate::compile("ok", "<p>\n<b>{{ fullname </b>\n", "")
            .err()
            .unwrap();
        assert_eq!((e.part, e.line), (Part::Html, Some(2)));
        assert!(e.to_string().starts_with("content: line 2: syntax error"), "{e}");
        let e = check_part(Part::Text, "a\nb\n{% if %}").unwrap_err();
        assert_eq!((e.part, e.line), (Part::Text, Some(3)));
    }

    #[test]
    fn unknown_placeholders_are_refused_with_their_line() {
        let e = check_part(Part::Html, "<p>fulname:</p>\n<p>{{ fulname }}</p>").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.reason.contains("unknown placeholder 'fulname'"), "{e}");
        // Names a template sets itself, filters and builtins are fine.
        check_part(
            Part::Html,
            "{% set n = fullname|default('friend')|upper %}{{ n }}{% for i in range(3) %}{{ i }}{% endfor %}",
        )
        .unwrap();
    }

    #[test]
    fn the_format_filter_is_not_offered() {
        // This once panicked inside minijinja's `format` (found by fuzzing).
        let source = "{{ \"%(x\u{fffd}\u{fffd}zz\"|format(email) }}";
        let refused = CompiledTemplate::compile(source, source, source)
            .map(|t| t.render(&SAMPLE))
            .err();
        assert!(
            refused.is_some_and(|e| e.reason.contains("format")),
            "refused at upload"
        );
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let e = check_part(
            Part::Html,
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(e.reason.contains("fuel"), "{e}");
    }

    #[test]
    fn encodings() {
        assert_eq!(Encoding::parse("base64"), Some(Encoding::Base64));
        assert_eq!(
            Encoding::parse("QUOTED-PRINTABLE"),
            Some(Encoding::QuotedPrintable)
        );
        assert_eq!(Encoding::parse("Base64"), None);
        assert_eq!(Encoding::parse("7bit"), None);
    }

    #[test]
    fn content_over_the_limit_is_refused() {
        let big = "x".repeat(CONTENT_MAX + 1);
        assert!(check_part(Part::Html, &big).is_err());
        assert!(check_part(Part::Subject, "ok").is_ok());
    }

    #[test]
    fn a_plain_html_part_says_where_its_values_went() {
        let html = "<p>{{ fullname }}, {{fullname|upper}}{{ var1 }} <a href=\"{{ unsubscribe_url }}\">{{ \"}\" }}</a></p>";
        let t = CompiledTemplate::compile("s", html, "").unwrap();
        let r = t.render(&recipient("a@b.cn", "Tom & <Jerry>")).unwrap();
        let mut plain = environment();
        plain.add_template("html", html).unwrap();
        let ctx = recipient("a@b.cn", "Tom & <Jerry>").context();
        assert_eq!(r.html, plain.get_template("html").unwrap().render(&ctx).unwrap());
        let values: Vec<&str> = r.html_values.unwrap().into_iter().map(|v| &r.html[v]).collect();
        assert_eq!(
            values,
            [
                "Tom &amp; &lt;Jerry&gt;",
                "TOM &amp; &lt;JERRY&gt;",
                "一",
                "https:&#x2f;&#x2f;t.example&#x2f;u?a=1&amp;b=2",
                "}"
            ]
        );
        // A value that holds the mark: the HTML is still right, without places.
        let marked = format!("x{MARK}y");
        let r = t.render(&recipient("a@b.cn", &marked)).unwrap();
        assert!(r.html.starts_with(&format!("<p>{marked}, X{MARK}Y一")));
        assert_eq!(r.html_values, None);
        // Statements, comments, white-space control, a text part: no places.
        for (html, text) in [
            ("{% if var1 %}{{ var1 }}{% endif %}", ""),
            ("{# note #}{{ var1 }}", ""),
            ("a {{- var1 }}", ""),
            ("{{ var1 }}", "text"),
        ] {
            let t = CompiledTemplate::compile("s", html, text).unwrap();
            assert_eq!(
                t.render(&recipient("a@b.cn", "T")).unwrap().html_values,
                None,
                "{html}"
            );
        }
    }
}
