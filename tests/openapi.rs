//! The JSON API's OpenAPI 3.1 document as a client's tooling meets it:
//! served without a key, accepted by a standard validator
//! (openapi-spec-validator, installed by scripts/test.sh), and naming every
//! route the test suite calls. It is a static document, so one store is
//! enough.

mod common;

use common::*;
use serde_json::Value;

/// Every route of /api/v1 that tests/json_api.rs, tests/webhooks.rs,
/// tests/bounce_inbound.rs and tests/crash.rs call, as (method, path).
const CALLED: &[(&str, &str)] = &[
    ("get", "/account"),
    ("get", "/lists"),
    ("post", "/lists"),
    ("get", "/lists/{id}"),
    ("patch", "/lists/{id}"),
    ("delete", "/lists/{id}"),
    ("post", "/lists/{id}/contacts"),
    ("get", "/lists/{id}/contacts"),
    ("delete", "/lists/{id}/contacts/{email}"),
    ("get", "/templates"),
    ("post", "/templates"),
    ("get", "/templates/{id}"),
    ("put", "/templates/{id}"),
    ("delete", "/templates/{id}"),
    ("get", "/campaigns"),
    ("post", "/campaigns"),
    ("get", "/campaigns/{id}"),
    ("post", "/campaigns/{id}/pause"),
    ("post", "/campaigns/{id}/resume"),
    ("post", "/campaigns/{id}/cancel"),
    ("get", "/campaigns/{id}/recipients"),
    ("get", "/suppressions"),
    ("post", "/suppressions"),
    ("delete", "/suppressions/{email}"),
    ("get", "/webhooks"),
    ("post", "/webhooks"),
    ("delete", "/webhooks/{id}"),
    ("get", "/webhooks/{id}/deliveries"),
    ("get", "/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_and_names_every_route() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite app");
    let answer = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "no key needed");
    assert_eq!(
        answer.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = answer.bytes().await.unwrap();
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &body).unwrap();
    let out = tokio::process::Command::new(python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .await
        .expect("python with openapi-spec-validator (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut missing = Vec::new();
    for (method, path) in CALLED {
        if doc["paths"][*path][*method].is_null() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    // And nothing in it that the server does not answer: each path's GET
    // (or other method) reaches a route, not axum's 404 for no route.
    let key = {
        app.customer("acme", "pw", 0).await;
        app.admin_ok(&["api-key", "add", "--username", "acme"])
            .await
            .trim()
            .to_string()
    };
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let url = format!(
                "{}/api/v1{}",
                app.base,
                path.replace("{id}", "1").replace("{email}", "a@b.cn")
            );
            let a = app
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .header("Authorization", format!("Bearer {key}"))
                .header("Content-Type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = a.status().as_u16();
            let text = a.text().await.unwrap();
            // A route answers in the API's own error shape or succeeds;
            // a path with no route gets axum's bare 404 or 405.
            assert!(
                status < 400
                    || serde_json::from_str::<Value>(&text).is_ok_and(|v| v["error"]["code"].is_string()),
                "{method} {path}: {status} {text}"
            );
        }
    }
    app.stop().await;
}
