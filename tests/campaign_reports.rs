//! What the report use-cases say of a campaign, checked against what was
//! done to it: messages accepted, refused for good and refused for now by a
//! real SMTP server, opens, a click and an unsubscribe through the links of
//! the delivered messages; the same figures the vendor API reports, the
//! recipients of each outcome a page at a time, and nothing of it for
//! another customer.

mod common;

use std::time::Duration;

use common::smtp::{Act, SmtpServer};
use common::*;
use mail_parser::MessageParser;
use qunfa::domain::failure::FailureClass;
use qunfa::domain::ids::{CustomerId, DeliveryId, TaskId};
use qunfa::domain::reports::{
    self, Campaign, CustomersOf, DeliveryState, FiguresOf, RecipientActivity, RecipientStatus, ReportError,
};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.0.0 Safari/537.36";

async fn start(backend: Backend) -> Option<(TestApp, SmtpServer)> {
    TestApp::start_relaying(backend, |s| {
        // The hits come right after delivery: none is a scanner's by time.
        s.scanner_window = Some("0s".into());
        // A message refused for now stays deferred while the test runs.
        s.retry_delays = Some("1h".into());
    })
    .await
}

/// The campaign once `done` says it is as far as the test needs.
async fn campaign_when(app: &TestApp, task: TaskId, done: impl Fn(&Campaign) -> bool) -> Campaign {
    for _ in 0..300 {
        let c = reports::campaign(&app.app().store, CustomerId(1), task)
            .await
            .expect("the campaign");
        if done(&c) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the campaign did not get there within 30 s");
}

async fn recipients(
    app: &TestApp,
    customer: i64,
    task: TaskId,
    status: RecipientStatus,
    after: Option<DeliveryId>,
    limit: i64,
) -> Result<Vec<RecipientActivity>, ReportError> {
    reports::campaign_recipients(&app.app().store, CustomerId(customer), task, status, after, limit).await
}

fn addresses(rows: &[RecipientActivity]) -> Vec<&str> {
    rows.iter().map(|r| r.address.as_str()).collect()
}

async fn a_campaign_reads_as_it_went(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "promo"),
            ("subject", "Hello"),
            (
                "content",
                "<p>Hi</p><a href=\"https://shop.example/sale\">sale</a>",
            ),
        ],
    )
    .await;
    let people = [
        "ok1@qq.com",
        "ok2@qq.com",
        "ok3@gmail.com",
        "gone@dest.cn",
        "full@dest.cn",
        "later@dest.cn",
    ];
    add_list(
        &app,
        "acme",
        &people.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    )
    .await;
    sink.script("gone@dest.cn", [Act::Refuse("550 5.1.1 User unknown")]);
    sink.script("full@dest.cn", [Act::Refuse("552 5.2.2 Mailbox full")]);
    sink.script("later@dest.cn", [Act::Refuse("451 4.3.0 Try again later")]);
    app.customer("bob", "pw", 10).await;

    // A task on hold: the addresses it will send to, nothing held for it.
    let held = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news@acme.cn&status=-1&time=2099-01-01%2012:00",
        )
        .await;
    let held = TaskId(
        held.element("id")
            .unwrap_or_else(|| panic!("{}", held.text()))
            .parse()
            .unwrap(),
    );
    let c = reports::campaign(&app.app().store, CustomerId(1), held)
        .await
        .unwrap();
    assert_eq!((c.counts.recipients, c.counts.sent), (6, 0));
    assert_eq!((c.credits.held, c.credits.charged), (0, 0));

    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news@acme.cn&status=2&track_status=2&subs_link=1",
        )
        .await;
    let id = add.element("id").unwrap_or_else(|| panic!("{}", add.text()));
    let task = TaskId(id.parse().unwrap());
    let c = campaign_when(&app, task, |c| c.counts.sent == 5 && c.counts.deferred == 1).await;
    assert_eq!((c.counts.delivered, c.counts.failed), (3, 2));

    // ok1 opens and clicks, ok2 opens and unsubscribes.
    let mut pixels = std::collections::HashMap::new();
    for r in sink.received() {
        let msg = MessageParser::default().parse(&r.data).unwrap();
        let html = msg.body_html(0).unwrap().to_string();
        let unsubscribe = msg
            .header_raw("List-Unsubscribe")
            .map(|h| tracking_paths(h, "u"))
            .unwrap_or_default();
        pixels.insert(
            r.rcpt_to[0].clone(),
            (
                tracking_paths(&html, "o").pop().unwrap(),
                tracking_paths(&html, "c"),
                unsubscribe[0].clone(),
            ),
        );
    }
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("User-Agent", CHROME)
            .send()
    };
    let (ok1_pixel, ok1_clicks, _) = &pixels["ok1@qq.com"];
    let (ok2_pixel, _, ok2_unsubscribe) = &pixels["ok2@qq.com"];
    assert_eq!(get(ok1_pixel).await.unwrap().status(), 200);
    assert_eq!(get(&ok1_clicks[0]).await.unwrap().status(), 302);
    assert_eq!(get(ok2_pixel).await.unwrap().status(), 200);
    let one_click = app
        .client
        .post(format!("{}{ok2_unsubscribe}", app.base))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);

    let c = campaign_when(&app, task, |c| c.counts.opened == 2 && c.counts.clicked == 1).await;
    let n = c.counts;
    assert_eq!(
        (n.recipients, n.sent, n.delivered, n.failed, n.deferred),
        (6, 5, 3, 2, 1)
    );
    assert_eq!((n.opened, n.clicked, n.unsubscribed, n.complained), (2, 1, 1, 0));
    assert_eq!(c.failures.get(FailureClass::NotExist), 1);
    assert_eq!(c.failures.get(FailureClass::OverQuota), 1);
    assert_eq!(c.failures.total(), 2);
    // Six held when it started; one spent per accepted message.
    assert_eq!((c.credits.held, c.credits.charged), (3, 3));
    assert_eq!(c.links.len(), 1);
    assert_eq!(
        (c.links[0].url.as_str(), c.links[0].click_unique),
        ("https://shop.example/sale", 1)
    );

    // The vendor API says the same.
    let o = app
        .api("track.php", "acme", "pw", &format!("do=overview&id={id}"))
        .await;
    let e = |name: &str| {
        o.element(name)
            .unwrap_or_else(|| panic!("{name} in {}", o.text()))
    };
    assert_eq!(e("send_count"), n.sent.to_string());
    assert_eq!(e("real_send_count"), n.delivered.to_string());
    assert_eq!(e("error_send_count"), n.failed.to_string());
    assert_eq!(e("open_unique"), n.opened.to_string());
    assert_eq!(e("click_unique"), n.clicked.to_string());

    // The recipients of each outcome, in delivery order, a page at a time.
    let delivered = recipients(&app, 1, task, RecipientStatus::Delivered, None, 2)
        .await
        .unwrap();
    assert_eq!(addresses(&delivered), ["ok1@qq.com", "ok2@qq.com"]);
    assert!(
        delivered
            .iter()
            .all(|r| r.state == DeliveryState::Delivered && r.sent_at.is_some())
    );
    assert_eq!((delivered[0].opens, delivered[0].clicks), (1, 1));
    assert!(delivered[0].open_first.is_some() && delivered[0].click_first.is_some());
    let rest = recipients(
        &app,
        1,
        task,
        RecipientStatus::Delivered,
        Some(delivered[1].delivery),
        2,
    )
    .await
    .unwrap();
    assert_eq!(addresses(&rest), ["ok3@gmail.com"]);
    assert_eq!(rest[0].opens, 0);
    let failed = recipients(&app, 1, task, RecipientStatus::Failed, None, 100)
        .await
        .unwrap();
    assert_eq!(addresses(&failed), ["gone@dest.cn", "full@dest.cn"]);
    assert_eq!(
        failed.iter().map(|r| r.class).collect::<Vec<_>>(),
        [Some(FailureClass::NotExist), Some(FailureClass::OverQuota)]
    );
    assert_eq!(failed[0].smtp_status, "5.1.1");
    let opened = recipients(&app, 1, task, RecipientStatus::Opened, None, 100)
        .await
        .unwrap();
    assert_eq!(addresses(&opened), ["ok1@qq.com", "ok2@qq.com"]);
    let clicked = recipients(&app, 1, task, RecipientStatus::Clicked, None, 100)
        .await
        .unwrap();
    assert_eq!(addresses(&clicked), ["ok1@qq.com"]);

    // By provider, per day, per customer.
    let providers = reports::providers(&app.app().store, CustomerId(1), task)
        .await
        .unwrap();
    let p: Vec<(&str, i64, i64, i64)> = providers
        .iter()
        .map(|p| (p.provider, p.recipients, p.sent, p.failed))
        .collect();
    assert_eq!(p, [("QQ", 2, 2, 0), ("Gmail", 1, 1, 0), ("others", 3, 0, 2)]);
    let today = app.app().clock.today();
    let days = reports::daily_figures(&app.app().store, FiguresOf::Task(CustomerId(1), task), today)
        .await
        .unwrap();
    let d = &days[&today];
    assert_eq!((d.sent, d.failed, d.opens, d.clicks), (3, 2, 2, 1));
    let customers = reports::customer_activity(&app.app().store, CustomersOf::Everyone, today)
        .await
        .unwrap();
    let c: Vec<(&str, i64, i64)> = customers
        .iter()
        .map(|a| (a.customer.username.as_str(), a.sent, a.failed))
        .collect();
    assert_eq!(c, [("acme", 3, 2), ("bob", 0, 0)]);

    // Another customer's task is no different from a missing one.
    for customer in [2, 1] {
        let missing = if customer == 2 { task } else { TaskId(999_999) };
        let store = &app.app().store;
        assert!(matches!(
            reports::campaign(store, CustomerId(customer), missing).await,
            Err(ReportError::NotFound)
        ));
        assert!(matches!(
            recipients(&app, customer, missing, RecipientStatus::Delivered, None, 10).await,
            Err(ReportError::NotFound)
        ));
        assert!(matches!(
            reports::providers(store, CustomerId(customer), missing).await,
            Err(ReportError::NotFound)
        ));
    }
    let bob_days = reports::daily_figures(&app.app().store, FiguresOf::Task(CustomerId(2), task), today)
        .await
        .unwrap();
    assert!(bob_days.is_empty(), "{bob_days:?}");
    app.stop().await;
}

both_stores!(by_backend; a_campaign_reads_as_it_went);
