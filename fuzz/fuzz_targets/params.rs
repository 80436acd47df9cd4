//! The API's one parameter reader over any request: a query string and a
//! url-encoded, GBK-declared or multipart body. Every request is read or
//! answered with a parameter error, never a panic.
//!
//! Input: a first byte choosing the body's Content-Type, the query string up
//! to the first newline, then the body.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use qunfa::http::params::{Limits, Params};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// Uploads are spooled here; each is deleted when its `Params` is dropped.
static TMP: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("qunfa-fuzz-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
});

const KINDS: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "application/x-www-form-urlencoded; charset=gbk",
];

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    let (query, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(nl) => (&rest[..nl], &rest[nl + 1..]),
        None => (rest, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let mut headers = HeaderMap::new();
    let kind = KINDS[usize::from(*kind) % KINDS.len()];
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let limits = Limits {
        form: 64 * 1024,
        file: 64 * 1024,
        files: 128 * 1024,
        tmp_dir: &TMP,
    };
    let body = Body::from(body.to_vec());
    let p = RUNTIME.block_on(Params::read(Some(&query), &headers, body, &limits));
    let _ = (p.get("username"), p.id("list_id"), p.get("ml_addr"), p.paging(50));
    let _ = (
        p.array("ml_addr"),
        p.untrimmed("subject"),
        p.auth_field("password"),
    );
});
