//! Reports that arrive after delivery, by SMTP to the bounce listener: a
//! DSN for a delivered message makes it a failure of its class in 2.3 and
//! 2.4 and gives its credit back; an ARF complaint unsubscribes the address
//! and counts as `rubbish`; forged VERP addresses change nothing. A webhook
//! hears the late bounce and the complaint.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::smtp::{Act, SmtpServer};
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const TASK: &str = "task.php";
const ML: &str = "mloperate.php";

/// Sends one message by SMTP; the reply to each command, in order.
async fn smtp_send(addr: SocketAddr, rcpt: &str, message: &str) -> Vec<String> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut replies = Vec::new();
    async fn read(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all.trim_end().to_string();
            }
        }
    }
    replies.push(read(&mut r).await);
    let data: String = message
        .lines()
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}\r\n")
            } else {
                format!("{l}\r\n")
            }
        })
        .collect();
    for cmd in [
        "EHLO mx.dest.cn".to_string(),
        "MAIL FROM:<>".to_string(),
        format!("RCPT TO:<{rcpt}>"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
        replies.push(read(&mut r).await);
    }
    if replies.last().unwrap().starts_with("250") {
        w.write_all(b"DATA\r\n").await.unwrap();
        replies.push(read(&mut r).await);
        w.write_all(format!("{data}.\r\n").as_bytes()).await.unwrap();
        replies.push(read(&mut r).await);
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
    replies.push(read(&mut r).await);
    replies
}

fn dsn(verp: &str, rcpt: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.dest.cn\nTo: {verp}\nSubject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n\
--b1\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not be delivered.\n\n\
--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.dest.cn\n\n\
Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.1.1\n\
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\n\n--b1--\n"
    )
}

fn complaint(verp: &str, rcpt: &str) -> String {
    format!(
        "From: fbl@dest.cn\nTo: {verp}\nSubject: Abuse report\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"\n\n\
--b2\nContent-Type: text/plain\n\nThis is an e-mail abuse report.\n\n\
--b2\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n\
Original-Rcpt-To: {rcpt}\n\n--b2\nContent-Type: message/rfc822\n\nFrom: news@acme.cn\nTo: {rcpt}\nSubject: hi\n\n\
.hello, a line with a leading dot\n--b2--\n"
    )
}

async fn credits(app: &TestApp) -> String {
    app.api("account.php", "acme", "pw", "do=service-info")
        .await
        .element("qty_available")
        .unwrap()
}

async fn start(backend: Backend) -> Option<(TestApp, SmtpServer)> {
    TestApp::start_relaying(backend, |s| {
        s.helo_name = Some("mta.qunfa.test".into());
        s.bounce_listen = Some("127.0.0.1:0".into());
        s.webhook_private = Some("allow".into());
    })
    .await
}

/// A webhook receiver on a free port, registered for acme's late events
/// over the JSON API: the `(type, email, class)` of what it gets.
async fn webhook(app: &TestApp) -> Arc<Mutex<Vec<(String, String, String)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let route = axum::routing::post(move |body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let field = |f: &str| e["data"][f].as_str().unwrap_or_default().to_string();
            let row = (
                e["type"].as_str().unwrap().to_string(),
                field("email"),
                field("class"),
            );
            keep.lock().unwrap().push(row);
            axum::http::StatusCode::OK
        }
    });
    listen_for_events(app, "acme", route, &["bounced", "complained"]).await;
    got
}

async fn late_reports_move_outcomes_credits_and_the_list(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let customer = app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    app.api_post(
        "template.php",
        "acme",
        "pw",
        "do=add-tpl",
        &[("name", "t"), ("subject", "hi"), ("content", "<p>hi</p>")],
    )
    .await;
    app.api_post(
        ML,
        "acme",
        "pw",
        "do=maillist-add",
        &[("subject", "L"), ("status", "enabled")],
    )
    .await;
    let lines = "ok1@dest.cn\nok2@dest.cn\nok3@dest.cn\ngone@dest.cn";
    app.api_post(
        ML,
        "acme",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", lines)],
    )
    .await;
    sink.script("gone@dest.cn", [Act::Refuse("550 5.1.1 User unknown")]);
    let heard = webhook(&app).await;
    let add = app
        .api(
            TASK,
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news%40acme.cn&status=2",
        )
        .await;
    let id = add.element("id").expect("a task");
    task_done(&app, "acme", "pw", &id).await;
    let verp: HashMap<String, String> = sink
        .received()
        .into_iter()
        .map(|r| (r.rcpt_to[0].clone(), r.mail_from.clone()))
        .collect();
    assert_eq!(verp.len(), 3);
    assert_eq!(credits(&app).await, "97");
    let today = app.app().clock.day_of(app.app().clock.now());
    let bounce = app.bounce_addr();

    // A DSN for ok1, delivered earlier: now a not_exist failure with its credit back.
    let replies = smtp_send(
        bounce,
        &verp["ok1@dest.cn"],
        &dsn(&verp["ok1@dest.cn"], "ok1@dest.cn"),
    )
    .await;
    assert!(replies[3].starts_with("250"), "RCPT accepted: {replies:?}");
    assert!(replies[5].starts_with("250"), "DATA accepted: {replies:?}");
    assert_eq!(credits(&app).await, "98");
    let failed = app
        .api(
            "failexport.php",
            "acme",
            "pw",
            &format!("date={today}&type=1&task_id={id}"),
        )
        .await;
    let mut lines: Vec<&str> = failed
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    lines.sort();
    assert_eq!(lines, ["gone@dest.cn", "ok1@dest.cn"]);
    let stask = app.api("stask.php", "acme", "pw", &format!("date={today}")).await;
    assert_eq!(stask.element("success").as_deref(), Some("2"), "{}", stask.text());
    assert_eq!(stask.element("failed").as_deref(), Some("2"));
    assert_eq!(stask.element("email_not_exist").as_deref(), Some("2"));
    assert_eq!(stask.element("actual").as_deref(), Some("2"));
    let email = qunfa::domain::email::EmailAddress::parse("ok1@dest.cn").unwrap();
    assert!(
        qunfa::domain::lists::is_suppressed(
            &app.app().store,
            qunfa::domain::ids::CustomerId(customer),
            &email
        )
        .await
        .unwrap(),
        "a hard bounce suppresses"
    );
    // The same report again changes nothing more.
    smtp_send(
        bounce,
        &verp["ok1@dest.cn"],
        &dsn(&verp["ok1@dest.cn"], "ok1@dest.cn"),
    )
    .await;
    assert_eq!(credits(&app).await, "98");

    // A complaint about ok2: counted once as rubbish, unsubscribed, not a failure.
    for _ in 0..2 {
        let replies = smtp_send(
            bounce,
            &verp["ok2@dest.cn"],
            &complaint(&verp["ok2@dest.cn"], "ok2@dest.cn"),
        )
        .await;
        assert!(replies[5].starts_with("250"), "{replies:?}");
    }
    let stask = app.api("stask.php", "acme", "pw", &format!("date={today}")).await;
    assert_eq!(stask.element("rubbish").as_deref(), Some("1"), "{}", stask.text());
    assert_eq!(stask.element("failed").as_deref(), Some("2"));
    assert_eq!(credits(&app).await, "98");
    let left = app.api(ML, "acme", "pw", "do=ml-addr-list&list_id=1").await;
    assert!(!left.text().contains("ok2@dest.cn"), "{}", left.text());
    let unsubs = app.api(ML, "acme", "pw", "do=unsubscribe-export&id=1").await;
    assert!(unsubs.text().contains("ok2@dest.cn"));

    // Forged or foreign: a made-up token is accepted and dropped; another domain is refused.
    let forged = "bounce+0000000000000000000000000000000@mta.qunfa.test";
    let replies = smtp_send(bounce, forged, &dsn(forged, "ok3@dest.cn")).await;
    assert!(replies[5].starts_with("250"), "{replies:?}");
    let replies = smtp_send(bounce, "postmaster@elsewhere.example", "Subject: x\n\nx\n").await;
    assert!(replies[3].starts_with("550"), "no relaying: {replies:?}");
    assert_eq!(credits(&app).await, "98");
    let stask = app.api("stask.php", "acme", "pw", &format!("date={today}")).await;
    assert_eq!(stask.element("success").as_deref(), Some("2"));

    // The webhook heard the late bounce, with its class, and the complaint, once each.
    let want = [
        ("bounced", "ok1@dest.cn", "not_exist"),
        ("complained", "ok2@dest.cn", ""),
    ]
    .map(|(t, e, c)| (t.to_string(), e.to_string(), c.to_string()));
    for _ in 0..100 {
        if heard.lock().unwrap().len() >= want.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut heard = heard.lock().unwrap().clone();
    heard.sort();
    assert_eq!(heard, want);
    app.stop().await;
}

mod late_reports {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        late_reports_move_outcomes_credits_and_the_list(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        late_reports_move_outcomes_credits_and_the_list(Backend::Postgres).await;
    }
}
