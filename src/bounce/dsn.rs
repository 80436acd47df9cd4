//! RFC 3464 delivery-status fields: one block per recipient with
//! `Final-Recipient`, `Original-Recipient`, `Action`, `Status` and
//! `Diagnostic-Code`. Real servers bend the format (no blank line between
//! recipients, fields in another order, the fields pasted into the text
//! part, `Action` before the recipient), so blocks are cut at blank lines
//! and where a recipient field repeats.

use super::scan;
use super::status::Status;

/// What the reporting server did for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// `delivered`, `relayed`, `expanded`: not a failure.
    Delivered,
    Unknown,
}

impl Action {
    fn parse(s: &str) -> Action {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("failed") {
            Action::Failed
        } else if s.starts_with("delayed") {
            Action::Delayed
        } else if s.starts_with("delivered") || s.starts_with("relayed") || s.starts_with("expanded") {
            Action::Delivered
        } else {
            Action::Unknown
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Final-Recipient, or Original-Recipient when that is the only address.
    pub addr: String,
    pub action: Action,
    pub status: Option<Status>,
    /// The Diagnostic-Code text after its type (`smtp;`).
    pub diagnostic: String,
    /// The Diagnostic-Code's type (`smtp`, `x-unix`), lower case.
    pub diagnostic_type: String,
}

#[derive(Default)]
struct Block {
    final_rcpt: Option<String>,
    original_rcpt: Option<String>,
    action: Option<Action>,
    status: Option<Status>,
    diagnostic: String,
    diagnostic_type: String,
}

impl Block {
    fn has_recipient(&self) -> bool {
        self.final_rcpt.is_some() || self.original_rcpt.is_some()
    }

    fn finish(self, out: &mut Vec<Recipient>) {
        let pick = |v: &Option<String>| v.as_deref().and_then(address_of);
        let addr = pick(&self.final_rcpt)
            .or_else(|| pick(&self.original_rcpt))
            .or_else(|| self.final_rcpt.as_deref().map(bare_value))
            .or_else(|| self.original_rcpt.as_deref().map(bare_value));
        if let Some(addr) = addr {
            out.push(Recipient {
                addr,
                action: self.action.unwrap_or(Action::Unknown),
                status: self.status,
                diagnostic: self.diagnostic,
                diagnostic_type: self.diagnostic_type,
            });
        }
    }
}

/// The address in a recipient field (`rfc822; a@b`, `<a@b>`).
fn address_of(value: &str) -> Option<String> {
    scan::addresses(value).into_iter().next().map(|f| f.addr)
}

/// A recipient field that holds no full address (`rfc822; kijitora`).
fn bare_value(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, v)| v);
    v.trim().trim_matches(['<', '>']).trim().to_string()
}

/// The recipient blocks of a delivery-status body, in order.
pub fn parse(text: &str) -> Vec<Recipient> {
    let mut out = Vec::new();
    let mut block = Block::default();
    for (name, value) in fields(text) {
        let Some((name, value)) = name.zip(value) else {
            // A blank line ends a recipient block.
            if block.has_recipient() {
                std::mem::take(&mut block).finish(&mut out);
            }
            continue;
        };
        match name.as_str() {
            "final-recipient" => {
                if block.final_rcpt.is_some() {
                    std::mem::take(&mut block).finish(&mut out);
                }
                block.final_rcpt = Some(value);
            }
            "original-recipient" => {
                if block.original_rcpt.is_some() {
                    std::mem::take(&mut block).finish(&mut out);
                }
                block.original_rcpt = Some(value);
            }
            "action" => block.action = Some(Action::parse(&value)),
            "status" => block.status = Status::parse(&value).or_else(|| Status::find(&value)),
            "diagnostic-code" => {
                let (kind, text) = value.split_once(';').unwrap_or(("", value.as_str()));
                if block.diagnostic_type.is_empty() {
                    block.diagnostic_type = kind.trim().to_ascii_lowercase();
                }
                let text = text.trim();
                if !block.diagnostic.is_empty() {
                    block.diagnostic.push(' ');
                }
                block.diagnostic.push_str(text);
            }
            _ => {}
        }
    }
    if block.has_recipient() {
        block.finish(&mut out);
    }
    out
}

/// Does this text hold delivery-status fields (pasted into a text part)?
pub fn has_fields(text: &str) -> bool {
    fields(text).any(|(n, _)| {
        n.as_deref()
            .is_some_and(|n| n == "final-recipient" || n == "original-recipient")
    })
}

/// Unfolded `(name, value)` fields; `(None, None)` for a blank line.
fn fields(text: &str) -> impl Iterator<Item = (Option<String>, Option<String>)> + '_ {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || {
        let line = lines.next()?;
        if line.trim().is_empty() {
            return Some((None, None));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Some((Some(String::new()), Some(String::new())));
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Some((Some(String::new()), Some(String::new())));
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) && !next.trim().is_empty() {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        Some((Some(name.to_ascii_lowercase()), Some(value)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_recipient_blocks() {
        let text = "Reporting-MTA: dns; mx.example.jp\n\n\
Final-Recipient: rfc822; a@b.example\nOriginal-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.0.0\n\
Diagnostic-Code: smtp; 550 Unknown user\n    a@b.example\n\n\
Final-Recipient: RFC822; <c@d.example>\nAction: delayed\nStatus: 4.4.1\n";
        let r = parse(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].addr, "a@b.example");
        assert_eq!(r[0].action, Action::Failed);
        assert_eq!(r[0].status, Some(Status::new(5, 0, 0)));
        assert_eq!(r[0].diagnostic, "550 Unknown user a@b.example");
        assert_eq!(r[1].addr, "c@d.example");
        assert_eq!(r[1].action, Action::Delayed);
    }

    #[test]
    fn splits_blocks_without_blank_lines() {
        let text = "Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n\
Final-Recipient: rfc822; c@d.example\nAction: failed\nStatus: 5.2.2\n";
        let r = parse(text);
        assert_eq!(
            r.iter().map(|r| r.addr.as_str()).collect::<Vec<_>>(),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(r[1].status, Some(Status::new(5, 2, 2)));
    }

    #[test]
    fn fields_before_the_recipient_belong_to_its_block() {
        let text = "Action: failed\nStatus: 5.0.0\nOriginal-recipient: rfc822;a@b.example\nFinal-recipient: rfc822;a@b.example\n\n\
Action: failed\nFinal-recipient: rfc822;c@d.example\n";
        let r = parse(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].action, Action::Failed);
    }

    #[test]
    fn original_before_final_is_one_block() {
        let text =
            "Original-Recipient: rfc822; a@b.example\nFinal-Recipient: rfc822; a@b.example\nAction: failed\n";
        assert_eq!(parse(text).len(), 1);
    }

    #[test]
    fn keeps_a_bare_local_part() {
        let r = parse("Final-Recipient: rfc822; kijitora\nAction: failed\n");
        assert_eq!(r[0].addr, "kijitora");
        assert_eq!(r[0].action, Action::Failed);
    }

    #[test]
    fn actions() {
        assert_eq!(Action::parse("Failed"), Action::Failed);
        assert_eq!(Action::parse(" delivered (to mailbox)"), Action::Delivered);
        assert_eq!(Action::parse("relayed"), Action::Delivered);
        assert_eq!(Action::parse("x"), Action::Unknown);
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(parse("").is_empty());
        assert!(parse(":\n::\n\t\n no colon").is_empty());
        assert!(!has_fields("Status: 5.1.1"));
        assert!(has_fields("Final-Recipient: rfc822; a@b.example"));
    }
}
