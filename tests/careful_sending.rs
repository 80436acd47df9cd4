//! Sending like a careful sender, on one node or many: per-destination
//! limits that hold for every process on one database (checked where a
//! receiving server would see them: sessions at once, messages in any
//! second), the reputation guard pausing a task that sends to a stale list,
//! and a new sending domain's warm-up over two days.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::smtp::{Act, Received, ServerOptions, SmtpServer};
use common::*;
use tokio::process::{Child, Command};

/// The destination of `limits_hold_for_every_process`, one per backend:
/// the two run at once in this process, and /metrics is the process's.
fn destination(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "one-node.example",
        Backend::Postgres => "dest.example",
    }
}

fn limit(backend: Backend) -> String {
    format!("{}=2/40", destination(backend))
}
const CONNECTIONS: usize = 2;
const PER_SECOND: usize = 40;
const RECIPIENTS: usize = 800;

/// One more qunfa process on the test's database, sending through `relay`
/// under the test's limits; its log in its data folder.
fn worker(app: &TestApp, name: &str, relay: &str, limit: &str) -> Child {
    let dir = app.data_path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .arg("worker")
        .env("QUNFA_DATA_DIR", &dir)
        .env("QUNFA_DATABASE_URL", &app.database_url)
        .env("QUNFA_TIMEZONE", TIMEZONE)
        .env("QUNFA_SMTP_RELAY", relay)
        .env("QUNFA_DOMAIN_LIMITS", limit)
        .env("QUNFA_HELO_NAME", format!("{name}.qunfa.test"))
        .env("QUNFA_LOG", "qunfa=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start qunfa worker")
}

/// The most messages that arrived within one second of each other, over
/// the windows that start at `from` or later.
fn busiest_second(got: &[Received], from: Instant) -> usize {
    let mut at: Vec<Instant> = got.iter().map(|r| r.at).collect();
    at.sort();
    let mut most = 0;
    let mut end = 0;
    for (i, start) in at.iter().enumerate() {
        end = end.max(i);
        while end < at.len() && at[end] < *start + Duration::from_secs(1) {
            end += 1;
        }
        if *start >= from {
            most = most.max(end - i);
        }
    }
    most
}

/// A limit of 2 sessions and 40/s and a campaign of 800 there (more than
/// one claim): on SQLite one `serve` sends it, on PostgreSQL one `serve`
/// and three `qunfa worker` processes share it. The relay never sees more
/// than 2 sessions at once nor more than 40 messages in any one second
/// after the first (a second's burst is allowed at the start; 20 %
/// tolerance), and every recipient gets one message.
async fn limits_hold_for_every_process(backend: Backend) {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = {
        let relay = relay.clone();
        TestApp::start_with(backend, move |s| {
            s.smtp_relay = Some(relay.clone());
            s.domain_limits = Some(limit(backend));
        })
        .await
    };
    let Some(app) = app else { return };
    let people: Vec<String> = (0..RECIPIENTS)
        .map(|i| format!("r{i}@{}", destination(backend)))
        .collect();
    acme_campaign_ready(&app, &people).await;
    let mut workers = Vec::new();
    if backend == Backend::Postgres {
        for name in ["w1", "w2", "w3"] {
            workers.push(worker(&app, name, &relay, &limit(backend)));
        }
        // Each has migrated and started its engine once its log says so…
        // or at least once the database answers it: give them a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let id = start_acme_task(&app).await.to_string();
    let started = Instant::now();
    let done = task_done(&app, "acme", "pw", &id).await;
    let took = started.elapsed();
    assert_eq!(done.element("send_status").as_deref(), Some("3"));

    let got = sink.received();
    let mut times: HashMap<&str, usize> = HashMap::new();
    let mut by_process: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *times.entry(r.rcpt_to[0].as_str()).or_default() += 1;
        let text = String::from_utf8_lossy(&r.data);
        if let Some(at) = text.find(".qunfa.test>") {
            let name = text[..at].rsplit('@').next().unwrap_or("").to_string();
            *by_process.entry(name).or_default() += 1;
        }
    }
    assert_eq!(times.len(), RECIPIENTS, "every recipient");
    assert!(times.values().all(|n| *n == 1), "each exactly once");
    let stats = sink.stats();
    let first = got.iter().map(|r| r.at).min().unwrap();
    let busiest = busiest_second(&got, first + Duration::from_secs(1));
    let rate = RECIPIENTS as f64 / took.as_secs_f64();
    eprintln!(
        "{backend:?}: {RECIPIENTS} messages in {took:.1?} ({rate:.1}/s, limit {PER_SECOND}/s); \
         at most {} sessions at once, {busiest} messages in one second; by process {by_process:?}",
        stats.max_connections
    );
    assert!(
        stats.max_connections <= CONNECTIONS,
        "sessions at once: {stats:?}"
    );
    assert!(
        busiest <= PER_SECOND * 6 / 5,
        "{busiest} messages in one second (limit {PER_SECOND}, 20 % tolerance)"
    );
    assert!(
        took >= Duration::from_secs((RECIPIENTS / PER_SECOND) as u64 - 2),
        "{RECIPIENTS} at {PER_SECOND}/s took only {took:?}"
    );
    // What this process did shows on its /metrics, per group.
    let metrics = app.get("/metrics").await.text();
    let served = RECIPIENTS - by_process.values().sum::<usize>();
    if served > 0 {
        let dest = destination(backend);
        for line in [
            format!("delivery_in_flight{{group=\"{dest}\"}} 0"),
            format!("delivery_waits_total{{group=\"{dest}\"}}"),
            format!("delivery_wait_seconds_count{{group=\"{dest}\"}}"),
        ] {
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
        if backend == Backend::Postgres {
            for line in [
                format!("delivery_grants_total{{group=\"{dest}\",kind=\"connection\"}}"),
                format!("delivery_grants_total{{group=\"{dest}\",kind=\"rate\"}}"),
                "delivery_grant_seconds_count{kind=\"rate\"}".to_string(),
            ] {
                assert!(metrics.contains(&line), "{line} in {metrics}");
            }
        }
    }
    for mut w in workers {
        w.start_kill().ok();
        w.wait().await.ok();
    }
    app.stop().await;
}

/// The cluster's slots and start times, as two processes see them: a
/// process holds its slots while it renews them; one that stops (it died)
/// gives them back when their lease runs out; a booking moves the group's
/// start time on for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_come_back_when_their_holder_stops_renewing() {
    use qunfa::delivery::Coordinator;
    use qunfa::engine::limits::StoreCoordinator;
    if pg_off() {
        return;
    }
    let db = PgDatabase::create().await;
    let url = qunfa::config::DatabaseUrl::Postgres(db.url.clone());
    let store = qunfa::store::Store::open(&url).await.expect("the database");
    let lease = Duration::from_secs(2);
    let a = StoreCoordinator::new(store.clone(), "a.qunfa.test", lease);
    let b = StoreCoordinator::new(store.clone(), "b.qunfa.test", lease);
    let group = "dest.example";
    assert_eq!(a.acquire(group, 2, 2).await.unwrap(), [0, 1]);
    assert!(b.acquire(group, 2, 1).await.unwrap().is_empty(), "both are held");
    assert_eq!(a.wanted(&[group.to_string()]).await.unwrap(), [group], "b asked");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(a.renew().await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        b.acquire(group, 2, 1).await.unwrap().is_empty(),
        "renewed: still held"
    );
    // a stops renewing: within its lease its slots come back.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(b.acquire(group, 2, 2).await.unwrap(), [0, 1]);
    assert!(a.renew().await.unwrap().is_empty(), "a lost them");
    b.release(group, &[0, 1]).await.unwrap();
    assert_eq!(a.acquire(group, 2, 1).await.unwrap(), [0]);

    // Start times: after a quiet second the first booking may go at once;
    // the next one, by another process, begins where it ends.
    let span = Duration::from_millis(250);
    let first = a.book("paced.example", span).await.unwrap();
    assert!(first.quiet && first.ahead.is_zero(), "{first:?}");
    let second = b.book("paced.example", span).await.unwrap();
    assert!(!second.quiet, "{second:?}");
    assert!(
        second.ahead > Duration::from_millis(150) && second.ahead <= span,
        "{second:?}"
    );
    store.close().await;
}

/// Logs `user` in to the console; its session cookie.
async fn console_session(app: &TestApp, user: &str, password: &str) -> String {
    let r = app
        .client
        .post(format!("{}/sendstat/?module=base&action=login", app.base))
        .form(&[("username", user), ("password", password), ("user_type", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "console login");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

/// A qunfa whose engine the test drives, relaying to a fresh SMTP server.
async fn driven_relaying(backend: Backend) -> Option<(TestApp, SmtpServer)> {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = TestApp::start_driven(backend, move |s| s.smtp_relay = Some(relay.clone())).await?;
    Some((app, sink))
}

/// Drives the engine until nothing is due now.
async fn drive_while_due(app: &TestApp) {
    while app.drive().await {}
}

/// A campaign of 400 where every other address answers `550 5.1.1`: the
/// bounce guard (10 % of at least 200) stops it at -2 after about 200
/// outcomes, with its reason and figures in the task list, the console's
/// report and the log; resumed, it counts again from there and sends the
/// rest, each recipient once.
async fn a_stale_list_pauses_its_task(backend: Backend) {
    let Some((app, sink)) = driven_relaying(backend).await else {
        return;
    };
    let people: Vec<String> = (0..400).map(|i| format!("p{i}@stale.example")).collect();
    for p in people.iter().step_by(2) {
        sink.script(
            p,
            [Act::Refuse(
                "550 5.1.1 <user>: Recipient address rejected: User unknown",
            )],
        );
    }
    acme_campaign_ready(&app, &people).await;
    let id = start_acme_task(&app).await.to_string();
    drive_while_due(&app).await;

    let t = app
        .api("task.php", "acme", "pw", &format!("do=task-list&id={id}"))
        .await;
    assert_eq!(t.element("send_status").as_deref(), Some("-2"), "{}", t.text());
    let list = app.admin_ok(&["task", "list", "--username", "acme"]).await;
    let row = list.lines().nth(1).expect("the task's row");
    let cols: Vec<&str> = row.split('\t').collect();
    let (sent, failed): (i64, i64) = (cols[6].parse().unwrap(), cols[7].parse().unwrap());
    assert_eq!(cols[3], "paused (reputation guard)", "{row}");
    // What the guard saw when it paused the task; messages already in SMTP
    // then landed too.
    let figures = cols[10]
        .strip_prefix("bounce guard: ")
        .and_then(|rest| rest.split_once(" hard failures of "))
        .and_then(|(hard, rest)| {
            Some((
                hard.parse::<i64>().ok()?,
                rest.split(' ').next()?.parse::<i64>().ok()?,
            ))
        });
    let Some((hard, outcomes)) = figures else {
        panic!("the guard's reason and figures: {row}")
    };
    assert!(cols[10].contains("limit 10%/200"), "{row}");
    // Outcomes are recorded (and looked at) in groups of up to 64.
    assert!(
        (200..264).contains(&outcomes),
        "paused after about 200 outcomes: {row}"
    );
    assert!(
        hard * 10 > outcomes && hard <= failed && outcomes <= sent + failed,
        "{row}"
    );
    assert!(sent + failed < 360, "it stopped: {row}");
    let cookie = console_session(&app, "acme", "pw").await;
    let report = app
        .client
        .get(format!("{}/sendstat/tasks/{id}", app.base))
        .header("Cookie", &cookie)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(
        report.contains("Paused by the bounce guard: too many hard failures")
            && report.contains(&format!("{hard} / {outcomes}"))
            && report.contains("limit 10%/200"),
        "{report}"
    );

    // Resumed, it sends the rest: fewer than 200 outcomes from here on, so
    // the guard (counting again) lets it end.
    app.admin_ok(&["task", "resume", "--username", "acme", "--id", &id])
        .await;
    let done = task_done(&app, "acme", "pw", &id).await;
    assert_eq!(done.element("send_status").as_deref(), Some("3"));
    let mut attempts: HashMap<String, usize> = HashMap::new();
    for r in sink.received() {
        *attempts.entry(r.rcpt_to[0].clone()).or_default() += 1;
    }
    assert_eq!(attempts.len(), 200, "every good address got its message");
    assert!(attempts.values().all(|n| *n == 1));
    let list = app.admin_ok(&["task", "list", "--username", "acme"]).await;
    let cols: Vec<String> = list
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .map(String::from)
        .collect();
    assert_eq!((cols[6].as_str(), cols[7].as_str()), ("200", "200"), "{list}");
    assert_eq!(cols[10], "", "the guard's pause is cleared on resume");
    app.stop().await;
}

/// `warmup --start 50 --days 10` on a new domain: a campaign of 120 sends
/// 50 today and defers 70 to the next day with the reason "daily cap";
/// the next day (the clock moved on) it sends those 70 (50 × 1.4).
async fn a_new_domain_warms_up(backend: Backend) {
    let Some((app, sink)) = driven_relaying(backend).await else {
        return;
    };
    let people: Vec<String> = (0..120).map(|i| format!("w{i}@warm.example")).collect();
    acme_campaign_ready(&app, &people).await;
    let shown = app
        .admin_ok(&[
            "domain", "warmup", "--domain", "acme.cn", "--start", "50", "--days", "10",
        ])
        .await;
    assert_eq!(
        shown,
        "customer_id\tdomain\trelay\tcap_today\tsent_today\twarmup\n1\tacme.cn\t-\t50\t0\tday 1 of 10 (+40%/day)\n"
    );
    let id = start_acme_task(&app).await;
    drive_while_due(&app).await;
    assert_eq!(sink.received().len(), 50, "today's cap");
    let list = app.admin_ok(&["task", "list", "--username", "acme"]).await;
    let row: Vec<&str> = list.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!((row[2], row[6]), ("2", "50"), "{list}");
    assert_eq!(row[10], "70 deferred to the next day (daily cap)");
    assert_eq!(
        app.admin_ok(&["domain", "list"]).await,
        "customer_id\tdomain\trelay\tcap_today\tsent_today\twarmup\n1\tacme.cn\t-\t50\t50\tday 1 of 10 (+40%/day)\n"
    );

    // The next day.
    let engine = app.app();
    engine.clock.advance_for_tests(86_400);
    let done = task_done(&app, "acme", "pw", &id.to_string()).await;
    assert_eq!(done.element("send_status").as_deref(), Some("3"));
    let got = sink.received();
    assert_eq!(got.len(), 120);
    let mut seen = std::collections::HashSet::new();
    assert!(got.iter().all(|r| seen.insert(r.rcpt_to[0].clone())), "each once");
    let caps = qunfa::domain::senders::caps_on(&engine.store, engine.clock.today())
        .await
        .unwrap();
    let today = caps.values().next().expect("the domain's cap");
    assert_eq!(
        (today.limit, today.used),
        (Some(70), 70),
        "the second day: 50 × 1.4"
    );

    // Caps of a mailbox, a warm-up ended; bad input changes nothing.
    assert_eq!(
        app.admin_ok(&["domain", "cap", "--mailbox", "A@acme.cn", "--per-day", "500"])
            .await,
        "mailbox\tcap_today\tsent_today\na@acme.cn\t500\t0\n"
    );
    for (args, mentions) in [
        (
            &["--domain", "nope.cn", "--per-day", "5"][..],
            "unknown domain 'nope.cn'",
        ),
        (
            &["--mailbox", "b@acme.cn", "--off"][..],
            "unknown mailbox 'b@acme.cn'",
        ),
        (&["--domain", "acme.cn", "--per-day", "many"][..], "--per-day"),
        (&["--domain", "acme.cn"][..], "--per-day"),
        (
            &["--domain", "acme.cn", "--mailbox", "a@acme.cn", "--off"][..],
            "--mailbox",
        ),
    ] {
        let mut argv = vec!["admin", "domain", "cap"];
        argv.extend_from_slice(args);
        refused(&app.qunfa(&argv).await, mentions);
    }
    for (args, mentions) in [
        (&["--start", "0", "--days", "3"][..], "--start"),
        (
            &["--start", "5", "--days", "3", "--growth", "fast"][..],
            "--growth",
        ),
        (&["--start", "5"][..], "--days"),
    ] {
        let mut argv = vec!["admin", "domain", "warmup", "--domain", "acme.cn"];
        argv.extend_from_slice(args);
        refused(&app.qunfa(&argv).await, mentions);
    }
    assert_eq!(
        app.admin_ok(&["domain", "warmup", "--domain", "acme.cn", "--off"])
            .await,
        "customer_id\tdomain\trelay\tcap_today\tsent_today\twarmup\n1\tacme.cn\t-\t-\t-\t-\n"
    );
    app.stop().await;
}

both_stores!(by_backend; limits_hold_for_every_process, a_stale_list_pauses_its_task, a_new_domain_warms_up);
