//! Templates as users upload them: compiled or refused, and a compiled one
//! renders or fails with an error (the fuel limit stops runaway loops), never
//! a panic or a hang; the text part derived from a rendered HTML part and
//! the footer's language found from the template, likewise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qunfa::domain::templates::{CompiledTemplate, Recipient};
use qunfa::mail::footer::detect;
use qunfa::mail::text::html_to_text;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let r = Recipient {
        email: "a@b.cn",
        fullname: "A",
        vars: ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        unsubscribe_url: "https://u/",
    };
    if let Ok(t) = CompiledTemplate::compile(&text, &text, &text)
        && let Ok(rendered) = t.render(&r)
    {
        let derived = html_to_text(&rendered.html);
        assert!(derived.is_empty() || derived.ends_with("\r\n"));
        assert!(!derived.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF");
    }
    let _ = detect(&text, &text, "");
});
