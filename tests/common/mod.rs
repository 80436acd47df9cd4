//! The test harness: the real server on port 0 with a temp data dir, on
//! SQLite or on a fresh, uniquely named PostgreSQL database (dropped after);
//! the real `qunfa` binary for admin commands; a plain HTTP client; an SMTP
//! server that answers as scripted and keeps what it receives (`smtp`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

pub mod dns;
pub mod smtp;

use qunfa::Running;
use qunfa::config::Settings;
use sqlx::Connection;

pub const TIMEZONE: &str = "Asia/Shanghai";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database made for one test, dropped with it.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

fn pg_server_url() -> String {
    std::env::var("QUNFA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// Whether the PostgreSQL half is turned off on purpose (`QUNFA_TEST_PG=off`).
pub fn pg_off() -> bool {
    std::env::var("QUNFA_TEST_PG").is_ok_and(|v| v == "off")
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        Self::create_on(pg_server_url()).await
    }

    /// On the PostgreSQL server at `server` (`postgres://user@host:port`).
    pub async fn create_on(server: String) -> PgDatabase {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin_url = format!("{server}/postgres");
        let name = format!(
            "qunfa_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand_suffix()
        );
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server} ({e}). Start it, point QUNFA_TEST_PG_URL \
                 at one, or set QUNFA_TEST_PG=off to skip the PostgreSQL half on purpose."
            )
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        PgDatabase {
            url: format!("{server}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we can await in: use a thread
        // with its own small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}")
}

/// One running qunfa with its own data.
pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub client: reqwest::Client,
    running: Option<Running>,
    _pg: Option<PgDatabase>,
    /// Settings a test changes, applied on every (re)start.
    tweak: Box<dyn Fn(&mut Settings) + Send + Sync>,
    /// Whether the server runs its own engine; without it the test drives
    /// it a step at a time ([`TestApp::drive`]).
    engine: bool,
    mailer: std::sync::OnceLock<std::sync::Arc<qunfa::delivery::Mailer>>,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    /// The text of the first `<name>` element, CDATA unwrapped.
    pub fn element(&self, name: &str) -> Option<String> {
        let t = self.text();
        let open = format!("<{name}>");
        let start = t.find(&open)? + open.len();
        let end = t[start..].find(&format!("</{name}>"))? + start;
        let v = &t[start..end];
        Some(
            v.strip_prefix("<![CDATA[")
                .and_then(|v| v.strip_suffix("]]>"))
                .unwrap_or(v)
                .to_string(),
        )
    }

    /// Every `<name>` element's text, in order.
    pub fn elements(&self, name: &str) -> Vec<String> {
        let t = self.text();
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let mut out = Vec::new();
        let mut rest = t.as_str();
        while let Some(s) = rest.find(&open) {
            let after = &rest[s + open.len()..];
            let Some(e) = after.find(&close) else { break };
            out.push(after[..e].to_string());
            rest = &after[e + close.len()..];
        }
        out
    }

    /// The `<status>` of a result envelope, or "" if the body is none.
    pub fn code(&self) -> String {
        self.status_code().unwrap_or_default()
    }

    /// The `<status>` of a result envelope, if the body is one.
    pub fn status_code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<status>")? + "<status>".len();
        let end = t[start..].find("</status>")? + start;
        Some(t[start..end].to_string())
    }
}

/// What the `qunfa` binary did.
pub struct Cmd {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Cmd {
    fn from(o: Output) -> Cmd {
        Cmd {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Exactly one line on stderr, a non-zero exit, nothing on stdout.
pub fn refused(out: &Cmd, mentions: &str) {
    assert_ne!(out.code, 0, "should have failed: {}", out.stdout);
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line: {:?}", out.stderr);
    assert!(
        lines[0].contains(mentions),
        "{:?} should mention {mentions}",
        lines[0]
    );
}

pub fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(s.as_bytes()))
}

impl TestApp {
    /// Starts qunfa on `backend`; `None` only when PostgreSQL is off on purpose.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::start_with(backend, |_| {}).await
    }

    /// Like [`TestApp::start_with`], but the test drives the engine
    /// ([`TestApp::drive`], [`task_done`]) instead of the server running it.
    pub async fn start_driven(
        backend: Backend,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> Option<TestApp> {
        let mut app = Self::start_with(backend, tweak).await?;
        app.restart_with(false).await;
        Some(app)
    }

    /// Like [`TestApp::start`], with some settings changed.
    pub async fn start_with(
        backend: Backend,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> Option<TestApp> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres if pg_off() => {
                eprintln!("QUNFA_TEST_PG=off: PostgreSQL half skipped on purpose");
                return None;
            }
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let data_dir = tempfile::tempdir().expect("temp data dir");
        Some(Self::start_on(backend, data_dir, pg, tweak).await)
    }

    /// Starts qunfa on SQLite with its data folder made inside `parent`.
    pub async fn start_in(
        parent: &std::path::Path,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> TestApp {
        let data_dir = tempfile::tempdir_in(parent).expect("temp data dir");
        Self::start_on(Backend::Sqlite, data_dir, None, tweak).await
    }

    /// Starts qunfa on a database of the PostgreSQL server at `server`.
    pub async fn start_on_postgres(
        server: String,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> TestApp {
        let pg = PgDatabase::create_on(server).await;
        let data_dir = tempfile::tempdir().expect("temp data dir");
        Self::start_on(Backend::Postgres, data_dir, Some(pg), tweak).await
    }

    async fn start_on(
        backend: Backend,
        data_dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> TestApp {
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", data_dir.path().join("qunfa.db").display()),
        };
        let mut app = TestApp {
            backend,
            base: String::new(),
            data_dir,
            database_url,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running: None,
            _pg: pg,
            tweak: Box::new(tweak),
            engine: true,
            mailer: std::sync::OnceLock::new(),
        };
        app.restart().await;
        app
    }

    /// Like [`TestApp::start_with`], relaying all mail to a fresh SMTP test
    /// server, which comes back with the app.
    pub async fn start_relaying(
        backend: Backend,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> Option<(TestApp, smtp::SmtpServer)> {
        let sink = smtp::SmtpServer::start(smtp::ServerOptions::default()).await;
        let relay = format!("127.0.0.1:{}", sink.port());
        let app = TestApp::start_with(backend, move |s| {
            s.smtp_relay = Some(relay.clone());
            tweak(s);
        })
        .await?;
        Some((app, sink))
    }

    /// The settings this app runs with (listening on a free port).
    pub fn settings(&self) -> Settings {
        let mut s = Settings {
            data_dir: Some(self.data_dir.path().display().to_string()),
            database_url: Some(self.database_url.clone()),
            listen: Some("127.0.0.1:0".into()),
            timezone: Some(TIMEZONE.into()),
            ..Settings::default()
        };
        (self.tweak)(&mut s);
        s
    }

    /// Stops the server if it runs and starts it again on the same data,
    /// with its engine or without as before.
    pub async fn restart(&mut self) {
        self.restart_with(self.engine).await
    }

    /// Restarts with or without the engine (without: the test drives it).
    pub async fn restart_with(&mut self, engine: bool) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        self.engine = engine;
        self.mailer = std::sync::OnceLock::new();
        let config = self.settings().validate().expect("test settings are valid");
        let running = Running::start_with(config, engine).await.expect("server starts");
        self.base = format!("http://{}", running.http_addr());
        self.running = Some(running);
    }

    /// One turn of the engine of a server started without it (imports,
    /// scheduler, one batch of deliveries sent and recorded); whether it
    /// found work.
    pub async fn drive(&self) -> bool {
        assert!(!self.engine, "the server runs its own engine");
        let app = self.app();
        let mailer = self
            .mailer
            .get_or_init(|| qunfa::engine::mailer(app).expect("an SMTP client"));
        qunfa::engine::step(app, mailer).await.expect("an engine step")
    }

    /// Stops the server and keeps its data, for a process of its own to take over.
    pub async fn halt(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    /// Where the bounce listener listens (QUNFA_BOUNCE_LISTEN set).
    pub fn bounce_addr(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .expect("running")
            .bounce_addr
            .expect("a bounce listener")
    }

    /// The running application, for tests of parts below the HTTP edge.
    pub fn app(&self) -> &qunfa::App {
        &self.running.as_ref().expect("running").app
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// Runs `qunfa` with this app's settings in its environment.
    pub async fn qunfa(&self, args: &[&str]) -> Cmd {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_qunfa"))
            .args(args)
            .env("QUNFA_DATA_DIR", self.data_dir.path())
            .env("QUNFA_DATABASE_URL", &self.database_url)
            .env("QUNFA_TIMEZONE", TIMEZONE)
            .env_remove("QUNFA_LOG")
            .output()
            .await
            .expect("run qunfa")
            .into()
    }

    /// `qunfa admin …`, which must succeed.
    pub async fn admin_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["admin"];
        full.extend_from_slice(args);
        let out = self.qunfa(&full).await;
        assert_eq!(out.code, 0, "qunfa {full:?} failed: {}", out.stderr);
        out.stdout
    }

    /// Adds a customer with a service of `credits` and returns its id.
    pub async fn customer(&self, username: &str, password: &str, credits: i64) -> i64 {
        let id = self
            .admin_ok(&["customer", "add", "--username", username, "--password", password])
            .await;
        self.admin_ok(&[
            "service",
            "set",
            "--username",
            username,
            "--quota",
            &credits.to_string(),
        ])
        .await;
        id.trim().parse().expect("customer add prints the id")
    }

    pub async fn get(&self, path_and_query: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .expect("GET");
        read(r).await
    }

    /// `/mm-ms/api/{script}?username=…&password=md5(…)&{rest}` with a form body.
    pub async fn api_post(
        &self,
        script: &str,
        user: &str,
        password: &str,
        rest: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let q = format!(
            "/mm-ms/api/{script}?username={}&password={}&{rest}",
            urlencode(user),
            md5_hex(password)
        );
        self.post_form(&q, form).await
    }

    pub async fn post_form(&self, path_and_query: &str, form: &[(&str, &str)]) -> Answer {
        let r = self
            .client
            .post(format!("{}{path_and_query}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST");
        read(r).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        read(req.send().await.expect("request")).await
    }

    /// `/mm-ms/api/{script}?username=…&password=md5(…)&{rest}`.
    pub async fn api(&self, script: &str, user: &str, password: &str, rest: &str) -> Answer {
        let q = format!(
            "/mm-ms/api/{script}?username={}&password={}&{rest}",
            urlencode(user),
            md5_hex(password)
        );
        self.get(&q).await
    }
}

pub async fn read(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.expect("body").to_vec();
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Compares with `tests/golden/NAME`; `QUNFA_BLESS=1` rewrites the file.
pub fn assert_golden(name: &str, actual: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("QUNFA_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "answer differs from golden file {name}"
    );
}

/// Generates a SQLite and a PostgreSQL test for each `async fn name(app: TestApp)`
/// (or `async fn name(Backend)` after `by_backend;`).
#[macro_export]
macro_rules! both_stores {
    // `by_backend;`: each test is `async fn name(Backend)` and starts what it
    // needs itself (an SMTP server before the app that sends to it).
    (by_backend; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(Backend::Postgres).await;
                }
            }
        )*
    };
    // `start = f;`: the apps come from `async fn f(Backend) -> Option<TestApp>`.
    (start = $start:path; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $start(Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $start(Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_stores!(start = TestApp::start; $($name),*);
    };
}

/// The Python with dkimpy: `QUNFA_TEST_PYTHON` (scripts/test.sh sets it to
/// the virtualenv it prepares) or `python3`.
pub fn python() -> String {
    std::env::var("QUNFA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs dkimpy over `message` with `records`; one verdict per signature.
pub async fn dkimpy_verdicts(dir: &std::path::Path, message: &[u8], records: &[(String, String)]) -> String {
    let msg = dir.join("message.eml");
    let table = dir.join("records.tsv");
    std::fs::write(&msg, message).unwrap();
    let lines: String = records.iter().map(|(n, v)| format!("{n}\t{v}\n")).collect();
    std::fs::write(&table, lines).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/dkim_verify.py");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .arg(&msg)
        .arg(&table)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    assert!(
        out.status.success(),
        "dkimpy failed ({}); scripts/test.sh installs it, or: pip install dkimpy pynacl\n{}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits (a minute at most) until a task has sent everything (`send_status`
/// 3), driving the engine when the test does; its 6.1 row.
pub async fn task_done(app: &TestApp, user: &str, password: &str, id: &str) -> Answer {
    for _ in 0..600 {
        // A test that drives the engine runs it until nothing is due; a
        // retry due later is waited for.
        let worked = !app.engine && app.drive().await;
        let t = app
            .api("task.php", user, password, &format!("do=task-list&id={id}"))
            .await;
        if t.element("send_status").as_deref() == Some("3") {
            return t;
        }
        if !worked {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    panic!("task {id} did not complete within a minute");
}

/// Adds the manager `boss` (password `bosspw`), who adds the domains.
pub async fn add_manager(app: &TestApp) {
    app.admin_ok(&["manager", "add", "--username", "boss", "--password", "bosspw"])
        .await;
}

/// A sending domain for a customer, added by the manager, with these
/// mailboxes added by the customer (`user`, password `pw`).
pub async fn add_sender_domain(
    app: &TestApp,
    customer_id: i64,
    user: &str,
    domain: &str,
    mailboxes: &[&str],
) {
    let a = app
        .api(
            "bs.php",
            "boss",
            "bosspw",
            &format!("do=domain-add&customer_id={customer_id}&domain={domain}"),
        )
        .await;
    assert_eq!(a.code(), "success", "{domain}: {}", a.text());
    for m in mailboxes {
        let a = app
            .api(
                "bs.php",
                user,
                "pw",
                &format!("do=mailbox-add&mailbox={m}&pwd=secret"),
            )
            .await;
        assert_eq!(a.code(), "success", "{m}: {}", a.text());
    }
}

/// A template of `user` (password `pw`) with these fields (`add-tpl`).
pub async fn add_template(app: &TestApp, user: &str, fields: &[(&str, &str)]) {
    let t = app
        .api_post("template.php", user, "pw", "do=add-tpl", fields)
        .await;
    assert_eq!(t.code(), "success", "{}", t.text());
}

/// An enabled list of `user` (password `pw`) holding these `ml-addr-add`
/// lines, all of them added.
pub async fn add_list(app: &TestApp, user: &str, lines: &[String]) {
    let ml = "mloperate.php";
    let l = app
        .api_post(
            ml,
            user,
            "pw",
            "do=maillist-add",
            &[("subject", "L"), ("status", "enabled")],
        )
        .await;
    assert_eq!(l.code(), "success", "{}", l.text());
    let id = l.element("id").expect("the new list's id");
    let b = app
        .api_post(
            ml,
            user,
            "pw",
            &format!("do=ml-addr-add&list_id={id}"),
            &[("ml_addr", &lines.join("\n"))],
        )
        .await;
    assert_eq!(b.element("count"), Some(lines.len().to_string()), "{}", b.text());
}

/// Every tracking path `/t/{kind}/TOKEN` in a message's text (`o` pixels,
/// `c` clicks, `u` unsubscribes), in order.
pub fn tracking_paths(s: &str, kind: &str) -> Vec<String> {
    let marker = format!("/t/{kind}/");
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(&marker) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '/'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Customer `acme` (password `pw`, 1000 credits) with the sender
/// a@acme.cn, template 1 and list 1 of `people`: ready for a campaign.
pub async fn acme_campaign_ready(app: &TestApp, people: &[String]) {
    app.customer("acme", "pw", 1000).await;
    add_manager(app).await;
    add_sender_domain(app, 1, "acme", "acme.cn", &["a@acme.cn"]).await;
    add_template(
        app,
        "acme",
        &[
            ("name", "t"),
            ("subject", "Hi"),
            ("content", "<p>{{ fullname }}</p>"),
        ],
    )
    .await;
    add_list(app, "acme", people).await;
}

/// Starts task 1 of `acme_campaign_ready` at once; its id.
pub async fn start_acme_task(app: &TestApp) -> i64 {
    let add = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=a@acme.cn&status=2",
        )
        .await;
    assert_eq!(add.code(), "success", "{}", add.text());
    add.element("id").unwrap().parse().unwrap()
}

/// A JSON API answer: status and body (`null` when there is none).
pub struct JsonAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Calls `/api/v1{path}` with `key` as its Bearer key and `body` as JSON.
pub async fn call_v1(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<serde_json::Value>,
) -> JsonAnswer {
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
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&a.body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", a.text()))
    };
    JsonAnswer {
        status: a.status,
        body,
    }
}

/// Serves `route` at /hook on a free port and registers that URL over the
/// JSON API, with a new key of `user`, as a webhook for `events`.
pub async fn listen_for_events(
    app: &TestApp,
    user: &str,
    route: axum::routing::MethodRouter,
    events: &[&str],
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/hook", route)).await });
    let key = app.admin_ok(&["api-key", "add", "--username", user]).await;
    let made = call_v1(
        app,
        "POST",
        "/webhooks",
        Some(key.trim()),
        Some(serde_json::json!({"url": url, "events": events})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
}
