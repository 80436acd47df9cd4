//! Chapter 1 of the vendor API and everything every call goes through:
//! authentication, `do`, the error envelope, both API roots.

mod common;

use base64::Engine;
use common::*;

const ACCOUNT: &str = "/mm-ms/api/account.php";

async fn profiled_customer(app: &TestApp) {
    app.admin_ok(&[
        "customer",
        "add",
        "--username",
        "acme",
        "--password",
        "s3cret",
        "--company",
        "Acme & Sons <华东>",
        "--contact",
        "张三",
        "--phone",
        "021-5555",
        "--mobile",
        "13800000000",
        "--email",
        "ops@acme.cn",
        "--im",
        "QQ:10001",
        "--address",
        "上海市 1号",
    ])
    .await;
    app.admin_ok(&[
        "service",
        "set",
        "--username",
        "acme",
        "--quota",
        "5000",
        "--begin",
        "2026-01-01",
        "--end",
        "2030-12-31",
    ])
    .await;
}

async fn customer_and_service_info_answer_as_documented(app: TestApp) {
    profiled_customer(&app).await;
    let info = app.api("account.php", "acme", "s3cret", "do=customer-info").await;
    assert_eq!(info.status, 200);
    assert_eq!(info.content_type, "text/xml; charset=UTF-8");
    assert_golden("customer-info.xml", &info.body);

    let service = app.api("account.php", "acme", "s3cret", "do=service-info").await;
    assert_golden("service-info.xml", &service.body);

    // Upper-case hex is the same digest (A.3 rule 2); user names ignore case.
    let upper = app
        .get(&format!(
            "{ACCOUNT}?username=ACME&password={}&do=customer-info",
            md5_hex("s3cret").to_uppercase()
        ))
        .await;
    assert_eq!(upper.body, info.body);

    // POST carries the same call; the body may even carry do.
    let posted = app
        .post_form(
            &format!("{ACCOUNT}?username=acme&password={}", md5_hex("s3cret")),
            &[("do", "service-info")],
        )
        .await;
    assert_eq!(posted.body, service.body);
    app.stop().await;
}

async fn every_authentication_failure_looks_the_same(app: TestApp) {
    profiled_customer(&app).await;
    app.customer("other", "otherpw", 10).await;
    app.admin_ok(&["manager", "add", "--username", "boss", "--password", "bosspw"])
        .await;
    app.customer("gone", "gonepw", 10).await;
    app.admin_ok(&["customer", "disable", "--username", "gone"]).await;

    let wrong_digest = format!(
        "{ACCOUNT}?username=acme&password={}&do=customer-info",
        md5_hex("nope")
    );
    let plain_password = format!("{ACCOUNT}?username=acme&password=s3cret&do=customer-info");
    let short_password = format!("{ACCOUNT}?username=acme&password=1111111&do=customer-info");
    let no_password = format!("{ACCOUNT}?username=acme&do=customer-info");
    let no_username = format!("{ACCOUNT}?password={}&do=customer-info", md5_hex("s3cret"));
    let unknown_user = format!(
        "{ACCOUNT}?username=nobody&password={}&do=customer-info",
        md5_hex("s3cret")
    );
    let foreign = format!(
        "{ACCOUNT}?username=acme&password={}&do=customer-info",
        md5_hex("otherpw")
    );
    let manager = format!(
        "{ACCOUNT}?username=boss&password={}&do=customer-info",
        md5_hex("bosspw")
    );
    let disabled = format!(
        "{ACCOUNT}?username=gone&password={}&do=customer-info",
        md5_hex("gonepw")
    );
    let bad_do = format!("{ACCOUNT}?username=acme&password={}&do=nonsense", md5_hex("nope"));
    for url in [
        wrong_digest,
        plain_password,
        short_password,
        no_password,
        no_username,
        unknown_user,
        foreign,
        manager,
        disabled,
        bad_do,
    ] {
        let a = app.get(&url).await;
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.content_type, "text/xml; charset=UTF-8", "{url}");
        assert_golden("auth-error.xml", &a.body);
        let text = a.text();
        assert!(
            !text.contains("acme") && !text.contains("Acme"),
            "{url} leaked: {text}"
        );
    }
    app.stop().await;
}

async fn unknown_or_missing_do_comes_after_authentication(app: TestApp) {
    app.customer("acme", "s3cret", 0).await;
    for rest in ["do=nonsense", "do=Customer-Info", "do=", "x=1"] {
        let a = app.api("account.php", "acme", "s3cret", rest).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.status_code().as_deref(), Some("unknown_do"), "{rest}");
        if rest == "do=nonsense" {
            assert_golden("unknown-do.xml", &a.body);
        }
    }
    app.stop().await;
}

async fn paths_and_methods_outside_the_api(app: TestApp) {
    app.customer("acme", "s3cret", 0).await;
    let q = format!("?username=acme&password={}&do=customer-info", md5_hex("s3cret"));
    assert_eq!(app.get(&format!("/mm-ms/api/nosuch.php{q}")).await.status, 404);
    assert_eq!(app.get(&format!("/mm-ms/api/account.php/x{q}")).await.status, 404);
    assert_eq!(app.get(&format!("/mm-ms/api/account.php/{q}")).await.status, 404);
    let put = app
        .send(app.client.put(format!("{}{ACCOUNT}{q}", app.base)))
        .await;
    assert_eq!(put.status, 405);
    let head = app
        .send(app.client.head(format!("{}{ACCOUNT}{q}", app.base)))
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    app.stop().await;
}

async fn apinew_takes_basic_auth_with_plain_or_md5(app: TestApp) {
    profiled_customer(&app).await;
    let expected = app
        .api("account.php", "acme", "s3cret", "do=customer-info")
        .await
        .body;
    let url = format!("{}/mm-ms/apinew/account.php?do=customer-info", app.base);
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    for pass in ["s3cret".to_string(), md5_hex("s3cret")] {
        let a = app
            .send(app.client.get(&url).header("Authorization", basic("acme", &pass)))
            .await;
        assert_eq!(a.body, expected, "Basic with {pass}");
    }
    let wrong = app
        .send(
            app.client
                .get(&url)
                .header("Authorization", basic("acme", "wrong")),
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert_golden("auth-error.xml", &wrong.body);
    // A header that is present decides, even if the query names good credentials.
    let both = app
        .send(
            app.client
                .get(format!("{url}&username=acme&password={}", md5_hex("s3cret")))
                .header("Authorization", basic("acme", "wrong")),
        )
        .await;
    assert_eq!(both.status_code().as_deref(), Some("auth_error"));
    // Without the header, the query's credentials are read.
    let query = app
        .get(&format!(
            "/mm-ms/apinew/account.php?do=customer-info&username=acme&password={}",
            md5_hex("s3cret")
        ))
        .await;
    assert_eq!(query.body, expected);
    app.stop().await;
}

async fn repeated_failures_are_throttled(app: TestApp) {
    app.customer("acme", "s3cret", 0).await;
    for _ in 0..10 {
        let a = app.api("account.php", "acme", "wrong", "do=customer-info").await;
        assert_eq!(a.status_code().as_deref(), Some("auth_error"));
    }
    // Now even the right password is refused from this address for a while.
    let a = app.api("account.php", "acme", "s3cret", "do=customer-info").await;
    assert_eq!(a.status_code().as_deref(), Some("auth_error"));
    app.stop().await;
}

async fn gbk_encoded_user_names_are_understood(app: TestApp) {
    app.customer("客户", "pw", 0).await;
    // "客户" in GBK is BF CD BB A7.
    let a = app
        .get(&format!(
            "{ACCOUNT}?username=%BF%CD%BB%A7&password={}&do=customer-info",
            md5_hex("pw")
        ))
        .await;
    assert!(a.text().contains("<username>客户</username>"), "{}", a.text());
    app.stop().await;
}

async fn day_services_show_todays_allowance(app: TestApp) {
    app.customer("daily", "pw", 0).await;
    app.admin_ok(&[
        "service",
        "set",
        "--username",
        "daily",
        "--type",
        "day",
        "--quota",
        "300",
    ])
    .await;
    let a = app.api("account.php", "daily", "pw", "do=service-info").await;
    let t = a.text();
    assert!(t.contains("<service_type>day</service_type>"), "{t}");
    assert!(t.contains("<qty_available>300</qty_available>"), "{t}");
    assert!(t.contains("<qty_buytotal>300</qty_buytotal>"), "{t}");
    assert!(t.contains("<beginning_date>0000-00-00</beginning_date>"), "{t}");
    app.admin_ok(&[
        "service",
        "set",
        "--username",
        "daily",
        "--add",
        "50",
        "--status",
        "disabled",
    ])
    .await;
    let t = app
        .api("account.php", "daily", "pw", "do=service-info")
        .await
        .text();
    assert!(t.contains("<qty_available>350</qty_available>"), "{t}");
    assert!(t.contains("<service_status>disabled</service_status>"), "{t}");
    // A disabled service does not block authentication (A.3 rule 7).
    assert!(
        app.api("account.php", "daily", "pw", "do=customer-info")
            .await
            .text()
            .contains("<customer>")
    );
    app.stop().await;
}

async fn health_and_metrics(app: TestApp) {
    app.customer("acme", "s3cret", 0).await;
    let h = app.get("/healthz").await;
    assert_eq!(h.status, 200);
    app.api("account.php", "acme", "s3cret", "do=customer-info").await;
    let m = app.get("/metrics").await;
    assert_eq!(m.status, 200);
    let t = m.text();
    assert!(
        t.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"/mm-ms/api/account.php\"")
            && l.contains("status=\"200\"")),
        "{t}"
    );
    assert!(t.contains("http_request_duration_seconds"), "{t}");
    app.stop().await;
}

async fn data_survives_a_restart(mut app: TestApp) {
    profiled_customer(&app).await;
    let before = app
        .api("account.php", "acme", "s3cret", "do=service-info")
        .await
        .body;
    app.restart().await;
    let after = app
        .api("account.php", "acme", "s3cret", "do=service-info")
        .await
        .body;
    assert_eq!(before, after);
    app.stop().await;
}

both_stores!(
    customer_and_service_info_answer_as_documented,
    every_authentication_failure_looks_the_same,
    unknown_or_missing_do_comes_after_authentication,
    paths_and_methods_outside_the_api,
    apinew_takes_basic_auth_with_plain_or_md5,
    repeated_failures_are_throttled,
    gbk_encoded_user_names_are_understood,
    day_services_show_todays_allowance,
    health_and_metrics,
    data_survives_a_restart,
);
