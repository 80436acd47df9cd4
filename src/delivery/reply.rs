//! SMTP replies (RFC 5321 4.2): a three-digit code on every line, `-` after
//! it on all lines but the last, an enhanced status code (RFC 3463) at the
//! start of the text when the server speaks them.

use std::fmt;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::bounce::Status;

/// A server's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The enhanced status code of the first line, when there is one.
    pub enhanced: Option<Status>,
    /// The text of every line (after the code), lines joined with `\n`.
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The text on one line, for logs and the delivery record.
    pub fn one_line(&self) -> String {
        format!("{} {}", self.code, self.text.replace('\n', " "))
    }

    /// The lines of the text (EHLO keywords after the greeting line).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed by the server")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not an SMTP reply: the peer is broken, or no SMTP server at all.
    #[error("unreadable reply: {0}")]
    Garbage(String),
}

/// A line longer than this is no reply of a sane server (RFC 5321 says 512).
const MAX_LINE: u64 = 4096;
/// EHLO answers run to a dozen lines; a hundred is a server talking forever.
const MAX_LINES: usize = 100;

/// Reads one whole reply.
pub async fn read_reply<R: AsyncBufRead + Unpin>(io: &mut R) -> Result<Reply, ReadError> {
    let mut line = Vec::with_capacity(128);
    let mut code = 0u16;
    let mut text = String::new();
    for n in 0..MAX_LINES {
        line.clear();
        let read = (&mut *io).take(MAX_LINE).read_until(b'\n', &mut line).await?;
        if read == 0 {
            return Err(ReadError::Closed);
        }
        if line.last() != Some(&b'\n') {
            return Err(if read as u64 >= MAX_LINE {
                ReadError::Garbage("line too long".into())
            } else {
                ReadError::Closed
            });
        }
        let l = String::from_utf8_lossy(&line);
        let l = l.trim_end_matches(['\r', '\n']);
        let (this, last, rest) = parse_line(l).ok_or_else(|| ReadError::Garbage(shorten(l)))?;
        if n > 0 && this != code {
            return Err(ReadError::Garbage(format!(
                "code changed within a reply: {}",
                shorten(l)
            )));
        }
        code = this;
        if n > 0 {
            text.push('\n');
        }
        text.push_str(rest);
        if last {
            let enhanced = text
                .split_whitespace()
                .next()
                .filter(|w| w.contains('.'))
                .and_then(Status::parse);
            return Ok(Reply { code, enhanced, text });
        }
    }
    Err(ReadError::Garbage("reply of too many lines".into()))
}

/// `250-text` → (250, false, "text"); `250 text` and `250` → last line.
fn parse_line(l: &str) -> Option<(u16, bool, &str)> {
    let b = l.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&b[0]) {
        return None;
    }
    let code = l[..3].parse().ok()?;
    match b.get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &l[4..])),
        Some(b'-') => Some((code, false, &l[4..])),
        Some(_) => None,
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(s: &str) -> Result<Reply, ReadError> {
        read_reply(&mut s.as_bytes()).await
    }

    #[tokio::test]
    async fn single_and_multi_line_replies() {
        let r = read("250 2.1.5 Ok\r\n").await.unwrap();
        assert_eq!((r.code, r.text.as_str()), (250, "2.1.5 Ok"));
        assert_eq!(r.enhanced, Some(Status::new(2, 1, 5)));

        let r = read("250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        assert_eq!(
            r.lines().collect::<Vec<_>>(),
            ["mx.example", "PIPELINING", "STARTTLS"]
        );
        assert_eq!(r.enhanced, None);

        let r = read("550 User unknown\n").await.unwrap();
        assert_eq!((r.code, r.enhanced), (550, None));
        assert_eq!(read("354\r\n").await.unwrap().code, 354);
        assert_eq!(
            read("550-5.7.26 unauthenticated\r\n550 5.7.26 see policy\r\n")
                .await
                .unwrap()
                .one_line(),
            "550 5.7.26 unauthenticated 5.7.26 see policy"
        );
    }

    #[tokio::test]
    async fn what_is_no_reply() {
        for bad in [
            "hello there\r\n",
            "2500 x\r\n",
            "250-a\r\n451 b\r\n",
            "999 x\r\n",
            "25\r\n",
        ] {
            assert!(matches!(read(bad).await, Err(ReadError::Garbage(_))), "{bad}");
        }
        assert!(matches!(read("").await, Err(ReadError::Closed)));
        assert!(matches!(read("250-cut").await, Err(ReadError::Closed)));
        let long = format!("250 {}\r\n", "x".repeat(5000));
        assert!(matches!(read(&long).await, Err(ReadError::Garbage(_))));
    }
}
