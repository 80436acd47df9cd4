//! A domain's DKIM keys: the record `qunfa admin domain dkim` prints is the
//! one an independent verifier (dkimpy, installed by scripts/test.sh) needs
//! to accept a signature made with the stored key; and the other domain
//! admin commands.

mod common;

use std::time::Duration;

use common::smtp::{ServerOptions, SmtpServer};
use common::*;
use qunfa::domain::senders::{self, DomainName};
use qunfa::engine::sending::domain_signer;

/// `SEL._domainkey.D. IN TXT "a" "b"` → (`SEL._domainkey.D`, `ab`), checking
/// the zone-file form docs/interface.md gives.
fn parse_zone_line(line: &str) -> (String, String) {
    let (name, strings) = line.split_once(" IN TXT ").expect("zone-file form");
    assert!(name.ends_with('.'), "absolute name: {line}");
    let mut value = String::new();
    let mut rest = strings;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"').expect("a quoted string");
        let end = inner.find('"').expect("closing quote");
        assert!(end <= 255, "at most 255 characters a string: {line}");
        value.push_str(&inner[..end]);
        rest = inner[end + 1..].trim_start();
    }
    (name.trim_end_matches('.').to_string(), value)
}

async fn printed_records_verify_signatures_made_with_the_stored_keys(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.admin_ok(&["manager", "add", "--username", "boss", "--password", "bosspw"])
        .await;
    for (customer, domain) in [("1", "%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD"), ("0", "shared.cn")] {
        let added = app
            .api(
                "bs.php",
                "boss",
                "bosspw",
                &format!("do=domain-add&customer_id={customer}&domain={domain}"),
            )
            .await;
        assert_eq!(added.code(), "success", "{}", added.text());
    }
    let domain = "xn--fsqu00a.xn--fiqs8s";
    let printed = app.admin_ok(&["domain", "dkim", "--domain", "例子.中国"]).await;
    assert_eq!(
        printed,
        app.admin_ok(&["domain", "dkim", "--domain", domain]).await
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    let records: Vec<(String, String)> = lines.iter().map(|l| parse_zone_line(l)).collect();
    assert!(
        records[0].0.starts_with("qunfa-rsa-") && records[0].0.ends_with(&format!("._domainkey.{domain}"))
    );
    assert!(
        records[0]
            .1
            .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    );
    assert!(
        lines[0].contains("\" \""),
        "an RSA-2048 record needs two strings: {}",
        lines[0]
    );
    assert!(records[1].0.starts_with("qunfa-ed25519-"));
    assert!(records[1].1.starts_with("v=DKIM1; k=ed25519; p="));

    // Sign a message with the stored keys, as the send engine will. With this
    // domain and selector, mail-auth folds the RSA header right before its
    // closing ';', which dkimpy once rejected (see mail::dkim).
    let qa = app.app();
    let d = senders::domain(&qa.store, &DomainName::parse(domain).unwrap())
        .await
        .unwrap()
        .unwrap();
    let signer = domain_signer(&qa.store, &qa.secret_box, qa.config.dkim_algorithms(), &d)
        .await
        .unwrap();
    let message = format!(
        "From: =?UTF-8?B?5byg5LiJ?= <sales@{domain}>\r\n\
         To: customer@example.org\r\n\
         Subject: =?UTF-8?B?5pil5a2j5L+D6ZSA?=\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0800\r\n\
         Message-ID: <1.2@{domain}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         您好，春季促销开始了。\r\n\
         Hello  there, with  spaces.\r\n"
    );
    let headers = signer.sign(message.as_bytes()).unwrap();
    let signed = format!("{headers}{message}");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        dkimpy_verdicts(dir.path(), signed.as_bytes(), &records).await,
        "pass pass",
        "{signed}"
    );

    // The verdict depends on the message and on the key the record names.
    let tampered = signed.replace("春季促销", "夏季促销");
    assert_eq!(
        dkimpy_verdicts(dir.path(), tampered.as_bytes(), &records).await,
        "fail fail"
    );
    let shared = app.admin_ok(&["domain", "dkim", "--domain", "shared.cn"]).await;
    let foreign: Vec<(String, String)> = records
        .iter()
        .zip(shared.lines().map(parse_zone_line))
        .map(|((name, _), (_, value))| (name.clone(), value))
        .collect();
    assert_eq!(
        dkimpy_verdicts(dir.path(), signed.as_bytes(), &foreign).await,
        "fail fail"
    );
    app.stop().await;
}

async fn domains_are_administered_from_the_command_line(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let added = app
        .admin_ok(&["domain", "add", "--domain", "Mail.Acme.CN", "--customer", "acme"])
        .await;
    assert_eq!(added.lines().count(), 2, "prints the records to publish: {added}");
    assert!(added.contains("._domainkey.mail.acme.cn. IN TXT \"v=DKIM1; k=rsa; p="));
    app.admin_ok(&["domain", "add", "--domain", "platform.cn"]).await;
    let relay = async |host: &str, tls: bool| {
        let mut argv = vec!["domain", "relay", "--domain", "mail.acme.cn", "--host", host];
        if tls {
            argv.push("--tls");
        }
        app.admin_ok(&argv).await
    };
    relay("smtp.acme.cn:465", true).await;
    let list = app.admin_ok(&["domain", "list"]).await;
    assert_eq!(
        list,
        "customer_id\tdomain\trelay\tcap_today\tsent_today\twarmup\n0\tplatform.cn\t-\t-\t-\t-\n\
         1\tmail.acme.cn\tsmtp.acme.cn:465 tls\t-\t-\t-\n"
    );
    // The customer sees it through the API.
    let api = app.api("bs.php", "acme", "pw", "do=domain-list").await.text();
    assert!(api.contains("<domain>mail.acme.cn</domain>"), "{api}");

    let refusals: &[(&str, &str, &str)] = &[
        ("add --domain mail.acme.cn", "", "already exists"),
        ("add --domain bad_name", "", "--domain"),
        ("add --domain x.cn --customer nobody", "", "nobody"),
        ("dkim --domain nope.cn", "", "unknown domain"),
        ("relay --domain nope.cn --host", "a.cn:25", "unknown domain"),
        ("relay --domain mail.acme.cn --host", "smtp.acme.cn", "--host"),
        ("relay --domain mail.acme.cn --host", "smtp.acme.cn:0", "--host"),
        (
            "relay --domain mail.acme.cn --host",
            "smtp.acme.cn:99999",
            "--host",
        ),
        ("relay --domain mail.acme.cn --host", "bad host:25", "--host"),
    ];
    for (args, last, mentions) in refusals {
        let mut argv: Vec<&str> = ["admin", "domain"].into();
        argv.extend(args.split(' '));
        if !last.is_empty() {
            argv.push(last);
        }
        refused(&app.qunfa(&argv).await, mentions);
    }
    relay("[2001:db8::1]:587", false).await;
    assert!(
        app.admin_ok(&["domain", "list"])
            .await
            .contains("2001:db8::1:587")
    );
    app.stop().await;
}

/// A task sent by the engine: what the receiving server got carries RSA
/// and Ed25519 signatures that dkimpy accepts with the records
/// `qunfa admin domain dkim` prints, covering List-Unsubscribe.
async fn mail_the_engine_sends_verifies_independently(backend: Backend) {
    engine_mail_verifies(backend, true).await
}

/// With `QUNFA_DKIM_ED25519=off`, a new domain gets an RSA key only and
/// messages carry the RSA signature alone, which dkimpy accepts.
async fn without_dual_signing_mail_is_signed_with_rsa_alone(backend: Backend) {
    engine_mail_verifies(backend, false).await
}

async fn engine_mail_verifies(backend: Backend, dual: bool) {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let Some(app) = TestApp::start_with(backend, move |s| {
        s.smtp_relay = Some(relay.clone());
        s.dkim_ed25519 = Some(if dual { "on" } else { "off" }.into());
    })
    .await
    else {
        return;
    };
    let (keys, verdict) = if dual { (2, "pass pass") } else { (1, "pass") };
    app.customer("acme", "pw", 10).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "spring"),
            ("subject", "{{ fullname }}，春季促销"),
            (
                "content",
                "<p>您好 {{ fullname }}, code {{ var1 }}</p><a href=\"https://shop.example/a?x=1&amp;y=2\">shop</a>",
            ),
            ("text_content", "您好 {{ fullname }},  code {{ var1 }}"),
        ],
    )
    .await;
    add_list(
        &app,
        "acme",
        &[
            "li@dest.cn;李雷;A1".to_string(),
            "wang@dest.cn;王芳;B2".to_string(),
        ],
    )
    .await;
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news@acme.cn&send_fullname=Acme&status=2&track_status=2&subs_link=1",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let got = sink.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 2);

    let printed = app.admin_ok(&["domain", "dkim", "--domain", "acme.cn"]).await;
    let records: Vec<(String, String)> = printed.lines().map(parse_zone_line).collect();
    assert_eq!(records.len(), keys, "{printed}");
    assert!(records[0].0.starts_with("qunfa-rsa-"), "{printed}");
    let dir = tempfile::tempdir().unwrap();
    for r in &got {
        let raw = String::from_utf8_lossy(&r.data).into_owned();
        let head = &raw[..raw.find("\r\n\r\n").expect("a header")];
        assert!(head.contains("\r\nList-Unsubscribe: <http"), "{head}");
        assert!(
            head.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{head}"
        );
        // Each signature names List-Unsubscribe and the one-click header among those it covers.
        let signatures: Vec<String> = unfold(head)
            .into_iter()
            .filter(|h| h.to_ascii_lowercase().starts_with("dkim-signature:"))
            .collect();
        assert_eq!(signatures.len(), keys, "RSA, and Ed25519 when dual: {head}");
        for sig in &signatures {
            let h = tag(sig, "h").to_ascii_lowercase();
            let covered: Vec<&str> = h.split(':').map(str::trim).collect();
            for header in ["from", "subject", "list-unsubscribe", "list-unsubscribe-post"] {
                assert!(covered.contains(&header), "{header} not signed: {sig}");
            }
            assert_eq!(tag(sig, "d"), "acme.cn");
        }
        assert_eq!(
            dkimpy_verdicts(dir.path(), &r.data, &records).await,
            verdict,
            "{raw}"
        );
        // A receiver that finds the unsubscribe link changed rejects both.
        let tampered = raw.replacen("List-Unsubscribe: <http", "List-Unsubscribe: <https", 1);
        assert_eq!(
            dkimpy_verdicts(dir.path(), tampered.as_bytes(), &records).await,
            verdict.replace("pass", "fail")
        );
    }
    app.stop().await;
}

/// The header fields of a header block, continuation lines joined.
fn unfold(head: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => fields.push(line.to_string()),
        }
    }
    fields
}

/// The value of tag `name` of a DKIM-Signature field, whitespace removed.
fn tag(signature: &str, name: &str) -> String {
    let value = signature.split_once(':').map_or("", |(_, v)| v);
    value
        .split(';')
        .filter_map(|t| t.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default()
}

both_stores!(
    printed_records_verify_signatures_made_with_the_stored_keys,
    domains_are_administered_from_the_command_line,
);

both_stores!(by_backend; mail_the_engine_sends_verifies_independently, without_dual_signing_mail_is_signed_with_rsa_alone);
