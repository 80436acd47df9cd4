//! Message-building micro-benchmark: µs per message of `PreparedTask::build`
//! on one core, for a 20 KB HTML template with two links and a text part,
//! open and click tracking on, the unsubscribe link on, base64 bodies;
//! without DKIM, with RSA-2048, with RSA-2048 and Ed25519; and the same
//! template without its text part, whose text each message derives from
//! its HTML (`mail::text`). Not a test: it prints figures
//! (docs/benchmarks.md, "Message building").
//!
//!   cargo run --release --example mail_build [MESSAGES]

use std::time::Instant;

use qunfa::domain::templates::{Encoding, Recipient};
use qunfa::mail::dkim::{DkimAlgorithm, DkimKey, DomainSigner, SIGNED_HEADERS};
use qunfa::mail::{PreparedTask, TaskMessage, Tracking};

/// About 20 KB of mixed Chinese and English HTML with two links and the
/// recipient's name and a custom field.
fn html() -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>春季促销</title></head>\n\
         <body style=\"margin:0;padding:0;background:#f4f4f4\">\n\
         <table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\">\n\
         <p>{{ fullname }}，您好！您的会员号是 {{ var1 }}。</p>\n\
         <p><a href=\"https://shop.example.cn/spring?utm_source=edm&amp;utm_medium=email\" \
         style=\"color:#c00\">立即选购 Shop now</a></p>\n",
    );
    let paragraph = "<p style=\"font-size:14px;line-height:22px;color:#333333\">春季新品上市，\
        全场满三百减五十，会员再享九五折。Spring arrivals are here: spend 300, save 50, and \
        members save another 5%. 活动时间有限，欢迎选购。</p>\n";
    while html.len() < 20_000 {
        html.push_str(paragraph);
    }
    html.push_str(
        "<p><a href=\"https://shop.example.cn/stores\">门店地址 Our stores</a></p>\n\
         </td></tr></table>\n</body></html>\n",
    );
    html
}

fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let html = html();
    let own_text = "{{ fullname }}，您好！春季新品上市：https://shop.example.cn/spring\n";
    let task = TaskMessage {
        subject: "{{ fullname }}，春季促销开始了",
        html: &html,
        text: own_text,
        encoding: Encoding::Base64,
        attachments: &[],
        sender_name: "Acme 商城",
        reply_to: Some("service@shop.example.cn"),
        unsubscribe_link: true,
        footer_language: qunfa::mail::footer::FooterLanguage::Auto,
        tracking: Tracking::OpensAndClicks,
        link_base: "https://t.example.cn",
        helo_name: "mx1.qunfa.example",
        bounce_domain: "bounce.qunfa.example",
    };
    let started = Instant::now();
    let prepared = PreparedTask::new(&task, &[9; 32]).expect("prepare");
    println!(
        "template {} bytes, {} tracked links; prepared in {} µs",
        html.len(),
        prepared.links().len(),
        started.elapsed().as_micros()
    );

    let rsa = DkimKey::generate(DkimAlgorithm::Rsa, "rsa".into()).expect("RSA key");
    let ed25519 = DkimKey::generate(DkimAlgorithm::Ed25519, "ed".into()).expect("Ed25519 key");
    let now = jiff::ZonedDateTime::now();
    let names: Vec<String> = (0..messages).map(|i| format!("会员{i}")).collect();
    let emails: Vec<String> = (0..messages).map(|i| format!("user{i}@example.org")).collect();
    let derived = PreparedTask::new(&TaskMessage { text: "", ..task }, &[9; 32]).expect("prepare");
    let runs = [
        ("no DKIM", vec![], &prepared),
        ("no DKIM, text derived", vec![], &derived),
        ("DKIM RSA-2048", vec![rsa.clone()], &prepared),
        (
            "DKIM RSA-2048 + Ed25519",
            vec![rsa.clone(), ed25519.clone()],
            &prepared,
        ),
        ("RSA + Ed25519, derived", vec![rsa, ed25519], &derived),
    ];
    for (label, keys, prepared) in runs {
        let signer = DomainSigner::new("shop.example.cn", &keys, SIGNED_HEADERS).expect("signer");
        let started = Instant::now();
        let mut bytes = 0;
        for i in 0..messages {
            let recipient = Recipient {
                email: &emails[i],
                fullname: &names[i],
                vars: ["VIP-0042", "", "", "", "", "", "", "", "", ""],
                unsubscribe_url: "",
            };
            let message = prepared
                .build("sales@shop.example.cn", &signer, &recipient, i as i64 + 1, &now)
                .expect("build");
            bytes += message.len();
        }
        let elapsed = started.elapsed();
        println!(
            "{label:<24} {:>7.1} µs/message ({messages} messages, {} bytes each)",
            elapsed.as_secs_f64() * 1e6 / messages as f64,
            bytes / messages
        );
    }
}
