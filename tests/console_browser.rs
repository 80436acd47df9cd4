//! The web console in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/e2e/console.mjs`). A customer with a delivered,
//! opened and clicked campaign logs in through its own login page on
//! another site (8.1), reads its dashboard and a task report, imports a
//! file on a list page, switches the language, sees every page labelled
//! in both languages; then a manager logs in on the built-in page and
//! sees the customer. No page may log a JavaScript error. Screenshots go to `target/e2e-shots/`, and the
//! dashboard's to `docs/console.png`.
//!
//! `scripts/test.sh` installs Chromium and playwright-core (into
//! `target/e2e`); `QUNFA_TEST_BROWSER=off` skips this test on purpose.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use common::smtp::{Act, ServerOptions, SmtpServer};
use common::*;
use mail_parser::MessageParser;

const ML: &str = "mloperate.php";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.0.0 Safari/537.36";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The customer's own site; the browser resolves it to 127.0.0.1, so the
/// login form really posts across sites.
const SHOP_HOST: &str = "shop.example";

fn browser_off() -> bool {
    std::env::var("QUNFA_TEST_BROWSER").is_ok_and(|v| v == "off")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn hit(app: &TestApp, path: &str) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .header("User-Agent", CHROME)
        .send()
        .await
        .expect("tracking hit");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{path}: {}",
        r.status()
    );
}

/// What the pages must show, as the script reads them.
struct Expected {
    task_id: String,
    list_id: String,
    import_list_id: String,
    credits: String,
}

/// A campaign to seven people at five providers: five delivered, two
/// refused; three opened, three clicked.
async fn campaign(app: &TestApp, sink: &SmtpServer) -> Expected {
    app.customer("acme", "pw", 1000).await;
    add_manager(app).await;
    add_sender_domain(app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    let t = app
        .api_post(
            "template.php",
            "acme",
            "pw",
            "do=add-tpl",
            &[
                ("name", "双十一促销"),
                ("subject", "{{ fullname }}，您好"),
                (
                    "content",
                    "<p>您好 {{ fullname }}</p><a href=\"https://shop.example/sale\">sale</a> \
                     <a href=\"https://shop.example/new\">new</a>",
                ),
            ],
        )
        .await;
    assert_eq!(t.code(), "success", "{}", t.text());
    for name in ["老客户", "导入"] {
        let l = app
            .api_post(
                ML,
                "acme",
                "pw",
                "do=maillist-add",
                &[("subject", name), ("status", "enabled")],
            )
            .await;
        assert_eq!(l.code(), "success", "{}", l.text());
    }
    let people = [
        "wang@qq.com;王伟",
        "li@163.com;李娜",
        "zhao@gmail.com;赵敏",
        "chen@outlook.com;陈静",
        "sun@dest.cn;孙强",
        "gone@qq.com;失联",
        "full@163.com;满箱",
    ];
    let added = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=ml-addr-add&list_id=1",
            &[("ml_addr", &people.join("\n"))],
        )
        .await;
    assert_eq!(added.code(), "success", "{}", added.text());
    sink.script("gone@qq.com", [Act::Refuse("550 5.1.1 User unknown")]);
    sink.script("full@163.com", [Act::Refuse("552 5.2.2 Mailbox full")]);
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_domain=acme.cn&send_account=news%40acme.cn&status=2&track_status=2",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let task_id = add.element("id").expect("task id");
    task_done(app, "acme", "pw", &task_id).await;

    // wang opens and clicks "sale" twice; li opens and clicks "new"; zhao
    // opens and clicks "sale".
    let received = sink.received();
    assert_eq!(received.len(), 5, "five messages accepted");
    for r in &received {
        let msg = MessageParser::default().parse(&r.data).expect("a message");
        let html = msg.body_html(0).expect("an HTML part").to_string();
        let (pixel, clicks) = (tracking_paths(&html, "o"), tracking_paths(&html, "c"));
        assert_eq!(clicks.len(), 2, "both links are tracked: {html}");
        let who = r.rcpt_to[0].as_str();
        let hits: &[&str] = match who {
            "wang@qq.com" => &[&pixel[0], &clicks[0], &clicks[0]],
            "li@163.com" => &[&pixel[0], &clicks[1]],
            "zhao@gmail.com" => &[&pixel[0], &clicks[0]],
            _ => &[],
        };
        for h in hits {
            hit(app, h).await;
        }
    }
    // The hits are written in batches: wait for all six.
    for n in 0.. {
        let o = app
            .api("track.php", "acme", "pw", &format!("do=overview&id={task_id}"))
            .await;
        if o.element("open_total").as_deref() == Some("3") && o.element("click_total").as_deref() == Some("4")
        {
            break;
        }
        assert!(n < 100, "the hits were not written within 10 s: {}", o.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let service = app.api("account.php", "acme", "pw", "do=service-info").await;
    Expected {
        task_id,
        list_id: "1".into(),
        import_list_id: "2".into(),
        credits: service.element("qty_available").expect("qty_available"),
    }
}

/// The customer's own site: its login page (the 8.1 form, posting to the
/// console) and the page its `errurl` names.
async fn customer_site(console: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the customer's site");
    let origin = format!("http://{SHOP_HOST}:{}", listener.local_addr().unwrap().port());
    let login = format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Acme 登录</title></head>
<body><h1>Acme 邮件营销</h1>
<form id="shop-login" action="{console}/sendstat/?module=base&action=login" method="post">
  <input type="hidden" name="errurl" value="{origin}/login-error.html" />
  <input type="text" name="username" />
  <input type="password" name="password" />
  <select name="user_type">
    <option value="">普通用户</option>
    <option value="agents">代理商</option>
    <option value="manager">管理员</option>
  </select>
  <input name="Submit" type="submit" value="提交" />
</form></body></html>
"#
    );
    let error = "<!doctype html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
                 <title>登录失败</title></head>\
                 <body><p id=\"shop-error\">用户名或密码错误</p></body></html>";
    let site = axum::Router::new()
        .route("/login.html", get(move || async move { Html(login) }))
        .route("/login-error.html", get(move || async move { Html(error) }));
    let server = tokio::spawn(async move {
        axum::serve(listener, site).await.ok();
    });
    (origin, server)
}

fn node_modules() -> PathBuf {
    repo().join("target/e2e/node_modules")
}

fn check_installed() {
    let missing: Vec<String> = [
        Path::new(CHROMIUM).to_path_buf(),
        node_modules().join("playwright-core"),
    ]
    .into_iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs {missing:?}: scripts/test.sh installs them \
         (or set QUNFA_TEST_BROWSER=off to skip this test on purpose)"
    );
}

/// One browser at a time: the machine may have two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_uses_the_console_in_chromium() {
    if browser_off() {
        eprintln!("QUNFA_TEST_BROWSER=off: the console's browser test skipped on purpose");
        return;
    }
    check_installed();
    let _one = BROWSER.lock().await;
    let sink = SmtpServer::start(ServerOptions::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = TestApp::start_with(Backend::Sqlite, move |s| {
        s.smtp_relay = Some(relay.clone());
        // The hits come right after delivery; none is a scanner's by time.
        s.scanner_window = Some("0s".into());
    })
    .await
    .expect("app");
    let expected = campaign(&app, &sink).await;
    let (shop, site) = customer_site(&app.base).await;

    let shots = repo().join("target/e2e-shots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let run = tokio::process::Command::new("node")
        .arg(repo().join("tests/e2e/console.mjs"))
        .env("QUNFA_E2E_MODULES", node_modules())
        .env("QUNFA_E2E_CHROMIUM", CHROMIUM)
        .env("QUNFA_E2E_APP", &app.base)
        .env("QUNFA_E2E_SHOP", &shop)
        .env("QUNFA_E2E_USER", "acme")
        .env("QUNFA_E2E_PASSWORD", "pw")
        .env("QUNFA_E2E_MANAGER", "boss")
        .env("QUNFA_E2E_MANAGER_PASSWORD", "bosspw")
        .env("QUNFA_E2E_CREDITS", &expected.credits)
        .env("QUNFA_E2E_SENT", "5")
        .env("QUNFA_E2E_FAILED", "2")
        .env("QUNFA_E2E_TASK", &expected.task_id)
        .env("QUNFA_E2E_LIST", &expected.list_id)
        .env("QUNFA_E2E_IMPORT_LIST", &expected.import_list_id)
        .env("QUNFA_E2E_SHOTS", &shots)
        .env("QUNFA_E2E_README_SHOT", repo().join("docs/console.png"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser script finishes within 3 minutes")
        .expect("node runs (Node 20 or later)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "tests/e2e/console.mjs failed: {}",
        out.status
    );

    // What the browser did is also in the store.
    let l = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=maillist-detail&id={}", expected.import_list_id),
        )
        .await;
    assert_eq!(l.element("count").as_deref(), Some("4"), "{}", l.text());
    site.abort();
    app.stop().await;
}

/// A customer's day in the console, on both stores, in English and in
/// Chinese: tests/e2e/day.mjs in Chromium, and what it did checked in the
/// store and at the SMTP server.
async fn a_customers_day_in_chromium(backend: Backend) {
    if browser_off() {
        eprintln!("QUNFA_TEST_BROWSER=off: the console's browser test skipped on purpose");
        return;
    }
    check_installed();
    let Some((app, sink)) = TestApp::start_relaying(backend, |s| {
        s.scanner_window = Some("0s".into());
    })
    .await
    else {
        return;
    };
    add_manager(&app).await;
    let _one = BROWSER.lock().await;
    let store = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let shots = repo().join("target/e2e-shots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    for (lang, user, domain, people) in [
        (
            "en",
            "autumn",
            "autumn.example",
            "amy@dest.cn;Amy Chen,bob@dest.cn;Bob Li,gone@dest.cn;Gone",
        ),
        (
            "zh",
            "qiuji",
            "qiuji.cn",
            "wang@dest.cn;王伟,li@dest.cn;李娜,gone2@dest.cn;失联",
        ),
    ] {
        let id = app.customer(user, "day-pw", 500).await;
        let a = app
            .api(
                "bs.php",
                "boss",
                "bosspw",
                &format!("do=domain-add&customer_id={id}&domain={domain}"),
            )
            .await;
        assert_eq!(a.code(), "success", "{}", a.text());
        let bounce = if lang == "en" {
            "gone@dest.cn"
        } else {
            "gone2@dest.cn"
        };
        sink.script(bounce, [Act::Refuse("550 5.1.1 User unknown")]);
        let test_to = format!("test-{lang}@dest.cn");
        let before = sink.received().len();
        let mut run = tokio::process::Command::new("node");
        run.arg(repo().join("tests/e2e/day.mjs"))
            .env("QUNFA_E2E_MODULES", node_modules())
            .env("QUNFA_E2E_CHROMIUM", CHROMIUM)
            .env("QUNFA_E2E_APP", &app.base)
            .env("QUNFA_E2E_SHOTS", &shots)
            .env("QUNFA_E2E_SHOT_PREFIX", format!("day-{store}-{lang}"))
            .env("QUNFA_E2E_USER", user)
            .env("QUNFA_E2E_PASSWORD", "day-pw")
            .env("QUNFA_E2E_LANG", lang)
            .env("QUNFA_E2E_DOMAIN", domain)
            .env("QUNFA_E2E_TEST_TO", &test_to)
            .env("QUNFA_E2E_BOUNCE", bounce)
            .env("QUNFA_E2E_PEOPLE", people)
            .kill_on_drop(true);
        if backend == Backend::Sqlite && lang == "en" {
            run.env("QUNFA_E2E_README_SHOT", repo().join("docs/console-template.png"));
        }
        let out = tokio::time::timeout(Duration::from_secs(240), run.output())
            .await
            .expect("the day finishes within 4 minutes")
            .expect("node runs (Node 20 or later)");
        println!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "tests/e2e/day.mjs ({store}, {lang}) failed: {}",
            out.status
        );

        // The test message reached its one address, signed, with the
        // attachment; the task's reached the others.
        let got = sink.received();
        let tests: Vec<_> = got[before..]
            .iter()
            .filter(|r| r.rcpt_to == [test_to.clone()])
            .collect();
        assert_eq!(tests.len(), 1, "one test message to {test_to}");
        let msg = MessageParser::default().parse(&tests[0].data).expect("a message");
        assert!(msg.header("DKIM-Signature").is_some());
        assert_eq!(msg.attachment_count(), 1, "the attachment goes with the test");
        let html = msg.body_html(0).expect("an HTML part").to_string();
        assert!(html.contains("https://shop.example/autumn"), "{html}");
        let delivered = got[before..]
            .iter()
            .filter(|r| r.rcpt_to != [test_to.clone()])
            .count();
        assert_eq!(delivered, 2, "the task's messages that were accepted");
        // The lift is in the store: the address is no longer suppressed.
        let task = app.api("task.php", user, "day-pw", "do=task-list").await;
        assert_eq!(
            task.element("send_status").as_deref(),
            Some("3"),
            "{}",
            task.text()
        );
        let service = app.api("account.php", user, "day-pw", "do=service-info").await;
        assert_eq!(
            service.element("qty_available").as_deref(),
            Some("498"),
            "two credits spent"
        );
    }
    app.stop().await;
}

both_stores!(by_backend; a_customers_day_in_chromium);
