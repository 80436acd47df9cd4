//! A DNS server for tests: Debian's dnsmasq (scripts/test.sh installs it)
//! on 127.0.0.1 and a free port, authoritative for the names it is given
//! under `.test`: any other name there is NXDOMAIN, nothing is forwarded.
//!
//! ```ignore
//! let dns = DnsServer::start(&[
//!     Record::Txt("acme.test", "v=spf1 a:mta.qunfa.test -all"),
//!     Record::Mx("acme.test", "mx.acme.test", 10),
//!     Record::A("mx.acme.test", "127.0.0.1"),
//! ]).await;
//! // QUNFA_DNS_SERVER = dns.addr()
//! ```

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub enum Record<'a> {
    /// A TXT record; a value longer than 255 bytes becomes several strings.
    Txt(&'a str, &'a str),
    /// `name`, exchange, preference.
    Mx(&'a str, &'a str, u16),
    /// An A or AAAA record.
    A(&'a str, &'a str),
}

pub struct DnsServer {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A port free for UDP and TCP on 127.0.0.1 (for a moment).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn dnsmasq() -> String {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("dnsmasq")
        .to_string()
}

impl DnsServer {
    pub async fn start(records: &[Record<'_>]) -> DnsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
             no-negcache\nuser=root\npid-file=\nlog-facility=-\nlocal=/test/\n"
        );
        for r in records {
            match r {
                Record::Txt(name, value) => {
                    let strings: Vec<String> = value
                        .as_bytes()
                        .chunks(255)
                        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                        .collect();
                    conf.push_str(&format!("txt-record={name},{}\n", strings.join(",")));
                }
                Record::Mx(name, host, preference) => {
                    conf.push_str(&format!("mx-host={name},{host},{preference}\n"));
                }
                Record::A(name, ip) => conf.push_str(&format!("host-record={name},{ip}\n")),
            }
        }
        let path = dir.path().join("dnsmasq.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(dnsmasq())
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run dnsmasq ({e}): scripts/test.sh installs it (apt-get install dnsmasq-base)")
            });
        let server = DnsServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _dir: dir,
        };
        // Ready when it answers over TCP.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(server.addr).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dnsmasq did not start on {}", server.addr);
    }

    /// `QUNFA_DNS_SERVER` for it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
