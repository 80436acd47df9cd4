//! One SMTP client connection: greeting, EHLO, STARTTLS, AUTH, then any
//! number of one-recipient transactions, pipelined (RFC 2920) when the
//! server offers it. Every read and write has a deadline, so a tarpit costs
//! a worker a timeout, never forever.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::reply::{Reply, read_reply};
use super::tls::{TlsConnectors, server_name};
use super::{Credentials, Timeouts, Tls};

/// A byte stream to a server: TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Stream = BufReader<Box<dyn Io>>;

/// What the server said it can do in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub pipelining: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

impl Capabilities {
    fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        // The first line is the server's name, the others one keyword each.
        for line in reply.lines().skip(1) {
            let mut words = line.split(|c: char| c.is_whitespace() || c == '=');
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eight_bit = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "SIZE" => caps.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => caps.auth_plain = true,
                            "LOGIN" => caps.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// How to open a connection.
pub struct Setup<'a> {
    pub helo: &'a str,
    /// The name the server is known by: TLS checks it.
    pub host: &'a str,
    pub tls: Tls,
    pub credentials: Option<&'a Credentials>,
    pub timeouts: &'a Timeouts,
    pub connectors: &'a TlsConnectors,
}

/// Why a connection could not be made ready for mail.
#[derive(Debug)]
pub enum SetupError {
    /// Nobody answered, or the connection broke.
    Network(String),
    /// The server refused us (greeting, EHLO/HELO).
    Refused(Reply),
    /// TLS was required and could not be had.
    Tls(String),
    /// The server refused our login, or offers no way to log in.
    Auth(Option<Reply>, String),
}

/// One envelope and its message.
#[derive(Clone, Copy)]
pub struct Envelope<'a> {
    pub from: &'a str,
    pub rcpt: &'a str,
    pub message: &'a [u8],
}

/// What became of one transaction.
#[derive(Debug)]
pub enum Outcome {
    /// The server accepted the message (2xx at the end of the data) or
    /// refused it at `stage`: `MAIL FROM`, `RCPT TO`, `DATA` or `end of data`.
    Answered { reply: Reply, stage: &'static str },
    /// The connection broke. `untouched`: before the server answered anything
    /// of this transaction, as when a pooled connection was closed by the
    /// server meanwhile; the message can go on a fresh connection.
    Lost { reason: String, untouched: bool },
}

pub struct Connection {
    io: Stream,
    caps: Capabilities,
    /// `host[ip]:port`, for messages.
    pub peer: String,
    /// Transactions run on this connection.
    pub used: usize,
    /// A transaction ran since the last RSET: send one before the next.
    dirty: bool,
    /// The connection can't carry another transaction.
    broken: bool,
    pub idle_since: Instant,
    /// Reused for every command batch and message body.
    out: Vec<u8>,
}

async fn write(io: &mut Stream, bytes: &[u8], wait: Duration) -> Result<(), String> {
    match timeout(wait, async {
        io.write_all(bytes).await?;
        io.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {}s writing", wait.as_secs_f32())),
    }
}

async fn read(io: &mut Stream, wait: Duration) -> Result<Reply, String> {
    match timeout(wait, read_reply(io)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no reply within {}s", wait.as_secs_f32())),
    }
}

async fn command(io: &mut Stream, line: &str, wait: Duration) -> Result<Reply, String> {
    write(io, line.as_bytes(), wait).await?;
    read(io, wait).await
}

async fn handshake(io: Box<dyn Io>, s: &Setup<'_>, checked: bool) -> Result<Box<dyn Io>, SetupError> {
    let name =
        server_name(s.host).ok_or_else(|| SetupError::Tls(format!("'{}' is no TLS server name", s.host)))?;
    let connector = if checked {
        &s.connectors.checked
    } else {
        &s.connectors.opportunistic
    };
    match timeout(s.timeouts.command, connector.connect(name, io)).await {
        Ok(Ok(tls)) => Ok(Box::new(tls)),
        Ok(Err(e)) => Err(SetupError::Tls(format!("TLS handshake: {e}"))),
        Err(_) => Err(SetupError::Tls("TLS handshake timed out".into())),
    }
}

/// EHLO, or HELO from a server that knows no EHLO.
async fn hello(io: &mut Stream, s: &Setup<'_>) -> Result<Capabilities, SetupError> {
    let wait = s.timeouts.command;
    let r = command(io, &format!("EHLO {}\r\n", s.helo), wait)
        .await
        .map_err(SetupError::Network)?;
    if r.is_positive() {
        return Ok(Capabilities::from_ehlo(&r));
    }
    if r.code < 500 {
        return Err(SetupError::Refused(r));
    }
    let r = command(io, &format!("HELO {}\r\n", s.helo), wait)
        .await
        .map_err(SetupError::Network)?;
    if r.is_positive() {
        Ok(Capabilities::default())
    } else {
        Err(SetupError::Refused(r))
    }
}

async fn login(
    io: &mut Stream,
    caps: &Capabilities,
    c: &Credentials,
    wait: Duration,
) -> Result<(), SetupError> {
    let net = |e: String| SetupError::Auth(None, e);
    let r = if caps.auth_plain {
        let token = BASE64.encode(format!("\0{}\0{}", c.user, c.password));
        command(io, &format!("AUTH PLAIN {token}\r\n"), wait)
            .await
            .map_err(net)?
    } else if caps.auth_login {
        let r = command(io, "AUTH LOGIN\r\n", wait).await.map_err(net)?;
        if r.code != 334 {
            return Err(SetupError::Auth(Some(r), "AUTH LOGIN refused".into()));
        }
        let r = command(io, &format!("{}\r\n", BASE64.encode(&c.user)), wait)
            .await
            .map_err(net)?;
        if r.code != 334 {
            return Err(SetupError::Auth(Some(r), "user name refused".into()));
        }
        command(io, &format!("{}\r\n", BASE64.encode(&c.password)), wait)
            .await
            .map_err(net)?
    } else {
        return Err(SetupError::Auth(
            None,
            "the server offers no AUTH PLAIN or LOGIN".into(),
        ));
    };
    if r.code == 235 {
        Ok(())
    } else {
        Err(SetupError::Auth(Some(r), "login refused".into()))
    }
}

/// Whether this session carries a password over the network: then TLS is
/// required, with a certificate checked against the roots. A relay on the
/// machine itself (loopback) is trusted as the machine is.
fn guards_secret(addr: SocketAddr, s: &Setup<'_>) -> bool {
    s.credentials.is_some() && !addr.ip().is_loopback()
}

impl Connection {
    /// Connects to `addr` and makes the session ready for mail. An
    /// opportunistic STARTTLS whose handshake fails is tried once more in
    /// clear text, as MTAs do: encryption that can't be had is not a reason
    /// to stop delivering.
    /// A password is never sent in clear text, nor to a server whose
    /// certificate is not checked, but on the machine itself.
    pub async fn open(addr: SocketAddr, s: &Setup<'_>) -> Result<Connection, SetupError> {
        match Self::open_once(addr, s, true).await {
            Err(SetupError::Tls(_)) if s.tls == Tls::Opportunistic && !guards_secret(addr, s) => {
                Self::open_once(addr, s, false).await
            }
            other => other,
        }
    }

    async fn open_once(addr: SocketAddr, s: &Setup<'_>, starttls: bool) -> Result<Connection, SetupError> {
        let peer = format!("{}[{}]:{}", s.host, addr.ip(), addr.port());
        let tcp = match timeout(s.timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(SetupError::Network(format!("{peer}: {e}"))),
            Err(_) => return Err(SetupError::Network(format!("{peer}: connect timed out"))),
        };
        // Commands are written in whole batches; Nagle would only add delay.
        tcp.set_nodelay(true).ok();
        let mut raw: Box<dyn Io> = Box::new(tcp);
        let mut tls = false;
        if s.tls == Tls::Implicit {
            raw = handshake(raw, s, true).await?;
            tls = true;
        }
        let mut io = BufReader::new(raw);
        let in_peer = |e: String| SetupError::Network(format!("{peer}: {e}"));
        let greeting = read(&mut io, s.timeouts.greeting).await.map_err(in_peer)?;
        if !greeting.is_positive() {
            return Err(SetupError::Refused(greeting));
        }
        let mut caps = hello(&mut io, s).await?;
        if !tls && starttls && caps.starttls {
            let r = command(&mut io, "STARTTLS\r\n", s.timeouts.command)
                .await
                .map_err(in_peer)?;
            if r.code == 220 {
                // Anything sent before the handshake would be injected into
                // the encrypted session (CVE-2011-0411): refuse it.
                if !io.buffer().is_empty() {
                    return Err(SetupError::Tls(format!("{peer}: data after the STARTTLS reply")));
                }
                let checked = s.tls == Tls::Required || guards_secret(addr, s);
                io = BufReader::new(handshake(io.into_inner(), s, checked).await?);
                tls = true;
                caps = hello(&mut io, s).await?;
            } else if s.tls == Tls::Required {
                return Err(SetupError::Tls(format!("{peer}: STARTTLS refused: {r}")));
            }
        }
        if s.tls == Tls::Required && !tls {
            return Err(SetupError::Tls(format!("{peer}: the server offers no STARTTLS")));
        }
        if let Some(c) = s.credentials {
            if !tls && guards_secret(addr, s) {
                return Err(SetupError::Tls(format!(
                    "{peer}: the server offers no TLS; the password is not sent in clear text"
                )));
            }
            login(&mut io, &caps, c, s.timeouts.command).await?;
        }
        Ok(Connection {
            io,
            caps,
            peer,
            used: 0,
            dirty: false,
            broken: false,
            idle_since: Instant::now(),
            out: Vec::with_capacity(32 * 1024),
        })
    }

    /// Can this connection carry another transaction?
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Sends one message to one recipient.
    pub async fn deliver(&mut self, e: Envelope<'_>, t: &Timeouts) -> Outcome {
        let reset = self.dirty;
        self.dirty = true;
        self.used += 1;
        let outcome = if self.caps.pipelining {
            self.pipelined(reset, e, t).await
        } else {
            self.step_by_step(reset, e, t).await
        };
        match &outcome {
            Outcome::Lost { .. } => self.broken = true,
            // 421: the server is closing the connection (RFC 5321 3.8).
            Outcome::Answered { reply, .. } if reply.code == 421 => self.broken = true,
            Outcome::Answered { .. } => self.idle_since = Instant::now(),
        }
        outcome
    }

    fn mail_from(&self, Envelope { from, rcpt, message }: Envelope<'_>) -> String {
        let mut line = format!("MAIL FROM:<{from}>");
        if self.caps.size.is_some() {
            line.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.caps.eight_bit && !message.is_ascii() {
            line.push_str(" BODY=8BITMIME");
        }
        if self.caps.smtputf8 && !(from.is_ascii() && rcpt.is_ascii()) {
            line.push_str(" SMTPUTF8");
        }
        line.push_str("\r\n");
        line
    }

    /// RSET, MAIL, RCPT and DATA in one write, then their replies in order.
    async fn pipelined(&mut self, reset: bool, e: Envelope<'_>, t: &Timeouts) -> Outcome {
        let mail = self.mail_from(e);
        self.out.clear();
        if reset {
            self.out.extend_from_slice(b"RSET\r\n");
        }
        self.out.extend_from_slice(mail.as_bytes());
        self.out
            .extend_from_slice(format!("RCPT TO:<{}>\r\nDATA\r\n", e.rcpt).as_bytes());
        let lost = |stage: &str, reason: String, untouched: bool| Outcome::Lost {
            reason: format!("{stage}: {reason}"),
            untouched,
        };
        if let Err(err) = write(&mut self.io, &self.out, t.command).await {
            return lost("sending MAIL FROM", err, reset);
        }
        if reset && let Some(lost) = reset_failed(read(&mut self.io, t.command).await) {
            return lost;
        }
        let mut replies = Vec::with_capacity(3);
        for stage in ["MAIL FROM", "RCPT TO", "DATA"] {
            match read(&mut self.io, t.command).await {
                Ok(r) => replies.push(r),
                Err(err) => return lost(stage, err, false),
            }
        }
        let data = replies.pop().expect("three replies");
        let refusal = replies
            .into_iter()
            .zip(["MAIL FROM", "RCPT TO"])
            .find(|(r, _)| !r.is_positive())
            .map(|(reply, stage)| Outcome::Answered { reply, stage });
        match (refusal, data.code) {
            (None, 354) => self.body(e.message, t).await,
            (None, _) if data.is_positive() => lost("DATA", format!("not a DATA reply: {data}"), false),
            (None, _) => Outcome::Answered {
                reply: data,
                stage: "DATA",
            },
            (Some(refused), 354) => {
                // A server that opened DATA with no recipient: end it empty.
                match command(&mut self.io, ".\r\n", t.command).await {
                    Ok(_) => refused,
                    Err(err) => lost("ending an empty DATA", err, false),
                }
            }
            (Some(refused), _) => refused,
        }
    }

    /// One command at a time, stopping at the first refusal.
    async fn step_by_step(&mut self, reset: bool, e: Envelope<'_>, t: &Timeouts) -> Outcome {
        if reset
            && let Some(lost) = reset_failed(
                command(
                    &mut self.io,
                    "RSET
",
                    t.command,
                )
                .await,
            )
        {
            return lost;
        }
        let steps = [
            ("MAIL FROM", self.mail_from(e)),
            ("RCPT TO", format!("RCPT TO:<{}>\r\n", e.rcpt)),
            ("DATA", "DATA\r\n".to_string()),
        ];
        for (stage, line) in steps {
            match command(&mut self.io, &line, t.command).await {
                Ok(r) if r.code == 354 && stage == "DATA" => return self.body(e.message, t).await,
                Ok(r) if r.is_positive() && stage == "DATA" => {
                    return Outcome::Lost {
                        reason: format!("DATA: not a DATA reply: {r}"),
                        untouched: false,
                    };
                }
                Ok(r) if r.is_positive() => {}
                Ok(reply) => return Outcome::Answered { reply, stage },
                Err(e) => {
                    return Outcome::Lost {
                        reason: format!("{stage}: {e}"),
                        untouched: false,
                    };
                }
            }
        }
        unreachable!("DATA always returns")
    }

    /// The message, dot-stuffed, and the server's verdict on it.
    async fn body(&mut self, message: &[u8], t: &Timeouts) -> Outcome {
        self.out.clear();
        stuff(message, &mut self.out);
        if let Err(e) = write(&mut self.io, &self.out, t.data).await {
            return Outcome::Lost {
                reason: format!("sending the message: {e}"),
                untouched: false,
            };
        }
        match read(&mut self.io, t.data).await {
            Ok(reply) => Outcome::Answered {
                reply,
                stage: "end of data",
            },
            Err(e) => Outcome::Lost {
                reason: format!("after the message: {e}"),
                untouched: false,
            },
        }
    }

    /// Says goodbye; errors are of no interest any more.
    pub async fn quit(mut self, wait: Duration) {
        let _ = command(&mut self.io, "QUIT\r\n", wait).await;
    }
}

/// The RSET before a transaction on a used connection must succeed; when
/// it does not, the connection is of no use, but nothing of the message was
/// said yet: it can go on another.
fn reset_failed(reply: Result<Reply, String>) -> Option<Outcome> {
    let reason = match reply {
        Ok(r) if r.is_positive() => return None,
        Ok(r) => format!("RSET refused: {r}"),
        Err(e) => format!("RSET: {e}"),
    };
    Some(Outcome::Lost {
        reason,
        untouched: true,
    })
}

/// The message as DATA carries it (RFC 5321 4.5.2): CRLF line ends, a dot
/// doubled at the start of a line, ended by `.` alone on a line.
pub fn stuff(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 64 + 5);
    // The messages qunfa builds: CRLF line ends, no line starting with a
    // dot. They go as they are, found so at SIMD speed.
    let crlf_only =
        memchr::memchr_iter(b'\n', message).count() == memchr::memmem::find_iter(message, b"\r\n").count();
    if crlf_only && message.first() != Some(&b'.') && memchr::memmem::find(message, b"\n.").is_none() {
        out.extend_from_slice(message);
        if !message.is_empty() && !message.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        return;
    }
    let mut ends_with_newline = true;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        match line {
            [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\r\n");
                ends_with_newline = true;
            }
            _ => {
                out.extend_from_slice(line);
                ends_with_newline = false;
            }
        }
    }
    if !ends_with_newline {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(m: &str) -> String {
        let mut out = Vec::new();
        stuff(m.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(stuffed("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
        assert_eq!(stuffed(".\nx\n"), "..\r\nx\r\n.\r\n");
        assert_eq!(stuffed("no end"), "no end\r\n.\r\n");
        assert_eq!(stuffed(""), ".\r\n");
        assert_eq!(stuffed("a.\r\n..\r\n"), "a.\r\n...\r\n.\r\n");
        assert_eq!(stuffed("a\r\nb\r\n"), "a\r\nb\r\n.\r\n", "as it is");
        assert_eq!(stuffed("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(stuffed("a\r\nb\nc\r\n"), "a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(stuffed("a\rb\r\n"), "a\rb\r\n.\r\n");
    }

    #[test]
    fn ehlo_keywords() {
        let reply = Reply {
            code: 250,
            enhanced: None,
            text: "mx.example Hello\nPIPELINING\nSIZE 10240000\nAUTH=LOGIN\nauth plain login\n8BITMIME\nSTARTTLS"
                .into(),
        };
        let caps = Capabilities::from_ehlo(&reply);
        assert_eq!(
            caps,
            Capabilities {
                pipelining: true,
                starttls: true,
                auth_plain: true,
                auth_login: true,
                size: Some(10_240_000),
                eight_bit: true,
                smtputf8: false,
            }
        );
        let bare = Reply {
            code: 250,
            enhanced: None,
            text: "PIPELINING".into(),
        };
        assert!(
            !Capabilities::from_ehlo(&bare).pipelining,
            "the first line is the server's name"
        );
    }
}
