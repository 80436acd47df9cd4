//! Tasks through the vendor API (5.1/6.2, 6.1, 6.3, 6.4, 2.1): creation with
//! its sender selection and credit reservation, the scheduler starting due
//! tasks with a snapshot of their recipients, editing, holding, deleting.

mod common;

use common::*;

const TASK: &str = "task.php";
const ML: &str = "mloperate.php";

/// Customer acme (credits `credits`) with domain acme.cn, mailboxes
/// a@acme.cn and b@acme.cn, template 1, list 1 of `n` addresses; customer
/// rival with rival.cn and x@rival.cn.
async fn setup(app: &TestApp, credits: i64, n: usize) {
    app.customer("acme", "pw", credits).await;
    app.customer("rival", "pw", 10).await;
    add_manager(app).await;
    add_sender_domain(app, 1, "acme", "acme.cn", &["a@acme.cn", "b@acme.cn"]).await;
    add_sender_domain(app, 2, "rival", "rival.cn", &["x@rival.cn"]).await;
    let t = app
        .api_post(
            "template.php",
            "acme",
            "pw",
            "do=add-tpl",
            &[
                ("name", "promo"),
                ("subject", "Hi {{ fullname }}"),
                ("content", "<p>{{ var1 }}</p>"),
            ],
        )
        .await;
    assert_eq!(t.code(), "success", "{}", t.text());
    let l = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=maillist-add",
            &[("subject", "L"), ("status", "enabled")],
        )
        .await;
    assert_eq!(l.code(), "success");
    let lines: Vec<String> = (1..=n).map(|i| format!("r{i}@dest.cn;R{i};v{i}")).collect();
    if n > 0 {
        let b = app
            .api_post(
                ML,
                "acme",
                "pw",
                "do=ml-addr-add&list_id=1",
                &[("ml_addr", &lines.join("\n"))],
            )
            .await;
        assert_eq!(b.element("count"), Some(n.to_string()));
    }
}

async fn available(app: &TestApp) -> i64 {
    app.api("account.php", "acme", "pw", "do=service-info")
        .await
        .element("qty_available")
        .unwrap()
        .parse()
        .unwrap()
}

async fn add(app: &TestApp, rest: &str) -> Answer {
    app.api(
        TASK,
        "acme",
        "pw",
        &format!("do=add-task&tpl_id=1&maillist_id=1&{rest}"),
    )
    .await
}

/// The one task of 6.1 with this id.
async fn task(app: &TestApp, id: &str) -> Answer {
    app.api(TASK, "acme", "pw", &format!("do=task-list&id={id}"))
        .await
}

/// Runs the engine until nothing is due, then the task must be in `status`.
async fn wait_status(app: &TestApp, id: &str, status: &str) -> Answer {
    while app.drive().await {}
    let t = task(app, id).await;
    assert_eq!(t.element("send_status").as_deref(), Some(status), "{}", t.text());
    t
}

async fn tasks_reserve_credits_and_wait_for_their_time(app: TestApp) {
    setup(&app, 100, 10).await;
    let a = add(&app, "send_account=a@acme.cn&send_fullname=Acme%20Shop&time=2099-7-4%2016:08&send_qty=8&track_status=2&track_domain=https://t.acme.cn/&send_replyto=help@acme.cn").await;
    assert_eq!(a.code(), "success", "{}", a.text());
    assert_eq!(a.element("data").as_deref(), Some("添加群发任务成功！"));
    let id = a.element("id").unwrap();
    assert_eq!(available(&app).await, 92, "8 credits reserved");

    let t = task(&app, &id).await;
    for (name, value) in [
        ("acct_type", "address"),
        ("acct_address", "a@acme.cn"),
        ("sender", "a@acme.cn"),
        ("sender_name", "Acme Shop"),
        ("replyto", "help@acme.cn"),
        ("tpl_name", "promo"),
        ("list_name", "L"),
        ("send_qty", "8"),
        ("send_qty_remak", "8"),
        ("send_time", "2099-07-04 16:08:00"),
        ("time_start", "0000-00-00 00:00:00"),
        ("send_status", "1"),
        ("track_status", "2"),
    ] {
        assert_eq!(t.element(name).as_deref(), Some(value), "{name}: {}", t.text());
    }
    assert!(t.element("acct_domain").is_none(), "only for acct_type=domain");
    let sn = t.element("sn").unwrap();
    assert!(
        sn.starts_with("20990704-1-") && sn.len() == "20990704-1-ABCDEF".len(),
        "{sn}"
    );
    // 2.1 finds it by its date, its ident or its id; the order of its elements differs.
    let by_date = app.api(TASK, "acme", "pw", "do=list-task&date=2099-07-04").await;
    assert_eq!(by_date.elements("id"), vec![id.clone()]);
    assert!(
        by_date
            .text()
            .contains("<sender_name>Acme Shop</sender_name>\n    <replyto>"),
        "{}",
        by_date.text()
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", &format!("do=list-task&ident={sn}"))
            .await
            .elements("id"),
        vec![id.clone()]
    );
    assert!(
        app.api(TASK, "acme", "pw", "do=list-task&date=2099-07-05")
            .await
            .elements("task")
            .is_empty()
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", "do=list-task").await.code(),
        "missing_param"
    );

    // Hold gives the reservation back; release takes it again.
    let hold = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=edit-task&id={id}&send_status=-1"),
        )
        .await;
    assert_eq!(hold.code(), "success", "{}", hold.text());
    assert_eq!(available(&app).await, 100);
    let release = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=edit-task&id={id}&status=1&time=2012-7-4%2016:08&send_qty=0"),
        )
        .await;
    assert_eq!(release.code(), "success", "{}", release.text());
    // The time is past now: the scheduler starts it with all 10 recipients.
    let t = wait_status(&app, &id, "2").await;
    assert_eq!(t.element("send_time").as_deref(), Some("2012-07-04 16:08:00"));
    assert_ne!(t.element("time_start").as_deref(), Some("0000-00-00 00:00:00"));
    assert_eq!(available(&app).await, 90);
    // A sending task can be neither edited nor deleted.
    assert_eq!(
        app.api(
            TASK,
            "acme",
            "pw",
            &format!("do=edit-task&id={id}&send_fullname=x")
        )
        .await
        .code(),
        "state_error"
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", &format!("do=del-task&id={id}"))
            .await
            .code(),
        "state_error"
    );
    let queued = app
        .app()
        .store
        .task_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.recipients, 10);
    app.stop().await;
}

async fn bad_tasks_are_refused_with_their_codes(app: TestApp) {
    setup(&app, 5, 10).await;
    app.api_post(
        ML,
        "acme",
        "pw",
        "do=maillist-add",
        &[("subject", "off"), ("status", "disabled")],
    )
    .await;
    let future = "time=2099-01-01%2010:00";
    for (rest, code) in [
        ("send_account=a@acme.cn".to_string(), "missing_param"),
        (future.to_string(), "missing_param"),
        (
            format!("send_account=a@acme.cn&{future}&status=3"),
            "invalid_param",
        ),
        (
            "send_account=a@acme.cn&time=2099-02-30%2010:00".to_string(),
            "invalid_param",
        ),
        (
            format!("send_account=a@acme.cn&{future}&track_status=5"),
            "invalid_param",
        ),
        (
            format!("send_account=a@acme.cn&{future}&track_domain=not%20a%20host"),
            "invalid_param",
        ),
        (
            format!("send_account=x@rival.cn&{future}&status=-1"),
            "sender_error",
        ),
        (
            format!("send_account=a@acme.cn&send_domain=rival.cn&{future}&status=-1"),
            "sender_error",
        ),
        (
            format!("send_account=all&send_domain=rival.cn&{future}&status=-1"),
            "sender_error",
        ),
        (
            format!("send_account=nobody@acme.cn&{future}&status=-1"),
            "sender_error",
        ),
        (format!("send_account=a@acme.cn&{future}"), "quota_error"),
    ] {
        let a = add(&app, &rest).await;
        assert_eq!(a.code(), code, "{rest}: {}", a.text());
    }
    let a = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=add-task&tpl_id=9&maillist_id=1&send_account=a@acme.cn&{future}"),
        )
        .await;
    assert_eq!(a.code(), "not_found");
    let a = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=add-task&tpl_id=1&maillist_id=2&send_account=a@acme.cn&{future}"),
        )
        .await;
    assert_eq!(a.code(), "state_error", "a disabled list");
    // Another customer's template and list are unknown to rival.
    let a = app
        .api(
            TASK,
            "rival",
            "pw",
            &format!("do=add-task&tpl_id=1&maillist_id=1&send_account=x@rival.cn&{future}"),
        )
        .await;
    assert_eq!(a.code(), "not_found");
    // A disabled service can hold tasks but not send them (D-20).
    app.admin_ok(&[
        "service",
        "set",
        "--username",
        "acme",
        "--status",
        "disabled",
        "--quota",
        "100",
    ])
    .await;
    assert_eq!(
        add(&app, &format!("send_account=all&send_domain=all&{future}"))
            .await
            .code(),
        "service_disabled"
    );
    let held = add(
        &app,
        &format!("send_account=all&send_domain=acme.cn&{future}&status=-1"),
    )
    .await;
    assert_eq!(held.code(), "success", "{}", held.text());
    let id = held.element("id").unwrap();
    let t = task(&app, &id).await;
    assert_eq!(
        (
            t.element("acct_type").as_deref(),
            t.element("acct_domain").as_deref()
        ),
        (Some("domain"), Some("acme.cn"))
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", &format!("do=edit-task&id={id}&send_status=1"))
            .await
            .code(),
        "service_disabled"
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", &format!("do=edit-task&id={id}"))
            .await
            .code(),
        "missing_param"
    );
    assert_eq!(
        app.api(TASK, "acme", "pw", "do=edit-task&id=99&send_qty=1")
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        app.api(TASK, "rival", "pw", &format!("do=edit-task&id={id}&send_qty=1"))
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        app.api(TASK, "rival", "pw", &format!("do=del-task&id={id}"))
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        app.api(TASK, "rival", "pw", &format!("do=task-list&id={id}"))
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        available(&app).await,
        100,
        "nothing was reserved by refused calls"
    );
    // Deleting works, and the task is gone from every listing.
    assert_eq!(
        app.api(TASK, "acme", "pw", &format!("do=del-task&id={id}"))
            .await
            .code(),
        "success"
    );
    assert_eq!(task(&app, &id).await.code(), "not_found");
    assert!(
        app.api(TASK, "acme", "pw", "do=task-list")
            .await
            .elements("task")
            .is_empty()
    );
    app.stop().await;
}

async fn a_start_snapshots_recipients_and_settles_credits(app: TestApp) {
    setup(&app, 10, 10).await;
    // r3 leaves the list; r4 unsubscribes (suppressed) and is added back,
    // stored but still suppressed. The list: r1 r2 r5..r10 r4.
    app.api(ML, "acme", "pw", "do=ml-unsub&list_id=1&address=r3@dest.cn")
        .await;
    app.api(ML, "acme", "pw", "do=ml-sub&list_id=2&address=r3@dest.cn")
        .await;
    app.api(ML, "acme", "pw", "do=ml-unsub&list_id=1&address=r4@dest.cn")
        .await;
    app.api(ML, "acme", "pw", "do=ml-addr-add&list_id=1&address=r4@dest.cn")
        .await;
    // From position 2, all: 8 planned and reserved.
    let a = add(&app, "send_account=all&send_qty_start=2&time=2099-1-1%200:00").await;
    assert_eq!(a.code(), "success", "{}", a.text());
    let id = a.element("id").unwrap();
    assert_eq!(
        task(&app, &id).await.element("send_qty_remak").as_deref(),
        Some("8")
    );
    assert_eq!(available(&app).await, 2);
    // The list grows by 5 before the task starts; only 2 more credits exist.
    let grow = "n1@d.cn\nn2@d.cn\nn3@d.cn\nn4@d.cn\nn5@d.cn";
    app.api_post(ML, "acme", "pw", "do=ml-addr-add&list_id=1", &[("ml_addr", grow)])
        .await;
    let r = app
        .api(
            TASK,
            "acme",
            "pw",
            &format!("do=edit-task&id={id}&time=2000-1-1%200:00"),
        )
        .await;
    assert_eq!(r.code(), "success", "{}", r.text());
    wait_status(&app, &id, "2").await;
    // Positions 2..14: r2 r5..r10 r4 n1..n5, minus suppressed r4: 12 recipients;
    // 10 paid for, the last 2 (n4, n5) skipped for lack of credits (H-2).
    let t = app
        .app()
        .store
        .task_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.recipients, t.skipped_count, t.reserved), (12, 2, 10));
    assert_eq!(available(&app).await, 0);
    app.stop().await;
}

/// These tests look at tasks, not at mail: the relay they send through
/// refuses every connection, so started tasks stay sending (deferred).
async fn closed_relay_app(backend: Backend) -> Option<TestApp> {
    TestApp::start_driven(backend, |s| s.smtp_relay = Some("127.0.0.1:1".into())).await
}

both_stores!(
    start = closed_relay_app;
    tasks_reserve_credits_and_wait_for_their_time,
    bad_tasks_are_refused_with_their_codes,
    a_start_snapshots_recipients_and_settles_credits,
);
