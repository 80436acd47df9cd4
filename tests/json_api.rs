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

both_stores!(keys_act_as_their_customer_until_revoked);
