//! Link tokens and VERP addresses, which arrive in URLs and bounce
//! recipients, and User-Agent headers: only a token we signed verifies,
//! anything else is refused, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use qunfa::mail::LinkSigner;

static SIGNER: LazyLock<LinkSigner> = LazyLock::new(|| LinkSigner::new(&[9u8; 32]));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(c) = SIGNER.verify(&text) {
        assert_eq!(
            SIGNER.sign(c),
            text.to_ascii_lowercase(),
            "only a token we made verifies"
        );
    }
    let _ = SIGNER.verp_delivery(&text);
    let _ = qunfa::tracking::agent::Agent::parse(&text);
});
