//! A domain's DKIM keys: the record `qunfa admin domain dkim` prints is the
//! one an independent verifier (dkimpy, installed by scripts/test.sh) needs
//! to accept a signature made with the stored key; and the other domain
//! admin commands.

mod common;

use common::*;
use qunfa::domain::senders::{DomainName, domain_signer};

/// `SEL._domainkey.D. IN TXT "a" "b"` → (`SEL._domainkey.D`, `ab`), checking
/// the zone-file form INTERFACE.md gives.
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
    let d = qa
        .store
        .domain(&DomainName::parse(domain).unwrap())
        .await
        .unwrap()
        .unwrap();
    let signer = domain_signer(&qa.store, &qa.secret_box, &d).await.unwrap();
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
        "customer_id\tdomain\trelay\n0\tplatform.cn\t-\n1\tmail.acme.cn\tsmtp.acme.cn:465 tls\n"
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

both_stores!(
    printed_records_verify_signatures_made_with_the_stored_keys,
    domains_are_administered_from_the_command_line,
);
