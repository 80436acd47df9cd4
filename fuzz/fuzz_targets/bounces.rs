//! The bounce classifier, as `qunfa bounce classify` and the bounce listener
//! call it: every message of any file gets an answer, never a panic; and any
//! SMTP reply text is classified.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// libFuzzer's hook aborts on every panic, even one caught. A panic inside
/// mail-parser is caught by `classify_message` on purpose (it answers such a
/// report as unreadable); this fuzzer is after panics in our own code, which
/// still abort. (mail-parser 0.11.9 trips a `debug_assert!` of its own on
/// some broken multiparts within seconds; release builds compile it out.)
fn let_mail_parser_panics_be_caught() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info
            .location()
            .is_some_and(|l| l.file().contains("/mail-parser-"))
        {
            abort(info);
        }
    }));
}

fuzz_target!(init: let_mail_parser_panics_be_caught(), |data: &[u8]| {
    let found = qunfa::bounce::classify_file(data);
    assert!(!found.is_empty(), "every input gets an answer");
    let text = String::from_utf8_lossy(data);
    let code = 400 + u16::from(data.first().copied().unwrap_or(0) % 200);
    let _ = qunfa::bounce::classify_reply(code, text.split_whitespace().next(), &text);
});
