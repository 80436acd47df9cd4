//! The batch parsers of `ml_addr` (records split by `;`, a newline or a
//! caller's separator), `maillist` and `address`: any text is parsed or
//! refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qunfa::domain::lists::{parse_address_list, parse_maillist, parse_records, split_records};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_records(split_records(&text, None));
    let _ = parse_records(split_records(&text, Some("|")));
    let _ = parse_maillist(&text);
    let _ = parse_address_list(&text);
});
