//! Invariant 1 of docs/architecture.md under a crash: two `qunfa worker` processes share a
//! PostgreSQL database and send one campaign; one is killed with SIGKILL in
//! the middle and started again. Every recipient gets the message, and only
//! one that was inside SMTP DATA at the kill may get it twice. On SQLite,
//! `serve` is killed the same way while a webhook that fails its first
//! answers listens: it ends with every event, a repeat always with its id.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::smtp::{Act, ServerOptions, SmtpServer};
use common::*;
use tokio::process::{Child, Command};

const RECIPIENTS: usize = 240;

fn worker(app: &TestApp, relay: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .arg("worker")
        .env("QUNFA_DATA_DIR", app.data_path())
        .env("QUNFA_DATABASE_URL", &app.database_url)
        .env("QUNFA_TIMEZONE", TIMEZONE)
        .env("QUNFA_SMTP_RELAY", relay)
        .env("QUNFA_DELIVERY_LEASE", "3s")
        .env("QUNFA_RETRY_DELAYS", "1s")
        .env("QUNFA_HELO_NAME", "mta.qunfa.test")
        .env_remove("QUNFA_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start qunfa worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_doubles_only_what_was_in_data() {
    let Some(mut app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    // The test process only serves the API; the workers do the sending.
    app.restart_with(false).await;
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let people: Vec<String> = (0..RECIPIENTS).map(|i| format!("p{i}@dest.cn")).collect();
    for p in &people {
        // Slow enough that the kill lands in the middle of the campaign.
        sink.script(p, [Act::Tarpit(Duration::from_millis(150))]);
    }

    acme_campaign_ready(&app, &people).await;
    let id = start_acme_task(&app).await;

    let mut first = worker(&app, &relay);
    let mut second = worker(&app, &relay);
    // Kill the first worker once a quarter of the campaign is out.
    a_quarter_is_out(&sink).await;
    first.start_kill().expect("SIGKILL");
    first.wait().await.unwrap();
    let mut restarted = worker(&app, &relay);

    let store = &app.app().store;
    let mut done = false;
    for _ in 0..1200 {
        let t = store.task_by_id(id).await.unwrap().unwrap();
        if t.status == qunfa::domain::tasks::SendStatus::Done {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.start_kill().ok();
    restarted.start_kill().ok();
    assert!(done, "the campaign completes after the crash");

    invariant_1_holds(&sink, &people);
    let t = store.task_by_id(id).await.unwrap().unwrap();
    assert_eq!((t.sent_count, t.error_count), (RECIPIENTS as i64, 0));
    let service = app.api("account.php", "acme", "pw", "do=service-info").await;
    assert_eq!(
        service.element("qty_available"),
        Some((1000 - RECIPIENTS).to_string()),
        "charged once per recipient"
    );
    app.stop().await;
}

/// The same on SQLite, where one `qunfa serve` does everything: it is
/// killed with SIGKILL mid-campaign and started again on the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sqlite_server_loses_nothing_and_doubles_only_what_was_in_data() {
    let Some(mut app) =
        TestApp::start_with(Backend::Sqlite, |s| s.webhook_private = Some("allow".into())).await
    else {
        return;
    };
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let people: Vec<String> = (0..RECIPIENTS).map(|i| format!("p{i}@dest.cn")).collect();
    for p in &people {
        sink.script(p, [Act::Tarpit(Duration::from_millis(150))]);
    }
    acme_campaign_ready(&app, &people).await;
    let events = webhook_receiver(&app).await;
    // From here on the server is a process of its own, on the same files.
    let (data_dir, database_url) = (app.data_path(), app.database_url.clone());
    app.halt().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = || {
        Command::new(env!("CARGO_BIN_EXE_qunfa"))
            .arg("serve")
            .env("QUNFA_DATA_DIR", &data_dir)
            .env("QUNFA_DATABASE_URL", &database_url)
            .env("QUNFA_TIMEZONE", TIMEZONE)
            .env("QUNFA_SMTP_RELAY", &relay)
            .env("QUNFA_LISTEN", format!("127.0.0.1:{port}"))
            .env("QUNFA_DELIVERY_LEASE", "3s")
            .env("QUNFA_HELO_NAME", "mta.qunfa.test")
            .env("QUNFA_WEBHOOK_PRIVATE", "allow")
            .env("QUNFA_WEBHOOK_RETRY_DELAYS", "1s")
            .env_remove("QUNFA_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start qunfa serve")
    };
    let client = reqwest::Client::new();
    let api = |q: &str| {
        format!(
            "http://127.0.0.1:{port}/mm-ms/api/task.php?username=acme&password={}&{q}",
            md5_hex("pw")
        )
    };
    let get = |q: String| {
        let client = client.clone();
        async move {
            for _ in 0..100 {
                if let Ok(r) = client.get(&q).send().await {
                    return r.text().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("qunfa serve does not answer");
        }
    };
    let mut first = serve();
    let add = get(api(
        "do=add-task&tpl_id=1&maillist_id=1&send_account=a@acme.cn&status=2",
    ))
    .await;
    assert!(add.contains("<status>success</status>"), "{add}");
    for _ in 0..600 {
        if sink.received().len() >= RECIPIENTS / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sink.received().len() < RECIPIENTS,
        "the campaign ended before the kill"
    );
    first.start_kill().expect("SIGKILL");
    first.wait().await.unwrap();
    let mut second = serve();
    let mut done = String::new();
    for _ in 0..1200 {
        done = get(api("do=task-list&id=1")).await;
        if done.contains("<send_status>3</send_status>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every recipient's `delivered` and the campaign's end reach the
    // webhook, though the server died mid-campaign (what the dead process
    // held comes back after the lease); each event under one id.
    let complete = |e: &EventIds| {
        e.contains_key(&("campaign.done".to_string(), String::new()))
            && people
                .iter()
                .all(|p| e.contains_key(&("delivered".to_string(), p.clone())))
    };
    for _ in 0..900 {
        if complete(&events.lock().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.start_kill().ok();
    assert!(
        done.contains("<send_status>3</send_status>"),
        "the campaign completes after the crash: {done}"
    );
    assert!(
        done.contains(&format!("<send_count>{RECIPIENTS}</send_count>")),
        "{done}"
    );
    invariant_1_holds(&sink, &people);

    let events = events.lock().unwrap();
    assert!(complete(&events), "{} kinds of event came", events.len());
    for (what, ids) in events.iter() {
        assert_eq!(ids.len(), 1, "{what:?} came under several ids: {ids:?}");
    }
    drop(app);
}

/// The ids a receiver got for each (event type, email).
type EventIds = HashMap<(String, String), HashSet<String>>;

/// A receiver registered over the JSON API for acme's `delivered` and
/// `campaign.done` events that answers 500 to its first five POSTs; the ids
/// it got for each (type, email).
async fn webhook_receiver(app: &TestApp) -> Arc<Mutex<EventIds>> {
    let got: Arc<Mutex<EventIds>> = Arc::default();
    let answers = Arc::new(Mutex::new(0usize));
    let keep = got.clone();
    let route = axum::routing::post(move |body: axum::body::Bytes| {
        let (keep, answers) = (keep.clone(), answers.clone());
        async move {
            let mut n = answers.lock().unwrap();
            *n += 1;
            if *n <= 5 {
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            }
            let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let what = (
                e["type"].as_str().unwrap().to_string(),
                e["data"]["email"].as_str().unwrap_or_default().to_string(),
            );
            let id = e["id"].as_str().unwrap().to_string();
            keep.lock().unwrap().entry(what).or_default().insert(id);
            axum::http::StatusCode::OK
        }
    });
    listen_for_events(app, "acme", route, &["delivered", "campaign.done"]).await;
    got
}

/// Waits until a quarter of the campaign is out (the moment to kill).
async fn a_quarter_is_out(sink: &SmtpServer) {
    for _ in 0..600 {
        if sink.received().len() >= RECIPIENTS / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sink.received().len() < RECIPIENTS,
        "the campaign ended before the kill"
    );
}

/// Invariant 1 of docs/architecture.md: nobody lost, and only messages that were in
/// flight in the killed process (at most its concurrency) went out twice.
fn invariant_1_holds(sink: &SmtpServer, people: &[String]) {
    let mut times: HashMap<String, usize> = HashMap::new();
    for r in sink.received() {
        for rcpt in r.rcpt_to {
            *times.entry(rcpt).or_default() += 1;
        }
    }
    for p in people {
        assert!(times.contains_key(p), "{p} was lost");
    }
    let twice: Vec<&String> = times.iter().filter(|(_, n)| **n > 1).map(|(a, _)| a).collect();
    assert!(times.values().all(|n| *n <= 2), "no one gets three: {times:?}");
    assert!(
        twice.len() <= 32,
        "{} recipients got two messages: {twice:?}",
        twice.len()
    );
}
