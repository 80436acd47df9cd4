//! A small SMTP server for tests, on 127.0.0.1 and a free port: it answers
//! each recipient as scripted (accept, refuse with a given reply, refuse the
//! data, drop the connection in the middle of the data, stall, talk garbage)
//! and keeps every message it accepts, envelope and bytes, for assertions.
//!
//! ```ignore
//! let server = SmtpServer::start(ServerOptions::default()).await;
//! server.script("gone@x.test", [Act::Refuse("550 5.1.1 <gone@x.test>: User unknown")]);
//! server.script("busy@x.test", [Act::Refuse("451 4.3.0 Try later"), Act::Accept]);
//! // … send to 127.0.0.1:server.port() …
//! let got = server.received();
//! assert_eq!(got[0].rcpt_to, ["ok@x.test"]);
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// What the server does with one recipient, for one attempt.
#[derive(Clone, Debug)]
pub enum Act {
    Accept,
    /// Answer RCPT TO with this reply (`550 5.1.1 User unknown`).
    Refuse(&'static str),
    /// Accept RCPT TO, answer the end of the data with this reply.
    RefuseData(&'static str),
    /// Accept RCPT TO, close the connection after the first line of the data.
    DropInData,
    /// Wait this long before answering RCPT TO (with 250).
    Tarpit(Duration),
    /// Answer RCPT TO with a line that is no SMTP reply.
    Garbage,
    /// Accept the message, then close the connection without a word, as
    /// servers do with connections idle too long.
    AcceptThenClose,
}

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub pipelining: bool,
    /// Offer STARTTLS (with `tests/fixtures/tls/server.pem`, for `localhost`,
    /// `mx.qunfa.test` and 127.0.0.1, issued by [`test_ca`]).
    pub starttls: bool,
    /// TLS from the first byte (SMTPS).
    pub implicit_tls: bool,
    /// Require this login (AUTH PLAIN and LOGIN are offered).
    pub auth: Option<(&'static str, &'static str)>,
    /// The greeting, `220 …` unless a test wants a refusal.
    pub greeting: &'static str,
    /// Listen on every address, not only on loopback.
    pub every_address: bool,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            pipelining: true,
            starttls: false,
            implicit_tls: false,
            auth: None,
            greeting: "220 sink.qunfa.test ESMTP test server",
            every_address: false,
        }
    }
}

/// A message the server accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-stuffing undone, CRLF line ends.
    pub data: Vec<u8>,
    /// Which connection (1, 2, …) carried it.
    pub connection: usize,
    pub tls: bool,
    /// The user logged in, if any.
    pub auth: Option<String>,
    /// RCPT TO and DATA were already waiting when MAIL FROM was read:
    /// the client pipelined them.
    pub pipelined: bool,
    /// When the end of its data arrived.
    pub at: std::time::Instant,
}

/// Counters of what the server saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: usize,
    pub max_connections: usize,
    pub max_transactions: usize,
    pub rsets: usize,
    pub quits: usize,
    /// AUTH commands received, whatever their outcome.
    pub auths: usize,
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, VecDeque<Act>>>,
    received: Mutex<Vec<Received>>,
    stats: Mutex<Stats>,
    open: AtomicUsize,
    in_transaction: AtomicUsize,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The CA that issued the test server's certificate, for clients to trust.
pub fn test_ca() -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture("ca.pem")).expect("tests/fixtures/tls/ca.pem")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn acceptor() -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("server.pem parses");
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server.key");
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("test certificate");
    TlsAcceptor::from(Arc::new(config))
}

impl SmtpServer {
    pub async fn start(options: ServerOptions) -> SmtpServer {
        let bind = if options.every_address {
            "0.0.0.0:0"
        } else {
            "127.0.0.1:0"
        };
        let listener = TcpListener::bind(bind).await.expect("bind a test SMTP port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let tls = (options.starttls || options.implicit_tls).then(acceptor);
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                let mut n = 0;
                while let Ok((stream, _)) = listener.accept().await {
                    n += 1;
                    let session = Session {
                        shared: shared.clone(),
                        options: options.clone(),
                        tls: tls.clone(),
                        connection: n,
                    };
                    tokio::spawn(session.run(stream));
                }
            }
        });
        SmtpServer { addr, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How the server answers `rcpt` on its next attempts, one act per
    /// attempt; the last act stays for every attempt after. Unscripted
    /// recipients are accepted.
    pub fn script(&self, rcpt: &str, acts: impl IntoIterator<Item = Act>) {
        self.shared
            .scripts
            .lock()
            .unwrap()
            .insert(rcpt.to_ascii_lowercase(), acts.into_iter().collect());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Waits until `n` messages arrived (or panics after `wait`).
    pub async fn wait_for(&self, n: usize, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} messages arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Session {
    shared: Arc<Shared>,
    options: ServerOptions,
    tls: Option<TlsAcceptor>,
    connection: usize,
}

/// The transaction in progress.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    rcpts: Vec<(String, Act)>,
    pipelined: bool,
}

/// Counts a connection or a transaction while it lasts, keeping the peak.
struct Open<'a> {
    count: &'a AtomicUsize,
}

impl<'a> Open<'a> {
    fn new(count: &'a AtomicUsize, peak: impl FnOnce(usize)) -> Open<'a> {
        peak(count.fetch_add(1, Ordering::SeqCst) + 1);
        Open { count }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Session {
    fn stats(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.shared.stats.lock().unwrap());
    }

    fn next_act(&self, rcpt: &str) -> Act {
        let mut scripts = self.shared.scripts.lock().unwrap();
        match scripts.get_mut(&rcpt.to_ascii_lowercase()) {
            Some(acts) if acts.len() > 1 => acts.pop_front().unwrap_or(Act::Accept),
            Some(acts) => acts.front().cloned().unwrap_or(Act::Accept),
            None => Act::Accept,
        }
    }

    async fn run(self, stream: TcpStream) {
        let shared = self.shared.clone();
        // A session is open from its connection to its QUIT (or its end).
        let mut open = Some(Open::new(&shared.open, |n| {
            self.stats(|s| {
                s.connections += 1;
                s.max_connections = s.max_connections.max(n);
            })
        }));
        let mut tls = false;
        let mut io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(stream));
        if self.options.implicit_tls {
            let Some(Ok(s)) = self.handshake(io).await else {
                return;
            };
            io = s;
            tls = true;
        }
        let _ = self.converse(io, tls, &mut open).await;
    }

    async fn handshake(&self, io: BufReader<Box<dyn Io>>) -> Option<std::io::Result<BufReader<Box<dyn Io>>>> {
        let acceptor = self.tls.as_ref()?;
        Some(
            acceptor
                .accept(io.into_inner())
                .await
                .map(|s| BufReader::new(Box::new(s) as Box<dyn Io>)),
        )
    }

    async fn converse(
        &self,
        mut io: BufReader<Box<dyn Io>>,
        mut tls: bool,
        open: &mut Option<Open<'_>>,
    ) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let mut authed: Option<String> = None;
        let mut t = Transaction::default();
        let mut _in_transaction: Option<Open> = None;
        reply(&mut io, self.options.greeting).await?;
        if !self.options.greeting.starts_with('2') {
            return Ok(());
        }
        let mut line = String::new();
        loop {
            line.clear();
            if io.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("");
            match verb {
                "EHLO" => {
                    let mut lines = vec!["sink.qunfa.test".to_string()];
                    if self.options.pipelining {
                        lines.push("PIPELINING".into());
                    }
                    if self.options.starttls && !tls {
                        lines.push("STARTTLS".into());
                    }
                    if self.options.auth.is_some() {
                        lines.push("AUTH PLAIN LOGIN".into());
                    }
                    lines.extend(["SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES"].map(String::from));
                    let last = lines.len() - 1;
                    let text: String = lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                        .collect();
                    io.write_all(text.as_bytes()).await?;
                }
                "HELO" => reply(&mut io, "250 sink.qunfa.test").await?,
                "STARTTLS" if self.options.starttls && !tls => {
                    reply(&mut io, "220 2.0.0 Ready to start TLS").await?;
                    match self.handshake(io).await {
                        Some(Ok(s)) => io = s,
                        _ => return Ok(()),
                    }
                    tls = true;
                    t = Transaction::default();
                }
                "AUTH" => {
                    self.shared.stats.lock().unwrap().auths += 1;
                    let user = self.login(&mut io, &command).await?;
                    if user.is_some() {
                        authed = user;
                        reply(&mut io, "235 2.7.0 Authentication successful").await?;
                    } else {
                        reply(&mut io, "535 5.7.8 Authentication credentials invalid").await?;
                    }
                }
                "MAIL" if self.options.auth.is_some() && authed.is_none() => {
                    reply(&mut io, "530 5.7.0 Authentication required").await?
                }
                "MAIL" => {
                    t = Transaction {
                        from: Some(address(&command)),
                        rcpts: Vec::new(),
                        pipelined: !io.buffer().is_empty(),
                    };
                    _in_transaction = Some(Open::new(&shared.in_transaction, |n| {
                        self.stats(|s| s.max_transactions = s.max_transactions.max(n))
                    }));
                    reply(&mut io, "250 2.1.0 Ok").await?;
                }
                "RCPT" if t.from.is_none() => reply(&mut io, "503 5.5.1 Error: need MAIL command").await?,
                "RCPT" => {
                    let rcpt = address(&command);
                    match self.next_act(&rcpt) {
                        Act::Refuse(r) => reply(&mut io, r).await?,
                        Act::Garbage => io.write_all(b"what is this\r\n").await?,
                        Act::Tarpit(wait) => {
                            tokio::time::sleep(wait).await;
                            t.rcpts.push((rcpt, Act::Accept));
                            reply(&mut io, "250 2.1.5 Ok").await?;
                        }
                        act => {
                            t.rcpts.push((rcpt, act));
                            reply(&mut io, "250 2.1.5 Ok").await?;
                        }
                    }
                }
                "DATA" if t.rcpts.is_empty() => {
                    reply(&mut io, "554 5.5.1 Error: no valid recipients").await?
                }
                "DATA" => {
                    reply(&mut io, "354 End data with <CR><LF>.<CR><LF>").await?;
                    if t.rcpts.iter().any(|(_, a)| matches!(a, Act::DropInData)) {
                        let mut first = String::new();
                        io.read_line(&mut first).await?;
                        return Ok(());
                    }
                    let data = read_data(&mut io).await?;
                    let refusal = t.rcpts.iter().find_map(|(_, a)| match a {
                        Act::RefuseData(r) => Some(*r),
                        _ => None,
                    });
                    match refusal {
                        Some(r) => reply(&mut io, r).await?,
                        None => {
                            shared.received.lock().unwrap().push(Received {
                                mail_from: t.from.clone().unwrap_or_default(),
                                rcpt_to: t.rcpts.iter().map(|(r, _)| r.clone()).collect(),
                                data,
                                connection: self.connection,
                                tls,
                                auth: authed.clone(),
                                pipelined: t.pipelined,
                                at: std::time::Instant::now(),
                            });
                            reply(&mut io, "250 2.0.0 Ok: queued").await?;
                            if t.rcpts.iter().any(|(_, a)| matches!(a, Act::AcceptThenClose)) {
                                return Ok(());
                            }
                        }
                    }
                    t = Transaction::default();
                    _in_transaction = None;
                }
                "RSET" => {
                    self.stats(|s| s.rsets += 1);
                    t = Transaction::default();
                    _in_transaction = None;
                    reply(&mut io, "250 2.0.0 Ok").await?;
                }
                "NOOP" => reply(&mut io, "250 2.0.0 Ok").await?,
                "QUIT" => {
                    self.stats(|s| s.quits += 1);
                    open.take();
                    reply(&mut io, "221 2.0.0 Bye").await?;
                    return Ok(());
                }
                _ => reply(&mut io, "500 5.5.2 Error: command not recognized").await?,
            }
        }
    }

    /// AUTH PLAIN (with or without an initial response) or AUTH LOGIN: the
    /// user, when the login is the expected one.
    async fn login(&self, io: &mut BufReader<Box<dyn Io>>, command: &str) -> std::io::Result<Option<String>> {
        let Some((user, password)) = self.options.auth else {
            return Ok(None);
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        let decode =
            |s: &str| String::from_utf8(BASE64.decode(s.trim()).unwrap_or_default()).unwrap_or_default();
        let ask = async |io: &mut BufReader<Box<dyn Io>>, prompt: &str| -> std::io::Result<String> {
            reply(io, prompt).await?;
            let mut answer = String::new();
            io.read_line(&mut answer).await?;
            Ok(decode(&answer))
        };
        let (given_user, given_password) = match words.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
            Some("PLAIN") => {
                let token = match words.get(2) {
                    Some(t) => decode(t),
                    None => ask(io, "334 ").await?,
                };
                let mut parts = token.split('\0').skip(1);
                (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                )
            }
            Some("LOGIN") => {
                let u = ask(io, "334 VXNlcm5hbWU6").await?;
                (u, ask(io, "334 UGFzc3dvcmQ6").await?)
            }
            _ => return Ok(None),
        };
        Ok((given_user == user && given_password == password).then_some(given_user))
    }
}

async fn reply(io: &mut BufReader<Box<dyn Io>>, text: &str) -> std::io::Result<()> {
    io.write_all(format!("{text}\r\n").as_bytes()).await
}

/// `MAIL FROM:<a@b> SIZE=10` → `a@b`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..].find('>').map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

/// The data up to `.` alone on a line, with dot-stuffing undone.
async fn read_data(io: &mut BufReader<Box<dyn Io>>) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if (&mut *io).take(1 << 20).read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}
