//! One recipient's evidence → its class, by a fixed rank that is the same
//! for every producer, for SMTP replies during delivery and for reports:
//!
//! 1. the producer's own knowledge (a notice whose meaning its producer and
//!    structure fix, see `producer::Family::knows`);
//! 2. a phrase of the diagnostic that names one reason ("user unknown",
//!    "mailbox full", "blocked", "rate limited"), read with the SMTP stage:
//!    "user unknown" is a missing mailbox only as the answer to RCPT TO;
//! 3. the enhanced status code (RFC 3463, the IANA registry), read with the
//!    stage: a refusal of HELO or MAIL FROM is no verdict on the mailbox;
//! 4. the reply code (RFC 5321);
//! 5. generic wording ("rejected", "try again later"), then the action.
//!
//! A generic code (`x.0.0`, a bare `550`) never decides while anything more
//! specific is there. `Action: failed` is a failure whatever the status
//! class: a 4.x.x that gave up is classed by what it says, and `transient`
//! only when what it says is a passing condition or nothing at all.

use super::Class;
use super::dsn::Action;
use super::rules::{self, Rule, Tier};
use super::status::{Status, find_reply_code};

/// What a report says about one recipient.
#[derive(Default)]
pub struct Evidence<'a> {
    /// What the producer's structure already says (rank 1).
    pub knowledge: Option<(Class, &'static str)>,
    pub action: Option<Action>,
    /// A DSN's `Status:` field, or the enhanced code of an SMTP reply.
    pub status: Option<Status>,
    /// A reply code known apart from the text (an SMTP reply's).
    pub code: Option<u16>,
    /// The server's answer about this recipient: `Diagnostic-Code`, the
    /// reply text, or this recipient's part of a free-text notice. The only
    /// text read for a reason.
    pub diagnostic: &'a str,
    /// The type of `Diagnostic-Code` (`smtp`, `x-unix` …), lower case.
    pub diagnostic_type: &'a str,
    /// Text read only for the SMTP stage (the transcript or the notice's
    /// part about this recipient), never for a reason.
    pub stage_text: &'a str,
    /// An SMTP reply seen while delivering: the answer to RCPT TO unless
    /// the text says otherwise.
    pub live_reply: bool,
    /// `diagnostic` is a `Diagnostic-Code` field: the remote server's reply
    /// as recorded, where a reply that quotes the refused address first
    /// (`550 <a@b>: …`, RFC 5321 servers naming the recipient they refuse)
    /// answered RCPT TO.
    pub recorded_reply: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Judgement {
    pub class: Class,
    pub status: Option<Status>,
    pub code: Option<u16>,
    /// What decided: the rule's label.
    pub label: &'static str,
}

/// The SMTP command a reply answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Unknown,
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    /// Not an SMTP reply: the local delivery agent that writes into the
    /// mailbox (`mail.local`, procmail, maildrop), whose "unknown user" is
    /// the mail store's own word on the mailbox.
    Local,
}

impl Stage {
    /// Before any recipient was named: the refusal is of the sending host
    /// or the sender, never a verdict on the recipient.
    fn before_rcpt(self) -> bool {
        matches!(self, Stage::Connect | Stage::Helo | Stage::Mail)
    }
}

pub fn judge(e: &Evidence<'_>) -> Judgement {
    let code = e.code.or_else(|| find_reply_code(e.diagnostic));
    let status = pick_status(e.status, &Status::find_all(e.diagnostic));
    let done = |class, label| Judgement {
        class,
        status,
        code,
        label,
    };
    if e.action == Some(Action::Delivered) {
        return done(Class::Ignore, "delivered");
    }
    let stage = match stage_of(&[e.diagnostic, e.stage_text]) {
        Stage::Unknown if e.live_reply => Stage::Rcpt,
        Stage::Unknown if e.recorded_reply && quotes_recipient(e.diagnostic) => Stage::Rcpt,
        s => s,
    };
    let said = rules::normalise(e.diagnostic);
    let coded = status.and_then(rules::by_status);

    // 1. The producer's own knowledge.
    if let Some((class, label)) = e.knowledge {
        return done(class, label);
    }
    // 2. A phrase that names one reason.
    let named: Vec<(Class, &'static str)> = rules::matching(&said, Tier::Reason)
        .into_iter()
        .map(|r| at_stage(r, stage, status))
        .collect();
    if let Some(first) = named.first() {
        // Several reasons named: the one the status code agrees with, else
        // the first in precedence.
        let agreed = coded.and_then(|(c, _)| named.iter().find(|(n, _)| *n == c));
        let (class, label) = *agreed.unwrap_or(first);
        return done(settle(class, e.action, status, coded), label);
    }
    // 3. The enhanced status code, read with the stage.
    if let Some((class, label)) = coded {
        return done(
            settle(refusal_before_rcpt(class, stage), e.action, status, coded),
            label,
        );
    }
    // A local delivery program's failure (`Diagnostic-Code: X-Unix; 75`).
    if e.diagnostic_type.starts_with("x-unix") {
        return done(Class::Transient, "local delivery program failed");
    }
    // 4. The reply code.
    if let Some((class, label)) = code.and_then(rules::by_reply_code) {
        let class = match (class, stage) {
            // 552 to MAIL FROM or after DATA is the message's size.
            (Class::OverQuota, Stage::Mail | Stage::Data) => Class::UserReject,
            _ => refusal_before_rcpt(class, stage),
        };
        return done(settle(class, e.action, status, coded), label);
    }
    // 5. Generic wording, then whether it was final.
    if let Some(rule) = rules::matching(&said, Tier::Generic).into_iter().next() {
        let (class, label) = at_stage(rule, stage, status);
        return done(settle(class, e.action, status, coded), label);
    }
    let digit = status.map(|s| s.class).or(code.map(|c| (c / 100) as u8));
    match (e.action, digit) {
        (Some(Action::Delayed), _) | (_, Some(4)) => done(Class::Transient, "deferred"),
        (_, Some(5)) if stage.before_rcpt() => {
            done(Class::UserReject, "refused before the recipient was named")
        }
        // A server's refusal that names no reason; a report that gives a
        // permanent status and no words at all is no verdict.
        (_, Some(5)) if !said.is_empty() => done(Class::UserReject, "refused"),
        _ => done(Class::Transient, "failed, no reason given"),
    }
}

/// `550 <a@b>: …` or `550 5.1.1 <a@b>: …`: a reply whose subject is the
/// address it names.
fn quotes_recipient(reply: &str) -> bool {
    let t = reply.trim_start();
    let Some(open) = t.find('<') else {
        return false;
    };
    let lead = &t[..open];
    lead.len() <= 16
        && lead
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ' ' || c == '-')
        && t[open..]
            .find(">:")
            .is_some_and(|close| !t[open..open + close].contains(' '))
}

/// The server's own code (in its reply) over the one the reporting MTA
/// wrote in `Status:`, which is often derived ("5.0.0"); a code that names
/// more than "failed" over one that does not.
fn pick_status(field: Option<Status>, in_reply: &[Status]) -> Option<Status> {
    // Most specific first: a registered code with a detail (5.2.2), one
    // that names only its subject (5.2.0), any other (5.1.0), a generic one.
    let rank = |s: &Status| match (rules::by_status(*s).is_some(), s.detail != 0, s.is_generic()) {
        (true, true, _) => 0,
        (true, false, _) => 1,
        (false, _, false) => 2,
        _ => 3,
    };
    let all = in_reply.iter().copied().chain(field);
    (0..4).find_map(|r| all.clone().find(|s| rank(s) == r))
}

/// A phrase family's class at the stage it was said: an SMTP server's
/// "user unknown" names a missing mailbox as its answer to RCPT TO (or
/// with an x.1.x code); after DATA, to MAIL FROM or with no sign of when,
/// it is a filter's refusal.
fn at_stage(rule: &Rule, stage: Stage, status: Option<Status>) -> (Class, &'static str) {
    if rule.needs_rcpt {
        // x.1.0, x.1.1, x.1.3 name the recipient's address; so do the
        // private three-digit details a producer adds under the addressing
        // subject (Exchange's 5.1.3xx), which keep the subject's meaning.
        let address_code =
            status.is_some_and(|s| s.subject == 1 && (matches!(s.detail, 0 | 1 | 3) || s.detail >= 100));
        let answered_rcpt =
            matches!(stage, Stage::Rcpt | Stage::Local) || (address_code && !stage.before_rcpt());
        if !answered_rcpt {
            return (Class::UserReject, "refused outside RCPT TO");
        }
    }
    (refusal_before_rcpt(rule.class, stage), rule.label)
}

fn refusal_before_rcpt(class: Class, stage: Stage) -> Class {
    match class {
        Class::NotExist | Class::InvalidAddr | Class::OverQuota if stage.before_rcpt() => Class::UserReject,
        c => c,
    }
}

/// A missing domain reported while the sender is still retrying, or in words
/// with a 4.x.x code that names no address (a DNS look-up that failed for
/// now), is a name server's passing trouble, not a verdict.
fn settle(
    class: Class,
    action: Option<Action>,
    status: Option<Status>,
    coded: Option<(Class, &'static str)>,
) -> Class {
    let passing = action == Some(Action::Delayed)
        || (status.is_some_and(|s| s.class == 4) && coded.is_none_or(|(c, _)| c != Class::InvalidAddr));
    if class == Class::InvalidAddr && passing {
        Class::Transient
    } else {
        class
    }
}

/// The SMTP command that was answered, by the conventions producers write
/// it in: Postfix's `(in reply to RCPT TO command)`, Exim's `after RCPT
/// TO:`, qmail's `does not like recipient` / `sender was rejected` / `my
/// name was rejected`, the DragonFly Mail Agent's `did not like our RCPT
/// TO:`, Sendmail's transcript (`>>> RCPT To:` before the
/// `<<< 550` line).
pub fn stage_of(texts: &[&str]) -> Stage {
    for text in texts {
        let t = rules::normalise(text);
        if let Some(s) = transcript_stage(&t) {
            return s;
        }
        const SIGNS: &[(&str, Stage)] = &[
            ("in reply to rcpt to", Stage::Rcpt),
            ("after rcpt to", Stage::Rcpt),
            ("does not like recipient", Stage::Rcpt),
            ("most progress was rcpt", Stage::Rcpt),
            ("did not like our rcpt", Stage::Rcpt),
            ("did not like our mail from", Stage::Mail),
            ("did not like our data", Stage::Data),
            ("smtp:rcpt", Stage::Rcpt),
            ("[rcpt_to]", Stage::Rcpt),
            ("rcpt to:<", Stage::Rcpt),
            ("in reply to end of data", Stage::Data),
            ("in reply to data", Stage::Data),
            ("after end of data", Stage::Data),
            ("after data", Stage::Data),
            ("end of data", Stage::Data),
            ("final data", Stage::Data),
            ("data command", Stage::Data),
            ("failed after i sent the message", Stage::Data),
            ("in reply to mail from", Stage::Mail),
            ("after mail from", Stage::Mail),
            ("sender was rejected", Stage::Mail),
            ("in reply to helo", Stage::Helo),
            ("in reply to ehlo", Stage::Helo),
            ("after helo", Stage::Helo),
            ("after ehlo", Stage::Helo),
            ("my name was rejected", Stage::Helo),
            ("refused to talk to me", Stage::Connect),
            ("after initial connection", Stage::Connect),
            ("greeting failed", Stage::Connect),
            // Sendmail's transcript quotes its local mailer's own message.
            ("mail.local:", Stage::Local),
            ("procmail:", Stage::Local),
            ("maildrop:", Stage::Local),
        ];
        // The earliest sign in the text: the first reply it quotes.
        let first = SIGNS
            .iter()
            .filter_map(|(sign, stage)| t.find(sign).map(|at| (at, *stage)))
            .min_by_key(|(at, _)| *at);
        if let Some((_, stage)) = first {
            return stage;
        }
    }
    Stage::Unknown
}

/// A Sendmail-style transcript: the command sent (`>>> RCPT To:<a@b>`)
/// before the first failure line (`<<< 550 …`).
fn transcript_stage(t: &str) -> Option<Stage> {
    let fail = t
        .match_indices("<<< ")
        .find(|(at, _)| matches!(t.as_bytes().get(at + 4), Some(b'4' | b'5')))?
        .0;
    let sent = t[..fail].rfind(">>> ")?;
    let cmd = &t[sent + 4..];
    Some(if cmd.starts_with("rcpt") {
        Stage::Rcpt
    } else if cmd.starts_with("mail") {
        Stage::Mail
    } else if cmd.starts_with("data") || cmd.starts_with('.') {
        Stage::Data
    } else if cmd.starts_with("helo") || cmd.starts_with("ehlo") {
        Stage::Helo
    } else {
        Stage::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(status: Option<&str>, diagnostic: &str) -> Class {
        judge(&Evidence {
            action: Some(Action::Failed),
            status: status.and_then(Status::parse),
            diagnostic,
            ..Evidence::default()
        })
        .class
    }

    #[test]
    fn a_phrase_naming_a_reason_beats_the_code() {
        assert_eq!(
            class_of(
                Some("5.2.1"),
                "host mx said: 550 5.2.1 <a@b.example>: User Unknown (in reply to RCPT TO command)"
            ),
            Class::NotExist
        );
        assert_eq!(
            class_of(None, "552 a@b.example over quota (#5.1.1)"),
            Class::OverQuota
        );
        assert_eq!(
            class_of(
                Some("5.1.1"),
                "550 5.1.1 <a@b.example>: Refused due to recipient preferences"
            ),
            Class::UserReject
        );
        assert_eq!(
            class_of(
                Some("5.1.1"),
                "550 5.1.1 <a@b.example>: sent too many recipients this hour, rate limit"
            ),
            Class::Transient
        );
        assert_eq!(
            class_of(
                Some("5.7.1"),
                "554 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org"
            ),
            Class::UserReject
        );
    }

    #[test]
    fn with_several_reasons_the_code_chooses_among_them() {
        // "blocked" comes before "user unknown" in precedence, but 5.1.1
        // names the missing mailbox.
        assert_eq!(
            class_of(Some("5.1.1"), "RCPT TO: 550 5.1.1 user unknown, mail blocked"),
            Class::NotExist
        );
        assert_eq!(
            class_of(None, "RCPT TO: 550 user unknown, mail blocked"),
            Class::UserReject
        );
    }

    #[test]
    fn the_code_decides_when_no_phrase_names_a_reason() {
        assert_eq!(class_of(Some("5.1.1"), "550 5.1.1 go away"), Class::NotExist);
        assert_eq!(class_of(Some("5.2.2"), "552 5.2.2 sorry"), Class::OverQuota);
        assert_eq!(class_of(Some("5.1.2"), "550 5.1.2 sorry"), Class::InvalidAddr);
        assert_eq!(class_of(Some("5.4.4"), ""), Class::InvalidAddr);
        assert_eq!(class_of(Some("5.7.1"), "550 5.7.1 sorry"), Class::UserReject);
        assert_eq!(class_of(Some("5.3.4"), ""), Class::UserReject);
        assert_eq!(class_of(Some("5.4.7"), ""), Class::Transient);
        assert_eq!(class_of(Some("5.6.0"), ""), Class::UserReject);
        // The reply's own code over a derived Status field.
        let j = judge(&Evidence {
            status: Status::parse("5.0.0"),
            diagnostic: "smtp; 550 5.2.2 <a@b.example>... Sorry",
            ..Evidence::default()
        });
        assert_eq!(
            (j.class, j.status, j.code),
            (Class::OverQuota, Status::parse("5.2.2"), Some(550))
        );
    }

    #[test]
    fn a_generic_code_never_decides_alone() {
        // 5.0.0 / bare 550: the words decide, however weak.
        assert_eq!(class_of(Some("5.0.0"), "550 rejected"), Class::UserReject);
        assert_eq!(
            class_of(Some("5.0.0"), "550 5.0.0 please try again later"),
            Class::Transient
        );
        assert_eq!(class_of(Some("5.0.0"), "552 sorry"), Class::OverQuota);
    }

    #[test]
    fn failed_is_a_failure_whatever_the_status_class() {
        assert_eq!(
            class_of(Some("4.7.1"), "421 4.7.1 blocked, try again later"),
            Class::UserReject
        );
        assert_eq!(class_of(Some("4.2.2"), "452 4.2.2 sorry"), Class::OverQuota);
        assert_eq!(class_of(Some("4.4.7"), "delivery time expired"), Class::Transient);
        assert_eq!(class_of(Some("4.0.0"), ""), Class::Transient);
    }

    #[test]
    fn user_unknown_counts_only_as_the_answer_to_rcpt() {
        assert_eq!(
            class_of(
                None,
                "host mx said: 550 Unknown user (in reply to RCPT TO command)"
            ),
            Class::NotExist
        );
        assert_eq!(
            class_of(
                None,
                "host mx said: 550 Unknown user (in reply to end of DATA command)"
            ),
            Class::UserReject
        );
        assert_eq!(
            class_of(Some("5.0.0"), "550 a@b.example... No such user"),
            Class::UserReject
        );
        assert_eq!(
            class_of(None, "550 5.1.1 a@b.example... No such user"),
            Class::NotExist
        );
        assert_eq!(
            class_of(None, "550 <a@b.example>: User unknown"),
            Class::UserReject
        );
        // The reporting system's own words need no stage.
        assert_eq!(
            class_of(None, "The recipient name is not recognized"),
            Class::NotExist
        );
        // A local delivery agent's word on the mailbox needs no SMTP stage.
        assert_eq!(
            class_of(
                Some("5.5.0"),
                "mail.local: unknown user: a\n554 <a@b.example>... Service unavailable"
            ),
            Class::NotExist
        );
        // Exchange's private detail under the addressing subject.
        assert_eq!(
            class_of(
                Some("5.1.351"),
                "550 5.1.351 Remote server returned unknown recipient or mailbox unavailable"
            ),
            Class::NotExist
        );
        // A live reply answers RCPT TO.
        let j = judge(&Evidence {
            code: Some(550),
            diagnostic: "User unknown",
            live_reply: true,
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::NotExist);
    }

    #[test]
    fn a_recorded_reply_quoting_the_address_answered_rcpt() {
        let recorded = |diagnostic: &str| {
            judge(&Evidence {
                status: Status::parse("5.0.0"),
                diagnostic,
                recorded_reply: true,
                ..Evidence::default()
            })
            .class
        };
        assert_eq!(recorded("550 <a@b.example>: User unknown"), Class::NotExist);
        assert_eq!(
            recorded("550 5.1.1 <a@b.example>: Recipient address rejected: unknown user"),
            Class::NotExist
        );
        assert_eq!(recorded("550 a@b.example... User unknown"), Class::UserReject);
        assert_eq!(
            recorded("550 message from <s@x.example>: unknown user"),
            Class::UserReject
        );
        assert!(!quotes_recipient("550 <a b>: x"));
    }

    #[test]
    fn the_most_specific_code_is_read() {
        let s = |field: &str, reply: &str| {
            pick_status(Status::parse(field), &Status::find_all(reply)).map(|s| s.to_string())
        };
        assert_eq!(
            s("5.0.0", "5.1.0 - Unknown address error 550-'5.2.2 Mailbox Full'").as_deref(),
            Some("5.2.2")
        );
        assert_eq!(s("5.1.1", "550 5.0.0 unknown").as_deref(), Some("5.1.1"));
        assert_eq!(
            s("5.0.0", "550 #5.1.0 Address rejected").as_deref(),
            Some("5.1.0")
        );
        assert_eq!(s("5.1.0", "550 5.7.1 no").as_deref(), Some("5.7.1"));
        assert_eq!(s("4.0.0", "").as_deref(), Some("4.0.0"));
        assert_eq!(s("", ""), None);
    }

    #[test]
    fn a_refusal_before_rcpt_is_no_verdict_on_the_recipient() {
        assert_eq!(
            class_of(
                None,
                "Connected to 192.0.2.1 but my name was rejected. Remote host said: 501 5.0.0 Invalid domain name"
            ),
            Class::UserReject
        );
        assert_eq!(
            class_of(
                None,
                "host mx said: 550 No such user (in reply to MAIL FROM command)"
            ),
            Class::UserReject
        );
        assert_eq!(
            class_of(
                Some("5.1.1"),
                "SMTP error from remote mail server after MAIL FROM:<s@a.example>: 550 5.1.1 sender unknown"
            ),
            Class::UserReject
        );
        assert_eq!(
            class_of(
                Some("5.1.2"),
                "host mx said: 550 5.1.2 (in reply to MAIL FROM command)"
            ),
            Class::UserReject
        );
    }

    #[test]
    fn the_stage_by_each_producers_convention() {
        let cases = [
            ("(in reply to RCPT TO command)", Stage::Rcpt),
            (
                "SMTP error from remote mail server after RCPT TO:<a@b.example>:",
                Stage::Rcpt,
            ),
            (
                "Remote host said: 550 no. Giving up.\n192.0.2.1 does not like recipient.",
                Stage::Rcpt,
            ),
            ("(in reply to end of DATA command)", Stage::Data),
            (
                "SMTP error from remote mail server after end of data:",
                Stage::Data,
            ),
            ("Connected to 192.0.2.1 but sender was rejected.", Stage::Mail),
            (
                "mx.example [192.0.2.25] did not like our RCPT TO:\n550 5.2.1 <a@b.example>: no",
                Stage::Rcpt,
            ),
            (
                "Sorry, no SMTP connection got far enough; most progress was RCPT TO response",
                Stage::Rcpt,
            ),
            ("after MAIL FROM:<s@a.example> SIZE=100:", Stage::Mail),
            ("Connected to 192.0.2.1 but my name was rejected.", Stage::Helo),
            (
                "host mx[192.0.2.1] refused to talk to me: 554 go away",
                Stage::Connect,
            ),
            (
                ">>> MAIL From:<s@a.example>\n<<< 553 5.1.8 sender domain does not exist",
                Stage::Mail,
            ),
            (">>> RCPT To:<a@b.example>\n<<< 550 5.1.1 unknown", Stage::Rcpt),
            (
                ">>> DATA\n<<< 550 5.0.0 <a@b.example>... User unknown\n",
                Stage::Data,
            ),
            (">>> DATA\n<<< 554 5.7.1 content refused\n", Stage::Data),
            ("550 <a@b.example>: Recipient address rejected", Stage::Unknown),
            ("550 sorry", Stage::Unknown),
            (
                "mail.local: unknown user: a\n554 <a@b.example>... Service unavailable",
                Stage::Local,
            ),
            ("", Stage::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(stage_of(&[text]), want, "{text}");
        }
    }

    #[test]
    fn delays_and_delivered() {
        let delayed = |status: &str, diagnostic: &str| {
            judge(&Evidence {
                action: Some(Action::Delayed),
                status: Status::parse(status),
                diagnostic,
                ..Evidence::default()
            })
            .class
        };
        assert_eq!(delayed("4.4.1", ""), Class::Transient);
        assert_eq!(
            delayed("4.4.3", "Host or domain name not found"),
            Class::Transient
        );
        let j = judge(&Evidence {
            action: Some(Action::Delivered),
            status: Status::parse("2.0.0"),
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::Ignore);
    }

    #[test]
    fn knowledge_ranks_first_and_x_unix_is_a_local_program() {
        let j = judge(&Evidence {
            knowledge: Some((Class::UserReject, "group refuses the post")),
            status: Status::parse("5.1.1"),
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject);
        let j = judge(&Evidence {
            action: Some(Action::Failed),
            status: Status::parse("5.0.0"),
            diagnostic_type: "x-unix",
            diagnostic: "75",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::Transient);
    }

    #[test]
    fn nothing_said_at_all() {
        assert_eq!(class_of(None, ""), Class::Transient);
        assert_eq!(class_of(None, "554 go away"), Class::UserReject);
        assert_eq!(class_of(None, "451 please hold"), Class::Transient);
    }
}
