//! Bounded fuzzing of everything that reads untrusted input: the API's
//! parameter reader (query, url-encoded and multipart bodies), the batch
//! parsers of `ml_addr`, `maillist` and `address`, import lines and file
//! encodings, the template compiler and renderer, the bounce classifier,
//! link tokens and user agents. Inputs are random bytes and mutations of
//! real seeds, from a fixed seed (a failure reproduces) for a bounded time
//! each (`QUNFA_FUZZ_SECS`, default 2 s per target). A panic fails the test;
//! a hang shows as the test's timeout.
//!
//! This is not coverage-guided: `cargo fuzz` needs a nightly toolchain,
//! which this project's machines don't have.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use qunfa::domain::lists::{
    FileEncoding, parse_address_list, parse_import_line, parse_maillist, parse_records, split_records,
};
use qunfa::domain::templates::{CompiledTemplate, Recipient};
use qunfa::http::compat::params::{Limits, Params};

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A seed changed a little or a lot, or random bytes.
    fn input(&mut self, seeds: &[&[u8]]) -> Vec<u8> {
        const SPICE: &[&[u8]] = &[
            b";",
            b",",
            b"\t",
            b"\n",
            b"\r\n",
            b"@",
            b"{{",
            b"}}",
            b"{%",
            b"%}",
            b"=",
            b"&",
            b"%",
            b"%FF",
            b"+",
            b"\"",
            b"<",
            b"]]>",
            b"\0",
            b"\xff\xfe",
            "；".as_bytes(),
            "，".as_bytes(),
            "用户".as_bytes(),
            b"--",
            b"boundary",
            b"5.1.1",
            b"550 ",
            b"Content-Type: multipart/report; boundary=\"x\"\n",
        ];
        if self.below(8) == 0 {
            let len = self.below(512);
            return (0..len).map(|_| self.next() as u8).collect();
        }
        let mut v = seeds[self.below(seeds.len())].to_vec();
        for _ in 0..1 + self.below(8) {
            let at = self.below(v.len() + 1);
            match self.below(4) {
                0 => v.insert(at, self.next() as u8),
                1 if !v.is_empty() => {
                    let end = (at + self.below(16)).min(v.len());
                    v.drain(at.min(end)..end);
                }
                2 => {
                    let s = SPICE[self.below(SPICE.len())];
                    v.splice(at..at, s.iter().copied());
                }
                _ => {
                    let s = v.clone();
                    let from = self.below(s.len() + 1);
                    let end = (from + self.below(64)).min(s.len());
                    v.splice(at..at, s[from..end].iter().copied());
                }
            }
        }
        v
    }
}

fn budget() -> Duration {
    let secs = std::env::var("QUNFA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(secs)
}

/// Runs `f` on inputs until the budget is spent; returns how many.
fn fuzz(name: &str, seed: u64, seeds: &[&[u8]], mut f: impl FnMut(&[u8])) -> usize {
    let mut rng = Rng(seed);
    let until = Instant::now() + budget();
    let mut n = 0;
    while Instant::now() < until {
        let input = rng.input(seeds);
        f(&input);
        n += 1;
    }
    eprintln!("{name}: {n} inputs");
    n
}

#[test]
fn batch_parsers_and_import_lines() {
    let seeds: &[&[u8]] = &[
        b"a@x.cn;Name;v1;v2;v3;v4;v5;v6;v7;v8;v9;v10\nb@x.cn;B",
        "用户@例子.中国；张三，x@y.cn,李四".as_bytes(),
        b"email\tname\tvar1\nz@z.z\tZ\t1",
        b"<a@b.c>,  \"x\" <y@z.w>; c@d.e",
    ];
    let n = fuzz("batches", 1, seeds, |input| {
        let text = String::from_utf8_lossy(input);
        let _ = parse_records(split_records(&text, None));
        let _ = parse_records(split_records(&text, Some("|")));
        let _ = parse_maillist(&text);
        let _ = parse_address_list(&text);
        for line in text.lines() {
            let _ = parse_import_line(line);
        }
        if let Some(enc) = FileEncoding::detect(input) {
            let _ = enc.decode_line(input);
        }
    });
    assert!(n > 100);
}

#[test]
fn templates_compile_or_refuse_and_render() {
    let seeds: &[&[u8]] = &[
        b"Hello {{ fullname }}, {{ var1 }} {% if email %}<a href=\"{{ unsubscribe_url }}\">x</a>{% endif %}",
        b"{% for i in range(3) %}{{ i }}{% endfor %}{{ email|upper }}",
        b"{{ var10 ~ var9 }}{# c #}{% raw %}{{{% endraw %}",
    ];
    let r = Recipient {
        email: "a@b.cn",
        fullname: "A",
        vars: ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        unsubscribe_url: "https://u/",
    };
    let n = fuzz("templates", 2, seeds, |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(t) = CompiledTemplate::compile(&text, &text, "") {
            let _ = t.render(&r);
        }
    });
    assert!(n > 100);
}

#[test]
fn the_bounce_classifier_answers_everything() {
    let seeds: &[&[u8]] = &[
        b"From: MAILER-DAEMON\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\n\
          Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.c\nAction: failed\nStatus: 5.1.1\n\n--b--\n",
        b"Subject: Auto-Reply\n\nI am away",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\n\n--f\n\
          Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n\n--f--\n",
    ];
    let n = fuzz("bounces", 3, seeds, |input| {
        let found = qunfa::bounce::classify_message(input);
        assert!(!found.is_empty(), "every input gets an answer");
        let text = String::from_utf8_lossy(input);
        let _ = qunfa::bounce::classify_reply(550, text.split_whitespace().next(), &text);
    });
    assert!(n > 50);
}

#[test]
fn tokens_and_user_agents() {
    let signer = qunfa::mail::LinkSigner::new(&[9u8; 32]);
    let good = signer.sign(qunfa::mail::Claim::Click {
        delivery: 12345,
        link: 2,
    });
    let seeds: &[&[u8]] = &[
        good.as_bytes(),
        b"bounce+0123456789abcdefghijklmnopqrstuv@x.cn",
        b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
    ];
    let n = fuzz("tokens", 4, seeds, |input| {
        let text = String::from_utf8_lossy(input);
        if let Some(c) = signer.verify(&text) {
            assert_eq!(
                signer.sign(c),
                text.to_ascii_lowercase(),
                "only a token we made verifies"
            );
        }
        let _ = signer.verp_delivery(&text);
        let _ = qunfa::tracking::agent::Agent::parse(&text);
    });
    assert!(n > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parameter_reader_reads_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let seeds: &[&[u8]] = &[
        b"username=a&password=0123&do=ml-addr-add&list_id=1&ml_addr=a%40b.cn%3BA",
        b"--XyZ\r\nContent-Disposition: form-data; name=\"list_id\"\r\n\r\n1\r\n--XyZ\r\n\
          Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n\
          a@b.cn;A\r\n--XyZ--\r\n",
        "name=%D6%D0%CE%C4&subject=中文&a=1&a=2&ml_addr[]=x".as_bytes(),
    ];
    let mut rng = Rng(5);
    let until = Instant::now() + budget();
    let mut n = 0;
    while Instant::now() < until {
        let input = rng.input(seeds);
        let query = String::from_utf8_lossy(&rng.input(seeds)).into_owned();
        let mut headers = HeaderMap::new();
        let kind = match rng.below(3) {
            0 => "application/x-www-form-urlencoded",
            1 => "multipart/form-data; boundary=XyZ",
            _ => "application/x-www-form-urlencoded; charset=gbk",
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        let limits = Limits {
            form: 64 * 1024,
            file: 64 * 1024,
            files: 128 * 1024,
            tmp_dir: tmp.path(),
        };
        let p = Params::read(Some(&query), &headers, Body::from(input), &limits).await;
        let _ = (p.get("username"), p.id("list_id"), p.get("ml_addr"), p.paging(50));
        n += 1;
    }
    eprintln!("params: {n} inputs");
    assert!(n > 100);
}
