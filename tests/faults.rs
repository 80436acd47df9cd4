//! Faults of what qunfa stands on, in the middle of a campaign: PostgreSQL
//! restarted, the data disk full. Nothing stored is lost, nobody gets a
//! message twice, and the campaign completes once the fault is gone.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::smtp::{Act, SmtpServer};
use common::*;

const RECIPIENTS: usize = 200;

/// A PostgreSQL server of the test's own, in a temp folder, so that it can
/// be restarted without disturbing the tests that share the machine's.
struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PgCluster {
    fn start() -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's programs in /usr/lib/postgresql (Debian's postgresql package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = tempfile::tempdir().expect("temp dir");
        // PostgreSQL refuses to run as root: its files belong to `postgres`.
        if is_root() {
            run(Command::new("chown").args(["postgres:"]).arg(dir.path()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PgCluster { dir, bin, port };
        cluster.pg(
            "initdb",
            &["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.path().display()
        );
        cluster.pg("pg_ctl", &["-w", "-o", &options, "-l", "log", "start", "-D"]);
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Runs one of PostgreSQL's programs as its user, the data folder last.
    fn pg(&self, program: &str, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        };
        run(cmd.args(args).arg(&data).current_dir(self.dir.path()));
    }

    /// A fast restart: every connection is cut, the server comes back.
    fn restart(&self) {
        self.pg("pg_ctl", &["-w", "-m", "fast", "-l", "log", "restart", "-D"]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.pg("pg_ctl", &["-w", "-m", "immediate", "stop", "-D"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a program");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn wait_until_received(sink: &SmtpServer, n: usize) {
    for _ in 0..600 {
        if sink.received().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} messages did not arrive");
}

/// Every one of `people` got exactly one message.
fn each_got_one(sink: &SmtpServer, people: &[String]) {
    let mut times: HashMap<String, usize> = HashMap::new();
    for r in sink.received() {
        for rcpt in r.rcpt_to {
            *times.entry(rcpt).or_default() += 1;
        }
    }
    for p in people {
        assert_eq!(times.get(p), Some(&1), "{p}: {:?} messages", times.get(p));
    }
    assert_eq!(times.len(), people.len());
}

/// The task's `send_status`, `send_count` and the credits left, once done.
async fn finished(app: &TestApp, id: i64) -> (String, String) {
    let mut last = String::new();
    for _ in 0..1200 {
        let list = app
            .api("task.php", "acme", "pw", &format!("do=task-list&id={id}"))
            .await;
        if list.element("send_status").as_deref() == Some("3") {
            let service = app.api("account.php", "acme", "pw", "do=service-info").await;
            return (
                list.element("send_count").unwrap(),
                service.element("qty_available").unwrap(),
            );
        }
        last = list.text();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the campaign does not complete: {last}");
}

/// Starts a campaign to `RECIPIENTS` people whom `sink` answers slowly
/// enough for a fault to land in the middle; the people and the task id.
async fn slow_campaign(app: &TestApp, sink: &SmtpServer) -> (Vec<String>, i64) {
    let people: Vec<String> = (0..RECIPIENTS).map(|i| format!("p{i}@dest.cn")).collect();
    for p in &people {
        sink.script(p, [Act::Tarpit(Duration::from_millis(40))]);
    }
    acme_campaign_ready(app, &people).await;
    (people, start_acme_task(app).await)
}

/// PostgreSQL restarts while a campaign is out: the connections die under
/// the sender, the outcomes of messages already accepted wait for the
/// database instead of being dropped (dropped, their leases would run out and
/// the messages go out again), and the campaign completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_mid_campaign_loses_and_doubles_nothing() {
    if pg_off() {
        eprintln!("QUNFA_TEST_PG=off: PostgreSQL half skipped on purpose");
        return;
    }
    let cluster = PgCluster::start();
    let sink = SmtpServer::start(Default::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = TestApp::start_on_postgres(cluster.url(), move |s| {
        s.smtp_relay = Some(relay.clone());
        s.delivery_lease = Some("5s".into());
    })
    .await;
    let (people, id) = slow_campaign(&app, &sink).await;
    // Twice, at a quarter and at half of the campaign: the more outcome
    // writes are cut in the middle, the likelier a lost one would show.
    for part in [4, 2] {
        wait_until_received(&sink, RECIPIENTS / part).await;
        assert!(
            sink.received().len() < RECIPIENTS,
            "the campaign ended before the restart"
        );
        cluster.restart();
    }
    // The API answers again on fresh connections.
    let list = app
        .api("task.php", "acme", "pw", &format!("do=task-list&id={id}"))
        .await;
    assert_eq!(list.element("id"), Some(id.to_string()), "{}", list.text());

    let (sent, credits) = finished(&app, id).await;
    assert_eq!(sent, RECIPIENTS.to_string());
    assert_eq!(
        credits,
        (1000 - RECIPIENTS).to_string(),
        "charged once per recipient"
    );
    each_got_one(&sink, &people);
    app.stop().await;
}

/// A small file system of its own (tmpfs) for a data folder, filled up on
/// purpose. Needs root to mount, as CI and this machine have.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk has no room left.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..512]).is_ok() {}
        let _ = f.flush();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// The SQLite data folder fills up: calls that must write answer with an
/// error and store nothing of what they were given, the campaign waits
/// instead of losing what it sent, and once there is room again everything
/// goes on where it stopped, on an intact database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_refuses_writes_cleanly_and_the_campaign_resumes() {
    let disk = SmallDisk::mount(16);
    let sink = SmtpServer::start(Default::default()).await;
    let relay = format!("127.0.0.1:{}", sink.port());
    let app = TestApp::start_in(disk.path(), move |s| {
        s.smtp_relay = Some(relay.clone());
    })
    .await;
    let (people, id) = slow_campaign(&app, &sink).await;
    wait_until_received(&sink, RECIPIENTS / 4).await;
    disk.fill();

    // A batch of addresses can't be stored: an error, and none of them is
    // there. Batches still fit while SQLite reuses room its write-ahead log
    // already has (after a checkpoint); the first that needs more is refused.
    let add_batch = |batch: &[String]| {
        let ml_addr = batch.join("\n");
        let app = &app;
        async move {
            app.api_post(
                "mloperate.php",
                "acme",
                "pw",
                "do=ml-addr-add&list_id=1",
                &[("ml_addr", &ml_addr)],
            )
            .await
        }
    };
    let mut accepted = 0;
    let mut round = 0;
    let (batch, add) = loop {
        let batch: Vec<String> = (0..2000).map(|i| format!("late{round}-{i}@dest.cn")).collect();
        let add = add_batch(&batch).await;
        if add.code() != "success" || round == 50 {
            break (batch, add);
        }
        accepted += batch.len();
        round += 1;
    };
    assert_eq!(add.code(), "internal_error", "{}", add.text());
    assert!(add.text().contains("磁盘已满"), "says why: {}", add.text());

    disk.free();
    let (sent, credits) = finished(&app, id).await;
    assert_eq!(sent, RECIPIENTS.to_string());
    assert_eq!(credits, (1000 - RECIPIENTS).to_string());
    each_got_one(&sink, &people);
    let detail = app
        .api("mloperate.php", "acme", "pw", "do=maillist-detail&id=1")
        .await;
    assert_eq!(
        detail.element("count"),
        Some((RECIPIENTS + accepted).to_string()),
        "{}",
        detail.text()
    );
    // The same batch, with room: all of it.
    let add = add_batch(&batch).await;
    assert_eq!(add.code(), "success", "{}", add.text());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    app.stop().await;
}
