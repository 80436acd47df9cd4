//! The language of the unsubscribe footer a message carries (and of the
//! unsubscribe page's first view): Chinese when the template's text is
//! mostly CJK, English otherwise, unless the task or its customer sets
//! `footer_language` (`zh`, `en`, `both`; `auto` is the default).
//!
//! An English message with a Chinese footer reads to spam filters as text
//! in a second script slipped in (SpamAssassin's `HTML_OBFUSCATE_*`), and
//! to its reader as a footer not meant for them.

use crate::mail::text::html_to_text;

pub use crate::domain::templates::FooterLanguage;

/// The language of the footer of a template's messages under `setting`.
pub fn resolve(setting: FooterLanguage, subject: &str, html: &str, text: &str) -> Language {
    match setting {
        FooterLanguage::Auto => detect(subject, html, text),
        FooterLanguage::Zh => Language::Zh,
        FooterLanguage::En => Language::En,
        FooterLanguage::Both => Language::Both,
    }
}

/// The language a footer or the unsubscribe page is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Zh,
    En,
    /// Chinese, then English.
    Both,
}

/// `Zh` when the text of a template (subject, the text the HTML shows, its
/// text part; placeholders and URLs left out) is mostly CJK, else `En`.
///
/// "Mostly" compares words: CJK is written without spaces, and a Chinese
/// word is about one and a half characters long, so three CJK characters
/// weigh as much as two Latin-script words.
pub fn detect(subject: &str, html: &str, text: &str) -> Language {
    let mut cjk = 0usize;
    let mut words = 0usize;
    for part in [subject, &html_to_text(html), text] {
        let part = without_template_constructs(part);
        for token in part.split_whitespace() {
            if token.contains("://") || token.contains('@') {
                continue;
            }
            let mut in_word = false;
            for c in token.chars() {
                if is_cjk(c) {
                    cjk += 1;
                    in_word = false;
                } else if c.is_alphabetic() {
                    words += usize::from(!in_word);
                    in_word = true;
                } else {
                    in_word = false;
                }
            }
        }
    }
    if cjk * 2 > words * 3 {
        Language::Zh
    } else {
        Language::En
    }
}

/// Han ideographs, kana, Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{1100}'..='\u{11ff}'
        | '\u{ac00}'..='\u{d7af}'
        | '\u{20000}'..='\u{3134f}')
}

/// `s` without MiniJinja's `{{ … }}`, `{% … %}` and `{# … #}`.
fn without_template_constructs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let close = match rest.as_bytes().get(open + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
                continue;
            }
        };
        out.push_str(&rest[..open]);
        out.push(' ');
        rest = match rest[open + 2..].find(close) {
            Some(end) => &rest[open + 2 + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

const ZH_HTML: &str = "如不想再收到此类邮件，请<a href=\"{url}\" style=\"color:#888888\">退订</a>。";
const EN_HTML: &str = "If you no longer wish to receive these emails, <a href=\"{url}\" style=\"color:#888888\">unsubscribe</a>.";
const ZH_TEXT: &str = "如不想再收到此类邮件，请点击以下链接退订：";
const EN_TEXT: &str = "If you no longer wish to receive these emails, unsubscribe here:";

/// The visible unsubscribe link of an HTML part.
pub fn html_footer(language: Language, url: &str) -> String {
    let sentences = match language {
        Language::Zh => ZH_HTML.to_string(),
        Language::En => EN_HTML.to_string(),
        Language::Both => format!("{ZH_HTML}<br>{EN_HTML}"),
    };
    format!(
        "<p style=\"margin:24px 0 8px;font-size:12px;line-height:18px;color:#888888;text-align:center\">{}</p>",
        sentences.replace("{url}", url)
    )
}

/// Appends the visible unsubscribe link of a text part to `text`: a blank
/// line, the sentence (each language's on a line), the URL on a line of
/// its own.
pub fn push_text_footer(text: &mut String, language: Language, url: &str) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str("\r\n");
    }
    if !text.is_empty() {
        text.push_str("\r\n");
    }
    for sentence in match language {
        Language::Zh => &[ZH_TEXT][..],
        Language::En => &[EN_TEXT],
        Language::Both => &[ZH_TEXT, EN_TEXT],
    } {
        text.push_str(sentence);
        text.push_str("\r\n");
    }
    text.push_str(url);
    text.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_fall_back() {
        assert_eq!(FooterLanguage::parse(" ZH "), Some(FooterLanguage::Zh));
        assert_eq!(FooterLanguage::parse("both"), Some(FooterLanguage::Both));
        assert_eq!(FooterLanguage::parse("fr"), None);
        assert_eq!(FooterLanguage::Auto.or(FooterLanguage::En), FooterLanguage::En);
        assert_eq!(FooterLanguage::Zh.or(FooterLanguage::En), FooterLanguage::Zh);
        assert_eq!(
            resolve(FooterLanguage::Both, "Hi", "<p>Hello</p>", ""),
            Language::Both
        );
    }

    #[test]
    fn the_template_language_decides() {
        let en = "<p>Dear {{ fullname }}, our spring sale starts today: every item is half price.</p>\
                  <p><a href=\"https://shop.example.cn/春季\">Shop now</a></p><p>Acme 商城 · 张三</p>";
        assert_eq!(detect("{{ fullname }}, spring sale", en, ""), Language::En);
        let zh = "<p>{{ fullname }}，您好！春季促销今天开始，全场五折。</p>\
                  <p><a href=\"https://shop.example.cn/spring\">立即选购 Shop now</a></p>";
        assert_eq!(
            detect("{{ fullname }}，春季促销 | Spring sale", zh, ""),
            Language::Zh
        );
        // Half and half, as much said in each: Chinese.
        let bilingual = "<p>春季新品上市，全场满三百减五十。Spring arrivals: spend 300, save 50.</p>";
        assert_eq!(detect("", bilingual, ""), Language::Zh);
        // Placeholders and URLs are no English.
        assert_eq!(
            detect(
                "",
                "<p>您好 {{ fullname }} {{ var1 }} {{ var2 }}</p>",
                "https://shop.example.cn/x/y/z"
            ),
            Language::Zh
        );
        assert_eq!(detect("", "", ""), Language::En);
    }

    #[test]
    fn footers_in_each_language() {
        let url = "https://t.example.cn/t/u/abc";
        let en = html_footer(Language::En, url);
        assert!(en.contains("<a href=\"https://t.example.cn/t/u/abc\""), "{en}");
        assert!(!en.chars().any(is_cjk), "{en}");
        assert!(html_footer(Language::Zh, url).contains(">退订</a>。</p>"));
        let both = html_footer(Language::Both, url);
        assert!(both.contains("退订") && both.contains("unsubscribe"));

        let mut text = "Hello".to_string();
        push_text_footer(&mut text, Language::En, url);
        assert_eq!(
            text,
            format!(
                "Hello\r\n\r\nIf you no longer wish to receive these emails, unsubscribe here:\r\n{url}\r\n"
            )
        );
        let mut text = "您好\r\n".to_string();
        push_text_footer(&mut text, Language::Zh, url);
        assert_eq!(
            text,
            format!("您好\r\n\r\n如不想再收到此类邮件，请点击以下链接退订：\r\n{url}\r\n")
        );
    }
}
