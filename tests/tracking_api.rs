//! Tracking and every report, checked the way a customer would: a campaign
//! with known outcomes goes out through a real SMTP server; then the
//! links of the delivered messages are hit (pixel, each link, HEAD probes,
//! a proxy prefetch, tampered tokens, the unsubscribe page and one-click)
//! and every figure of 2.2–2.5 and 3.1–3.5 is checked against what was done.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::smtp::{Act, SmtpServer};
use common::*;
use mail_parser::MessageParser;

const TASK: &str = "task.php";
const ML: &str = "mloperate.php";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

/// The tracking URLs one delivered message carries, as paths on the app.
#[derive(Debug, Default)]
struct Links {
    pixel: String,
    clicks: Vec<String>,
    unsubscribe: String,
}

async fn delivered_campaign(app: &TestApp, sink: &SmtpServer) -> (String, HashMap<String, Links>) {
    app.customer("acme", "pw", 100).await;
    add_manager(app).await;
    add_sender_domain(app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    let t = app
        .api_post(
            "template.php",
            "acme",
            "pw",
            "do=add-tpl",
            &[
                ("name", "promo"),
                ("subject", "Hello {{ fullname }}"),
                (
                    "content",
                    "<p>Hi</p><a href=\"https://shop.example/a?x=1&amp;y=2\">a</a> \
                     <a href=\"https://shop.example/b\">b</a>",
                ),
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
    let people = ["ok1", "ok2", "ok3", "ok4", "gone", "full", "spam"];
    let lines: Vec<String> = people.iter().map(|p| format!("{p}@dest.cn;{p}")).collect();
    let added = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=ml-addr-add&list_id=1",
            &[("ml_addr", &lines.join("\n"))],
        )
        .await;
    assert_eq!(added.code(), "success", "{}", added.text());
    sink.script("gone@dest.cn", [Act::Refuse("550 5.1.1 User unknown")]);
    sink.script("full@dest.cn", [Act::Refuse("552 5.2.2 Mailbox full")]);
    sink.script("spam@dest.cn", [Act::Refuse("554 5.7.1 Rejected as spam")]);
    let add = app
        .api(
            TASK,
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_domain=acme.cn&send_account=news%40acme.cn&status=2&track_status=2&subs_link=1",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let id = add.element("id").unwrap();
    task_done(app, "acme", "pw", &id).await;

    let mut links = HashMap::new();
    for r in sink.received() {
        let msg = MessageParser::default().parse(&r.data).unwrap();
        let html = msg.body_html(0).unwrap().to_string();
        let who = r.rcpt_to[0].split('@').next().unwrap().to_string();
        let unsubscribe = msg
            .header_raw("List-Unsubscribe")
            .map(|h| tracking_paths(h, "u"))
            .unwrap_or_default();
        let l = Links {
            pixel: tracking_paths(&html, "o").pop().expect("a pixel"),
            clicks: tracking_paths(&html, "c"),
            unsubscribe: unsubscribe.first().cloned().expect("a List-Unsubscribe link"),
        };
        assert_eq!(l.clicks.len(), 2, "both links are tracked: {html}");
        links.insert(who, l);
    }
    assert_eq!(links.len(), 4, "four messages accepted");
    (id, links)
}

async fn hit(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    ua: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("User-Agent", ua);
    if let Some(ip) = forwarded {
        req = req.header("X-Forwarded-For", ip);
    }
    req.send().await.unwrap()
}

async fn get(app: &TestApp, path: &str, ua: &str, forwarded: Option<&str>) -> reqwest::Response {
    hit(app, reqwest::Method::GET, path, ua, forwarded).await
}

/// The overview once the writer has written `opens` opens.
async fn overview_after(app: &TestApp, id: &str, opens: &str) -> Answer {
    for _ in 0..100 {
        let o = app
            .api("track.php", "acme", "pw", &format!("do=overview&id={id}"))
            .await;
        if o.element("open_total").as_deref() == Some(opens) {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hits were not written within 10 s");
}

fn users(a: &Answer) -> Vec<HashMap<String, String>> {
    let t = a.text();
    t.split("<user>")
        .skip(1)
        .map(|u| {
            let one = Answer {
                status: 200,
                content_type: String::new(),
                headers: Default::default(),
                body: u.as_bytes().to_vec(),
            };
            [
                "email_id",
                "email",
                "browser",
                "os",
                "device",
                "addr",
                "ip_first",
                "ip_last",
                "open_total",
                "click_total",
                "open_first",
                "click_first",
            ]
            .iter()
            .map(|k| (k.to_string(), one.element(k).unwrap_or_default()))
            .collect()
        })
        .collect()
}

async fn start(backend: Backend) -> Option<(TestApp, SmtpServer)> {
    TestApp::start_relaying(backend, |s| {
        // The hits below come right after delivery; none is a scanner's by time.
        s.scanner_window = Some("0s".into());
        s.trusted_proxies = Some("127.0.0.1".into());
    })
    .await
}

async fn every_report_agrees_with_the_campaign(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let (id, links) = delivered_campaign(&app, &sink).await;
    let l = |who: &str| &links[who];

    // A changed token counts nothing and answers 404, on every path.
    let mut bad = l("ok1").pixel.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(get(&app, &bad, CHROME, None).await.status(), 404);
    let open_as_click = l("ok1").pixel.replace("/t/o/", "/t/c/");
    assert_eq!(get(&app, &open_as_click, CHROME, None).await.status(), 404);
    assert_eq!(get(&app, "/t/c/notatoken", CHROME, None).await.status(), 404);

    // ok1: two opens from two addresses (through a trusted proxy), three clicks.
    let pixel = get(&app, &l("ok1").pixel, CHROME, Some("203.0.113.7")).await;
    assert_eq!(pixel.status(), 200);
    assert_eq!(pixel.headers()["content-type"], "image/gif");
    assert!(
        pixel.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-cache")
    );
    assert_eq!(pixel.bytes().await.unwrap().len(), 43);
    get(&app, &l("ok1").pixel, CHROME, Some("198.51.100.9")).await;
    let click = get(&app, &l("ok1").clicks[0], CHROME, None).await;
    assert_eq!(click.status(), 302);
    assert_eq!(click.headers()["location"], "https://shop.example/a?x=1&y=2");
    get(&app, &l("ok1").clicks[0], CHROME, None).await;
    let b = get(&app, &l("ok1").clicks[1], CHROME, None).await;
    assert_eq!(b.headers()["location"], "https://shop.example/b");
    // ok2: one open and one click on a phone.
    get(&app, &l("ok2").pixel, IPHONE, None).await;
    get(&app, &l("ok2").clicks[0], IPHONE, None).await;
    // ok3: images blocked, one click.
    get(&app, &l("ok3").clicks[1], CHROME, None).await;
    // ok4: only machines: Apple's prefetch and a HEAD probe of a link.
    get(&app, &l("ok4").pixel, "Mozilla/5.0", None).await;
    let head = hit(&app, reqwest::Method::HEAD, &l("ok4").clicks[0], CHROME, None).await;
    assert_eq!(head.status(), 302);

    // 3.1
    let o = overview_after(&app, &id, "4").await;
    let e = |n: &str| o.element(n).unwrap_or_else(|| panic!("{n} in {}", o.text()));
    assert_eq!(e("track_id"), id);
    assert_eq!(e("task_id"), id);
    assert_eq!(e("send_count"), "7");
    assert_eq!(e("real_send_count"), "4");
    assert_eq!(e("error_send_count"), "3");
    assert_eq!(e("open_unique"), "2", "ok4's prefetch is a machine's");
    assert_eq!(e("open_total"), "4");
    assert_eq!(e("click_unique"), "3", "ok4's HEAD probe is a machine's");
    assert_eq!(e("click_total"), "6");
    assert_eq!(e("open_ratio"), "50.00");
    assert_eq!(e("click_ratio"), "75.00");
    assert_ne!(e("open_first"), "0000-00-00 00:00:00");
    assert_eq!(o.elements("link_id"), vec!["1", "2"]);
    let texts = o.text();
    assert!(
        texts.contains("<link>https://shop.example/a?x=1&amp;y=2</link>"),
        "{texts}"
    );
    // link 1: ok1 ×2, ok2, ok4's probe; link 2: ok1, ok3.
    assert_eq!(o.elements("click_unique")[1..], ["2", "2"]);
    assert_eq!(o.elements("click_total")[1..], ["4", "2"]);

    // 3.2: everyone with a hit, by email_id; ok3 without an open.
    let d = app
        .api("track.php", "acme", "pw", &format!("do=open-detail&id={id}"))
        .await;
    let us = users(&d);
    let emails: Vec<&str> = us.iter().map(|u| u["email"].as_str()).collect();
    assert_eq!(
        emails,
        ["ok1@dest.cn", "ok2@dest.cn", "ok3@dest.cn", "ok4@dest.cn"],
        "{}",
        d.text()
    );
    let ok1 = &us[0];
    assert_eq!(ok1["browser"], "Chrome 120");
    assert_eq!(ok1["os"], "Windows 10");
    assert_eq!(ok1["device"], "desktop");
    assert_eq!(ok1["ip_first"], "203.0.113.7");
    assert_eq!(
        ok1["ip_last"], "127.0.0.1",
        "the last hit came without X-Forwarded-For"
    );
    assert_eq!(
        (ok1["open_total"].as_str(), ok1["click_total"].as_str()),
        ("2", "3")
    );
    assert_eq!(
        (us[1]["os"].as_str(), us[1]["device"].as_str()),
        ("iOS", "mobile")
    );
    assert_eq!(us[2]["open_total"], "0");
    assert_eq!(us[2]["open_first"], "0000-00-00 00:00:00");
    assert_ne!(us[2]["click_first"], "0000-00-00 00:00:00");
    assert_eq!(us[3]["browser"], "Apple Mail Privacy Protection");
    let d_text = d.text();
    assert!(d_text.find("<os>").unwrap() < d_text.find("<device>").unwrap());
    assert!(d_text.find("<addr>").unwrap() < d_text.find("<ip_first>").unwrap());

    // 3.3, all links and one.
    let c = app
        .api("track.php", "acme", "pw", &format!("do=click-detail&id={id}"))
        .await;
    assert_eq!(c.elements("click").len(), 5, "{}", c.text());
    let c2 = app
        .api(
            "track.php",
            "acme",
            "pw",
            &format!("do=click-detail&id={id}&link_id=2"),
        )
        .await;
    assert_eq!(c2.elements("email"), ["ok1@dest.cn", "ok3@dest.cn"]);
    assert_eq!(
        c2.elements("link"),
        ["https://shop.example/b", "https://shop.example/b"]
    );
    let missing = app
        .api(
            "track.php",
            "acme",
            "pw",
            &format!("do=click-detail&id={id}&link_id=99"),
        )
        .await;
    assert_eq!(missing.code(), "not_found");

    // 3.5, and `ident` wins over `id`.
    let ident = app
        .api(TASK, "acme", "pw", &format!("do=task-list&id={id}"))
        .await
        .element("sn")
        .unwrap();
    let s = app
        .api(
            "track.php",
            "acme",
            "pw",
            &format!("do=link-stat&id=999999&ident={ident}&link_id=1"),
        )
        .await;
    assert_eq!(s.elements("click_total"), ["4"], "{}", s.text());
    assert_eq!(s.elements("click_unique"), ["2"]);
    let none = app
        .api("track.php", "acme", "pw", "do=link-stat&ident=nope")
        .await;
    assert_eq!(none.code(), "not_found");
    assert_eq!(
        app.api("track.php", "acme", "pw", "do=overview").await.code(),
        "missing_param"
    );

    // 3.4
    let export = |q: String| {
        let app = &app;
        async move {
            let a = app.api("trackexport.php", "acme", "pw", &q).await;
            a.text().lines().map(str::to_string).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        export(format!("track_id={id}")).await,
        ["ok1@dest.cn", "ok2@dest.cn", "ok3@dest.cn", "ok4@dest.cn"]
    );
    assert_eq!(
        export(format!("track_id={id}&is_click=1")).await,
        ["ok1@dest.cn", "ok2@dest.cn", "ok3@dest.cn"]
    );
    assert_eq!(
        export(format!("track_id={id}&link_id=1")).await,
        ["ok1@dest.cn", "ok2@dest.cn"]
    );
    let ok3_id = &us[2]["email_id"];
    assert_eq!(
        export(format!("track_id={id}&email_id={ok3_id}")).await,
        ["ok3@dest.cn"]
    );
    assert_eq!(
        app.api("trackexport.php", "acme", "pw", "").await.code(),
        "missing_param"
    );

    // Unsubscribe: GET asks, one-click POST acts; 4.7 shows it; later sends skip it.
    let page = get(&app, &l("ok2").unsubscribe, CHROME, None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\"") && html.contains("Unsubscribe"),
        "{html}"
    );
    let one_click = app
        .client
        .post(format!("{}{}", app.base, l("ok2").unsubscribe))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    let unsubs = app.api(ML, "acme", "pw", "do=unsubscribe-export&id=1").await;
    assert!(unsubs.text().contains("ok2@dest.cn"), "{}", unsubs.text());
    let left = app.api(ML, "acme", "pw", "do=ml-addr-list&list_id=1").await;
    assert!(!left.text().contains("ok2@dest.cn"), "{}", left.text());

    // Chapter 2, for today.
    let today = app.app().clock.day_of(app.app().clock.now());
    let st = app
        .api("statistic.php", "acme", "pw", &format!("date={today}"))
        .await;
    let s = |n: &str| st.element(n).unwrap_or_else(|| panic!("{n} in {}", st.text()));
    assert_eq!(s("date"), today);
    for (name, want) in [
        ("ws_qty", "7"),
        ("ws_error", "3"),
        ("ws_count", "7"),
        ("invalid_addr", "0"),
        ("format_error", "0"),
        ("send_count", "7"),
        ("deduc_count", "7"),
        ("actual_send", "4"),
        ("send_error", "3"),
        ("actual_deduc", "4"),
    ] {
        assert_eq!(s(name), want, "{name}");
    }
    let quiet = app.api("statistic.php", "acme", "pw", "date=2001-01-01").await;
    assert_eq!(quiet.element("actual_send").as_deref(), Some("0"));
    assert_eq!(
        app.api("statistic.php", "acme", "pw", "").await.code(),
        "missing_param"
    );
    assert_eq!(
        app.api("statistic.php", "acme", "pw", "date=2001-13-01")
            .await
            .code(),
        "invalid_param"
    );

    // 2.3
    let fail = |q: String| {
        let app = &app;
        async move { app.api("failexport.php", "acme", "pw", &q).await }
    };
    assert_eq!(
        fail(format!("date={today}&type=1&task_id={id}")).await.text(),
        "gone@dest.cn\n"
    );
    assert_eq!(
        fail(format!("date={today}&type=over_quota&task_ident={ident}"))
            .await
            .text(),
        "full@dest.cn\n"
    );
    assert_eq!(
        fail(format!("date={today}&type=user_reject")).await.code(),
        "missing_param"
    );
    assert_eq!(fail(format!("date={today}&type=8")).await.text(), "");
    assert_eq!(
        fail(format!("date={today}&type=bogus")).await.code(),
        "invalid_param"
    );
    assert_eq!(
        fail(format!("date={today}&type=1&task_id=999999")).await.code(),
        "not_found"
    );
    let json = fail(format!("date={today}&type=all&out_type=json")).await;
    let rows: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    let mut got: Vec<(String, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_string(),
                r["type"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("full@dest.cn".to_string(), 2),
            ("gone@dest.cn".to_string(), 1),
            ("spam@dest.cn".to_string(), 3)
        ]
    );
    let empty = fail("date=2001-01-01&type=all&out_type=json".to_string()).await;
    assert_eq!(empty.text(), "[]");
    let all = app
        .api(
            "failexportall.php",
            "acme",
            "pw",
            &format!("date={today}&date_end={today}&out_type=xml"),
        )
        .await;
    assert_eq!(all.elements("recipient").len(), 3, "{}", all.text());
    assert_eq!(all.elements("task_id"), [id.as_str(), id.as_str(), id.as_str()]);

    // 2.4
    let st = app.api("stask.php", "acme", "pw", &format!("date={today}")).await;
    let t = |n: &str| st.element(n).unwrap_or_else(|| panic!("{n} in {}", st.text()));
    for (name, want) in [
        ("task_id", id.as_str()),
        ("task_date", today.as_str()),
        ("task_ident", ident.as_str()),
        ("total", "7"),
        ("failed", "3"),
        ("success", "4"),
        ("actual", "4"),
        ("email_not_exist", "1"),
        ("over_quota", "1"),
        ("user_reject", "1"),
        ("totalsum", "7"),
        ("invalid", "0"),
        ("rubbish", "0"),
    ] {
        assert_eq!(t(name), want, "{name}");
    }
    assert_eq!(
        app.api("stask.php", "acme", "pw", "ident=nope")
            .await
            .text()
            .matches("<task>")
            .count(),
        0
    );
    assert_eq!(
        app.api("stask.php", "acme", "pw", "").await.code(),
        "missing_param"
    );

    // 2.5, against the credits: 7 reserved, 4 charged, 96 left.
    let de = app
        .api("deduction.php", "acme", "pw", &format!("date={today}"))
        .await;
    assert_eq!(de.elements("send_num"), ["7", "4"], "{}", de.text());
    assert_eq!(de.elements("total"), ["7", "4"]);
    let service = app.api("account.php", "acme", "pw", "do=service-info").await;
    assert_eq!(service.element("qty_available").as_deref(), Some("96"));
    assert_eq!(
        app.api("deduction.php", "acme", "pw", "date=2001-01-01")
            .await
            .text()
            .matches("<list>")
            .count(),
        0
    );

    // The operator's view: outcomes by class, hits, and an empty queue.
    let m = app.get("/metrics").await.text();
    assert!(
        m.lines().any(|l| l.starts_with("messages_total{")
            && l.contains("outcome=\"failed\"")
            && l.contains("class=\"not_exist\"")),
        "{m}"
    );
    assert!(m.lines().any(|l| l.starts_with("tracking_hits_total ")), "{m}");
    assert!(m.lines().any(|l| l == "delivery_queue_depth 0"), "{m}");

    // Another customer sees none of it.
    app.customer("other", "pw", 10).await;
    assert_eq!(
        app.api("track.php", "other", "pw", &format!("do=overview&id={id}"))
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        app.api("trackexport.php", "other", "pw", &format!("track_id={id}"))
            .await
            .code(),
        "not_found"
    );
    let theirs = app
        .api("stask.php", "other", "pw", &format!("date={today}"))
        .await;
    assert_eq!(theirs.text().matches("<task>").count(), 0);
    app.stop().await;
}

/// Hits within QUNFA_SCANNER_WINDOW of delivery are a scanner's: counted
/// in the totals, never unique; and none is lost when the server stops.
async fn early_hits_are_scanners_and_none_is_lost_on_stop(backend: Backend) {
    let Some((mut app, sink)) =
        TestApp::start_relaying(backend, |s| s.scanner_window = Some("1h".into())).await
    else {
        return;
    };
    let (id, links) = delivered_campaign(&app, &sink).await;
    for _ in 0..25 {
        get(&app, &links["ok1"].pixel, CHROME, None).await;
        get(&app, &links["ok1"].clicks[0], CHROME, None).await;
    }
    // Stop at once: the queued hits are written before the process ends.
    app.restart().await;
    let o = app
        .api("track.php", "acme", "pw", &format!("do=overview&id={id}"))
        .await;
    assert_eq!(o.element("open_total").as_deref(), Some("25"), "{}", o.text());
    assert_eq!(o.element("click_total").as_deref(), Some("25"));
    assert_eq!(o.element("open_unique").as_deref(), Some("0"));
    assert_eq!(o.element("click_unique").as_deref(), Some("0"));
    app.stop().await;
}

mod every_report {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        every_report_agrees_with_the_campaign(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        every_report_agrees_with_the_campaign(Backend::Postgres).await;
    }
}

mod scanners_and_shutdown {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        early_hits_are_scanners_and_none_is_lost_on_stop(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        early_hits_are_scanners_and_none_is_lost_on_stop(Backend::Postgres).await;
    }
}
