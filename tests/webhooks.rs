//! Webhooks as a receiver sees them: an endpoint that fails its first
//! answers still hears every event of a campaign, each signed with its
//! webhook's secret; a URL on a private address is refused unless allowed;
//! another customer's webhook is as missing as one that never was.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::smtp::Act;
use common::*;
use qunfa::domain::ids::{CustomerId, WebhookId};
use qunfa::domain::webhooks::{self, WebhookError, WebhookInput};
use qunfa::webhooks::{SystemResolver, signature};

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
            let t: i64 = header
                .split(',')
                .find_map(|p| p.strip_prefix("t="))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if signature(secret.lock().unwrap().as_bytes(), t, &body) != header {
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
    })
    .await
    else {
        return;
    };
    let acme = CustomerId(app.customer("acme", "pw", 100).await);
    let other = CustomerId(app.customer("other", "pw", 100).await);
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(
        &app,
        "acme",
        &[("name", "promo"), ("subject", "Hi"), ("content", "<p>Hi</p>")],
    )
    .await;
    let secret = Arc::new(Mutex::new(String::new()));
    let (url, got) = receiver(secret.clone(), 3).await;
    let a = app.app();
    let input = WebhookInput {
        url: url.clone(),
        events: ["delivered", "failed", "campaign.done"]
            .map(String::from)
            .to_vec(),
    };
    let hook = webhooks::create_webhook(&a.store, &a.secret_box, &SystemResolver, true, acme, &input, 0)
        .await
        .unwrap();
    *secret.lock().unwrap() = hook.secret.clone();

    // Another customer's webhook id is as missing as one that never was.
    for id in [hook.webhook.id, WebhookId(9999)] {
        let e = webhooks::webhook_deliveries(&a.store, other, id, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, WebhookError::NotFound), "{e}");
        let e = webhooks::delete_webhook(&a.store, other, id, 0)
            .await
            .unwrap_err();
        assert!(matches!(e, WebhookError::NotFound), "{e}");
    }
    // A loopback URL is refused when private addresses are not allowed.
    let local = WebhookInput {
        url: url.clone(),
        events: vec!["delivered".into()],
    };
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
            "do=add-task&tpl_id=1&maillist_id=1&send_domain=acme.cn&send_account=news%40acme.cn&status=2",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let task: i64 = add.element("id").unwrap().parse().unwrap();
    task_done(&app, "acme", "pw", &task.to_string()).await;

    let mut waited = 0;
    while got.lock().unwrap().events.len() < 5 && waited < 600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let g = got.lock().unwrap();
    assert_eq!(g.bad_signatures, 0);
    let mut seen: Vec<(String, String)> = g
        .events
        .iter()
        .map(|e| {
            assert_eq!(e["data"]["campaign_id"], task, "{e}");
            assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()), "{e}");
            let ty = e["type"].as_str().unwrap().to_string();
            let who = e["data"]["email"].as_str().unwrap_or_default().to_string();
            if ty == "failed" {
                assert_eq!(e["data"]["class"], "not_exist", "{e}");
            }
            (ty, who)
        })
        .collect();
    seen.sort();
    seen.dedup();
    let want = [
        ("campaign.done", ""),
        ("delivered", "ok1@dest.cn"),
        ("delivered", "ok2@dest.cn"),
        ("delivered", "ok3@dest.cn"),
        ("failed", "gone@dest.cn"),
    ]
    .map(|(t, w)| (t.to_string(), w.to_string()));
    assert_eq!(seen, want);
    drop(g);
    // The failed answers are on record beside the delivered ones.
    let attempts = webhooks::webhook_deliveries(&a.store, acme, hook.webhook.id, 100)
        .await
        .unwrap();
    assert!(
        attempts.iter().filter(|t| t.status_code == Some(500)).count() >= 3,
        "{attempts:?}"
    );
    assert!(
        attempts.iter().filter(|t| t.status_code == Some(204)).count() >= 5,
        "{attempts:?}"
    );
    app.stop().await;
}

both_stores!(by_backend; every_event_arrives_signed_despite_failures);
