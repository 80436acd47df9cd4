//! The `qunfa` binary as a user starts it: a fresh data dir, settings from
//! the environment, a clean stop on SIGTERM, and logs without secrets.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Served {
    child: Child,
    base: String,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

fn qunfa(data_dir: &std::path::Path, database_url: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qunfa"));
    c.env("QUNFA_DATA_DIR", data_dir)
        .env("QUNFA_TIMEZONE", TIMEZONE)
        .env("QUNFA_LISTEN", "127.0.0.1:0")
        .env_remove("QUNFA_DATABASE_URL")
        .env_remove("QUNFA_LOG");
    if let Some(u) = database_url {
        c.env("QUNFA_DATABASE_URL", u);
    }
    c
}

async fn serve(data_dir: &std::path::Path, database_url: Option<&str>) -> Served {
    let mut child = qunfa(data_dir, database_url)
        .arg("serve")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn qunfa serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, mut log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = log.recv().await {
            if let Some(rest) = l.split("listening on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("qunfa serve exited before listening");
    })
    .await
    .expect("qunfa serve starts within a minute");
    Served { child, base, log }
}

impl Served {
    /// SIGTERM, then the rest of the log.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "qunfa serve exited with {status}");
        let mut rest = String::new();
        while let Some(l) = self.log.recv().await {
            rest.push_str(&l);
            rest.push('\n');
        }
        rest
    }
}

async fn admin(data_dir: &std::path::Path, database_url: Option<&str>, args: &[&str]) -> Cmd {
    qunfa(data_dir, database_url)
        .arg("admin")
        .args(args)
        .output()
        .await
        .unwrap()
        .into()
}

async fn a_fresh_start_serves_and_stops_cleanly(database_url: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("not-yet-there");
    let served = serve(&data_dir, database_url).await;
    let secret = std::fs::read_to_string(data_dir.join("link-secret")).ok();
    if database_url.is_none() {
        assert!(data_dir.join("qunfa.db").exists());
        assert_eq!(secret.as_deref().map(str::len), Some(64));
    }

    // The admin CLI works on the same database while serve runs.
    let add = admin(
        &data_dir,
        database_url,
        &["customer", "add", "--username", "acme", "--password", "pw"],
    )
    .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let set = admin(
        &data_dir,
        database_url,
        &["service", "set", "--username", "acme", "--quota", "7"],
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);

    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", served.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let digest = md5_hex("pw");
    let body = client
        .get(format!(
            "{}/mm-ms/api/account.php?username=acme&password={digest}&do=service-info",
            served.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("<qty_available>7</qty_available>"), "{body}");
    client
        .get(format!(
            "{}/mm-ms/apinew/account.php?do=customer-info",
            served.base
        ))
        .basic_auth("acme", Some("pw"))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{}/mm-ms/api/account.php?do=customer-info", served.base))
        .form(&[
            ("username", "acme"),
            ("password", digest.as_str()),
            ("pwd", "plain"),
        ])
        .send()
        .await
        .unwrap();

    let log = served.stop().await;
    assert!(
        log.contains("/mm-ms/api/account.php"),
        "requests are logged: {log}"
    );
    for secret in [digest.as_str(), "password=0", "cHc=", "Basic", "pwd=plain"] {
        assert!(!log.contains(secret), "the log contains {secret}: {log}");
    }

    // A restart keeps the link-signing secret.
    let again = serve(&data_dir, database_url).await;
    again.stop().await;
    assert_eq!(std::fs::read_to_string(data_dir.join("link-secret")).ok(), secret);
}

#[tokio::test]
async fn fresh_start_on_sqlite() {
    a_fresh_start_serves_and_stops_cleanly(None).await;
}

#[tokio::test]
async fn fresh_start_on_postgres() {
    if pg_off() {
        return;
    }
    let db = PgDatabase::create().await;
    a_fresh_start_serves_and_stops_cleanly(Some(&db.url)).await;
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("QUNFA_LISTEN", "nope"),
        ("QUNFA_TIMEZONE", "Mars/Base"),
        ("QUNFA_RETRY_DELAYS", "5m,soon"),
        ("QUNFA_DATABASE_URL", "mysql://x"),
        ("QUNFA_PUBLIC_URL", "example.com"),
    ] {
        let out: Cmd = qunfa(root.path(), None)
            .env(var, value)
            .arg("serve")
            .output()
            .await
            .unwrap()
            .into();
        assert_ne!(out.code, 0, "{var}={value} was accepted");
        assert_eq!(out.stderr.lines().count(), 1, "{var}: {}", out.stderr);
        assert!(out.stderr.contains(var), "{var}: {}", out.stderr);
    }
    // A flag wins over the environment.
    let out: Cmd = qunfa(root.path(), None)
        .env("QUNFA_LISTEN", "nope")
        .args(["--listen", "also-bad", "serve"])
        .output()
        .await
        .unwrap()
        .into();
    assert!(out.stderr.contains("also-bad"), "{}", out.stderr);
}

#[tokio::test]
async fn the_time_zone_is_fixed_at_first_start() {
    let root = tempfile::tempdir().unwrap();
    let first = admin(root.path(), None, &["customer", "list"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let out: Cmd = qunfa(root.path(), None)
        .env("QUNFA_TIMEZONE", "Europe/Berlin")
        .args(["admin", "customer", "list"])
        .output()
        .await
        .unwrap()
        .into();
    assert_ne!(out.code, 0);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("QUNFA_TIMEZONE"), "{}", out.stderr);
}
