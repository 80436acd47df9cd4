//! The two numbers an SMTP failure carries: the reply code (`550`) and the
//! enhanced status code (`5.1.1`, RFC 3463), found in free text where
//! servers put them (`550-5.7.26 …`, `(#5.5.0)`, `smtp; 550 5.2.2 <a@b>…`).

use std::fmt;

/// An enhanced status code: class (2, 4 or 5), subject (0–7) and detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl Status {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Status {
            class,
            subject,
            detail,
        }
    }

    /// A code written alone, as in a DSN's `Status:` field (`5.1.1 (user unknown)` too).
    pub fn parse(s: &str) -> Option<Status> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let code = s[..end].trim_end_matches('.');
        let mut it = code.split('.');
        let class = it.next()?.parse::<u8>().ok()?;
        let subject = it.next()?.parse::<u16>().ok()?;
        let detail = it.next()?.parse::<u16>().ok()?;
        if it.next().is_some() || !matches!(class, 2 | 4 | 5) || subject > 9 || detail > 999 {
            return None;
        }
        Some(Status::new(class, subject, detail))
    }

    /// The first enhanced code in free text. Dotted numbers that are part of
    /// something longer (IP addresses, versions) are not codes.
    pub fn find(text: &str) -> Option<Status> {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if matches!(b[i], b'2' | b'4' | b'5')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
                && let Some((status, _)) = Self::at(b, i)
            {
                return Some(status);
            }
            i += 1;
        }
        None
    }

    /// Every enhanced code in free text, in order.
    pub fn find_all(text: &str) -> Vec<Status> {
        let mut out = Vec::new();
        let mut from = 0;
        while from < text.len() {
            let Some(rest) = text.get(from..) else { break };
            let b = rest.as_bytes();
            let hit = (0..b.len()).find_map(|i| {
                let starts = matches!(b[i], b'2' | b'4' | b'5')
                    && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
                if starts { Self::at(b, i) } else { None }
            });
            match hit {
                Some((status, end)) => {
                    out.push(status);
                    from += end;
                }
                None => break,
            }
        }
        out
    }

    /// `class.subject.detail` starting at `i`, where the number ends cleanly.
    fn at(b: &[u8], i: usize) -> Option<(Status, usize)> {
        let digits = |from: usize| -> (u32, usize) {
            let mut j = from;
            let mut n = 0u32;
            while j < b.len() && b[j].is_ascii_digit() && j - from < 4 {
                n = n * 10 + u32::from(b[j] - b'0');
                j += 1;
            }
            (n, j - from)
        };
        if b.get(i + 1) != Some(&b'.') {
            return None;
        }
        let (subject, n1) = digits(i + 2);
        if n1 == 0 || n1 > 1 || b.get(i + 2 + n1) != Some(&b'.') {
            return None;
        }
        let start = i + 3 + n1;
        let (detail, n2) = digits(start);
        if n2 == 0 || n2 > 3 {
            return None;
        }
        let end = start + n2;
        // "5.1.1." ends a sentence; "5.1.1.2" is something else.
        let clean = match b.get(end) {
            None => true,
            Some(c) if c.is_ascii_alphanumeric() => false,
            Some(b'.') => !b.get(end + 1).is_some_and(|c| c.is_ascii_digit()),
            Some(_) => true,
        };
        if !clean || subject > 7 {
            return None;
        }
        Some((Status::new(b[i] - b'0', subject as u16, detail as u16), end))
    }

    /// `x.0.0`: says only "failed" or "deferred".
    pub fn is_generic(self) -> bool {
        self.subject == 0 && self.detail == 0
    }

    pub fn is_permanent(self) -> bool {
        self.class == 5
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The first SMTP reply code (25x, 4xx, 5xx) in free text: three digits
/// standing alone or followed by `-` (a continued reply) or a space.
pub fn find_reply_code(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let starts_ok = i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t' | b'\n' | b'\r' | b'<' | b'(' | b'[' | b';' | b':' | b'"' | b'\'' | b'='
            );
        // 4xx and 5xx, and 25x: 2xx other than those are numbers in a
        // failure notice ("Size: 222"), not answers.
        let class_ok = matches!(b[i], b'4' | b'5') || (b[i] == b'2' && b[i + 1] == b'5');
        if starts_ok && class_ok && b[i + 1].is_ascii_digit() && b[i + 1] <= b'5' && b[i + 2].is_ascii_digit()
        {
            let ends_ok = match b.get(i + 3) {
                None => true,
                Some(b' ' | b'\t' | b'\r' | b'\n' | b')' | b'>' | b']' | b',') => true,
                Some(b'-') => b.get(i + 4).is_some_and(|c| c.is_ascii_alphanumeric()),
                Some(_) => false,
            };
            // "=550" is a query value, not a reply, unless it begins the text.
            if ends_ok && !(i > 0 && b[i - 1] == b'=') {
                let code = u16::from(b[i] - b'0') * 100
                    + u16::from(b[i + 1] - b'0') * 10
                    + u16::from(b[i + 2] - b'0');
                return Some(code);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_status_field() {
        assert_eq!(Status::parse("5.1.1"), Some(Status::new(5, 1, 1)));
        assert_eq!(
            Status::parse(" 4.4.7 (delivery expired)"),
            Some(Status::new(4, 4, 7))
        );
        assert_eq!(Status::parse("5.7.509"), Some(Status::new(5, 7, 509)));
        assert_eq!(Status::parse("5.1.10"), Some(Status::new(5, 1, 10)));
        assert_eq!(Status::parse("5.0.0."), Some(Status::new(5, 0, 0)));
        assert_eq!(Status::parse("3.1.1"), None);
        assert_eq!(Status::parse("5.1"), None);
        assert_eq!(Status::parse(""), None);
        assert_eq!(Status::parse("5.1.1.1"), None);
    }

    #[test]
    fn finds_a_status_in_text() {
        let cases = [
            ("550 5.1.1 <a@b.jp>... User Unknown", Some("5.1.1")),
            ("550-5.7.26 Unauthenticated email", Some("5.7.26")),
            ("no mailbox here by that name (#5.1.1 - chkusr)", Some("5.1.1")),
            ("(#5.5.0)", Some("5.5.0")),
            ("host 192.0.2.5 said", None),
            ("Exim 4.72 and 10.5.1.1", None),
            ("sendmail 8.14.9/8.14.1", None),
            ("see 5.2.2.", Some("5.2.2")),
            ("code 5.2.2x", None),
            ("554 4.4.7 Message expired <421 4.4.2 timed out>", Some("4.4.7")),
            ("", None),
            ("5", None),
            ("5.", None),
            ("5.1.", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                Status::find(text).map(|s| s.to_string()).as_deref(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn finds_every_status_in_text() {
        let all = |t: &str| {
            Status::find_all(t)
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all("5.1.0 - Unknown address error 550-'5.7.1 refused'"),
            ["5.1.0", "5.7.1"]
        );
        assert_eq!(all("10.5.1.1 and 4.4.7."), ["4.4.7"]);
        assert!(all("").is_empty());
    }

    #[test]
    fn generic_and_permanent() {
        assert!(Status::new(5, 0, 0).is_generic());
        assert!(!Status::new(5, 1, 0).is_generic());
        assert!(Status::new(5, 0, 0).is_permanent());
        assert!(!Status::new(4, 2, 2).is_permanent());
    }

    #[test]
    fn finds_a_reply_code() {
        let cases = [
            ("550 5.1.1 User unknown", Some(550)),
            ("said: 452 4.2.2 Mailbox full", Some(452)),
            ("smtp; 550 Unknown user", Some(550)),
            ("550-5.7.26 Unauthenticated", Some(550)),
            ("<421 4.4.2 Connection timed out>", Some(421)),
            ("unable to deliver in 840 minutes", None),
            ("for the last 432000 seconds", None),
            ("port 25 closed, 2013-04-29", None),
            ("?ip=550&x", None),
            ("5.5.0", None),
            ("", None),
            ("55", None),
            ("Size (in bytes): 222", None),
            ("250 2.0.0 Ok", Some(250)),
        ];
        for (text, want) in cases {
            assert_eq!(find_reply_code(text), want, "{text}");
        }
    }
}
