//! Webhooks as a receiver sees them: an endpoint registered over the JSON
//! API that fails its first answers still hears every event of a campaign
//! (outcomes, an open, a click, an unsubscribe, the end), each signed with
//! its webhook's secret as docs/webhooks.md tells a receiver to check it; a
//! URL on a private address is refused unless allowed; another customer's
//! webhook is as missing as one that never was.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::smtp::Act;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use qunfa::domain::ids::CustomerId;
use qunfa::domain::webhooks::{self, WebhookError, WebhookInput};
use qunfa::webhooks::SystemResolver;
use serde_json::json;

/// `Qunfa-Signature: t=T,v1=HEX` checked as a receiver would:
/// HEX = HMAC-SHA256(secret, T + "." + body).
fn signed(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = "";
    let mut v1 = "";
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => v1 = v,
            _ => {}
        }
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    !t.is_empty() && hex::encode(mac.finalize().into_bytes()) == v1
}

/// What the receiver got: each POST's body and whether its signature held.
#[derive(Default)]
struct Received {
    answers: usize,
    events: Vec<serde_json::Value>,
    bad_signatures: usize,
}

/// A receiver on a free port that answers 500 to its first `fail` POSTs.
async fn receiver(secret: Arc<Mutex<String>>, fail: usize) -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let state = got.clone();
    let route = axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
        let (got, secret) = (state.clone(), secret.clone());
        async move {
            let mut g = got.lock().unwrap();
            g.answers += 1;
            if g.answers <= fail {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            let header = headers
                .get("qunfa-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if !signed(&secret.lock().unwrap(), &header, &body) {
                g.bad_signatures += 1;
            }
            g.events
                .push(serde_json::from_slice(&body).expect("a JSON event"));
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().route("/hook", route))
            .await
            .unwrap();
    });
    (url, got)
}

async fn every_event_arrives_signed_despite_failures(backend: Backend) {
    let Some((app, sink)) = TestApp::start_relaying(backend, |s| {
        s.webhook_private = Some("allow".into());
        s.webhook_retry_delays = Some("1s,1s,1s,1s".into());
        // The hits come right after delivery: none is a scanner's by time.
        s.scanner_window = Some("0s".into());
    })
    .await
    else {
        return;
    };
    let acme = CustomerId(app.customer("acme", "pw", 100).await);
    app.customer("other", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "promo"),
            ("subject", "Hi"),
            (
                "content",
                "<p>Hi</p><a href=\"https://shop.example/sale\">sale</a>",
            ),
        ],
    )
    .await;
    let key = app
        .admin_ok(&["api-key", "add", "--username", "acme"])
        .await
        .trim()
        .to_string();
    let other = app
        .admin_ok(&["api-key", "add", "--username", "other"])
        .await
        .trim()
        .to_string();
    let secret = Arc::new(Mutex::new(String::new()));
    let (url, got) = receiver(secret.clone(), 3).await;
    let events = [
        "delivered",
        "failed",
        "opened",
        "clicked",
        "unsubscribed",
        "campaign.done",
    ];
    let made = call_v1(
        &app,
        "POST",
        "/webhooks",
        Some(&key),
        Some(json!({"url": url, "events": events})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let hook = made.body["id"].as_i64().unwrap();
    *secret.lock().unwrap() = made.body["secret"].as_str().unwrap().to_string();
    let listed = call_v1(&app, "GET", "/webhooks", Some(&key), None).await.body;
    assert_eq!(listed["items"][0]["url"], url.as_str(), "{listed}");
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once: {listed}"
    );
    let bad = json!({"url": "ftp://example.com/", "events": ["delivered"]});
    let bad = call_v1(&app, "POST", "/webhooks", Some(&key), Some(bad)).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "url", "{}", bad.body);

    // Another customer's webhook id is as missing as one that never was.
    for id in [hook, 9999] {
        let d = call_v1(
            &app,
            "GET",
            &format!("/webhooks/{id}/deliveries"),
            Some(&other),
            None,
        )
        .await;
        assert_eq!(d.status, 404);
        let d = call_v1(&app, "DELETE", &format!("/webhooks/{id}"), Some(&other), None).await;
        assert_eq!(d.status, 404);
    }
    // A loopback URL is refused when private addresses are not allowed.
    let local = WebhookInput {
        url: url.clone(),
        events: vec!["delivered".into()],
    };
    let a = app.app();
    let e = webhooks::create_webhook(&a.store, &a.secret_box, &SystemResolver, false, acme, &local, 0)
        .await
        .unwrap_err();
    assert!(matches!(e, WebhookError::PrivateAddress), "{e}");
    assert_eq!(e.field(), Some("url"));

    let lines = ["ok1", "ok2", "ok3", "gone"].map(|p| format!("{p}@dest.cn;{p}"));
    add_list(&app, "acme", &lines).await;
    sink.script("gone@dest.cn", [Act::Refuse("550 5.1.1 User unknown")]);
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_domain=acme.cn&send_account=news%40acme.cn&status=2\
             &track_status=2&subs_link=1",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let task: i64 = add.element("id").unwrap().parse().unwrap();
    task_done(&app, "acme", "pw", &task.to_string()).await;

    // ok1 opens and clicks; ok2 unsubscribes with one click.
    for r in sink.received() {
        let msg = mail_parser::MessageParser::default().parse(&r.data).unwrap();
        let html = msg.body_html(0).unwrap().to_string();
        let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36";
        if r.rcpt_to[0] == "ok1@dest.cn" {
            for path in tracking_paths(&html, "o")
                .into_iter()
                .chain(tracking_paths(&html, "c"))
            {
                app.client
                    .get(format!("{}{path}", app.base))
                    .header("User-Agent", browser)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if r.rcpt_to[0] == "ok2@dest.cn" {
            let header = msg.header_raw("List-Unsubscribe").unwrap();
            let path = tracking_paths(header, "u").pop().unwrap();
            let one_click = app
                .client
                .post(format!("{}{path}", app.base))
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap();
            assert_eq!(one_click.status(), 200);
        }
    }

    let want = [
        ("campaign.done", ""),
        ("clicked", "ok1@dest.cn"),
        ("delivered", "ok1@dest.cn"),
        ("delivered", "ok2@dest.cn"),
        ("delivered", "ok3@dest.cn"),
        ("failed", "gone@dest.cn"),
        ("opened", "ok1@dest.cn"),
        ("unsubscribed", "ok2@dest.cn"),
    ]
    .map(|(t, w)| (t.to_string(), w.to_string()));
    let seen = || {
        let g = got.lock().unwrap();
        let mut seen: Vec<(String, String)> = g
            .events
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_string(),
                    e["data"]["email"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    for _ in 0..600 {
        if seen().len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen(), want);
    {
        let g = got.lock().unwrap();
        assert_eq!(g.bad_signatures, 0);
        for e in &g.events {
            assert_eq!(e["data"]["campaign_id"], task, "{e}");
            assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()), "{e}");
            assert!(e["created_at"].as_str().is_some_and(|t| t.contains('T')), "{e}");
            match e["type"].as_str().unwrap() {
                "failed" => assert_eq!(e["data"]["class"], "not_exist", "{e}"),
                "clicked" => {
                    assert_eq!(e["data"]["url"], "https://shop.example/sale", "{e}");
                    assert_eq!(e["data"]["machine"], false, "{e}");
                }
                "opened" => assert_eq!(e["data"]["machine"], false, "{e}"),
                _ => {}
            }
        }
    }
    // The failed answers are on record beside the delivered ones.
    let d = call_v1(
        &app,
        "GET",
        &format!("/webhooks/{hook}/deliveries"),
        Some(&key),
        None,
    )
    .await
    .body;
    let statuses: Vec<i64> = d["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["status"].as_i64())
        .collect();
    assert!(statuses.iter().filter(|s| **s == 500).count() >= 3, "{d}");
    assert!(
        statuses.iter().filter(|s| **s == 204).count() >= want.len(),
        "{d}"
    );
    let gone = call_v1(&app, "DELETE", &format!("/webhooks/{hook}"), Some(&key), None).await;
    assert_eq!(gone.status, 204);
    app.stop().await;
}

both_stores!(by_backend; every_event_arrives_signed_despite_failures);
