//! Text as the interfaces carry it.

use std::borrow::Cow;

/// Drops the code points XML 1.0 can't carry (vendor API D-6): the vendor
/// API's answers are XML, and a console page shows what it stored.
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
