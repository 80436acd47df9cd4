//! The web console over plain HTTP: the 8.1 login and its errurl rules
//! (D-10, H-12), sessions, CSRF, roles and isolation, languages. The pages
//! in a real browser: tests/console_browser.rs.

mod common;

use common::dns::{DnsServer, Record};
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
    assert_eq!(post(vec![("name", "Forged".into())]).await.status(), 403);
    assert_eq!(
        post(vec![("name", "Forged".into()), ("csrf", "0".repeat(64))])
            .await
            .status(),
        403
    );
    let made = post(vec![("name", "Made in console".into()), ("csrf", token.clone())]).await;
    assert_eq!(
        made.status(),
        302,
        "back to the page, so a reload sends nothing again"
    );
    assert_eq!(made.headers()["location"], "/sendstat/lists?ok=created");
    let api = app.api("mloperate.php", "acme", "pw", "do=maillist-list").await;
    assert!(api.text().contains("Made in console"), "{}", api.text());
    // The same rules as the API: an empty name is refused with the API's message.
    let refused = post(vec![("name", "".into()), ("csrf", token.clone())]).await;
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

/// A template without text: the preview shows the text its messages carry.
async fn a_template_preview_shows_the_derived_text_part(app: TestApp) {
    add_template(
        &app,
        "acme",
        &[
            ("name", "t"),
            ("subject", "Hi"),
            (
                "content",
                "<p>Dear {{ fullname }}, <a href=\"https://shop.example.com/\">shop</a></p>",
            ),
        ],
    )
    .await;
    let me = session(&app, "acme", "pw", "").await;
    let (status, html) = page(&app, "/sendstat/templates/1", &me).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<pre id=\"preview-text\">Dear 张三, shop &lt;https:"),
        "{html}"
    );
    assert!(html.contains("由 HTML 生成"), "{html}");
    app.stop().await;
}

/// A refused console action says why in the console's language, not in the
/// vendor API's codes.
async fn a_refused_task_is_explained_in_the_console_language(app: TestApp) {
    let small = app.customer("small", "pw", 5).await;
    add_sender_domain(&app, small, "small", "small.cn", &["news@small.cn"]).await;
    app.api_post(
        "template.php",
        "small",
        "pw",
        "do=add-tpl",
        &[("name", "t"), ("subject", "s"), ("content", "c")],
    )
    .await;
    app.api_post(
        "mloperate.php",
        "small",
        "pw",
        "do=maillist-add",
        &[("subject", "L"), ("status", "enabled")],
    )
    .await;
    let eight: Vec<String> = (1..=8).map(|i| format!("r{i}@x.cn")).collect();
    app.api_post(
        "mloperate.php",
        "small",
        "pw",
        "do=ml-addr-add&list_id=1",
        &[("ml_addr", eight.join("\n").as_str())],
    )
    .await;
    let me = session(&app, "small", "pw", "").await;
    for (lang, says) in [
        ("en", "Not enough credits: this needs 8 and 5 are available."),
        ("zh", "剩余群发量不足：需要 8，可用 5"),
    ] {
        let cookie = format!("{me}; qunfa_lang={lang}");
        let (_, tasks) = page(&app, "/sendstat/tasks", &cookie).await;
        let refused = app
            .client
            .post(format!("{}/sendstat/tasks", app.base))
            .header("Cookie", &cookie)
            .form(&[
                ("csrf", csrf(&tasks).as_str()),
                ("template", "1"),
                ("list", "1"),
                ("sender", "news@small.cn"),
                ("when", "now"),
                ("tracking", "none"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 200);
        let html = refused.text().await.unwrap();
        assert!(html.contains(says), "{lang}: {html}");
        assert!(!html.contains("quota_error"), "no vendor code: {html}");
    }
    let list = app.api("task.php", "small", "pw", "do=task-list").await;
    assert!(list.elements("task").is_empty(), "nothing was created");
    app.stop().await;
}

/// A list name over 100 characters is refused in the console's language,
/// next to the field, and no list is made.
async fn a_refused_list_is_explained_in_the_console_language(app: TestApp) {
    let me = session(&app, "acme", "pw", "").await;
    let long = "名".repeat(101);
    for (lang, says) in [
        ("en", "A list&#x27;s name is at most 100 characters."),
        ("zh", "分类名称最多 100 个字符"),
    ] {
        let cookie = format!("{me}; qunfa_lang={lang}");
        let (_, lists) = page(&app, "/sendstat/lists", &cookie).await;
        let refused = app
            .client
            .post(format!("{}/sendstat/lists", app.base))
            .header("Cookie", &cookie)
            .form(&[("csrf", csrf(&lists).as_str()), ("name", long.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 200);
        let html = refused.text().await.unwrap();
        assert!(html.contains("class=\"flash error\""), "{lang}: {html}");
        let next_to_field = format!("<p class=\"field-error\" id=\"e-name\">{says}</p>");
        assert!(html.contains(&next_to_field), "{lang}: {html}");
        assert!(
            html.contains(&format!("value=\"{long}\"")),
            "what was typed stays: {html}"
        );
    }
    let api = app.api("mloperate.php", "acme", "pw", "do=maillist-list").await;
    assert!(api.elements("id").is_empty(), "no list was made: {}", api.text());
    app.stop().await;
}

both_stores!(start = start;
    a_refused_list_is_explained_in_the_console_language,
    a_template_preview_shows_the_derived_text_part,
    a_refused_task_is_explained_in_the_console_language,
    a_waiting_task_is_cancelled_from_its_report,
    errurl_goes_only_to_the_posting_site,
    only_the_plain_password_of_the_named_kind_logs_in,
    a_session_shows_the_customers_own_console,
    agents_and_managers_see_their_customers,
    the_language_follows_the_browser_and_the_switch,
);

/// A logged-in browser of the console, over plain HTTP.
struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
}

impl<'a> Console<'a> {
    async fn login(app: &'a TestApp, user: &str, password: &str, user_type: &str, lang: &str) -> Console<'a> {
        let me = session(app, user, password, user_type).await;
        Console {
            app,
            cookie: format!("{me}; qunfa_lang={lang}"),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        page(self.app, path, &self.cookie).await
    }

    /// The form token of this session.
    async fn csrf(&self) -> String {
        let (_, html) = self.get("/sendstat/account").await;
        csrf(&html)
    }

    /// Posts a form with the session's token: the status and where it
    /// leads (a redirect) or the page (a refusal).
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.push(("csrf", &token));
        let r = self
            .app
            .client
            .post(format!("{}{path}", self.app.base))
            .header("Cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> (u16, String) {
        let token = self.csrf().await;
        let r = self
            .app
            .client
            .post(format!("{}{path}", self.app.base))
            .header("Cookie", &self.cookie)
            .multipart(form.text("csrf", token))
            .send()
            .await
            .unwrap();
        answer(r).await
    }
}

/// A redirect's target, or the page of any other answer.
async fn answer(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    if status == 302 {
        return (status, r.headers()["location"].to_str().unwrap().to_string());
    }
    (status, r.text().await.unwrap())
}

/// The text of the element with this id, tags left out.
fn by_id(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    let end = start + html[start..].find("</").unwrap();
    html[start..end].trim().to_string()
}

/// The id of the row of an address on a list page.
fn address_id(html: &str, email: &str) -> String {
    let at = html
        .find(&format!("class=\"email\">{email}<"))
        .unwrap_or_else(|| panic!("{email} is not listed: {html}"));
    let row = html[..at].rfind("data-address=\"").unwrap() + 14;
    html[row..].split('"').next().unwrap().to_string()
}

/// A customer writes a template with a link and an attachment, previews
/// it, sends a test to one address, duplicates it, and can't delete it
/// while a task uses it: the refusal names the task.
async fn a_customer_writes_previews_and_tests_a_template(backend: Backend) {
    let Some((app, sink)) = TestApp::start_relaying(backend, |_| {}).await else {
        return;
    };
    let acme = app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, acme, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_list(&app, "acme", &["li@163.com;李娜".to_string()]).await;
    let c = Console::login(&app, "acme", "pw", "", "en").await;
    let (status, editor) = c.get("/sendstat/templates/new").await;
    assert_eq!(status, 200);
    assert!(
        editor.contains("<textarea id=\"f-html\" name=\"html\" class=\"code\""),
        "{editor}"
    );

    // A broken placeholder is refused next to the HTML field.
    let broken = reqwest::multipart::Form::new()
        .text("name", "Sale")
        .text("subject", "Hi")
        .text("html", "<p>{{ nope }}</p>");
    let (status, page) = c.post_multipart("/sendstat/templates", broken).await;
    assert_eq!(status, 200);
    assert!(page.contains("<p class=\"field-error\" id=\"e-html\">"), "{page}");
    assert!(page.contains("unknown placeholder"), "{page}");

    let html = "<p>Hello {{ fullname }}</p><a href=\"https://shop.example/sale\">sale</a>";
    let form = reqwest::multipart::Form::new()
        .text("name", "Sale")
        .text("subject", "{{ fullname }}, the sale")
        .text("html", html)
        .text("text", "Hello {{ fullname }}")
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"%PDF-1.4 price list".to_vec())
                .file_name("prices.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let (status, to) = c.post_multipart("/sendstat/templates", form).await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/templates/1?ok=created"));
    let (_, editor) = c.get("/sendstat/templates/1").await;
    // The preview is rendered for the customer's own first address.
    assert_eq!(by_id(&editor, "preview-subject"), "李娜, the sale");
    assert!(editor.contains("sandbox=\"\" srcdoc=\""), "{editor}");
    assert!(
        editor.contains("https:&#x2f;&#x2f;shop.example&#x2f;sale"),
        "{editor}"
    );
    assert!(editor.contains("prices.pdf"), "{editor}");

    // The live preview answers what is typed, and says what is wrong.
    let (_, json) = c
        .post(
            "/sendstat/templates/preview",
            &[
                ("subject", "{{ email }}"),
                ("html", "<b>{{ var1 }}</b>"),
                ("text", ""),
            ],
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["subject"], "li@163.com", "{json}");
    let (_, json) = c
        .post(
            "/sendstat/templates/preview",
            &[("subject", "x"), ("html", "{% if %}")],
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["field"], "html", "{json}");

    // A test message goes to one address, built and signed as a task's.
    let (status, to) = c
        .post(
            "/sendstat/templates/1/test",
            &[("to", "li@163.com"), ("sender", "news@acme.cn")],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (302, "/sendstat/templates/1?ok=sent_test#test")
    );
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["li@163.com".to_string()]);
    let msg = mail_parser::MessageParser::default().parse(&got[0].data).unwrap();
    assert_eq!(msg.subject(), Some("李娜, the sale"));
    assert!(
        msg.header("DKIM-Signature").is_some(),
        "signed like a task's message"
    );
    assert_eq!(msg.attachment_count(), 1);
    let credits = app.api("account.php", "acme", "pw", "do=service-info").await;
    assert_eq!(
        credits.element("qty_available").as_deref(),
        Some("100"),
        "a test costs nothing"
    );
    // A refused one says so, next to the address.
    sink.script(
        "gone@163.com",
        [common::smtp::Act::Refuse("550 5.1.1 User unknown")],
    );
    let (status, page) = c
        .post(
            "/sendstat/templates/1/test",
            &[("to", "gone@163.com"), ("sender", "news@acme.cn")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"e-to\">The receiving server refused"),
        "{page}"
    );
    let (_, page) = c
        .post(
            "/sendstat/templates/1/test",
            &[("to", "not an address"), ("sender", "news@acme.cn")],
        )
        .await;
    assert!(
        page.contains("id=\"e-to\">This is not an e-mail address."),
        "{page}"
    );

    // Duplicated with its attachment.
    let (status, to) = c.post("/sendstat/templates/1/duplicate", &[]).await;
    assert_eq!(
        (status, to.as_str()),
        (302, "/sendstat/templates/2?ok=duplicated")
    );
    let (_, copy) = c.get("/sendstat/templates/2").await;
    assert!(
        copy.contains("Sale (copy)") && copy.contains("prices.pdf"),
        "{copy}"
    );

    // Held by a task: the refusal names it.
    let (status, _) = c
        .post(
            "/sendstat/tasks",
            &[
                ("template", "1"),
                ("list", "1"),
                ("sender", "news@acme.cn"),
                ("when", "hold"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let ident = app
        .api("task.php", "acme", "pw", "do=task-list&id=1")
        .await
        .element("sn")
        .expect("the task's batch");
    let (status, page) = c.post("/sendstat/templates/1/delete", &[]).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("A task that has not ended uses this template."),
        "{page}"
    );
    assert!(page.contains("(#1)") && page.contains(&ident), "{ident}: {page}");
    let (status, to) = c.post("/sendstat/templates/2/delete", &[]).await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/templates?ok=deleted"));
    // Attachments come and go.
    let (status, to) = c.post("/sendstat/templates/1/attachments/1/delete", &[]).await;
    assert_eq!(
        (status, to.as_str()),
        (302, "/sendstat/templates/1?ok=deleted#attachments")
    );
    app.stop().await;
}

/// A customer keeps its addresses by hand: adds, corrects and deletes one,
/// filters by keyword and state, pages by 50 with a page count, moves and
/// copies a selection, exports what it filtered.
async fn a_customer_keeps_its_addresses(app: TestApp) {
    let c = Console::login(&app, "acme", "pw", "", "en").await;
    for name in ["Customers", "Prospects"] {
        let (status, _) = c.post("/sendstat/lists", &[("name", name)]).await;
        assert_eq!(status, 302);
    }
    let (status, to) = c
        .post(
            "/sendstat/lists/1/addresses",
            &[("email", "wang@qq.com"), ("fullname", "王伟"), ("var1", "VIP")],
        )
        .await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/lists/1?ok=added"));
    let (status, page) = c
        .post(
            "/sendstat/lists/1/addresses",
            &[("email", "wang at qq"), ("fullname", "x")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"e-email\">This is not an e-mail address."),
        "{page}"
    );
    assert!(page.contains("value=\"wang at qq\""), "what was typed stays");
    let (_, page) = c
        .post("/sendstat/lists/1/addresses", &[("email", "WANG@qq.com")])
        .await;
    assert!(
        page.contains("id=\"e-email\">The list has this address already."),
        "{page}"
    );

    let (status, edit) = c.get("/sendstat/lists/1/addresses/1").await;
    assert_eq!(status, 200);
    assert!(edit.contains("value=\"VIP\""), "{edit}");
    let (status, _) = c
        .post(
            "/sendstat/lists/1/addresses/1",
            &[
                ("email", "wang.wei@qq.com"),
                ("fullname", "王伟"),
                ("var1", "VIP2"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (_, list) = c.get("/sendstat/lists/1").await;
    assert!(
        list.contains("wang.wei@qq.com") && list.contains("VIP2"),
        "{list}"
    );

    // 60 more: two pages, and a page count.
    let lines: Vec<String> = (1..=60).map(|i| format!("p{i:02}@163.com;P{i}")).collect();
    let added = app
        .api_post(
            "mloperate.php",
            "acme",
            "pw",
            "do=ml-addr-add&list_id=1",
            &[("ml_addr", &lines.join("\n"))],
        )
        .await;
    assert_eq!(added.code(), "success", "{}", added.text());
    let (_, list) = c.get("/sendstat/lists/1").await;
    assert_eq!(by_id(&list, "page-count"), "2");
    assert_eq!(list.matches("name=\"ids[]\"").count(), 50);
    let (_, second) = c.get("/sendstat/lists/1?page=2").await;
    assert_eq!(second.matches("name=\"ids[]\"").count(), 11);
    let (_, found) = c.get("/sendstat/lists/1?q=p0").await;
    assert_eq!(found.matches("name=\"ids[]\"").count(), 9, "p01 … p09");
    assert_eq!(by_id(&found, "page-count"), "1");

    // A suppressed address shows its state, and the state filters.
    let (status, _) = c
        .post(
            "/sendstat/suppressions",
            &[("emails", "p01@163.com\np02@163.com")],
        )
        .await;
    assert_eq!(status, 302);
    let (_, suppressed) = c.get("/sendstat/lists/1?state=suppressed").await;
    assert_eq!(suppressed.matches("name=\"ids[]\"").count(), 2, "{suppressed}");
    assert!(suppressed.contains("data-state=\"suppressed\""));
    let (_, subscribed) = c.get("/sendstat/lists/1?state=subscribed").await;
    assert_eq!(by_id(&subscribed, "page-count"), "2", "59 subscribed");
    let r = app
        .client
        .get(format!(
            "{}/sendstat/lists/1/export.txt?q=&state=suppressed",
            app.base
        ))
        .header("Cookie", &c.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "p01@163.com\tP1\np02@163.com\tP2\n");

    // A selection moves, is copied, is deleted.
    let (p01, p02) = (
        address_id(&suppressed, "p01@163.com"),
        address_id(&suppressed, "p02@163.com"),
    );
    let (status, to) = c
        .post(
            "/sendstat/lists/1/selected",
            &[
                ("ids[]", &p01),
                ("ids[]", &p02),
                ("action", "move"),
                ("target", "2"),
            ],
        )
        .await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/lists/1?ok=moved"));
    let (_, c2) = c.get("/sendstat/lists/2").await;
    assert!(c2.contains("p01@163.com") && c2.contains("p02@163.com"), "{c2}");
    let (_, c1) = c.get("/sendstat/lists/1").await;
    assert_eq!(by_id(&c1, "list-count"), "59");
    let wang = address_id(&c1, "wang.wei@qq.com");
    let (status, _) = c
        .post(
            "/sendstat/lists/1/selected",
            &[("ids[]", &wang), ("action", "copy"), ("target", "2")],
        )
        .await;
    assert_eq!(status, 302);
    let (_, c1) = c.get("/sendstat/lists/1").await;
    assert_eq!(by_id(&c1, "list-count"), "59", "a copy stays");
    let (_, c2) = c.get("/sendstat/lists/2").await;
    assert_eq!(by_id(&c2, "list-count"), "3");
    let copied = address_id(&c2, "wang.wei@qq.com");
    let (status, _) = c
        .post(
            "/sendstat/lists/2/selected",
            &[("ids[]", &copied), ("action", "delete")],
        )
        .await;
    assert_eq!(status, 302);
    let (_, c2) = c.get("/sendstat/lists/2").await;
    assert_eq!(by_id(&c2, "list-count"), "2");
    // Nothing selected: said so.
    let (status, page) = c
        .post(
            "/sendstat/lists/1/selected",
            &[("action", "move"), ("target", "2")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"e-ids\">No address was given."), "{page}");
    let path = format!("/sendstat/lists/1/addresses/{wang}");
    let (status, _) = c.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(status, 302);
    let (status, _) = c.get(&path).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// The unsubscribes and suppressions page: the reason and the date,
/// search, export, and a lift with a note that is kept.
async fn suppressions_are_found_exported_and_lifted(app: TestApp) {
    add_list(&app, "acme", &["a@x.cn".to_string(), "b@x.cn".to_string()]).await;
    let unsub = app
        .api_post(
            "mloperate.php",
            "acme",
            "pw",
            "do=ml-unsub&list_id=1",
            &[("address", "a@x.cn")],
        )
        .await;
    assert_eq!(unsub.code(), "success", "{}", unsub.text());
    let c = Console::login(&app, "acme", "pw", "", "zh").await;
    c.post("/sendstat/suppressions", &[("emails", "b@x.cn")]).await;
    let (status, page) = c.get("/sendstat/suppressions").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-email=\"a@x.cn\"") && page.contains("data-email=\"b@x.cn\""),
        "{page}"
    );
    assert!(
        page.contains("手动屏蔽") && page.contains(">退订<"),
        "the reasons in the console's language: {page}"
    );
    let (_, found) = c.get("/sendstat/suppressions?q=b%40x").await;
    assert!(!found.contains("data-email=\"a@x.cn\"") && found.contains("data-email=\"b@x.cn\""));
    let r = app
        .client
        .get(format!("{}/sendstat/suppressions/export.txt?q=b", app.base))
        .header("Cookie", &c.cookie)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.starts_with("b@x.cn\tmanual\t\t"), "{text}");

    let long = "x".repeat(501);
    let (status, page) = c
        .post(
            "/sendstat/suppressions/lift",
            &[("email", "b@x.cn"), ("note", &long)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"e-note\">说明不能超过 500 个字符"), "{page}");
    let (status, to) = c
        .post(
            "/sendstat/suppressions/lift",
            &[("email", "b@x.cn"), ("note", "asked us by phone")],
        )
        .await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/suppressions?ok=lifted"));
    let (_, page) = c.get("/sendstat/suppressions").await;
    assert!(!page.contains("data-email=\"b@x.cn\""), "{page}");
    let (_, page) = c
        .post(
            "/sendstat/suppressions/lift",
            &[("email", "b@x.cn"), ("note", "again")],
        )
        .await;
    assert!(page.contains("id=\"e-email\">该地址未被屏蔽"), "{page}");
    app.stop().await;
}

/// Mailboxes are added with a password that is never shown again, and
/// only the customer's own are removed.
async fn mailboxes_are_added_and_removed(app: TestApp) {
    add_sender_domain(&app, 1, "acme", "acme.cn", &[]).await;
    add_sender_domain(&app, 2, "other", "other.cn", &[]).await;
    let theirs = app
        .api(
            "bs.php",
            "other",
            "pw2",
            "do=mailbox-add&mailbox=news@other.cn&pwd=secret",
        )
        .await;
    assert_eq!(theirs.code(), "success", "{}", theirs.text());
    let c = Console::login(&app, "acme", "pw", "", "en").await;
    let (status, to) = c
        .post(
            "/sendstat/domains/mailboxes",
            &[
                ("local_part", "news"),
                ("domain", "acme.cn"),
                ("password", "S3cret-mailbox"),
            ],
        )
        .await;
    assert_eq!((status, to.as_str()), (302, "/sendstat/domains?ok=added"));
    let (_, page) = c.get("/sendstat/domains").await;
    assert!(page.contains("news@acme.cn"), "{page}");
    assert!(!page.contains("S3cret-mailbox"), "the password is never shown");
    assert!(page.contains("._domainkey.acme.cn"), "the records to publish");
    assert!(!page.contains("other.cn"), "{page}");
    let (_, page) = c
        .post(
            "/sendstat/domains/mailboxes",
            &[("local_part", "news"), ("domain", "acme.cn"), ("password", "x")],
        )
        .await;
    assert!(
        page.contains("id=\"e-local_part\">This mailbox exists already."),
        "{page}"
    );
    let (_, page) = c
        .post(
            "/sendstat/domains/mailboxes",
            &[("local_part", "a"), ("domain", "other.cn"), ("password", "x")],
        )
        .await;
    assert!(page.contains("No such domain."), "{page}");
    let (status, _) = c
        .post(
            "/sendstat/domains/mailboxes/delete",
            &[("mailbox", "news@other.cn")],
        )
        .await;
    assert_eq!(status, 404, "another customer's mailbox is not there");
    let (status, _) = c
        .post(
            "/sendstat/domains/mailboxes/delete",
            &[("mailbox", "news@acme.cn")],
        )
        .await;
    assert_eq!(status, 302);
    let (_, page) = c.get("/sendstat/domains").await;
    assert!(!page.contains("news@acme.cn"), "{page}");
    app.stop().await;
}

/// A task that has not started is changed, released and held again; the
/// credits it holds are in the ledger, with the task; a password is
/// changed by its account.
async fn a_task_is_changed_and_its_credits_are_in_the_ledger(app: TestApp) {
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(&app, "acme", &[("name", "t"), ("subject", "s"), ("content", "c")]).await;
    add_list(&app, "acme", &["a@x.cn".to_string(), "b@x.cn".to_string()]).await;
    let c = Console::login(&app, "acme", "pw", "", "en").await;
    let (status, _) = c
        .post(
            "/sendstat/tasks",
            &[
                ("template", "1"),
                ("list", "1"),
                ("sender", "news@acme.cn"),
                ("when", "hold"),
                ("send_time", "2099-01-01 10:00"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (status, form) = c.get("/sendstat/tasks/1/edit").await;
    assert_eq!(status, 200);
    assert!(form.contains("value=\"2099-01-01 10:00:00\""), "{form}");
    let (_, page) = c
        .post(
            "/sendstat/tasks/1/edit",
            &[
                ("template", "1"),
                ("list", "1"),
                ("sender", "news@acme.cn"),
                ("send_time", "soon"),
            ],
        )
        .await;
    assert!(
        page.contains("id=\"e-send_time\">Send time: this is not valid."),
        "{page}"
    );
    let (status, _) = c
        .post(
            "/sendstat/tasks/1/edit",
            &[
                ("template", "1"),
                ("list", "1"),
                ("sender", "news@acme.cn"),
                ("sender_name", "Acme"),
                ("send_time", "2099-02-01 08:30"),
                ("tracking", "opens"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let t = app.api("task.php", "acme", "pw", "do=task-list&id=1").await;
    assert_eq!(t.element("send_status").as_deref(), Some("-1"), "{}", t.text());
    let (_, report) = c.get("/sendstat/tasks/1").await;
    assert!(
        report.contains("id=\"task-release\"") && report.contains("id=\"task-edit\""),
        "{report}"
    );
    let (status, _) = c.post("/sendstat/tasks/1", &[("what", "release")]).await;
    assert_eq!(status, 302);
    let t = app.api("task.php", "acme", "pw", "do=task-list&id=1").await;
    assert_eq!(t.element("send_status").as_deref(), Some("1"));
    let (_, account) = c.get("/sendstat/account").await;
    assert!(account.contains("data-kind=\"ledger_pre_deduct\""), "{account}");
    assert!(account.contains("href=\"/sendstat/tasks/1\">#1</a>"), "{account}");
    assert!(account.contains("Held for a task"), "{account}");
    let (status, _) = c.post("/sendstat/tasks/1", &[("what", "hold")]).await;
    assert_eq!(status, 302);
    let (_, account) = c.get("/sendstat/account").await;
    assert!(account.contains("data-kind=\"ledger_refund\""), "{account}");

    // The password.
    let (_, page) = c
        .post(
            "/sendstat/account/password",
            &[
                ("current", "wrong"),
                ("new", "longenough1"),
                ("repeated", "longenough1"),
            ],
        )
        .await;
    assert!(
        page.contains("id=\"e-current\">The current password is not right."),
        "{page}"
    );
    let (_, page) = c
        .post(
            "/sendstat/account/password",
            &[("current", "pw"), ("new", "short"), ("repeated", "short")],
        )
        .await;
    assert!(page.contains("id=\"e-new\">"), "{page}");
    let (status, _) = c
        .post(
            "/sendstat/account/password",
            &[
                ("current", "pw"),
                ("new", "longenough1"),
                ("repeated", "longenough1"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    session(&app, "acme", "longenough1", "").await;
    app.stop().await;
}

/// An agent opens only the customers it looks after, a manager every one;
/// a customer has no such door.
async fn operators_open_only_the_customers_they_may(app: TestApp) {
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
    let sold = 3;
    let agent = Console::login(&app, "reseller", "apw", "agents", "en").await;
    let (_, home) = agent.get("/sendstat/").await;
    assert!(
        home.contains(&format!("href=\"/sendstat/c/{sold}/\">sold<")),
        "{home}"
    );
    for path in [
        "/",
        "/tasks",
        "/lists",
        "/templates",
        "/suppressions",
        "/domains",
        "/account",
    ] {
        let (status, page) = agent.get(&format!("/sendstat/c/{sold}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("id=\"acting\""), "{path}: whose pages these are");
        let (status, _) = agent.get(&format!("/sendstat/c/1{path}")).await;
        assert_eq!(status, 404, "{path}: not its customer");
        let (status, _) = agent.get(&format!("/sendstat/c/999{path}")).await;
        assert_eq!(status, 404, "{path}: no such customer");
    }
    // An agent works for its customer: a list made there is the customer's.
    let (status, to) = agent
        .post(
            &format!("/sendstat/c/{sold}/lists"),
            &[("name", "From the agent")],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (302, format!("/sendstat/c/{sold}/lists?ok=created").as_str())
    );
    let l = app.api("mloperate.php", "sold", "x", "do=maillist-list").await;
    assert!(l.text().contains("From the agent"), "{}", l.text());
    let (status, _) = agent.post("/sendstat/c/1/lists", &[("name", "Not mine")]).await;
    assert_eq!(status, 404);
    let acme = app.api("mloperate.php", "acme", "pw", "do=maillist-list").await;
    assert!(!acme.text().contains("Not mine"));

    let boss = Console::login(&app, "boss", "bosspw", "manager", "en").await;
    for id in [1, 2, sold] {
        let (status, _) = boss.get(&format!("/sendstat/c/{id}/lists")).await;
        assert_eq!(status, 200);
    }
    let me = Console::login(&app, "acme", "pw", "", "en").await;
    let (status, _) = me.get("/sendstat/c/1/lists").await;
    assert_eq!(status, 404, "a customer has only its own pages");
    app.stop().await;
}

/// Every console page and form answers another customer's ids as missing,
/// as the API does, and changes nothing of theirs.
async fn every_page_refuses_another_customers_ids(app: TestApp) {
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(&app, "acme", &[("name", "t"), ("subject", "s"), ("content", "c")]).await;
    add_list(&app, "acme", &["a@x.cn".to_string()]).await;
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news%40acme.cn&status=-1&time=2099-01-01%2010:00",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let thief = Console::login(&app, "other", "pw2", "", "en").await;
    for path in [
        "/sendstat/tasks/1",
        "/sendstat/tasks/1/edit",
        "/sendstat/tasks/1/failures.txt",
        "/sendstat/lists/1",
        "/sendstat/lists/1/export.txt",
        "/sendstat/lists/1/addresses/1",
        "/sendstat/templates/1",
    ] {
        let (status, _) = thief.get(path).await;
        assert_eq!(status, 404, "GET {path}");
    }
    for (path, form) in [
        ("/sendstat/tasks/1", vec![("what", "cancel")]),
        ("/sendstat/tasks/1", vec![("what", "release")]),
        (
            "/sendstat/tasks/1/edit",
            vec![("template", "1"), ("list", "1"), ("sender", "news@acme.cn")],
        ),
        ("/sendstat/lists/1", vec![("name", "Stolen")]),
        ("/sendstat/lists/1/delete", vec![]),
        ("/sendstat/lists/1/addresses", vec![("email", "z@x.cn")]),
        ("/sendstat/lists/1/addresses/1", vec![("email", "z@x.cn")]),
        ("/sendstat/lists/1/addresses/1/delete", vec![]),
        (
            "/sendstat/lists/1/selected",
            vec![("ids[]", "1"), ("action", "delete")],
        ),
        (
            "/sendstat/templates/1",
            vec![("name", "n"), ("subject", "s"), ("html", "h")],
        ),
        ("/sendstat/templates/1/duplicate", vec![]),
        ("/sendstat/templates/1/delete", vec![]),
        ("/sendstat/templates/1/attachments/1/delete", vec![]),
        (
            "/sendstat/templates/1/test",
            vec![("to", "z@x.cn"), ("sender", "news@acme.cn")],
        ),
        (
            "/sendstat/domains/mailboxes/delete",
            vec![("mailbox", "news@acme.cn")],
        ),
    ] {
        let (status, _) = thief.post(path, &form).await;
        assert_eq!(status, 404, "POST {path} {form:?}");
    }
    // The thief's own list cannot take acme's addresses either.
    thief.post("/sendstat/lists", &[("name", "Mine")]).await;
    let (status, _) = thief
        .post(
            "/sendstat/lists/2/selected",
            &[("ids[]", "1"), ("action", "copy"), ("target", "2")],
        )
        .await;
    assert!(status == 302 || status == 200);
    let (_, mine) = thief.get("/sendstat/lists/2").await;
    assert!(!mine.contains("a@x.cn"), "{mine}");
    // Acme's things are as they were.
    let t = app.api("task.php", "acme", "pw", "do=task-list&id=1").await;
    assert_eq!(t.element("send_status").as_deref(), Some("-1"));
    let l = app
        .api("mloperate.php", "acme", "pw", "do=maillist-detail&id=1")
        .await;
    assert_eq!(l.element("count").as_deref(), Some("1"), "{}", l.text());
    assert!(!l.text().contains("Stolen"));
    let tpl = app.api("template.php", "acme", "pw", "do=list-tpl").await;
    assert_eq!(tpl.elements("id").len(), 1, "{}", tpl.text());
    let m = app
        .api("bs.php", "acme", "pw", "do=mailbox-list&domain=acme.cn")
        .await;
    assert!(m.text().contains("news@acme.cn"), "{}", m.text());
    app.stop().await;
}

both_stores!(start = start;
    a_customer_keeps_its_addresses,
    suppressions_are_found_exported_and_lifted,
    mailboxes_are_added_and_removed,
    a_task_is_changed_and_its_credits_are_in_the_ledger,
    operators_open_only_the_customers_they_may,
    every_page_refuses_another_customers_ids,
);

both_stores!(by_backend; a_customer_writes_previews_and_tests_a_template);

/// A domain's DNS is checked from its page, record by record, against a
/// real DNS server; the page marks each record and shows what to publish.
async fn a_domains_dns_is_checked_from_the_console(backend: Backend) {
    // The DNS server's address is known once its records are: the app
    // takes it at its restart.
    let server: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let setting = server.clone();
    let Some(mut app) = TestApp::start_with(backend, move |s| {
        s.dns_server = setting.lock().unwrap().clone();
        s.helo_name = Some("mta.qunfa.test".into());
        s.bounce_domain = Some("bounce.acme.test".into());
    })
    .await
    else {
        return;
    };
    app.customer("acme", "pw", 0).await;
    app.admin_ok(&["domain", "add", "--domain", "acme.test", "--customer", "acme"])
        .await;
    let printed = app.admin_ok(&["domain", "dkim", "--domain", "acme.test"]).await;
    let rsa = printed.lines().next().expect("the RSA record");
    let (name, strings) = rsa.split_once(" IN TXT ").expect("zone-file form");
    let name = name.trim_end_matches('.').to_string();
    let value: String = strings.split('"').skip(1).step_by(2).collect();
    let dns = DnsServer::start(&[
        Record::Txt(&name, &value),
        Record::Txt("acme.test", "v=spf1 a:mta.qunfa.test -all"),
        Record::A("mta.qunfa.test", "192.0.2.25"),
    ])
    .await;
    *server.lock().unwrap() = Some(dns.addr().to_string());
    app.restart().await;
    let c = Console::login(&app, "acme", "pw", "", "en").await;
    let (_, before) = c.get("/sendstat/domains").await;
    assert!(before.contains("data-state=\"publish\""), "{before}");
    assert!(
        !before.contains("data-check=\"dmarc\""),
        "not checked before it is asked"
    );
    let (status, page) = c.get("/sendstat/domains?check=acme.test").await;
    assert_eq!(status, 200);
    let selector = name.split('.').next().unwrap();
    let state = |check: &str| {
        let at = page
            .find(&format!("data-check=\"{check}\""))
            .unwrap_or_else(|| panic!("no {check} row: {page}"));
        let rest = &page[at..];
        let s = rest.find("data-state=\"").unwrap() + 12;
        rest[s..].split('"').next().unwrap().to_string()
    };
    assert_eq!(state(&format!("dkim:{selector}")), "ok");
    let ed = printed.lines().nth(1).expect("the Ed25519 record");
    let ed_selector = ed.split('.').next().unwrap();
    assert_eq!(state(&format!("dkim:{ed_selector}")), "missing");
    assert_eq!(state("dmarc"), "missing");
    assert!(["ok", "missing", "wrong"].contains(&state("spf").as_str()));
    assert!(page.contains("_dmarc.acme.test"), "the record to publish: {page}");
    app.stop().await;
}

both_stores!(by_backend; a_domains_dns_is_checked_from_the_console);
