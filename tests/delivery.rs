//! Delivery over real SMTP: the mailer talks to the test server of
//! `common::smtp` on loopback, through a relay, MX records of a static DNS
//! table, or a customer's server; what the server answers decides the
//! outcome, and what it received is checked byte for byte.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::smtp::{Act, ServerOptions, SmtpServer, test_ca};
use qunfa::config::{DomainLimit, Settings};
use qunfa::delivery::{
    Attempt, Credentials, Mailer, MailerSettings, Route, Server, StaticResolver, Timeouts, Tls,
};
use qunfa::domain::failure::FailureClass;

const MESSAGE: &[u8] = b"From: news@shop.test\r\nTo: you@x.test\r\nSubject: hello\r\n\r\nHello,\r\n.a line starting with a dot\r\nbye\r\n";

fn settings() -> MailerSettings {
    MailerSettings {
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            greeting: Duration::from_secs(2),
            command: Duration::from_secs(2),
            data: Duration::from_secs(4),
        },
        extra_roots: vec![test_ca()],
        ..MailerSettings::new("qunfa.test")
    }
}

fn mailer(settings: MailerSettings) -> Mailer {
    Mailer::new(settings, Arc::new(StaticResolver::new())).expect("mailer")
}

fn server_route(server: &SmtpServer, tls: Tls, credentials: Option<Credentials>) -> Route {
    Route::Server(Server {
        host: "127.0.0.1".into(),
        port: server.port(),
        tls,
        credentials,
    })
}

fn plain(server: &SmtpServer) -> Route {
    server_route(server, Tls::Opportunistic, None)
}

#[track_caller]
fn assert_sent(a: &Attempt) {
    assert!(matches!(a, Attempt::Sent { .. }), "not sent: {a:?}");
}

#[track_caller]
fn failed(a: &Attempt) -> FailureClass {
    match a {
        Attempt::Failed { class, .. } => *class,
        other => panic!("not failed: {other:?}"),
    }
}

#[track_caller]
fn deferred(a: &Attempt) -> FailureClass {
    match a {
        Attempt::Deferred { class_if_last, .. } => *class_if_last,
        other => panic!("not deferred: {other:?}"),
    }
}

/// This machine's address on its network (not loopback), as the route a
/// relay elsewhere would be reached by.
fn network_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    // Connecting a UDP socket sends nothing; it only picks the outgoing address.
    probe.connect("192.0.2.1:9").expect("a route off this machine");
    let ip = probe.local_addr().expect("a local address").ip();
    assert!(
        !ip.is_loopback(),
        "this test needs an address other than loopback"
    );
    ip
}

/// A password crosses the network only inside TLS: a relay elsewhere that
/// offers no STARTTLS gets no AUTH, and the attempt is deferred, not sent
/// in clear text.
#[tokio::test]
async fn a_password_is_never_sent_in_clear_text_across_the_network() {
    let server = SmtpServer::start(ServerOptions {
        auth: Some(("relayuser", "secret")),
        every_address: true,
        ..ServerOptions::default()
    })
    .await;
    let route = Route::Server(Server {
        host: network_address().to_string(),
        port: server.port(),
        tls: Tls::Opportunistic,
        credentials: Some(Credentials::new("relayuser", "secret")),
    });
    let mailer = mailer(settings());
    let a = mailer
        .send(&route, "bounce+1@b.test", "user@x.test", MESSAGE)
        .await;
    assert!(matches!(a, Attempt::Deferred { .. }), "{a:?}");
    assert!(server.received().is_empty());
    assert_eq!(server.stats().auths, 0, "no AUTH command reached the server");
    mailer.close().await;
}

#[tokio::test]
async fn relay_with_auth_carries_many_messages_over_one_connection() {
    let server = SmtpServer::start(ServerOptions {
        auth: Some(("relayuser", "p@ss:word")),
        ..ServerOptions::default()
    })
    .await;
    // The relay as the operator writes QUNFA_SMTP_RELAY.
    let config = Settings {
        smtp_relay: Some(format!("relayuser:p@ss:word@127.0.0.1:{}", server.port())),
        ..Settings::default()
    }
    .validate()
    .expect("settings");
    let relay = config.smtp_relay.as_ref().expect("relay");
    let mailer = mailer(settings());
    for i in 0..5 {
        let rcpt = format!("user{i}@x.test");
        assert_sent(
            &mailer
                .send(&Route::relay(relay), "bounce+1@b.test", &rcpt, MESSAGE)
                .await,
        );
    }
    let got = server.received();
    assert_eq!(got.len(), 5);
    assert_eq!(got[3].rcpt_to, ["user3@x.test"]);
    assert_eq!(got[3].mail_from, "bounce+1@b.test");
    assert_eq!(got[3].auth.as_deref(), Some("relayuser"));
    assert_eq!(got[0].data, MESSAGE, "dot-stuffing undone, bytes intact");
    assert!(got.iter().all(|m| m.connection == 1), "one connection");
    assert!(
        got.iter().all(|m| m.pipelined),
        "MAIL, RCPT and DATA in one write"
    );
    assert_eq!(server.stats().rsets, 4, "an RSET between messages");

    mailer.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stats().quits, 1, "idle connections QUIT at close");
}

#[tokio::test]
async fn a_wrong_relay_password_defers() {
    let server = SmtpServer::start(ServerOptions {
        auth: Some(("relayuser", "right")),
        ..ServerOptions::default()
    })
    .await;
    let route = server_route(
        &server,
        Tls::Opportunistic,
        Some(Credentials::new("relayuser", "wrong")),
    );
    let a = mailer(settings())
        .send(&route, "b@b.test", "u@x.test", MESSAGE)
        .await;
    deferred(&a);
    assert_eq!(a.reply().map(|r| r.code), Some(535));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn without_pipelining_commands_go_one_by_one() {
    let server = SmtpServer::start(ServerOptions {
        pipelining: false,
        ..ServerOptions::default()
    })
    .await;
    server.script(
        "gone@x.test",
        [Act::Refuse("550 5.1.1 <gone@x.test>: User unknown")],
    );
    let mailer = mailer(settings());
    for rcpt in ["a@x.test", "gone@x.test", "b@x.test"] {
        mailer.send(&plain(&server), "b@b.test", rcpt, MESSAGE).await;
    }
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| !m.pipelined && m.connection == 1));
}

#[tokio::test]
async fn each_reply_has_its_outcome_and_a_refusal_keeps_the_connection() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    server.script(
        "gone@x.test",
        [Act::Refuse(
            "550 5.1.1 <gone@x.test>: Recipient address rejected: User unknown",
        )],
    );
    server.script("full@x.test", [Act::Refuse("552 5.2.2 Mailbox full")]);
    server.script(
        "spam@x.test",
        [Act::RefuseData("554 5.7.1 Message rejected as spam")],
    );
    server.script("policy@x.test", [Act::Refuse("554 5.7.1 Relay access denied")]);
    server.script(
        "later@x.test",
        [Act::Refuse("451 4.3.0 Try again later"), Act::Accept],
    );
    server.script("fullsoon@x.test", [Act::Refuse("452 4.2.2 Mailbox over quota")]);
    let mailer = mailer(settings());
    let send = async |rcpt: &str| mailer.send(&plain(&server), "b@b.test", rcpt, MESSAGE).await;

    let gone = send("gone@x.test").await;
    assert_eq!(failed(&gone), FailureClass::NotExist);
    assert_eq!(gone.status().map(|s| s.to_string()).as_deref(), Some("5.1.1"));
    assert!(
        gone.describe().starts_with("RCPT TO: 550 5.1.1 <gone@x.test>"),
        "{}",
        gone.describe()
    );
    assert_sent(&send("ok@x.test").await);
    assert_eq!(failed(&send("full@x.test").await), FailureClass::OverQuota);
    let spam = send("spam@x.test").await;
    assert_eq!(failed(&spam), FailureClass::UserReject);
    assert!(
        spam.describe().starts_with("end of data: 554 5.7.1"),
        "{}",
        spam.describe()
    );
    assert_eq!(failed(&send("policy@x.test").await), FailureClass::UserReject);
    assert_eq!(deferred(&send("later@x.test").await), FailureClass::UserReject);
    assert_sent(&send("later@x.test").await);
    assert_eq!(deferred(&send("fullsoon@x.test").await), FailureClass::OverQuota);
    assert_sent(&send("ok2@x.test").await);

    let got = server.received();
    let rcpts: Vec<&str> = got.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(rcpts, ["ok@x.test", "later@x.test", "ok2@x.test"]);
    assert_eq!(server.stats().connections, 1, "no refusal broke the connection");
}

#[tokio::test]
async fn a_drop_in_the_data_defers_and_the_next_message_goes_on() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    server.script("cut@x.test", [Act::DropInData]);
    let mailer = mailer(settings());
    let a = mailer
        .send(&plain(&server), "b@b.test", "cut@x.test", MESSAGE)
        .await;
    assert_eq!(deferred(&a), FailureClass::InvalidAddr);
    assert!(a.reply().is_none());
    assert_sent(
        &mailer
            .send(&plain(&server), "b@b.test", "next@x.test", MESSAGE)
            .await,
    );
    assert_eq!(server.stats().connections, 2);
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_replaced_unnoticed() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    server.script("first@x.test", [Act::AcceptThenClose]);
    let mailer = mailer(settings());
    assert_sent(
        &mailer
            .send(&plain(&server), "b@b.test", "first@x.test", MESSAGE)
            .await,
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_sent(
        &mailer
            .send(&plain(&server), "b@b.test", "second@x.test", MESSAGE)
            .await,
    );
    assert_eq!(server.stats().connections, 2);
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_tarpit_or_garbage_costs_a_timeout_not_a_worker() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    server.script("slow@x.test", [Act::Tarpit(Duration::from_secs(30))]);
    server.script("odd@x.test", [Act::Garbage]);
    let mut s = settings();
    s.timeouts.command = Duration::from_millis(300);
    let mailer = mailer(s);
    let started = Instant::now();
    let a = mailer
        .send(&plain(&server), "b@b.test", "slow@x.test", MESSAGE)
        .await;
    assert_eq!(deferred(&a), FailureClass::InvalidAddr);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(a.describe().contains("no reply within"), "{}", a.describe());

    let a = mailer
        .send(&plain(&server), "b@b.test", "odd@x.test", MESSAGE)
        .await;
    deferred(&a);
    assert!(a.describe().contains("unreadable reply"), "{}", a.describe());
    assert_sent(
        &mailer
            .send(&plain(&server), "b@b.test", "fine@x.test", MESSAGE)
            .await,
    );
}

#[tokio::test]
async fn nobody_listening_defers_as_no_answer() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let route = plain(&server);
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let a = mailer(settings())
        .send(&route, "b@b.test", "u@x.test", MESSAGE)
        .await;
    assert_eq!(deferred(&a), FailureClass::InvalidAddr);
}

#[tokio::test]
async fn a_refusing_greeting_is_classified() {
    let server = SmtpServer::start(ServerOptions {
        greeting: "554 5.7.1 Your IP is on a block list",
        ..ServerOptions::default()
    })
    .await;
    let a = mailer(settings())
        .send(&plain(&server), "b@b.test", "u@x.test", MESSAGE)
        .await;
    assert_eq!(failed(&a), FailureClass::UserReject);
}

#[tokio::test]
async fn direct_to_mx_follows_the_dns() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let dns = StaticResolver::new();
    // mx1 has an address nobody listens on (the loopback net is /8, the
    // server only on 127.0.0.1): its preference comes first, then mx2.
    dns.add_mx("mx.test", 10, "mx1.mx.test")
        .add_mx("mx.test", 20, "mx2.mx.test")
        .add_ip("mx1.mx.test", ip("127.0.0.2"))
        .add_ip("mx2.mx.test", ip("127.0.0.1"))
        .add_ip("bare.test", ip("127.0.0.1"))
        .add_mx("null.test", 0, "")
        .add_mx("dangling.test", 10, "nowhere.dangling.test")
        .add_failure("dnsdown.test");
    let mailer = Mailer::new(
        MailerSettings {
            mx_port: server.port(),
            ..settings()
        },
        Arc::new(dns),
    )
    .expect("mailer");
    let send = async |rcpt: &str| mailer.send(&Route::Mx, "b@b.test", rcpt, MESSAGE).await;

    assert_sent(&send("a@mx.test").await);
    assert_sent(&send("a@bare.test").await);
    for rcpt in ["a@nodns.test", "a@null.test", "a@dangling.test"] {
        let a = send(rcpt).await;
        assert_eq!(failed(&a), FailureClass::InvalidAddr, "{rcpt}");
        assert!(a.reply().is_none());
    }
    assert_eq!(deferred(&send("a@dnsdown.test").await), FailureClass::InvalidAddr);
    assert_eq!(failed(&send("not an address").await), FailureClass::FormatError);

    let got = server.received();
    let rcpts: Vec<&str> = got.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(rcpts, ["a@mx.test", "a@bare.test"]);
}

#[tokio::test]
async fn concurrency_per_domain_is_never_exceeded() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let mut s = settings();
    s.domain_limits = vec![DomainLimit {
        domain: "narrow.test".into(),
        connections: 2,
        per_second: 0.0,
    }];
    let mailer = Arc::new(mailer(s));
    let mut sends = Vec::new();
    for i in 0..12 {
        let rcpt = format!("u{i}@narrow.test");
        server.script(&rcpt, [Act::Tarpit(Duration::from_millis(50))]);
        let (mailer, route) = (mailer.clone(), plain(&server));
        sends.push(tokio::spawn(async move {
            mailer.send(&route, "b@b.test", &rcpt, MESSAGE).await
        }));
    }
    for s in sends {
        assert_sent(&s.await.expect("task"));
    }
    let stats = server.stats();
    assert_eq!(stats.max_transactions, 2, "{stats:?}");
    assert!(stats.max_connections <= 2, "{stats:?}");
    assert_eq!(mailer.throttle().in_flight("narrow.test"), 0);
}

#[tokio::test]
async fn rate_per_domain_spaces_messages() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let mut s = settings();
    s.domain_limits = vec![DomainLimit {
        domain: "paced.test".into(),
        connections: 4,
        per_second: 10.0,
    }];
    let mailer = mailer(s);
    let started = Instant::now();
    for i in 0..20 {
        mailer
            .send(&plain(&server), "b@b.test", &format!("u{i}@paced.test"), MESSAGE)
            .await;
    }
    // Ten at once (a second's burst), then one every 100 ms.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert_eq!(server.received().len(), 20);
}

#[tokio::test]
async fn a_connection_carries_a_bounded_number_of_messages() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let mailer = mailer(MailerSettings {
        messages_per_connection: 2,
        ..settings()
    });
    for i in 0..5 {
        assert_sent(
            &mailer
                .send(&plain(&server), "b@b.test", &format!("u{i}@x.test"), MESSAGE)
                .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = server.stats();
    assert_eq!(stats.connections, 3, "{stats:?}");
    assert_eq!(stats.quits, 2, "{stats:?}");
}

#[tokio::test]
async fn starttls_when_offered_and_when_required() {
    let tls_server = SmtpServer::start(ServerOptions {
        starttls: true,
        ..ServerOptions::default()
    })
    .await;
    let plain_server = SmtpServer::start(ServerOptions::default()).await;
    let mailer = mailer(settings());

    assert_sent(
        &mailer
            .send(&plain(&tls_server), "b@b.test", "u@x.test", MESSAGE)
            .await,
    );
    let required = server_route(&tls_server, Tls::Required, None);
    assert_sent(&mailer.send(&required, "b@b.test", "v@x.test", MESSAGE).await);
    assert!(tls_server.received().iter().all(|m| m.tls));

    assert_sent(
        &mailer
            .send(&plain(&plain_server), "b@b.test", "u@x.test", MESSAGE)
            .await,
    );
    let a = mailer
        .send(
            &server_route(&plain_server, Tls::Required, None),
            "b@b.test",
            "w@x.test",
            MESSAGE,
        )
        .await;
    deferred(&a);
    assert!(a.describe().contains("no STARTTLS"), "{}", a.describe());
    assert_eq!(plain_server.received().len(), 1);

    // A certificate no trusted root issued: fine for opportunistic TLS,
    // refused where TLS is required.
    let untrusting = Mailer::new(
        MailerSettings {
            extra_roots: Vec::new(),
            ..settings()
        },
        Arc::new(StaticResolver::new()),
    )
    .expect("mailer");
    assert_sent(
        &untrusting
            .send(&plain(&tls_server), "b@b.test", "x@x.test", MESSAGE)
            .await,
    );
    let a = untrusting.send(&required, "b@b.test", "y@x.test", MESSAGE).await;
    deferred(&a);
    assert!(a.describe().contains("TLS handshake"), "{}", a.describe());
}

#[tokio::test]
async fn a_remote_customer_server_with_implicit_tls_and_the_mailbox_login() {
    let server = SmtpServer::start(ServerOptions {
        implicit_tls: true,
        auth: Some(("news@shop.test", "mailbox-secret")),
        ..ServerOptions::default()
    })
    .await;
    let route = Route::remote(
        "localhost",
        server.port(),
        true,
        Some(Credentials::new("news@shop.test", "mailbox-secret")),
    );
    let a = mailer(settings())
        .send(&route, "news@shop.test", "u@x.test", MESSAGE)
        .await;
    assert_sent(&a);
    let got = server.received();
    assert!(got[0].tls);
    assert_eq!(got[0].auth.as_deref(), Some("news@shop.test"));
}
