//! `qunfa admin …` as an operator uses it, against the same database a
//! running server uses.

mod common;

use common::*;

async fn customers_are_added_listed_and_shown(app: TestApp) {
    let id = app
        .admin_ok(&[
            "customer",
            "add",
            "--username",
            "acme",
            "--password",
            "pw",
            "--company",
            "Acme",
        ])
        .await;
    assert_eq!(id.trim(), "1");
    app.admin_ok(&["agent", "add", "--username", "reseller", "--password", "pw"])
        .await;
    let id2 = app
        .admin_ok(&[
            "customer",
            "add",
            "--username",
            "sub",
            "--password",
            "pw",
            "--agent",
            "reseller",
        ])
        .await;
    assert_eq!(id2.trim(), "2");

    let list = app.admin_ok(&["customer", "list"]).await;
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(
        rows[1].starts_with("1\tacme\tAcme\t-\tenabled\tall\t0\t0"),
        "{list}"
    );
    assert!(rows[2].starts_with("2\tsub\t\treseller\t"), "{list}");

    app.admin_ok(&["service", "set", "--username", "acme", "--quota", "100"])
        .await;
    app.admin_ok(&["service", "set", "--username", "acme", "--add", "25"])
        .await;
    let show = app.admin_ok(&["customer", "show", "--username", "ACME"]).await;
    assert!(show.contains("qty_available: 125"), "{show}");
    assert!(show.contains("qty_buytotal: 125"), "{show}");
    // Every change to the credits is in the ledger.
    assert!(show.contains("\tset\t+100\t100\t"), "{show}");
    assert!(show.contains("\tbuy\t+25\t125\t"), "{show}");
    app.stop().await;
}

async fn bad_commands_get_one_line_and_change_nothing(app: TestApp) {
    app.customer("acme", "pw", 100).await;
    let before = app.admin_ok(&["customer", "show", "--username", "acme"]).await;

    // Each command line is split on spaces.
    let cases = [
        ("customer add --username ACME --password x", "already exists"),
        (
            "customer add --username new --password x --agent ghost",
            "unknown agent",
        ),
        (
            "customer add --username new --password x --email not-an-address",
            "--email",
        ),
        ("customer add --username a:b --password x", "--username"),
        ("customer add --username new --password=", "--password"),
        ("customer add --username new", "--password"),
        ("customer show --username ghost", "unknown customer"),
        (
            "customer passwd --username ghost --password x",
            "unknown customer",
        ),
        ("service set --username ghost --quota 5", "unknown customer"),
        ("service set --username acme --quota -5", "--quota"),
        ("service set --username acme --quota lots", "--quota"),
        ("service set --username acme --add 0", "--add"),
        ("service set --username acme --begin 2012-02-30", "--begin"),
        ("service set --username acme --status on", "--status"),
        ("service set --username acme --type week", "--type"),
        (
            "service set --username acme --send-type carrier-pigeon",
            "--send-type",
        ),
        (
            "service set --username acme --begin 2026-02-01 --end 2026-01-01",
            "before",
        ),
        ("manager passwd --username ghost --password x", "unknown manager"),
        ("customer frobnicate", "frobnicate"),
    ];
    for (line, mentions) in cases {
        let mut args = vec!["admin"];
        args.extend(line.split(' '));
        let out = app.qunfa(&args).await;
        refused(&out, mentions);
    }
    app.admin_ok(&["manager", "add", "--username", "boss", "--password", "x"])
        .await;
    refused(
        &app.qunfa(&["admin", "manager", "add", "--username", "Boss", "--password", "y"])
            .await,
        "already exists",
    );

    let after = app.admin_ok(&["customer", "show", "--username", "acme"]).await;
    assert_eq!(before, after, "a refused command changed something");
    assert_eq!(app.admin_ok(&["customer", "list"]).await.lines().count(), 2);
    app.stop().await;
}

async fn passwords_change_for_the_api_at_once(app: TestApp) {
    app.customer("acme", "old", 0).await;
    assert!(
        app.api("account.php", "acme", "old", "do=customer-info")
            .await
            .text()
            .contains("<customer>")
    );
    app.admin_ok(&["customer", "passwd", "--username", "acme", "--password", "new"])
        .await;
    assert_eq!(
        app.api("account.php", "acme", "old", "do=customer-info")
            .await
            .status_code()
            .as_deref(),
        Some("auth_error")
    );
    assert!(
        app.api("account.php", "acme", "new", "do=customer-info")
            .await
            .text()
            .contains("<customer>")
    );
    app.stop().await;
}

async fn passwords_are_stored_with_a_slow_hash(app: TestApp) {
    app.customer("acme", "hunter2", 0).await;
    let digest = md5_hex("hunter2");
    let hash = customer_hash(&app, None).await;
    assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
    assert!(!hash.contains("hunter2") && !hash.contains(&digest));
    app.stop().await;
}

/// A hash an older release stored (argon2's default parameters, 19 MiB)
/// still lets its customer in, and is made again with today's parameters
/// at that login; a wrong password changes nothing.
async fn an_older_hash_still_verifies_and_is_made_again(app: TestApp) {
    use argon2::password_hash::PasswordHasher;
    app.customer("acme", "hunter2", 0).await;
    let old = argon2::Argon2::default()
        .hash_password(md5_hex("hunter2").as_bytes())
        .unwrap()
        .to_string();
    assert!(old.contains("m=19456,t=2,p=1"), "{old}");
    customer_hash(&app, Some(&old)).await;
    let info = |password: &'static str| app.api("account.php", "acme", password, "do=customer-info");
    assert!(!info("wrong").await.text().contains("<customer>"));
    assert_eq!(customer_hash(&app, None).await, old);
    assert!(info("hunter2").await.text().contains("<customer>"));
    let now = customer_hash(&app, None).await;
    assert!(now.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{now}");
    assert!(info("hunter2").await.text().contains("<customer>"));
    assert!(!info("wrong").await.text().contains("<customer>"));
    app.stop().await;
}

/// The customer's stored hash, after setting it to `set` when given.
async fn customer_hash(app: &TestApp, set: Option<&str>) -> String {
    const SET: &str = "UPDATE customers SET password_hash = $1";
    const GET: &str = "SELECT password_hash FROM customers";
    match app.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            if let Some(h) = set {
                sqlx::query(SET).bind(h).execute(&pool).await.unwrap();
            }
            let h = sqlx::query_scalar(GET).fetch_one(&pool).await.unwrap();
            pool.close().await;
            h
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            if let Some(h) = set {
                sqlx::query(SET).bind(h).execute(&pool).await.unwrap();
            }
            let h = sqlx::query_scalar(GET).fetch_one(&pool).await.unwrap();
            pool.close().await;
            h
        }
    }
}

/// `admin api-key`: the key alone on one line, listed without it, revoked
/// once; another customer's key id is refused as unknown.
async fn api_keys_are_added_listed_and_revoked(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.customer("other", "pw", 0).await;
    let out = app
        .admin_ok(&["api-key", "add", "--username", "acme", "--name", "shop"])
        .await;
    assert_eq!(out.lines().count(), 1, "{out}");
    let key = out.trim();
    assert!(key.starts_with("qk_"), "{key}");
    let listed = app.admin_ok(&["api-key", "list", "--username", "acme"]).await;
    assert!(
        listed.starts_with("id\tname\tcreated\tlast_used\trevoked\n"),
        "{listed}"
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[1], "shop");
    assert!(!listed.contains(key));
    let id = row[0];
    refused(
        &app.qunfa(&["admin", "api-key", "revoke", "--username", "other", "--id", id])
            .await,
        "--id",
    );
    app.admin_ok(&["api-key", "revoke", "--username", "acme", "--id", id])
        .await;
    refused(
        &app.qunfa(&["admin", "api-key", "revoke", "--username", "acme", "--id", id])
            .await,
        "--id",
    );
    refused(
        &app.qunfa(&["admin", "api-key", "add", "--username", "nobody"])
            .await,
        "nobody",
    );
    let listed = app.admin_ok(&["api-key", "list", "--username", "acme"]).await;
    assert!(
        !listed.lines().nth(1).unwrap().ends_with('\t'),
        "revoked time shown: {listed}"
    );
}

both_stores!(
    api_keys_are_added_listed_and_revoked,
    customers_are_added_listed_and_shown,
    bad_commands_get_one_line_and_change_nothing,
    passwords_change_for_the_api_at_once,
    passwords_are_stored_with_a_slow_hash,
    an_older_hash_still_verifies_and_is_made_again,
);
