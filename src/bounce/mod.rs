//! Bounce classification: one classifier for everything that says a message
//! failed — SMTP replies during delivery ([`classify_reply`]) and the reports
//! that arrive later ([`classify_message`]: RFC 3464 DSNs, the free-text
//! bounces of real servers, RFC 5965 complaints, auto-replies).
//!
//! Both go through the same judge (`judge`), which decides by a fixed rank of
//! evidence: the producer's own knowledge, a phrase that names one reason,
//! the enhanced status code read with the SMTP stage, the reply code, and
//! generic wording last.

mod dsn;
mod judge;
mod message;
mod producer;
mod report;
mod rules;
mod scan;
mod status;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use crate::domain::failure::FailureClass;
pub use status::Status;

use judge::{Evidence, judge};

/// What a report or reply says about one recipient. The first five are
/// failure classes; `Transient` is a deferral (or a give-up after retries
/// that names no cause), `Complaint` a spam complaint, `Ignore` no failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    NotExist,
    OverQuota,
    UserReject,
    InvalidAddr,
    Transient,
    Complaint,
    Ignore,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::NotExist,
        Class::OverQuota,
        Class::UserReject,
        Class::InvalidAddr,
        Class::Transient,
        Class::Complaint,
        Class::Ignore,
    ];

    /// The wire name (`bounce classify --json`, expected.tsv).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::NotExist => "not_exist",
            Class::OverQuota => "over_quota",
            Class::UserReject => "user_reject",
            Class::InvalidAddr => "invalid_addr",
            Class::Transient => "transient",
            Class::Complaint => "complaint",
            Class::Ignore => "ignore",
        }
    }

    pub fn parse(name: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The failure class this is, if it is a permanent failure.
    pub fn failure(self) -> Option<FailureClass> {
        match self {
            Class::NotExist => Some(FailureClass::NotExist),
            Class::OverQuota => Some(FailureClass::OverQuota),
            Class::UserReject => Some(FailureClass::UserReject),
            Class::InvalidAddr => Some(FailureClass::InvalidAddr),
            Class::Transient | Class::Complaint | Class::Ignore => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification of one SMTP reply during delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Transient` for a 4xx reply (retry), a failure class for a 5xx one,
    /// `Ignore` for a success.
    pub class: Class,
    pub status: Option<Status>,
    pub code: Option<u16>,
    pub reason: String,
    /// The failure to record if the recipient is still deferred with this
    /// reply after the last retry (the vendor API's rule: 4.2.2 → over_quota, 4.1.1 →
    /// not_exist, no answer → invalid_addr, anything else → user_reject).
    pub if_last_retry: Option<FailureClass>,
}

impl Verdict {
    /// The server never answered (no MX/A, connection refused or timed out).
    pub fn no_answer(reason: &str) -> Verdict {
        Verdict {
            class: Class::Transient,
            status: None,
            code: None,
            reason: reason.to_string(),
            if_last_retry: Some(FailureClass::InvalidAddr),
        }
    }
}

/// One recipient of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// As the report names it; empty when the report names none.
    pub recipient: String,
    pub class: Class,
    pub status: Option<Status>,
    pub code: Option<u16>,
    pub reason: String,
    /// The report is a delay warning: the server is still trying.
    pub delayed: bool,
    /// The producer family the report was recognised as ("" for a reply
    /// or a message that is no report).
    pub producer: &'static str,
    /// Which rule decided (a label of the tables), for operators asking why.
    pub rule: &'static str,
}

/// Classifies an SMTP reply: its code, its enhanced status code when the
/// server sent one, and its text. A refusal that names a missing mailbox
/// ("550 User unknown") is taken as the answer to RCPT TO, where a
/// delivering client meets it.
pub fn classify_reply(code: u16, enhanced: Option<&str>, text: &str) -> Verdict {
    let status = enhanced.and_then(Status::parse).or_else(|| Status::find(text));
    let reason = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if code < 400 {
        return Verdict {
            class: Class::Ignore,
            status,
            code: Some(code),
            reason,
            if_last_retry: None,
        };
    }
    let j = judge(&Evidence {
        status,
        code: Some(code),
        diagnostic: text,
        live_reply: true,
        ..Evidence::default()
    });
    // What the text says the cause is, as a failure class.
    let cause = j.class.failure().unwrap_or(FailureClass::UserReject);
    let (class, if_last_retry) = if code < 500 {
        (Class::Transient, Some(cause))
    } else {
        // A 5xx reply is final whatever its words: no retry.
        (cause_class(cause), None)
    };
    Verdict {
        class,
        status: j.status,
        code: Some(code),
        reason,
        if_last_retry,
    }
}

fn cause_class(f: FailureClass) -> Class {
    match f {
        FailureClass::NotExist => Class::NotExist,
        FailureClass::OverQuota => Class::OverQuota,
        FailureClass::InvalidAddr => Class::InvalidAddr,
        FailureClass::UserReject | FailureClass::FormatError => Class::UserReject,
    }
}

/// Classifies a report that arrived by mail: one finding per recipient it
/// names, in its order. A message that is no report gives one `Ignore`.
/// Never panics: any input, however malformed, gets an answer.
pub fn classify_message(raw: &[u8]) -> Vec<Finding> {
    // mail-parser is a third-party parser fed hostile input; should it ever
    // panic, the report is answered as unreadable rather than taking the
    // caller (an SMTP listener) down.
    match catch_unwind(AssertUnwindSafe(|| message::classify(raw))) {
        Ok(found) if !found.is_empty() => found,
        Ok(_) => vec![unreadable("no recipient found")],
        Err(_) => vec![unreadable("unreadable report")],
    }
}

/// Classifies every report in a file: one message, or each message of an
/// mbox, in order.
pub fn classify_file(raw: &[u8]) -> Vec<Finding> {
    report::mbox_messages(raw)
        .into_iter()
        .flat_map(classify_message)
        .collect()
}

fn unreadable(reason: &str) -> Finding {
    Finding {
        recipient: String::new(),
        class: Class::Ignore,
        status: None,
        code: None,
        reason: reason.to_string(),
        delayed: false,
        producer: "",
        rule: "no report",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_and_failure_codes() {
        for c in Class::ALL {
            assert_eq!(Class::parse(c.as_str()), Some(c));
        }
        assert_eq!(Class::NotExist.failure().map(FailureClass::code), Some(1));
        assert_eq!(Class::OverQuota.failure().map(FailureClass::code), Some(2));
        assert_eq!(Class::UserReject.failure().map(FailureClass::code), Some(3));
        assert_eq!(Class::InvalidAddr.failure().map(FailureClass::code), Some(8));
        assert_eq!(Class::Complaint.failure(), None);
        assert_eq!(Class::Transient.failure(), None);
    }

    #[test]
    fn replies_during_delivery() {
        let v = classify_reply(
            550,
            Some("5.1.1"),
            "<a@b.example>: Recipient address rejected: User unknown",
        );
        assert_eq!((v.class, v.code), (Class::NotExist, Some(550)));
        assert_eq!(v.status.map(|s| s.to_string()).as_deref(), Some("5.1.1"));

        let v = classify_reply(550, None, "Requested action not taken: mailbox unavailable");
        assert_eq!(v.class, Class::NotExist);
        let v = classify_reply(550, None, "<a@b.example>... User unknown");
        assert_eq!(v.class, Class::NotExist);

        let v = classify_reply(552, None, "5.2.2 Mailbox full");
        assert_eq!(v.class, Class::OverQuota);

        let v = classify_reply(
            550,
            None,
            "5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
        );
        assert_eq!(v.class, Class::UserReject);

        let v = classify_reply(550, Some("5.1.2"), "Host unknown");
        assert_eq!(v.class, Class::InvalidAddr);

        let v = classify_reply(554, None, "no reason at all");
        assert_eq!(v.class, Class::UserReject);
        assert_eq!(classify_reply(250, None, "2.0.0 Ok").class, Class::Ignore);
    }

    #[test]
    fn deferrals_carry_their_class_for_the_last_retry() {
        let v = classify_reply(452, Some("4.2.2"), "Mailbox full, try again later");
        assert_eq!(v.class, Class::Transient);
        assert_eq!(v.if_last_retry, Some(FailureClass::OverQuota));

        let v = classify_reply(450, Some("4.1.1"), "Recipient address rejected: User unknown");
        assert_eq!(v.if_last_retry, Some(FailureClass::NotExist));

        let v = classify_reply(421, None, "4.7.0 Try again later, closing connection");
        assert_eq!(v.class, Class::Transient);
        assert_eq!(v.if_last_retry, Some(FailureClass::UserReject));

        assert_eq!(
            Verdict::no_answer("connection refused").if_last_retry,
            Some(FailureClass::InvalidAddr)
        );
    }

    #[test]
    fn a_permanent_reply_is_never_transient() {
        let v = classify_reply(554, Some("5.4.7"), "delivery time expired");
        assert_eq!(v.class, Class::UserReject);
    }

    #[test]
    fn any_bytes_get_an_answer() {
        for raw in [
            &b""[..],
            b"\x00\x01\x02",
            b"Content-Type: multipart/report; boundary=\"x\"\n\n--x\n--x--",
            b"Content-Type: multipart/mixed; boundary=\n\n",
            b"Subject: =?utf-8?B?####?=\n\n",
            b"From: a\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n",
        ] {
            assert!(!classify_message(raw).is_empty());
        }
    }

    #[test]
    fn a_list_manager_refusing_a_non_member_is_a_refusal() {
        let f = classify_message(
            b"From: list-admin@example.org\nTo: me@example.net\nSubject: You are not member\n\n\
You are not a member of this mailing list <list@example.org>.\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].class, Class::UserReject);
    }

    #[test]
    fn a_file_may_be_an_mbox_of_reports() {
        let report = "From MAILER-DAEMON  Thu Jul  2 12:05:05 2020\nFrom: MAILER-DAEMON@mx.example\n\
Subject: Undelivered Mail Returned to Sender\n\n<a@b.example>: host mx said: 552 5.2.2 Mailbox full\n";
        let f = classify_file(format!("{report}{report}").as_bytes());
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.class == Class::OverQuota), "{f:?}");
    }

    #[test]
    fn a_plain_message_is_no_report() {
        let f = classify_message(
            b"From: friend@example.org\nTo: me@example.net\nSubject: lunch?\n\nSee you at noon.\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].class, Class::Ignore);
    }
}
