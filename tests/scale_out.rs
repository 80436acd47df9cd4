//! The scale-out deployment of the README: two `qunfa serve` nodes and two
//! `qunfa worker` processes on one PostgreSQL. A campaign created on one
//! node goes out exactly once per recipient, the work spread over the
//! processes; the other node reports it and verifies its tracking links
//! (the link secret lives in the database, H-8).

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use common::smtp::{ServerOptions, SmtpServer};
use common::*;
use mail_parser::MessageParser;
use tokio::process::{Child, Command};

const RECIPIENTS: usize = 3000;

/// One more qunfa process on the test's database; it says who it is in
/// its HELO name, which every Message-ID carries.
fn process(app: &TestApp, command: &str, name: &str, relay: &str, listen: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .arg(command)
        .env("QUNFA_DATA_DIR", app.data_path().join(name))
        .env("QUNFA_DATABASE_URL", &app.database_url)
        .env("QUNFA_TIMEZONE", TIMEZONE)
        .env("QUNFA_SMTP_RELAY", relay)
        .env("QUNFA_HELO_NAME", format!("{name}.qunfa.test"))
        .env("QUNFA_LISTEN", listen)
        .env("QUNFA_PUBLIC_URL", format!("http://{listen}"))
        .env("QUNFA_SCANNER_WINDOW", "0s")
        .env_remove("QUNFA_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start qunfa")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_and_two_workers_send_each_recipient_once() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    app.customer("acme", "pw", 10_000).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["a@acme.cn"]).await;
    app.api_post(
        "template.php",
        "acme",
        "pw",
        "do=add-tpl",
        &[
            ("name", "t"),
            ("subject", "Hi"),
            ("content", "<p>{{ fullname }}</p>"),
        ],
    )
    .await;
    app.api_post(
        "mloperate.php",
        "acme",
        "pw",
        "do=maillist-add",
        &[("subject", "L"), ("status", "enabled")],
    )
    .await;
    let people: Vec<String> = (0..RECIPIENTS).map(|i| format!("p{i}@dest.cn")).collect();
    app.api_post(
        "mloperate.php",
        "acme",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", &people.join("\n"))],
    )
    .await;

    // The test's own app is the first node (API only); then a second node
    // and two workers.
    let mut app = app;
    app.restart_with(false).await;
    let node2 = format!("127.0.0.1:{}", free_port());
    let mut procs = vec![
        process(&app, "serve", "node2", &relay, &node2),
        process(&app, "worker", "w1", &relay, "127.0.0.1:0"),
        process(&app, "worker", "w2", &relay, "127.0.0.1:0"),
    ];
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=a@acme.cn&status=2&track_status=1",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let id = add.element("id").unwrap();

    // The second node reports the campaign's end.
    let client = reqwest::Client::new();
    let md5 = md5_hex("pw");
    let mut done = false;
    for _ in 0..1200 {
        let url =
            format!("http://{node2}/mm-ms/api/task.php?username=acme&password={md5}&do=task-list&id={id}");
        if let Ok(r) = client.get(&url).send().await
            && r.text()
                .await
                .unwrap_or_default()
                .contains("<send_status>3</send_status>")
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "the campaign completes");

    let got = sink.received();
    let mut times: HashMap<String, usize> = HashMap::new();
    let mut by_process: HashMap<String, usize> = HashMap::new();
    for r in &got {
        for rcpt in &r.rcpt_to {
            *times.entry(rcpt.clone()).or_default() += 1;
        }
        let msg = MessageParser::default().parse(&r.data).unwrap();
        let helo = msg.message_id().unwrap().rsplit('@').next().unwrap().to_string();
        *by_process.entry(helo).or_default() += 1;
    }
    assert_eq!(times.len(), RECIPIENTS, "every recipient");
    assert!(times.values().all(|n| *n == 1), "exactly once each");
    for w in ["w1.qunfa.test", "w2.qunfa.test"] {
        assert!(
            by_process.get(w).copied().unwrap_or(0) > 0,
            "{w} took part: {by_process:?}"
        );
    }

    // A pixel of a message one worker built is verified by the other node.
    let msg = MessageParser::default().parse(&got[0].data).unwrap();
    let html = msg.body_html(0).unwrap().to_string();
    let at = html.find("/t/o/").expect("a pixel");
    let token: String = html[at + 5..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let r = client
        .get(format!("http://{node2}/t/o/{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for p in &mut procs {
        p.start_kill().ok();
    }
    app.stop().await;
}
