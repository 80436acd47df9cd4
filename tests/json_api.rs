//! The JSON API under /api/v1 as a client uses it, with a key made by
//! `qunfa admin api-key add` (docs/json-api.md).

mod common;

use common::*;
use serde_json::Value;

/// A new key of a customer, as the administrator hands it over.
async fn key_of(app: &TestApp, user: &str) -> String {
    let out = app
        .admin_ok(&["api-key", "add", "--username", user, "--name", "test"])
        .await;
    let key = out.trim().to_string();
    assert!(
        key.starts_with("qk_") && !key.contains(char::is_whitespace),
        "{out}"
    );
    key
}

async fn get(app: &TestApp, path: &str, key: &str) -> JsonAnswer {
    call_v1(app, "GET", path, Some(key), None).await
}

async fn keys_act_as_their_customer_until_revoked(app: TestApp) {
    app.customer("acme", "pw", 500).await;
    let key = key_of(&app, "acme").await;

    let me = get(&app, "/account", &key).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["username"], "acme");
    assert_eq!(me.body["credits"]["available"], 500);
    assert_eq!(me.body["credits"]["bought"], 500);
    assert_eq!(me.body["service"]["status"], "enabled");

    // No key, a wrong one, a made-up one: 401, JSON, English by default.
    let none = call_v1(&app, "GET", "/account", None, None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.body["error"]["code"], "unauthorized");
    assert!(none.body["error"]["message"].as_str().unwrap().contains("key"));
    let mut wrong = key.clone();
    wrong.replace_range(wrong.len() - 4.., "AAAA");
    assert_eq!(get(&app, "/account", &wrong).await.status, 401);
    assert_eq!(get(&app, "/account", "qk_nothing").await.status, 401);

    // Chinese when asked for.
    let zh = app
        .send(
            app.client
                .get(format!("{}/api/v1/account", app.base))
                .header("Accept-Language", "zh-CN,zh;q=0.9"),
        )
        .await;
    assert_eq!(zh.status, 401);
    assert!(zh.text().contains("密钥"), "{}", zh.text());

    // The key is listed (never shown again), then revoked: 401 from then on.
    let listed = app.admin_ok(&["api-key", "list", "--username", "acme"]).await;
    assert!(listed.contains("\ttest\t"), "{listed}");
    assert!(!listed.contains(&key));
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    app.admin_ok(&["api-key", "revoke", "--username", "acme", "--id", &id])
        .await;
    let revoked = get(&app, "/account", &key).await;
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.body["error"]["code"], "unauthorized");
}

async fn lists_are_paged_and_private(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.customer("other", "pw", 0).await;
    let key = key_of(&app, "acme").await;
    let other = key_of(&app, "other").await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let made = call_v1(
            &app,
            "POST",
            "/lists",
            Some(&key),
            Some(serde_json::json!({"name": format!("list {n}")})),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.body);
        assert_eq!(made.body["contacts"], 0);
        ids.push(made.body["id"].as_i64().unwrap());
    }
    let bad = call_v1(
        &app,
        "POST",
        "/lists",
        Some(&key),
        Some(serde_json::json!({"name": ""})),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Two pages of two.
    let first = get(&app, "/lists?limit=2", &key).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2, "{}", first.body);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = get(&app, &format!("/lists?limit=2&cursor={cursor}"), &key).await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert!(second.body["next_cursor"].is_null());
    assert_eq!(get(&app, "/lists?limit=1001", &key).await.status, 400);

    let renamed = call_v1(
        &app,
        "PATCH",
        &format!("/lists/{}", ids[0]),
        Some(&key),
        Some(serde_json::json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(renamed.body["name"], "renamed", "{}", renamed.body);

    // Another customer's key: every id answers as a missing one.
    let missing = get(&app, "/lists/999999", &key).await;
    assert_eq!(missing.status, 404);
    for id in &ids {
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| serde_json::json!({"name": "x"}));
            let a = call_v1(&app, method, &format!("/lists/{id}"), Some(&other), body).await;
            assert_eq!((a.status, &a.body), (404, &missing.body), "{method} /lists/{id}");
        }
    }
    assert_eq!(
        get(&app, "/lists", &other).await.body["items"],
        serde_json::json!([])
    );

    // A batch with bad rows keeps the good ones and names the bad by index.
    let batch = serde_json::json!({"contacts": [
        {"email": "a@example.com", "name": "A", "vars": {"var1": "x"}},
        {"email": "not an address"},
        {"email": "b@example.com"},
        {"email": "a@example.com"},
        {"email": "c@example.com", "vars": {"var11": "no such field"}},
    ]});
    let added = call_v1(
        &app,
        "POST",
        &format!("/lists/{}/contacts", ids[1]),
        Some(&key),
        Some(batch.clone()),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["added"], 2, "{}", added.body);
    assert_eq!(added.body["duplicates"], 1);
    let bad: Vec<i64> = added.body["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_i64().unwrap())
        .collect();
    assert_eq!(bad, [1, 4]);
    assert_eq!(
        get(&app, &format!("/lists/{}", ids[1]), &key).await.body["contacts"],
        2
    );
    let theirs = call_v1(
        &app,
        "POST",
        &format!("/lists/{}/contacts", ids[1]),
        Some(&other),
        Some(batch),
    )
    .await;
    assert_eq!((theirs.status, &theirs.body), (404, &missing.body));

    let gone = call_v1(&app, "DELETE", &format!("/lists/{}", ids[0]), Some(&key), None).await;
    assert_eq!(gone.status, 204);
    assert_eq!(get(&app, &format!("/lists/{}", ids[0]), &key).await.status, 404);
}

both_stores!(
    keys_act_as_their_customer_until_revoked,
    lists_are_paged_and_private
);

/// `QUNFA_API_RATE=1`: two requests at once, then 429 with `Retry-After`.
async fn a_key_over_its_rate_gets_429(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let key = key_of(&app, "acme").await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let a = app
            .send(
                app.client
                    .get(format!("{}/api/v1/account", app.base))
                    .header("Authorization", format!("Bearer {key}")),
            )
            .await;
        answers.push(a);
    }
    let limited = answers
        .iter()
        .find(|a| a.status == 429)
        .expect("a 429 among five at once");
    assert!(limited.headers.get("retry-after").is_some());
    assert!(limited.text().contains("rate_limited"), "{}", limited.text());
    // Another key is not held back by the first.
    let second = key_of(&app, "acme").await;
    assert_eq!(get(&app, "/account", &second).await.status, 200);
}

async fn slow_api(backend: Backend) -> Option<TestApp> {
    TestApp::start_with(backend, |s| s.api_rate = Some("1".into())).await
}

both_stores!(start = slow_api; a_key_over_its_rate_gets_429);

/// The campaign's figures once `done` says they are as far as the test needs.
async fn campaign_when(app: &TestApp, key: &str, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let c = get(app, &format!("/campaigns/{id}"), key).await;
        assert_eq!(c.status, 200, "{}", c.body);
        if done(&c.body) {
            return c.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("campaign {id} did not get there within 30 s");
}

/// A campaign made, sent and watched over /api/v1 alone (the sending
/// domain is the platform's to give, as in the vendor API): its list, its
/// contacts, its template, the campaign itself, its figures while and after
/// it sends, its recipients by outcome; the vendor API reports the same task
/// the same way, and another customer's key finds none of it.
async fn a_campaign_over_json_reads_as_the_vendor_api_reports_it(backend: Backend) {
    let Some((app, sink)) = TestApp::start_relaying(backend, |s| {
        s.scanner_window = Some("0s".into());
    })
    .await
    else {
        return;
    };
    app.customer("acme", "pw", 100).await;
    app.customer("other", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    sink.script(
        "gone@dest.cn",
        [common::smtp::Act::Refuse("550 5.1.1 User unknown")],
    );
    let key = key_of(&app, "acme").await;
    let other = key_of(&app, "other").await;

    let list = post(&app, &key, "/lists", serde_json::json!({"name": "customers"})).await;
    assert_eq!(list.status, 201, "{}", list.body);
    let list_id = list.body["id"].as_i64().unwrap();
    let added = post(
        &app,
        &key,
        &format!("/lists/{list_id}/contacts"),
        serde_json::json!({"contacts": [
            {"email": "ok1@qq.com", "name": "One"},
            {"email": "ok2@gmail.com", "name": "Two"},
            {"email": "gone@dest.cn"},
        ]}),
    )
    .await;
    assert_eq!(added.body["added"], 3, "{}", added.body);

    let bad_template = post(
        &app,
        &key,
        "/templates",
        serde_json::json!({"name": "t", "subject": "Hi", "html": "<p>{{ no_such_field }}</p>"}),
    )
    .await;
    assert_eq!(bad_template.status, 400, "{}", bad_template.body);
    let template = post(
        &app,
        &key,
        "/templates",
        serde_json::json!({
            "name": "spring",
            "subject": "Hello {{ fullname }}",
            "html": "<p>Hi</p><a href=\"https://shop.example/sale\">sale</a>",
        }),
    )
    .await;
    assert_eq!(template.status, 201, "{}", template.body);
    let template_id = template.body["id"].as_i64().unwrap();

    // Refused with the input at fault named as this API names it.
    let campaign = |list_ids: Value, from: &str| {
        serde_json::json!({
            "template_id": template_id,
            "list_ids": list_ids,
            "from": {"email": from, "name": "Acme"},
            "track": {"opens": true, "clicks": true},
            "unsubscribe_link": true,
        })
    };
    let two_lists = post(
        &app,
        &key,
        "/campaigns",
        campaign(serde_json::json!([list_id, list_id]), "news@acme.cn"),
    )
    .await;
    assert_eq!(
        (two_lists.status, &two_lists.body["error"]["field"]),
        (400, &serde_json::json!("list_ids"))
    );
    let their_list = {
        let l = call_v1(
            &app,
            "POST",
            "/lists",
            Some(&other),
            Some(serde_json::json!({"name": "x"})),
        )
        .await;
        l.body["id"].as_i64().unwrap()
    };
    let not_mine = post(
        &app,
        &key,
        "/campaigns",
        campaign(serde_json::json!([their_list]), "news@acme.cn"),
    )
    .await;
    assert_eq!(not_mine.status, 404, "{}", not_mine.body);
    assert_eq!(not_mine.body["error"]["field"], "list_ids");

    let made = post(
        &app,
        &key,
        "/campaigns",
        campaign(serde_json::json!([list_id]), "news@acme.cn"),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_i64().unwrap();
    assert!(
        matches!(made.body["state"].as_str(), Some("scheduled" | "sending")),
        "{}",
        made.body
    );

    let done = campaign_when(&app, &key, id, |c| c["state"] == "done").await;
    assert_eq!(done["counts"]["recipients"], 3, "{done}");
    assert_eq!(done["counts"]["delivered"], 2, "{done}");
    assert_eq!(done["counts"]["failed"], 1, "{done}");

    // Open and click as a reader would, from the delivered messages.
    let mut opened = 0;
    for r in sink.received() {
        let msg = mail_parser::MessageParser::default().parse(&r.data).unwrap();
        let html = msg.body_html(0).unwrap().to_string();
        if r.rcpt_to[0] == "ok1@qq.com" {
            for path in tracking_paths(&html, "o")
                .into_iter()
                .chain(tracking_paths(&html, "c"))
            {
                app.client
                    .get(format!("{}{path}", app.base))
                    .header(
                        "User-Agent",
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36",
                    )
                    .send()
                    .await
                    .unwrap();
                opened += 1;
            }
        }
    }
    assert!(opened >= 2, "a pixel and a link in the message");
    let c = campaign_when(&app, &key, id, |c| c["counts"]["clicked"] == 1).await;
    assert_eq!(c["counts"]["opened"], 1, "{c}");

    // The vendor API's overview of the same task.
    let o = app
        .api("track.php", "acme", "pw", &format!("do=overview&id={id}"))
        .await;
    let e = |name: &str| {
        o.element(name)
            .unwrap_or_else(|| panic!("{name} in {}", o.text()))
    };
    assert_eq!(e("send_count"), c["counts"]["sent"].to_string());
    assert_eq!(e("real_send_count"), c["counts"]["delivered"].to_string());
    assert_eq!(e("error_send_count"), c["counts"]["failed"].to_string());
    assert_eq!(e("open_unique"), c["counts"]["opened"].to_string());
    assert_eq!(e("click_unique"), c["counts"]["clicked"].to_string());
    let t = app
        .api("task.php", "acme", "pw", &format!("do=task-list&id={id}"))
        .await;
    assert_eq!(t.element("send_status").as_deref(), Some("3"), "{}", t.text());
    assert_eq!(
        t.element("sn"),
        c["ident"].as_str().map(str::to_string),
        "{}",
        t.text()
    );

    // Its recipients by outcome.
    let failed = get(&app, &format!("/campaigns/{id}/recipients?status=failed"), &key).await;
    assert_eq!(
        failed.body["items"][0]["email"], "gone@dest.cn",
        "{}",
        failed.body
    );
    assert_eq!(failed.body["items"][0]["class"], "not_exist");
    let delivered = get(
        &app,
        &format!("/campaigns/{id}/recipients?status=delivered&limit=1"),
        &key,
    )
    .await;
    assert_eq!(
        delivered.body["items"][0]["email"], "ok1@qq.com",
        "{}",
        delivered.body
    );
    let cursor = delivered.body["next_cursor"].as_str().unwrap().to_string();
    let rest = get(
        &app,
        &format!("/campaigns/{id}/recipients?status=delivered&limit=1&cursor={cursor}"),
        &key,
    )
    .await;
    assert_eq!(rest.body["items"][0]["email"], "ok2@gmail.com", "{}", rest.body);
    let clicked = get(&app, &format!("/campaigns/{id}/recipients?status=clicked"), &key).await;
    assert_eq!(
        clicked.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        clicked.body
    );

    // A done campaign can't be paused: 409, with the state.
    let pause = post(&app, &key, &format!("/campaigns/{id}/pause"), Value::Null).await;
    assert_eq!(pause.status, 409, "{}", pause.body);

    // Another customer's key: each of these ids answers as a missing one.
    let missing = get(&app, "/campaigns/999999", &key).await;
    assert_eq!(missing.status, 404);
    for (method, path) in [
        ("GET", format!("/campaigns/{id}")),
        ("GET", format!("/campaigns/{id}/recipients?status=failed")),
        ("POST", format!("/campaigns/{id}/pause")),
        ("POST", format!("/campaigns/{id}/resume")),
        ("POST", format!("/campaigns/{id}/cancel")),
        ("GET", format!("/templates/{template_id}")),
        ("PUT", format!("/templates/{template_id}")),
        ("DELETE", format!("/templates/{template_id}")),
        ("GET", format!("/lists/{list_id}")),
        ("DELETE", format!("/lists/{list_id}")),
    ] {
        let body = (method == "PUT").then(|| serde_json::json!({"name": "x", "subject": "x", "html": "x"}));
        let a = call_v1(&app, method, &path, Some(&other), body).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
        assert_eq!(
            a.body["error"]["code"], missing.body["error"]["code"],
            "{method} {path}"
        );
    }
    assert_eq!(
        get(&app, "/campaigns", &other).await.body["items"],
        serde_json::json!([])
    );
    assert_eq!(get(&app, "/campaigns", &key).await.body["items"][0]["id"], id);

    // A template in use by no unfinished task can go.
    let gone = call_v1(
        &app,
        "DELETE",
        &format!("/templates/{template_id}"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
}

both_stores!(by_backend; a_campaign_over_json_reads_as_the_vendor_api_reports_it);

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> JsonAnswer {
    call_v1(app, "POST", path, Some(key), Some(body)).await
}

/// A list's contacts paged and searched, one removed by address; the
/// suppressions added (the bad ones named), listed, felt by a later batch,
/// and lifted; none of it visible to another customer's key.
async fn contacts_and_suppressions(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.customer("other", "pw", 0).await;
    let key = key_of(&app, "acme").await;
    let other = key_of(&app, "other").await;
    let list = post(&app, &key, "/lists", serde_json::json!({"name": "l"})).await;
    let list = list.body["id"].as_i64().unwrap();
    let contacts = format!("/lists/{list}/contacts");
    let batch = serde_json::json!({"contacts": [
        {"email": "ann@example.com", "name": "Ann", "vars": {"var2": "gold"}},
        {"email": "bob@example.com", "name": "Bob", "vars": {"var10": "j", "var3": "c", "var1": "a"}},
        {"email": "cid@example.org"},
    ]});
    assert_eq!(post(&app, &key, &contacts, batch).await.body["added"], 3);

    let first = get(&app, &format!("{contacts}?limit=2"), &key).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let emails = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["email"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(emails(&first.body), ["ann@example.com", "bob@example.com"]);
    assert_eq!(first.body["items"][0]["vars"]["var2"], "gold");
    // The variables that are set, in their order, whatever order they came in.
    let raw = app
        .send(
            app.client
                .get(format!("{}/api/v1{contacts}?limit=2", app.base))
                .header("Authorization", format!("Bearer {key}")),
        )
        .await
        .text();
    assert!(
        raw.contains(r#""vars":{"var1":"a","var3":"c","var10":"j"}"#),
        "{raw}"
    );
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = get(&app, &format!("{contacts}?limit=2&cursor={cursor}"), &key).await;
    assert_eq!(emails(&second.body), ["cid@example.org"]);
    assert!(second.body["next_cursor"].is_null());
    let found = get(&app, &format!("{contacts}?q=BOB"), &key).await;
    assert_eq!(emails(&found.body), ["bob@example.com"]);

    let theirs = call_v1(&app, "GET", &contacts, Some(&other), None).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let theirs = call_v1(
        &app,
        "DELETE",
        &format!("{contacts}/bob@example.com"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let gone = call_v1(
        &app,
        "DELETE",
        &format!("{contacts}/Bob@Example.com"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let again = call_v1(
        &app,
        "DELETE",
        &format!("{contacts}/bob@example.com"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    assert_eq!(
        emails(&get(&app, &contacts, &key).await.body),
        ["ann@example.com", "cid@example.org"]
    );

    let added = post(
        &app,
        &key,
        "/suppressions",
        serde_json::json!({"emails": ["dan@example.com", "not an address", "eve@example.com"], "reason": "asked by phone"}),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["added"], 2, "{}", added.body);
    assert_eq!(added.body["invalid"][0]["index"], 1);
    let listed = get(&app, "/suppressions?limit=1", &key).await;
    assert_eq!(emails(&listed.body), ["dan@example.com"], "{}", listed.body);
    assert_eq!(listed.body["items"][0]["reason"], "manual");
    let cursor = listed.body["next_cursor"].as_str().unwrap().to_string();
    let rest = get(&app, &format!("/suppressions?limit=1&cursor={cursor}"), &key).await;
    assert_eq!(emails(&rest.body), ["eve@example.com"]);
    assert_eq!(
        get(&app, "/suppressions", &other).await.body["items"],
        serde_json::json!([])
    );

    // A suppressed address joins a list, reported as suppressed: no
    // campaign sends to it while it stays suppressed.
    let batch = serde_json::json!({"contacts": [{"email": "dan@example.com"}]});
    let held_back = post(&app, &key, &contacts, batch).await;
    assert_eq!(
        (
            held_back.body["added"].clone(),
            held_back.body["suppressed"].clone()
        ),
        (serde_json::json!(1), serde_json::json!(1)),
        "{}",
        held_back.body
    );

    let theirs = call_v1(
        &app,
        "DELETE",
        "/suppressions/dan@example.com",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let lifted = call_v1(&app, "DELETE", "/suppressions/dan@example.com", Some(&key), None).await;
    assert_eq!(lifted.status, 204, "{}", lifted.body);
    assert_eq!(
        call_v1(&app, "DELETE", "/suppressions/dan@example.com", Some(&key), None)
            .await
            .status,
        404
    );
    assert_eq!(
        emails(&get(&app, "/suppressions", &key).await.body),
        ["eve@example.com"]
    );
}

both_stores!(contacts_and_suppressions);
