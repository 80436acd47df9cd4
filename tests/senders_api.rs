//! Chapter 7 of the vendor API: a manager adds domains for customers, each
//! customer adds mailboxes to its own (or to a system domain), and nobody
//! else can; passwords are sealed at rest and never answered.

mod common;

use common::*;
use qunfa::domain::senders::mailbox_password;
use qunfa::store::Store;

const BS: &str = "bs.php";

async fn acme(app: &TestApp, rest: &str) -> Answer {
    app.api(BS, "acme", "pw", rest).await
}

async fn other(app: &TestApp, rest: &str) -> Answer {
    app.api(BS, "other", "pw2", rest).await
}

async fn manager(app: &TestApp, rest: &str) -> Answer {
    app.api(BS, "boss", "bosspw", rest).await
}

/// Runs each (who, request, expected status) in order; returns the answers.
async fn expect(app: &TestApp, calls: &[(&str, &str, &str)]) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (who, rest, code) in calls {
        let a = match *who {
            "acme" => acme(app, rest).await,
            "other" => other(app, rest).await,
            _ => manager(app, rest).await,
        };
        assert_eq!(a.code(), *code, "{who} {rest}: {}", a.text());
        answers.push(a);
    }
    answers
}

/// Customers acme (1) and other (2), manager boss; domains: acme.cn and
/// 例子.中国 for acme, other.cn for other, shared.cn for the platform.
async fn setup(app: &TestApp) {
    app.customer("acme", "pw", 0).await;
    app.customer("other", "pw2", 0).await;
    app.admin_ok(&["manager", "add", "--username", "boss", "--password", "bosspw"])
        .await;
    for (customer, domain) in [
        ("1", "Acme.CN"),
        ("1", "%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD"),
        ("2", "other.cn"),
        ("0", "shared.cn"),
    ] {
        let a = manager(
            app,
            &format!("do=domain-add&customer_id={customer}&domain={domain}"),
        )
        .await;
        assert_eq!(a.code(), "success", "{domain}: {}", a.text());
    }
}

async fn managers_add_domains_and_customers_list_theirs(app: TestApp) {
    setup(&app).await;
    // 7.2/7.3 authenticate managers only; a customer is an unknown user there.
    let by_customer = acme(&app, "do=domain-add&customer_id=1&domain=mine.cn").await;
    assert_eq!(by_customer.code(), "auth_error");
    let by_customer = acme(
        &app,
        "do=domain-add&customer_id=1&domain=mine.cn&user_type=manager",
    )
    .await;
    assert_eq!(by_customer.code(), "auth_error");
    for (rest, code) in [
        ("do=domain-add&domain=x.cn", "missing_param"),
        ("do=domain-add&customer_id=1", "missing_param"),
        ("do=domain-add&customer_id=1&domain=not_a_domain", "invalid_param"),
        ("do=domain-add&customer_id=one&domain=x.cn", "invalid_param"),
        ("do=domain-add&customer_id=99&domain=x.cn", "not_found"),
        ("do=domain-add&customer_id=2&domain=ACME.cn", "already_exists"),
        (
            "do=domain-add&customer_id=2&domain=xn--fsqu00a.xn--fiqs8s",
            "already_exists",
        ),
    ] {
        assert_eq!(manager(&app, rest).await.code(), code, "{rest}");
    }

    // A customer sees its own domains and the system's (0 first).
    let list = acme(&app, "do=domain-list").await;
    assert_golden("domain-list.xml", &list.body);
    assert_eq!(acme(&app, "do=domain-list&customer_id=1").await.body, list.body);
    assert_eq!(acme(&app, "do=domain-list&user_type=").await.body, list.body);
    assert_eq!(
        acme(&app, "do=domain-list&user_type=customer").await.body,
        list.body
    );
    assert_eq!(
        acme(&app, "do=domain-list&customer_id=2").await.code(),
        "permission_error"
    );
    assert_eq!(
        acme(&app, "do=domain-list&user_type=agents").await.code(),
        "invalid_param"
    );
    let theirs = other(&app, "do=domain-list").await.text();
    assert!(theirs.contains("other.cn") && theirs.contains("shared.cn") && !theirs.contains("acme.cn"));

    // A manager sees everything, or one customer's and the system's.
    let all = manager(&app, "do=domain-list&user_type=manager").await.text();
    assert_eq!(all.matches("<data>").count(), 4, "{all}");
    let two = manager(&app, "do=domain-list&user_type=manager&customer_id=2")
        .await
        .text();
    assert_eq!(two.matches("<data>").count(), 2, "{two}");
    let system = manager(&app, "do=domain-list&user_type=manager&customer_id=0")
        .await
        .text();
    assert_eq!(system.matches("<data>").count(), 1, "{system}");
    assert_eq!(
        manager(&app, "do=domain-list&user_type=manager&customer_id=99")
            .await
            .code(),
        "not_found"
    );
    // Manager credentials without user_type=manager are a customer's: unknown.
    assert_eq!(manager(&app, "do=domain-list").await.code(), "auth_error");

    // 7.3: only the owner named; mailboxes go with the domain.
    assert_eq!(
        acme(&app, "do=mailbox-add&mailbox=sales@acme.cn&pwd=x")
            .await
            .code(),
        "success"
    );
    assert_eq!(
        manager(&app, "do=domain-del&customer_id=2&domain=acme.cn")
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        manager(&app, "do=domain-del&customer_id=1&domain=nope.cn")
            .await
            .code(),
        "not_found"
    );
    assert_eq!(
        acme(&app, "do=domain-del&customer_id=1&domain=acme.cn")
            .await
            .code(),
        "auth_error"
    );
    let del = manager(&app, "do=domain-del&customer_id=1&domain=ACME.cn").await;
    assert_eq!(del.code(), "success", "{}", del.text());
    assert_eq!(
        acme(&app, "do=mailbox-list&domain=acme.cn").await.code(),
        "not_found"
    );
    let count: i64 = match &app.app().store {
        Store::Sqlite(p) => sqlx::query_scalar("SELECT COUNT(*) FROM mailboxes")
            .fetch_one(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_scalar("SELECT COUNT(*) FROM mailboxes")
            .fetch_one(p)
            .await
            .unwrap(),
    };
    assert_eq!(count, 0);
    app.stop().await;
}

async fn customers_add_mailboxes_to_their_domains_only(app: TestApp) {
    setup(&app).await;
    let answers = expect(
        &app,
        &[
            (
                "acme",
                "do=mailbox-add&mailbox=zeta@acme.cn&pwd=s3cret-z",
                "success",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=sales@ACME.cn&pwd=s3cret-s",
                "success",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=Alpha@acme.cn&pwd=s3cret-a",
                "success",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=info@%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD&pwd=s3cret-i",
                "success",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=sales@shared.cn&pwd=s3cret-t",
                "success",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=x@other.cn&pwd=s3cret-x",
                "not_found",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=x@nope.cn&pwd=s3cret-x",
                "not_found",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=%E5%BC%A0@acme.cn&pwd=s3cret-x",
                "format_error",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=acme.cn&pwd=s3cret-x",
                "format_error",
            ),
            (
                "acme",
                "do=mailbox-add&mailbox=sales@acme.cn&pwd=s3cret-again",
                "already_exists",
            ),
            ("acme", "do=mailbox-add&mailbox=y@acme.cn", "missing_param"),
            ("acme", "do=mailbox-add&pwd=s3cret-x", "missing_param"),
            (
                "acme",
                "do=mailbox-add&mailbox=y@acme.cn&customer_id=2&pwd=s3cret-x",
                "permission_error",
            ),
            (
                "other",
                "do=mailbox-add&mailbox=y@acme.cn&pwd=s3cret-x",
                "not_found",
            ),
            (
                "other",
                "do=mailbox-add&mailbox=SALES@shared.cn&pwd=s3cret-x",
                "already_exists",
            ),
            (
                "boss",
                "do=mailbox-add&user_type=manager&mailbox=noreply@shared.cn&pwd=s3cret-n",
                "missing_param",
            ),
            (
                "boss",
                "do=mailbox-add&user_type=manager&customer_id=0&mailbox=noreply@shared.cn&pwd=s3cret-n",
                "success",
            ),
            (
                "boss",
                "do=mailbox-add&user_type=manager&customer_id=0&mailbox=n@acme.cn&pwd=s3cret-n",
                "not_found",
            ),
            (
                "boss",
                "do=mailbox-add&user_type=manager&customer_id=2&mailbox=bulk@other.cn&pwd=s3cret-b",
                "success",
            ),
        ],
    )
    .await;
    let long = format!("do=mailbox-add&mailbox=y@acme.cn&pwd={}", "x".repeat(65));
    assert_eq!(acme(&app, &long).await.code(), "invalid_param");

    // 7.4: by address; paged when `page` is present.
    let list = async |rest: &str| acme(&app, &format!("do=mailbox-list&domain=acme.cn{rest}")).await;
    let addresses = |a: Answer| a.elements("mailbox");
    assert_eq!(
        addresses(list("").await),
        ["Alpha@acme.cn", "sales@acme.cn", "zeta@acme.cn"]
    );
    assert_eq!(addresses(list("&limit=2").await).len(), 3);
    assert_eq!(
        addresses(list("&page=1&limit=2").await),
        ["Alpha@acme.cn", "sales@acme.cn"]
    );
    assert_eq!(addresses(list("&page=2&limit=2").await), ["zeta@acme.cn"]);
    assert!(
        list("&page=3&limit=2")
            .await
            .text()
            .contains("<mailbox_list></mailbox_list>")
    );
    assert_eq!(addresses(list("&page=x&limit=-1").await).len(), 3);
    let idn = acme(
        &app,
        "do=mailbox-list&domain=%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD",
    )
    .await;
    assert_eq!(addresses(idn), ["info@xn--fsqu00a.xn--fiqs8s"]);
    // In a system domain: its own and the platform's, not another's.
    assert_eq!(
        other(&app, "do=mailbox-add&mailbox=theirs@shared.cn&pwd=s3cret-o")
            .await
            .code(),
        "success"
    );
    let shared = acme(&app, "do=mailbox-list&domain=shared.cn").await;
    assert_golden("mailbox-list.xml", &shared.body);
    // Another customer's domain is as unknown as a missing one.
    let foreign = other(&app, "do=mailbox-list&domain=acme.cn").await;
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(
        foreign.body,
        other(&app, "do=mailbox-list&domain=nope.cn").await.body
    );
    assert_eq!(acme(&app, "do=mailbox-list").await.code(), "missing_param");
    assert_eq!(
        acme(&app, "do=mailbox-list&domain=a_b").await.code(),
        "invalid_param"
    );
    // A manager: all of a domain, or one owner's.
    let m = async |rest: &str| {
        let rest = format!("do=mailbox-list&user_type=manager&domain=shared.cn{rest}");
        addresses(manager(&app, &rest).await)
    };
    assert_eq!(
        m("").await,
        ["noreply@shared.cn", "sales@shared.cn", "theirs@shared.cn"]
    );
    assert_eq!(m("&customer_id=0").await, ["noreply@shared.cn"]);
    assert_eq!(m("&customer_id=2").await, ["theirs@shared.cn"]);

    // Passwords: never answered, sealed at rest, opened for sending.
    let qa = app.app();
    for a in &answers {
        assert!(!a.text().contains("s3cret"), "{}", a.text());
    }
    assert!(!list("").await.text().contains("s3cret"));
    let raw: Vec<Vec<u8>> = match &qa.store {
        Store::Sqlite(p) => sqlx::query_scalar("SELECT password FROM mailboxes")
            .fetch_all(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_scalar("SELECT password FROM mailboxes")
            .fetch_all(p)
            .await
            .unwrap(),
    };
    assert!(raw.len() >= 8);
    assert!(raw.iter().all(|r| !r.windows(6).any(|w| w == b"s3cret")));
    let sales = qunfa::domain::senders::mailbox(
        &qa.store,
        &qunfa::domain::senders::MailboxAddress::parse("SALES@acme.cn").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let pw = mailbox_password(&qa.store, &qa.secret_box, &sales).await.unwrap();
    assert_eq!(pw.expose(), "s3cret-s");
    app.stop().await;
}

async fn mailboxes_are_edited_and_deleted_by_their_owners(app: TestApp) {
    setup(&app).await;
    for rest in [
        "do=mailbox-add&mailbox=sales@acme.cn&pwd=old",
        "do=mailbox-add&mailbox=zeta@acme.cn&pwd=old",
    ] {
        assert_eq!(acme(&app, rest).await.code(), "success");
    }
    assert_eq!(
        manager(
            &app,
            "do=mailbox-add&user_type=manager&customer_id=0&mailbox=noreply@shared.cn&pwd=old"
        )
        .await
        .code(),
        "success"
    );
    expect(
        &app,
        &[
            (
                "other",
                "do=mailbox-edit&mailbox=sales@acme.cn&pwd=new",
                "not_found",
            ),
            (
                "acme",
                "do=mailbox-edit&mailbox=nobody@acme.cn&pwd=new",
                "not_found",
            ),
            ("acme", "do=mailbox-edit&mailbox=sales@acme.cn", "missing_param"),
            (
                "acme",
                "do=mailbox-edit&mailbox=not-an-address&pwd=new",
                "invalid_param",
            ),
            (
                "acme",
                "do=mailbox-edit&mailbox=sales@acme.cn&pwd=new&customer_id=2",
                "permission_error",
            ),
            (
                "acme",
                "do=mailbox-edit&mailbox=noreply@shared.cn&pwd=mine",
                "permission_error",
            ),
            (
                "acme",
                "do=mailbox-del&mailbox=noreply@shared.cn",
                "permission_error",
            ),
            ("other", "do=mailbox-del&mailbox=zeta@acme.cn", "not_found"),
            (
                "boss",
                "do=mailbox-edit&user_type=manager&mailbox=sales@acme.cn&pwd=new",
                "missing_param",
            ),
            (
                "boss",
                "do=mailbox-edit&user_type=manager&customer_id=2&mailbox=sales@acme.cn&pwd=new",
                "not_found",
            ),
            (
                "acme",
                "do=mailbox-edit&mailbox=Sales@Acme.cn&pwd=new%20one",
                "success",
            ),
            (
                "boss",
                "do=mailbox-edit&user_type=manager&customer_id=0&mailbox=noreply@shared.cn&pwd=p2",
                "success",
            ),
            ("acme", "do=mailbox-del&mailbox=zeta@acme.cn", "success"),
            ("acme", "do=mailbox-del&mailbox=zeta@acme.cn", "not_found"),
            (
                "boss",
                "do=mailbox-del&user_type=manager&customer_id=0&mailbox=noreply@shared.cn",
                "success",
            ),
        ],
    )
    .await;
    let qa = app.app();
    let sales = qunfa::domain::senders::mailbox(
        &qa.store,
        &qunfa::domain::senders::MailboxAddress::parse("sales@acme.cn").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        mailbox_password(&qa.store, &qa.secret_box, &sales)
            .await
            .unwrap()
            .expose(),
        "new one"
    );
    let left = acme(&app, "do=mailbox-list&domain=acme.cn").await.text();
    assert!(left.contains("sales@acme.cn") && !left.contains("zeta"), "{left}");
    app.stop().await;
}

both_stores!(
    managers_add_domains_and_customers_list_theirs,
    customers_add_mailboxes_to_their_domains_only,
    mailboxes_are_edited_and_deleted_by_their_owners,
);
