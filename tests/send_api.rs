//! A campaign end to end: add-task with status=2 through the vendor API, the
//! scheduler and the delivery workers, a real SMTP server on loopback that
//! accepts, refuses and defers as scripted; then what a customer checks:
//! every good recipient got exactly one personalised message, rotated over
//! the mailboxes, with the headers of docs/interface.md; failures carry their
//! class; credits charged equal messages accepted.

mod common;

use std::time::Duration;

use common::smtp::{Act, ServerOptions, SmtpServer};
use common::*;
use mail_parser::MessageParser;

const TASK: &str = "task.php";
const ML: &str = "mloperate.php";

async fn a_campaign_is_delivered_once_each_with_classes_and_credits(backend: Backend) {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    sink.script(
        "gone@dest.cn",
        [Act::Refuse(
            "550 5.1.1 <gone@dest.cn>: Recipient address rejected: User unknown",
        )],
    );
    sink.script("full@dest.cn", [Act::Refuse("552 5.2.2 Mailbox full")]);
    sink.script(
        "spam@dest.cn",
        [Act::RefuseData("554 5.7.1 Message rejected as spam")],
    );
    sink.script(
        "busy@dest.cn",
        [Act::Refuse("451 4.3.0 Try again later"), Act::Accept],
    );
    let relay = format!("127.0.0.1:{}", sink.port());
    let Some(app) = TestApp::start_driven(backend, move |s| {
        s.smtp_relay = Some(relay.clone());
        s.retry_delays = Some("1s,1s".into());
        s.helo_name = Some("mta.qunfa.test".into());
    })
    .await
    else {
        return;
    };
    app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["a@acme.cn", "b@acme.cn"]).await;
    let t = app
        .api_post(
            "template.php",
            "acme",
            "pw",
            "do=add-tpl",
            &[
                ("name", "promo"),
                ("subject", "{{ fullname }}，您好"),
                ("content", "<p>Dear {{ fullname }}, code {{ var1 }}</p><a href=\"https://shop.example/a?x=1&amp;y=2\">shop</a>"),
                ("text_content", "Dear {{ fullname }}, code {{ var1 }}"),
            ],
        )
        .await;
    assert_eq!(t.code(), "success", "{}", t.text());
    app.api_post(
        ML,
        "acme",
        "pw",
        "do=maillist-add",
        &[("subject", "L"), ("status", "enabled")],
    )
    .await;
    let people = ["ok1", "ok2", "ok3", "gone", "full", "spam", "busy"];
    let lines: Vec<String> = people
        .iter()
        .map(|p| format!("{p}@dest.cn;Name {p};code-{p}"))
        .collect();
    app.api_post(
        ML,
        "acme",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", &lines.join("\n"))],
    )
    .await;

    let add = app
        .api(
            TASK,
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_domain=acme.cn&send_account=all&send_fullname=Acme%20Shop&status=2&track_status=2&subs_link=1",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let id = add.element("id").unwrap();

    let t = task_done(&app, "acme", "pw", &id).await;
    assert_eq!(t.element("send_count").as_deref(), Some("4"), "{}", t.text());
    assert_eq!(t.element("error_count").as_deref(), Some("3"));
    assert_ne!(t.element("time_end").as_deref(), Some("0000-00-00 00:00:00"));

    // Every good recipient exactly once; busy after its retry.
    let got = sink.received();
    let mut rcpts: Vec<String> = got.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        vec!["busy@dest.cn", "ok1@dest.cn", "ok2@dest.cn", "ok3@dest.cn"]
    );
    let mut froms = std::collections::HashSet::new();
    for r in &got {
        assert!(
            r.mail_from.starts_with("bounce+") && r.mail_from.ends_with("@mta.qunfa.test"),
            "VERP: {}",
            r.mail_from
        );
        let msg = MessageParser::default()
            .parse(&r.data)
            .expect("a parseable message");
        let who = r.rcpt_to[0].split('@').next().unwrap().to_string();
        assert_eq!(msg.subject(), Some(format!("Name {who}，您好").as_str()));
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Acme Shop"));
        froms.insert(from.address().unwrap().to_string());
        let html = msg.body_html(0).unwrap();
        assert!(
            html.contains(&format!("Dear Name {who}, code code-{who}")),
            "{html}"
        );
        assert!(
            !html.contains("https://shop.example/a"),
            "links are rewritten for click tracking: {html}"
        );
        let text = msg.body_text(0).unwrap();
        assert!(text.contains(&format!("code code-{who}")), "{text}");
        let raw = String::from_utf8_lossy(&r.data);
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{raw}"
        );
        assert!(raw.contains("DKIM-Signature:"), "{raw}");
        assert!(
            raw.contains("Message-ID: <") && raw.contains("@mta.qunfa.test>"),
            "{raw}"
        );
    }
    assert_eq!(froms.len(), 2, "the two mailboxes take turns: {froms:?}");

    // Failures carry their class; credits charged equal messages accepted.
    let store = &app.app().store;
    let classes: Vec<(String, Option<i64>)> = match &store {
        qunfa::store::Store::Sqlite(p) => {
            sqlx::query_as("SELECT address, failure_class FROM deliveries ORDER BY address")
                .fetch_all(p)
                .await
                .unwrap()
        }
        qunfa::store::Store::Postgres(p) => {
            sqlx::query_as("SELECT address, failure_class FROM deliveries ORDER BY address")
                .fetch_all(p)
                .await
                .unwrap()
        }
    };
    let class_of = |a: &str| classes.iter().find(|(x, _)| x == a).and_then(|(_, c)| *c);
    assert_eq!(class_of("gone@dest.cn"), Some(1));
    assert_eq!(class_of("full@dest.cn"), Some(2));
    assert_eq!(class_of("spam@dest.cn"), Some(3));
    assert_eq!(class_of("busy@dest.cn"), None);
    let service = app.api("account.php", "acme", "pw", "do=service-info").await;
    assert_eq!(
        service.element("qty_available").as_deref(),
        Some("96"),
        "100 − 4 accepted"
    );

    // The mailbox that does not exist is suppressed for the customer's
    // later tasks, with its class; lifting it is kept on record.
    use qunfa::domain::ids::CustomerId;
    use qunfa::domain::suppressions::{self, SuppressionFilter, SuppressionReason};
    let acme = CustomerId(1);
    let all = suppressions::suppressions(store, acme, &SuppressionFilter::default(), None, 50)
        .await
        .unwrap();
    let got: Vec<(&str, SuppressionReason, &str)> = all
        .iter()
        .map(|s| (s.email.as_str(), s.reason, s.detail.as_str()))
        .collect();
    assert_eq!(got, [("gone@dest.cn", SuppressionReason::Bounce, "not_exist")]);
    let gone = qunfa::domain::email::EmailAddress::parse("Gone@dest.cn").unwrap();
    suppressions::lift(store, acme, &gone, "moved back", 1)
        .await
        .unwrap();
    assert!(
        suppressions::lift(store, acme, &gone, "again", 2).await.is_err(),
        "only a suppressed address can be lifted"
    );
    assert!(
        !qunfa::domain::lists::is_suppressed(store, acme, &gone)
            .await
            .unwrap()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_on_sqlite() {
    a_campaign_is_delivered_once_each_with_classes_and_credits(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_on_postgres() {
    a_campaign_is_delivered_once_each_with_classes_and_credits(Backend::Postgres).await;
}

/// H-2 `day`: each message takes a credit of today's allowance when it is
/// handed to SMTP; when the allowance is used up the rest wait for tomorrow.
async fn a_day_service_stops_at_its_allowance(backend: Backend) {
    let sink = SmtpServer::start(ServerOptions::default()).await;
    sink.script("refused@dest.cn", [Act::Refuse("550 5.1.1 User unknown")]);
    let relay = format!("127.0.0.1:{}", sink.port());
    let Some(app) = TestApp::start_with(backend, move |s| s.smtp_relay = Some(relay.clone())).await else {
        return;
    };
    app.customer("daily", "pw", 0).await;
    app.admin_ok(&[
        "service",
        "set",
        "--username",
        "daily",
        "--type",
        "day",
        "--quota",
        "3",
    ])
    .await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "daily", "daily.cn", &["a@daily.cn"]).await;
    let t = app
        .api_post(
            "template.php",
            "daily",
            "pw",
            "do=add-tpl",
            &[("name", "t"), ("subject", "s"), ("content", "<p>x</p>")],
        )
        .await;
    assert_eq!(t.code(), "success");
    app.api_post(
        ML,
        "daily",
        "pw",
        "do=maillist-add",
        &[("subject", "L"), ("status", "enabled")],
    )
    .await;
    let list = "refused@dest.cn\nd1@dest.cn\nd2@dest.cn\nd3@dest.cn\nd4@dest.cn";
    app.api_post(
        ML,
        "daily",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", list)],
    )
    .await;
    let add = app
        .api(
            TASK,
            "daily",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=a@daily.cn&status=2",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());

    // Messages go out side by side: those that find no credit left wait for
    // tomorrow, whichever they are; a refused one gives its credit back.
    sink.wait_for(1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let task = app.api(TASK, "daily", "pw", "do=task-list&id=1").await;
    let count = |name: &str| -> usize { task.element(name).unwrap().parse().unwrap() };
    let (sent, failed) = (count("send_count"), count("error_count"));
    assert_eq!(sink.received().len(), sent);
    assert!(
        sent >= 1 && sent + failed <= 3,
        "at most today's allowance is attempted: {sent} + {failed}"
    );
    assert_eq!(
        task.element("send_status").as_deref(),
        Some("2"),
        "the rest waits for tomorrow"
    );
    let service = app.api("account.php", "daily", "pw", "do=service-info").await;
    assert_eq!(service.element("qty_available"), Some((3 - sent).to_string()));
    let show = app.admin_ok(&["customer", "show", "--username", "daily"]).await;
    assert_eq!(show.matches("\tcharge\t-1\t").count(), sent + failed, "{show}");
    assert_eq!(show.matches("\trefund\t+1\t").count(), failed, "{show}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_allowance_on_sqlite() {
    a_day_service_stops_at_its_allowance(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_allowance_on_postgres() {
    a_day_service_stops_at_its_allowance(Backend::Postgres).await;
}
