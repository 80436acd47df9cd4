//! A task's course after it starts (D-20, H-2, H-3), as an operator and a
//! customer see it: `qunfa admin task pause|resume|cancel`, the service
//! switched off and on with `qunfa admin service set`, the task list and the
//! credits through the vendor API, and what a slow SMTP server on loopback
//! received. Each recipient gets its message once, whatever happens.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::smtp::{Act, ServerOptions, SmtpServer};
use common::*;

const TASK: &str = "task.php";
/// Each message waits this long at RCPT TO, two at a time: about ten a
/// second, so a campaign of a few dozen takes seconds and a pause or a
/// cancel lands in its middle.
const TARPIT: Duration = Duration::from_millis(200);

/// A qunfa sending through a relay that takes its time, and the relay.
async fn slow_campaign_app(backend: Backend, recipients: usize) -> Option<(TestApp, SmtpServer)> {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    for i in 1..=recipients {
        sink.script(&format!("r{i}@dest.cn"), [Act::Tarpit(TARPIT)]);
    }
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = TestApp::start_with(backend, move |s| {
        s.smtp_relay = Some(relay.clone());
        s.domain_limits = Some("dest.cn=2/0".into());
    })
    .await?;
    Some((app, sink))
}

/// Customer acme (100 credits) with domain acme.cn, mailbox a@acme.cn,
/// template 1 and list 1 of `n` addresses r1..rn@dest.cn; customer rival.
async fn setup(app: &TestApp, n: usize) {
    app.customer("acme", "pw", 100).await;
    app.customer("rival", "pw", 10).await;
    add_manager(app).await;
    add_sender_domain(app, 1, "acme", "acme.cn", &["a@acme.cn"]).await;
    add_template(
        app,
        "acme",
        &[
            ("name", "promo"),
            ("subject", "Hi {{ fullname }}"),
            ("content", "<p>{{ var1 }}</p>"),
        ],
    )
    .await;
    let lines: Vec<String> = (1..=n).map(|i| format!("r{i}@dest.cn;R{i};v{i}")).collect();
    add_list(app, "acme", &lines).await;
}

/// add-task on template 1 and list 1 from a@acme.cn; returns the id.
async fn add(app: &TestApp, rest: &str) -> String {
    let a = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=add-task&tpl_id=1&maillist_id=1&send_account=a@acme.cn&{rest}"),
        )
        .await;
    assert_eq!(a.code(), "success", "{}", a.text());
    a.element("id").unwrap()
}

async fn available(app: &TestApp) -> i64 {
    let s = app.api("account.php", "acme", "pw", "do=service-info").await;
    s.element("qty_available").unwrap().parse().unwrap()
}

/// The task as 6.1 shows it.
async fn task(app: &TestApp, id: &str) -> Answer {
    app.api(TASK, "acme", "pw", &format!("do=task-list&id={id}"))
        .await
}

async fn status(app: &TestApp, id: &str) -> String {
    task(app, id).await.element("send_status").unwrap_or_default()
}

async fn sent_count(app: &TestApp, id: &str) -> usize {
    task(app, id)
        .await
        .element("send_count")
        .unwrap()
        .parse()
        .unwrap()
}

async fn wait_status(app: &TestApp, id: &str, want: &str) {
    for _ in 0..300 {
        if status(app, id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "task {id} never reached send_status {want}: {}",
        task(app, id).await.text()
    );
}

/// `qunfa admin task VERB --username acme --id ID`.
async fn admin_task(app: &TestApp, verb: &str, id: &str) -> Cmd {
    app.qunfa(&["admin", "task", verb, "--username", "acme", "--id", id])
        .await
}

/// What the server received: how many messages each recipient got.
fn received_by_recipient(sink: &SmtpServer) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for r in sink.received() {
        for rcpt in r.rcpt_to {
            *by.entry(rcpt).or_insert(0) += 1;
        }
    }
    by
}

/// Waits for the messages in flight to land, then checks that no new one
/// starts for a while; returns how many the server has.
async fn quiet(sink: &SmtpServer) -> usize {
    // At most two in flight, each a tarpit long, and the workers' view of
    // the task is at most half a second old.
    tokio::time::sleep(TARPIT * 2 + Duration::from_millis(900)).await;
    let settled = sink.received().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), settled, "no new message starts");
    settled
}

/// Every one of r1..rn got exactly `times` messages.
fn each_exactly(sink: &SmtpServer, n: usize, times: usize) {
    let by = received_by_recipient(sink);
    for i in 1..=n {
        let r = format!("r{i}@dest.cn");
        assert_eq!(by.get(&r).copied(), Some(times), "{r}: {by:?}");
    }
    assert_eq!(by.len(), n, "nobody else: {by:?}");
}

async fn pausing_stops_new_messages_and_resuming_finishes_them(backend: Backend) {
    let Some((app, sink)) = slow_campaign_app(backend, 30).await else {
        return;
    };
    setup(&app, 30).await;
    let id = add(&app, "status=2").await;
    sink.wait_for(4, Duration::from_secs(30)).await;

    let out = admin_task(&app, "pause", &id).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\t-2\tpaused\t"), "{}", out.stdout);
    assert_eq!(status(&app, &id).await, "-2");
    let during = quiet(&sink).await;
    assert!(during < 30, "paused in the middle: {during}");
    assert_eq!(sent_count(&app, &id).await, during);
    let list = app.admin_ok(&["task", "list", "--username", "acme"]).await;
    assert!(list.starts_with("id\tident\tsend_status\tstate\t"), "{list}");
    assert!(
        list.contains(&format!("\n{id}\t")) && list.contains("\t-2\tpaused\t"),
        "{list}"
    );

    // Pausing twice is a clear refusal that changes nothing; so is resuming
    // a task of another customer's.
    refused(
        &admin_task(&app, "pause", &id).await,
        "is paused (-2): only a sending task (2) can be paused",
    );
    let other = app
        .qunfa(&["admin", "task", "resume", "--username", "rival", "--id", &id])
        .await;
    refused(&other, &format!("unknown task {id} of customer 'rival'"));
    assert_eq!(status(&app, &id).await, "-2");

    let out = admin_task(&app, "resume", &id).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\t2\tsending\t"), "{}", out.stdout);
    wait_status(&app, &id, "3").await;
    each_exactly(&sink, 30, 1);
    assert_eq!(sent_count(&app, &id).await, 30);
    assert_eq!(available(&app).await, 70, "30 accepted, 30 charged");
    refused(&admin_task(&app, "resume", &id).await, "is completed (3)");
    refused(&admin_task(&app, "cancel", &id).await, "can't be cancelled");
    app.stop().await;
}

async fn cancelling_refunds_what_was_not_sent(backend: Backend) {
    let Some((app, sink)) = slow_campaign_app(backend, 20).await else {
        return;
    };
    setup(&app, 20).await;
    // A waiting task: its whole reservation comes back.
    let waiting = add(&app, "time=2099-1-1%200:00").await;
    assert_eq!(available(&app).await, 80);
    let out = admin_task(&app, "cancel", &waiting).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\t-3\tcancelled\t"), "{}", out.stdout);
    assert_eq!(available(&app).await, 100);
    let t = task(&app, &waiting).await;
    assert_eq!(t.element("send_status").as_deref(), Some("-3"));
    assert_ne!(t.element("time_end").as_deref(), Some("0000-00-00 00:00:00"));
    refused(&admin_task(&app, "cancel", &waiting).await, "is cancelled (-3)");
    refused(
        &admin_task(&app, "resume", &waiting).await,
        "only a paused task (-2) can be resumed",
    );
    // One on hold reserved nothing and gives nothing back.
    let held = add(&app, "status=-1&time=2099-1-1%200:00").await;
    assert_eq!(admin_task(&app, "cancel", &held).await.code, 0);
    assert_eq!(available(&app).await, 100);
    refused(
        &app.qunfa(&["admin", "task", "cancel", "--username", "acme", "--id", "99"])
            .await,
        "unknown task 99 of customer 'acme'",
    );

    // A running one: what it had not sent comes back, once the messages
    // in flight have landed; those are charged.
    let running = add(&app, "status=2").await;
    assert_eq!(available(&app).await, 80);
    sink.wait_for(3, Duration::from_secs(30)).await;
    let out = admin_task(&app, "cancel", &running).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(status(&app, &running).await, "-3");
    let sent = quiet(&sink).await;
    assert!(sent < 20, "cancelled in the middle: {sent}");
    assert_eq!(sent_count(&app, &running).await, sent);
    assert_eq!(
        available(&app).await,
        100 - sent as i64,
        "only accepted messages are charged"
    );
    each_exactly_the_first(&sink, sent);
    let show = app.admin_ok(&["customer", "show", "--username", "acme"]).await;
    assert!(show.contains("cancelled: unsent part"), "{show}");
    app.stop().await;
}

/// The server got `n` messages, each to a different recipient.
fn each_exactly_the_first(sink: &SmtpServer, n: usize) {
    let by = received_by_recipient(sink);
    assert_eq!(by.len(), n, "{by:?}");
    assert!(by.values().all(|c| *c == 1), "{by:?}");
}

async fn deleting_a_paused_task_cancels_the_rest(backend: Backend) {
    let Some((app, sink)) = slow_campaign_app(backend, 20).await else {
        return;
    };
    setup(&app, 20).await;
    let id = add(&app, "status=2").await;
    sink.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(admin_task(&app, "pause", &id).await.code, 0);
    let sent = quiet(&sink).await;
    let del = app.api(TASK, "acme", "pw", &format!("do=del-task&id={id}")).await;
    assert_eq!(del.code(), "success", "{}", del.text());
    assert_eq!(
        available(&app).await,
        100 - sent as i64,
        "the unsent part is refunded"
    );
    assert!(task(&app, &id).await.elements("task").is_empty(), "deleted");
    refused(&admin_task(&app, "resume", &id).await, "unknown task");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.received().len(), sent, "nothing more goes out");
    each_exactly_the_first(&sink, sent);
    app.stop().await;
}

async fn the_service_pauses_and_resumes_its_running_tasks(backend: Backend) {
    let Some((app, sink)) = slow_campaign_app(backend, 20).await else {
        return;
    };
    setup(&app, 20).await;
    let service = async |status: &str| {
        app.admin_ok(&["service", "set", "--username", "acme", "--status", status])
            .await;
    };
    // A running task, and one waiting for a time far away.
    let running = add(&app, "status=2").await;
    let later = add(&app, "send_qty=2&time=2099-1-1%200:00").await;
    sink.wait_for(3, Duration::from_secs(30)).await;

    service("disabled").await;
    wait_status(&app, &running, "-2").await;
    let during = quiet(&sink).await;
    assert!(during < 20, "paused in the middle: {during}");
    let list = app.admin_ok(&["task", "list", "--username", "acme"]).await;
    assert!(list.contains("\t-2\tpaused (service unusable)\t"), "{list}");
    // The user can't resume it meanwhile; a waiting task whose time comes
    // stays waiting (H-3).
    refused(&admin_task(&app, "resume", &running).await, "service is disabled");
    let edit = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=edit-task&id={later}&time=2012-1-1%200:00"),
        )
        .await;
    assert_eq!(edit.code(), "success", "{}", edit.text());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&app, &later).await, "1");
    assert_eq!(status(&app, &running).await, "-2");

    // Usable again: the running task goes on by itself and completes, and
    // the waiting one starts.
    service("enabled").await;
    wait_status(&app, &running, "3").await;
    wait_status(&app, &later, "3").await;
    let by = received_by_recipient(&sink);
    for i in 1..=20 {
        let want = if i <= 2 { 2 } else { 1 };
        assert_eq!(
            by.get(&format!("r{i}@dest.cn")).copied(),
            Some(want),
            "r{i}: {by:?}"
        );
    }
    assert_eq!(available(&app).await, 100 - 22);

    // A task the user pauses stays paused when the service comes back,
    // even one the service had paused first.
    let mine = add(&app, "status=2").await;
    wait_status(&app, &mine, "2").await;
    service("disabled").await;
    wait_status(&app, &mine, "-2").await;
    let out = admin_task(&app, "pause", &mine).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("\t-2\tpaused\t"),
        "now the user's: {}",
        out.stdout
    );
    service("enabled").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&app, &mine).await, "-2", "the user's pause holds");
    assert_eq!(admin_task(&app, "resume", &mine).await.code, 0);
    wait_status(&app, &mine, "3").await;
    let by = received_by_recipient(&sink);
    for i in 1..=20 {
        let want = if i <= 2 { 3 } else { 2 };
        assert_eq!(
            by.get(&format!("r{i}@dest.cn")).copied(),
            Some(want),
            "r{i}: {by:?}"
        );
    }
    assert_eq!(available(&app).await, 100 - 42);
    app.stop().await;
}

/// A task's recipients are the list's addresses in its window of positions
/// (`send_qty_start`, `send_qty`) when it starts, minus those suppressed
/// there (H-2); a window past the list's end sends nothing.
async fn a_task_sends_to_its_window_of_the_list_minus_suppressed(backend: Backend) {
    let Some((app, sink)) = slow_campaign_app(backend, 10).await else {
        return;
    };
    setup(&app, 10).await;
    use qunfa::domain::{ids::CustomerId, suppressions};
    let r4 = qunfa::domain::email::EmailAddress::parse("r4@dest.cn").unwrap();
    suppressions::suppress(&app.app().store, CustomerId(1), &[r4], 1)
        .await
        .unwrap();

    let window = add(&app, "status=2&send_qty_start=3&send_qty=4").await;
    wait_status(&app, &window, "3").await;
    let mut got: Vec<String> = received_by_recipient(&sink).into_keys().collect();
    got.sort();
    assert_eq!(got, ["r3@dest.cn", "r5@dest.cn", "r6@dest.cn"]);

    let past = add(&app, "status=2&send_qty_start=11").await;
    wait_status(&app, &past, "3").await;
    assert_eq!(
        task(&app, &past).await.element("send_count").as_deref(),
        Some("0")
    );
    assert_eq!(sink.received().len(), 3);
    app.stop().await;
}

both_stores!(
    by_backend;
    a_task_sends_to_its_window_of_the_list_minus_suppressed,
    pausing_stops_new_messages_and_resuming_finishes_them,
    cancelling_refunds_what_was_not_sent,
    deleting_a_paused_task_cancels_the_rest,
    the_service_pauses_and_resumes_its_running_tasks,
);
