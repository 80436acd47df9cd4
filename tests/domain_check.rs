//! `qunfa admin domain check` against a DNS server the test starts
//! (dnsmasq): each record's verdict and the record to publish, in text and
//! JSON; and `QUNFA_DNS_SERVER` serving delivery's MX look-ups too.

mod common;

use std::sync::Arc;

use common::dns::{DnsServer, Record};
use common::smtp::{ServerOptions, SmtpServer};
use common::*;
use qunfa::delivery::{Attempt, HickoryResolver, Mailer, MailerSettings, Route};
use qunfa::domain::failure::FailureClass;
use qunfa::mail::dkim::{DkimAlgorithm, DkimKey};

/// `SEL._domainkey.D. IN TXT "a" "b"` → (`SEL._domainkey.D`, `ab`).
fn zone_record(line: &str) -> (String, String) {
    let (name, strings) = line.split_once(" IN TXT ").expect("zone-file form");
    let value: String = strings.split('"').skip(1).step_by(2).collect();
    (name.trim_end_matches('.').to_string(), value)
}

/// One line of the text report: status, check, found, publish.
fn report(out: &str) -> Vec<[String; 4]> {
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "four columns: {l}");
            [f[0], f[1], f[2], f[3]].map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_is_checked_record_by_record_against_a_real_dns_server() {
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    app.customer("acme", "pw", 0).await;
    for domain in ["acme.test", "other.test", "inc.test"] {
        app.admin_ok(&["domain", "add", "--domain", domain, "--customer", "acme"])
            .await;
    }
    let printed = app.admin_ok(&["domain", "dkim", "--domain", "acme.test"]).await;
    let lines: Vec<&str> = printed.lines().collect();
    let (rsa_name, rsa_value) = zone_record(lines[0]);
    let (ed_name, _) = zone_record(lines[1]);
    assert!(rsa_name.starts_with("qunfa-rsa-") && ed_name.starts_with("qunfa-ed25519-"));
    // The Ed25519 record publishes another key than the one that signs.
    let stranger = DkimKey::generate(DkimAlgorithm::Ed25519, "x".into()).unwrap();
    let wrong_ed = stranger.txt_value();

    let dns = DnsServer::start(&[
        Record::Txt(&rsa_name, &rsa_value),
        Record::Txt(&ed_name, &wrong_ed),
        Record::Txt("acme.test", "v=spf1 a:mta.qunfa.test -all"),
        Record::Txt("acme.test", "google-site-verification=abc"),
        Record::A("mta.qunfa.test", "192.0.2.25"),
        Record::Mx("bounce.acme.test", "mx.acme.test", 10),
        Record::A("mx.acme.test", "127.0.0.1"),
        Record::Txt("other.test", "v=spf1 ip4:198.51.100.0/24 ?all"),
        Record::Txt(
            "_dmarc.other.test",
            "v=DMARC1; p=quarantine; rua=mailto:d@other.test",
        ),
        Record::Txt("inc.test", "v=spf1 include:_spf.corp.test -all"),
        Record::Txt(
            "_spf.corp.test",
            "v=spf1 ip4:203.0.113.0/24 include:_spf.qunfa.test ~all",
        ),
        Record::Txt("_spf.qunfa.test", "v=spf1 ip4:192.0.2.0/24 -all"),
    ])
    .await;
    let server = dns.addr().to_string();
    let check = async |domain: &str, extra: &[&str]| {
        let mut argv = vec![
            "--dns-server",
            &server,
            "--helo-name",
            "mta.qunfa.test",
            "--bounce-domain",
            "bounce.acme.test",
        ];
        if !extra.contains(&"--bounce-listen") {
            argv.extend(["--bounce-listen", "127.0.0.1:2525"]);
        }
        argv.extend_from_slice(extra);
        argv.extend(["admin", "domain", "check", "--domain", domain]);
        let text = app.qunfa(&argv).await;
        assert_eq!(text.code, 0, "{}", text.stderr);
        argv.push("--json");
        let json = app.qunfa(&argv).await;
        assert_eq!(json.code, 0, "{}", json.stderr);
        (text.stdout, json.stdout)
    };

    // RSA published right, Ed25519 wrong, SPF present, no DMARC.
    let (text, json) = check("acme.test", &[]).await;
    let rows = report(&text);
    let verdicts: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        verdicts,
        [
            (
                "ok",
                format!("dkim:{}", rsa_name.split('.').next().unwrap()).as_str()
            ),
            (
                "wrong",
                format!("dkim:{}", ed_name.split('.').next().unwrap()).as_str()
            ),
            ("ok", "spf"),
            ("missing", "dmarc"),
            ("ok", "bounce-mx"),
            ("ok", "alignment"),
        ],
        "{text}"
    );
    // Each with the record to publish: the DKIM ones as `domain dkim` prints them.
    assert_eq!(rows[0][3], lines[0]);
    assert_eq!(rows[1][3], lines[1]);
    assert!(rows[1][2].contains("a different key"), "{}", rows[1][2]);
    assert_eq!(rows[2][3], "acme.test. IN TXT \"v=spf1 a:mta.qunfa.test -all\"");
    assert!(rows[2][2].contains("passes for 192.0.2.25"), "{}", rows[2][2]);
    assert_eq!(
        rows[3][3],
        "_dmarc.acme.test. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@acme.test\""
    );
    assert!(rows[4][2].contains("mx.acme.test (127.0.0.1)"), "{}", rows[4][2]);
    // What works is published as it is.
    assert_eq!(rows[4][3], "bounce.acme.test. IN MX 10 mx.acme.test.");
    assert_eq!(rows[5][3], rows[4][3]);

    // The JSON form: one object a line, these keys in this order, the same verdicts.
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), rows.len());
    for (line, (object, row)) in json.lines().zip(objects.iter().zip(&rows)) {
        assert!(line.starts_with("{\"check\": "), "{line}");
        let keys: Vec<&String> = object.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{line}");
        assert_eq!(object["check"], row[1].as_str());
        assert_eq!(object["status"], row[0].as_str());
        assert_eq!(object["found"], row[2].as_str());
        assert_eq!(object["publish"], row[3].as_str());
        let at = |k: &str| line.find(&format!("\"{k}\": ")).unwrap();
        assert!(at("check") < at("status") && at("status") < at("found") && at("found") < at("publish"));
    }

    // No DKIM records; SPF that leaves the platform out and ends in ?all; a
    // DMARC policy; the bounce domain outside the domain.
    let (text, _) = check("other.test", &[]).await;
    let rows = report(&text);
    let statuses: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        statuses,
        ["missing", "missing", "wrong", "ok", "ok", "wrong"],
        "{text}"
    );
    assert!(
        rows[2][2].contains("192.0.2.25: neutral") && rows[2][2].contains("?all"),
        "{}",
        rows[2][2]
    );
    assert_eq!(
        rows[2][3],
        "other.test. IN TXT \"v=spf1 ip4:198.51.100.0/24 ip4:192.0.2.25 ~all\""
    );
    assert!(rows[3][2].contains("p=quarantine"), "{}", rows[3][2]);
    assert_eq!(rows[5][3], "bounce.other.test. IN MX 10 mta.qunfa.test.");

    // QUNFA_SPF_INCLUDE: the platform's include, found two levels down.
    let include = ["--spf-include", "_spf.qunfa.test"];
    let (text, _) = check("inc.test", &include).await;
    let spf = &report(&text)[2];
    assert_eq!(spf[0], "ok", "{text}");
    assert!(spf[2].contains("includes _spf.qunfa.test"), "{}", spf[2]);
    let (text, _) = check("acme.test", &include).await;
    let spf = &report(&text)[2];
    assert_eq!(spf[0], "wrong", "{text}");
    assert_eq!(
        spf[3],
        "acme.test. IN TXT \"v=spf1 a:mta.qunfa.test include:_spf.qunfa.test -all\""
    );

    // A bounce listener the MX does not lead to.
    let (text, _) = check("acme.test", &["--bounce-listen", "198.51.100.7:25"]).await;
    let mx = &report(&text)[4];
    assert_eq!(mx[0], "wrong", "{text}");
    assert_eq!(mx[3], "bounce.acme.test. IN MX 10 mta.qunfa.test.");

    refused(
        &app.qunfa(&[
            "--dns-server",
            "ns.example:53",
            "admin",
            "domain",
            "check",
            "--domain",
            "acme.test",
        ])
        .await,
        "QUNFA_DNS_SERVER",
    );
    refused(
        &app.qunfa(&["admin", "domain", "check", "--domain", "nope.test"])
            .await,
        "unknown domain",
    );
    app.stop().await;
}

/// Delivery straight to MX asks the server `QUNFA_DNS_SERVER` names.
#[tokio::test]
async fn delivery_finds_mx_hosts_through_the_configured_dns_server() {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let dns = DnsServer::start(&[
        Record::Mx("dest.test", "mx.dest.test", 10),
        Record::A("mx.dest.test", "127.0.0.1"),
    ])
    .await;
    let resolver = HickoryResolver::new(Some(dns.addr())).unwrap();
    let mailer = Mailer::new(
        MailerSettings {
            mx_port: sink.port(),
            ..MailerSettings::new("mta.qunfa.test")
        },
        Arc::new(resolver),
    )
    .unwrap();
    let message = b"From: a@acme.test\r\nTo: b@dest.test\r\nSubject: hi\r\n\r\nhi\r\n";
    let sent = mailer
        .send(&Route::Mx, "a@acme.test", "b@dest.test", message)
        .await;
    assert!(matches!(sent, Attempt::Sent { .. }), "{sent:?}");
    assert_eq!(sink.received()[0].rcpt_to, ["b@dest.test"]);
    // A domain the server says does not exist has no mail host at all.
    let none = mailer
        .send(&Route::Mx, "a@acme.test", "b@nowhere.test", message)
        .await;
    assert!(
        matches!(
            none,
            Attempt::Failed {
                class: FailureClass::InvalidAddr,
                ..
            }
        ),
        "{none:?}"
    );
    mailer.close().await;
}
