//! The web console over plain HTTP: the 8.1 login and its errurl rules
//! (D-10, H-12), sessions, CSRF, roles and isolation, languages. The pages
//! in a real browser: tests/console_browser.rs.

mod common;

use common::*;

const LOGIN: &str = "/sendstat/?module=base&action=login";

async fn start(backend: Backend) -> Option<TestApp> {
    let app = TestApp::start_with(backend, |s| {
        s.errurl_hosts = Some("partner.example".into());
    })
    .await?;
    app.customer("acme", "pw", 100).await;
    app.customer("other", "pw2", 5).await;
    add_manager(&app).await;
    app.admin_ok(&["agent", "add", "--username", "reseller", "--password", "apw"])
        .await;
    Some(app)
}

/// Posts the login form with extra headers; the raw answer.
async fn login(app: &TestApp, form: &[(&str, &str)], headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.post(format!("{}{LOGIN}", app.base)).form(form);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.send().await.unwrap()
}

/// Logs in and gives the session cookie (`name=value`).
async fn session(app: &TestApp, user: &str, password: &str, user_type: &str) -> String {
    let r = login(
        app,
        &[
            ("username", user),
            ("password", password),
            ("user_type", user_type),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status(), 302, "login of {user}");
    assert_eq!(r.headers()["location"], "/sendstat/");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    assert!(!set.contains("Secure"), "not over plain http: {set}");
    set.split(';').next().unwrap().to_string()
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> (u16, String) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The CSRF token of a logged-in page's forms.
fn csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a form with a token") + 19;
    html[i..i + 64].to_string()
}

async fn errurl_goes_only_to_the_posting_site(app: TestApp) {
    let wrong = [
        ("username", "acme"),
        ("password", "nope"),
        ("user_type", ""),
        ("errurl", "http://shop.example/login.html?e=1"),
    ];
    // From the page's own host (Origin, or Referer without Origin): back there, unchanged.
    let r = login(&app, &wrong, &[("Origin", "http://shop.example")]).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://shop.example/login.html?e=1");
    let r = login(&app, &wrong, &[("Referer", "http://SHOP.example/login.html")]).await;
    assert_eq!(r.status(), 302);
    // Another site's page may not send the browser there: our login page, with the error.
    let r = login(&app, &wrong, &[("Origin", "http://evil.example")]).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-error\""), "{body}");
    let r = login(&app, &wrong, &[]).await;
    assert_eq!(
        r.status(),
        200,
        "no Origin or Referer: only the allow-list counts"
    );
    // A port is part of the host.
    let r = login(&app, &wrong, &[("Origin", "http://shop.example:8080")]).await;
    assert_eq!(r.status(), 200);
    // The allow-list (QUNFA_ERRURL_HOSTS) works from anywhere.
    let partner = [
        ("username", "acme"),
        ("password", "nope"),
        ("errurl", "https://partner.example/err"),
    ];
    let r = login(&app, &partner, &[("Origin", "http://elsewhere.example")]).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "https://partner.example/err");
    // Not an absolute http(s) URL: ignored.
    let script = [
        ("username", "acme"),
        ("password", "nope"),
        ("errurl", "javascript:alert(1)"),
    ];
    let r = login(&app, &script, &[("Origin", "http://shop.example")]).await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn only_the_plain_password_of_the_named_kind_logs_in(app: TestApp) {
    let fails = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(a, b)| (*a, b.as_str())).collect();
            login(app, &form, &[]).await.status().as_u16()
        }
    };
    // The md5 digest is the API's secret, never the console's (C-8.1a).
    assert_eq!(
        fails(vec![("username", "acme".into()), ("password", md5_hex("pw"))]).await,
        200
    );
    // A customer's credentials under another user_type are a failure.
    assert_eq!(
        fails(vec![
            ("username", "acme".into()),
            ("password", "pw".into()),
            ("user_type", "manager".into())
        ])
        .await,
        200
    );
    assert_eq!(
        fails(vec![
            ("username", "acme".into()),
            ("password", "pw".into()),
            ("user_type", "root".into())
        ])
        .await,
        200
    );
    // User names match case-insensitively, as in the API.
    session(&app, "ACME", "pw", "").await;
    session(&app, "reseller", "apw", "agents").await;
    session(&app, "boss", "bosspw", "manager").await;
    app.stop().await;
}

async fn a_session_shows_the_customers_own_console(app: TestApp) {
    let me = session(&app, "acme", "pw", "").await;
    let (status, home) = page(&app, "/sendstat/", &me).await;
    assert_eq!(status, 200);
    assert!(home.contains("id=\"username\">acme<"), "{home}");
    assert!(home.contains("id=\"credits\">100<"), "{home}");
    assert_eq!(home.matches("<svg class=\"chart\"").count(), 3, "three charts");
    assert!(
        home.contains("剩余群发量"),
        "labels in the default language: {home}"
    );
    for path in [
        "/sendstat/tasks",
        "/sendstat/lists",
        "/sendstat/templates",
        "/sendstat/domains",
    ] {
        let (status, _) = page(&app, path, &me).await;
        assert_eq!(status, 200, "{path}");
    }
    let (_, json) = page(&app, "/sendstat/progress.json", &me).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["tasks"].is_array() && v["imports"].is_array(), "{json}");

    // Forms need the session's token.
    let (_, lists) = page(&app, "/sendstat/lists", &me).await;
    let token = csrf(&lists);
    let post = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let me = me.clone();
        async move {
            app.client
                .post(format!("{}/sendstat/lists", app.base))
                .header("Cookie", me)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(post(vec![("subject", "Forged".into())]).await.status(), 403);
    assert_eq!(
        post(vec![("subject", "Forged".into()), ("csrf", "0".repeat(64))])
            .await
            .status(),
        403
    );
    let made = post(vec![
        ("subject", "Made in console".into()),
        ("csrf", token.clone()),
    ])
    .await;
    assert_eq!(
        made.status(),
        302,
        "back to the page, so a reload sends nothing again"
    );
    assert_eq!(made.headers()["location"], "/sendstat/lists?ok=created");
    let api = app.api("mloperate.php", "acme", "pw", "do=maillist-list").await;
    assert!(api.text().contains("Made in console"), "{}", api.text());
    // The same rules as the API: an empty name is refused with the API's message.
    let refused = post(vec![("subject", "".into()), ("csrf", token.clone())]).await;
    assert!(refused.text().await.unwrap().contains("class=\"flash error\""));

    // Another customer's things are not there.
    let theirs = session(&app, "other", "pw2", "").await;
    let (status, _) = page(&app, "/sendstat/lists/1", &theirs).await;
    assert_eq!(status, 404);
    let (status, _) = page(&app, "/sendstat/lists/1", &me).await;
    assert_eq!(status, 200);

    // Logging out ends the session.
    let out = app
        .client
        .post(format!("{}/sendstat/logout", app.base))
        .header("Cookie", &me)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = page(&app, "/sendstat/tasks", &me).await;
    assert_eq!(status, 302, "back to the login page");
    app.stop().await;
}

async fn agents_and_managers_see_their_customers(app: TestApp) {
    app.admin_ok(&[
        "customer",
        "add",
        "--username",
        "sold",
        "--password",
        "x",
        "--agent",
        "reseller",
    ])
    .await;
    let agent = session(&app, "reseller", "apw", "agents").await;
    let (status, home) = page(&app, "/sendstat/", &agent).await;
    assert_eq!(status, 200);
    assert!(home.contains(">sold<"), "{home}");
    assert!(!home.contains(">acme<"), "an agent sees only its own customers");
    let (status, _) = page(&app, "/sendstat/tasks", &agent).await;
    assert_eq!(status, 403);
    let boss = session(&app, "boss", "bosspw", "manager").await;
    let (_, home) = page(&app, "/sendstat/", &boss).await;
    for name in ["acme", "other", "sold"] {
        assert!(home.contains(&format!(">{name}<")), "{name}: {home}");
    }
    assert!(home.contains("<svg class=\"chart\""));
    let (status, _) = page(&app, "/sendstat/domains", &boss).await;
    assert_eq!(status, 200);
    app.stop().await;
}

async fn the_language_follows_the_browser_and_the_switch(app: TestApp) {
    let get = |lang: Option<&'static str>, query: &'static str, cookie: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.client.get(format!("{}/sendstat/{query}", app.base));
            if let Some(l) = lang {
                req = req.header("Accept-Language", l);
            }
            if let Some(c) = cookie {
                req = req.header("Cookie", c);
            }
            req.send().await.unwrap()
        }
    };
    let en = get(Some("en-US,en;q=0.9"), "", None).await.text().await.unwrap();
    assert!(en.contains("Log in") && en.contains("lang=\"en\""), "{en}");
    let zh = get(Some("zh-CN,zh;q=0.9"), "", None).await.text().await.unwrap();
    assert!(zh.contains("登录") && zh.contains("lang=\"zh-CN\""));
    let switched = get(Some("zh-CN"), "?lang=en", None).await;
    let cookie = switched.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(cookie, "qunfa_lang=en");
    let kept = get(Some("zh-CN"), "", Some(cookie)).await.text().await.unwrap();
    assert!(kept.contains("Log in"), "the switch wins over the browser");
    app.stop().await;
}

async fn a_waiting_task_is_cancelled_from_its_report(app: TestApp) {
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    app.api_post(
        "template.php",
        "acme",
        "pw",
        "do=add-tpl",
        &[("name", "t"), ("subject", "s"), ("content", "c")],
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
    app.api_post(
        "mloperate.php",
        "acme",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", "a@x.cn\nb@x.cn\nc@x.cn")],
    )
    .await;
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news%40acme.cn&status=1&time=2099-01-01%2010:00",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let credits = || async {
        app.api("account.php", "acme", "pw", "do=service-info")
            .await
            .element("qty_available")
    };
    assert_eq!(credits().await.as_deref(), Some("97"));
    let me = session(&app, "acme", "pw", "").await;
    let (_, report) = page(&app, "/sendstat/tasks/1", &me).await;
    assert!(report.contains("id=\"task-cancel\""), "{report}");
    assert!(
        !report.contains("id=\"task-resume\""),
        "a waiting task can't be resumed"
    );
    let done = app
        .client
        .post(format!("{}/sendstat/tasks/1", app.base))
        .header("Cookie", &me)
        .form(&[("csrf", csrf(&report).as_str()), ("what", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(done.headers()["location"], "/sendstat/tasks/1?ok=done");
    let list = app.api("task.php", "acme", "pw", "do=task-list&id=1").await;
    assert_eq!(list.element("send_status").as_deref(), Some("-3"));
    assert_eq!(
        credits().await.as_deref(),
        Some("100"),
        "the reservation comes back"
    );
    app.stop().await;
}

both_stores!(start = start;
    a_waiting_task_is_cancelled_from_its_report,
    errurl_goes_only_to_the_posting_site,
    only_the_plain_password_of_the_named_kind_logs_in,
    a_session_shows_the_customers_own_console,
    agents_and_managers_see_their_customers,
    the_language_follows_the_browser_and_the_switch,
);
