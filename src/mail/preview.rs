//! A template as its messages will read, for a sample recipient: the
//! console's preview and `template.php?do=preview-tpl` show the same.

use crate::domain::templates::{Recipient, Rendered};
use crate::mail::text::html_to_text;

/// The recipient a preview is rendered for.
pub const SAMPLE: Recipient<'static> = Recipient {
    email: "zhang.san@example.com",
    fullname: "张三",
    vars: [
        "VAR1", "VAR2", "VAR3", "VAR4", "VAR5", "VAR6", "VAR7", "VAR8", "VAR9", "VAR10",
    ],
    unsubscribe_url: "#unsubscribe",
};

/// A template rendered for [`SAMPLE`], with the text part its messages carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    pub subject: String,
    pub html: String,
    /// The text part, lines ending in LF: the template's own, or the one
    /// derived from the HTML.
    pub text: String,
    /// The template has no text: `text` is derived from the HTML.
    pub text_derived: bool,
}

impl Preview {
    pub fn of(rendered: Rendered) -> Preview {
        let (text, text_derived) = match rendered.text {
            Some(text) => (text, false),
            None => (html_to_text(&rendered.html).replace("\r\n", "\n"), true),
        };
        Preview {
            subject: rendered.subject,
            html: rendered.html,
            text,
            text_derived,
        }
    }
}
