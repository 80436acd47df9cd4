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

/// A JSON answer: status and body.
struct Json {
    status: u16,
    body: Value,
}

async fn call(app: &TestApp, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Json {
    let url = format!("{}/api/v1{path}", app.base);
    let mut req = app.client.request(method.parse().expect("method"), url);
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_string());
    }
    let a = app.send(req).await;
    let body = if a.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&a.body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", a.text()))
    };
    Json {
        status: a.status,
        body,
    }
}

async fn get(app: &TestApp, path: &str, key: &str) -> Json {
    call(app, "GET", path, Some(key), None).await
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
    let none = call(&app, "GET", "/account", None, None).await;
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
        let made = call(
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
    let bad = call(
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

    let renamed = call(
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
            let a = call(&app, method, &format!("/lists/{id}"), Some(&other), body).await;
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
    let added = call(
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
    let theirs = call(
        &app,
        "POST",
        &format!("/lists/{}/contacts", ids[1]),
        Some(&other),
        Some(batch),
    )
    .await;
    assert_eq!((theirs.status, &theirs.body), (404, &missing.body));

    let gone = call(&app, "DELETE", &format!("/lists/{}", ids[0]), Some(&key), None).await;
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
