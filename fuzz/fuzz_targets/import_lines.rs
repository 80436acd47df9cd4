//! An import file's lines: its encoding detected from its first bytes, each
//! line decoded and parsed as the import runner does, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qunfa::domain::lists::{FileEncoding, parse_import_line};

fuzz_target!(|data: &[u8]| {
    let encoding = FileEncoding::detect(data);
    for raw in data.split(|b| *b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = match encoding {
            Some(enc) => enc.decode_line(raw),
            None => Some(String::from_utf8_lossy(raw).into_owned()),
        };
        if let Some(line) = text {
            let _ = parse_import_line(&line);
        }
    }
});
