//! The unsubscribe page's words: in the language of the message's footer
//! (the task's or customer's `footer_language`, else the template's
//! language), with a switch to the other language (`?lang=zh`, `?lang=en`).

use crate::app::App;
use crate::domain::ids::DeliveryId;
use crate::domain::templates::FooterLanguage;
use crate::domain::tracking;
use crate::mail::footer::{self, Language};

/// The language a page for `delivery` is shown in: `?lang=` when the
/// reader chose one, else the footer's; both when neither can be told.
pub async fn language(app: &App, delivery: DeliveryId, query: Option<&str>) -> Language {
    let chosen = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| match pair {
            "lang=zh" => Some(Language::Zh),
            "lang=en" => Some(Language::En),
            _ => None,
        });
    if let Some(chosen) = chosen {
        return chosen;
    }
    match tracking::delivery_language(&app.store, delivery).await {
        Ok(Some(d)) => match (d.setting(), &d.template) {
            (FooterLanguage::Auto, None) => Language::Both,
            (setting, None) => footer::resolve(setting, "", "", ""),
            (setting, Some((subject, html, text))) => footer::resolve(setting, subject, html, text),
        },
        Ok(None) => Language::Both,
        Err(e) => {
            tracing::warn!(error = %e, "the unsubscribe page's language");
            Language::Both
        }
    }
}

/// Text in each language.
struct Words {
    zh: &'static str,
    en: &'static str,
}

const CONFIRM_TITLE: Words = Words {
    zh: "退订确认",
    en: "Unsubscribe",
};
const CONFIRM: Words = Words {
    zh: "您确定不再接收这些邮件吗？",
    en: "Do you want to stop receiving these e-mails?",
};
const BUTTON: Words = Words {
    zh: "确认退订",
    en: "Unsubscribe",
};
const DONE_TITLE: Words = Words {
    zh: "已退订",
    en: "Unsubscribed",
};
const DONE: Words = Words {
    zh: "您已退订，今后不会再收到这些邮件。",
    en: "You have been unsubscribed and will not receive these e-mails again.",
};

fn say(words: &Words, language: Language, joiner: &str) -> String {
    match language {
        Language::Zh => words.zh.to_string(),
        Language::En => words.en.to_string(),
        Language::Both => format!("{}{joiner}{}", words.zh, words.en),
    }
}

/// The page asking to confirm: a form that POSTs back to the same URL.
pub fn confirm(language: Language) -> (String, String) {
    (
        say(&CONFIRM_TITLE, language, " · "),
        format!(
            "<p>{}</p><form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"1\">\
             <button type=\"submit\">{}</button></form>{}",
            say(&CONFIRM, language, "<br>"),
            say(&BUTTON, language, " · "),
            switch(language)
        ),
    )
}

/// The page after unsubscribing.
pub fn done(language: Language) -> (String, String) {
    (
        say(&DONE_TITLE, language, " · "),
        format!("<p>{}</p>{}", say(&DONE, language, "<br>"), switch(language)),
    )
}

/// The links to the page in the other language.
fn switch(language: Language) -> String {
    let zh = "<a href=\"?lang=zh\" lang=\"zh-CN\">中文</a>";
    let en = "<a href=\"?lang=en\" lang=\"en\">English</a>";
    let links = match language {
        Language::Zh => en.to_string(),
        Language::En => zh.to_string(),
        Language::Both => format!("{zh} · {en}"),
    };
    format!("<p class=\"lang\">{links}</p>")
}

/// The `lang` attribute of the page.
pub fn html_lang(language: Language) -> &'static str {
    match language {
        Language::En => "en",
        Language::Zh | Language::Both => "zh-CN",
    }
}
