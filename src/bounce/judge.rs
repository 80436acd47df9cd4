//! One recipient's evidence → its class. Shared by SMTP replies, DSNs and
//! the free-text bounces, so all three decide alike: a decisive status code,
//! else a specific phrase, else the status code's hint, else the first digit.

use super::Class;
use super::dsn::Action;
use super::rules::{self, Weight};
use super::status::{Status, find_reply_code};

/// What a report says about one recipient, most specific first.
#[derive(Default)]
pub struct Evidence<'a> {
    pub action: Option<Action>,
    /// A DSN's `Status:` field, or the enhanced code of an SMTP reply.
    pub status: Option<Status>,
    /// A reply code known apart from the text (an SMTP reply's).
    pub code: Option<u16>,
    /// `Diagnostic-Code`, or the SMTP reply text.
    pub diagnostic: &'a str,
    /// The notice's text about this recipient.
    pub context: &'a str,
    /// The whole notice and the subject: read only when nothing closer speaks.
    pub notice: &'a str,
    pub subject: &'a str,
    /// The text is a reply seen while delivering, to RCPT TO unless the
    /// caller knows better: "user unknown" in it names a missing mailbox.
    pub live_reply: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Judgement {
    pub class: Class,
    pub status: Option<Status>,
    pub code: Option<u16>,
    /// What decided: the rule's label.
    pub label: &'static str,
}

pub fn judge(e: &Evidence<'_>) -> Judgement {
    let close = [e.diagnostic, e.context];
    let code = e.code.or_else(|| close.iter().find_map(|t| find_reply_code(t)));
    if e.action == Some(Action::Delivered) {
        return Judgement {
            class: Class::Ignore,
            status: e.status,
            code,
            label: "delivered",
        };
    }
    // The server's own code (in its reply) over the one the reporting MTA
    // wrote in `Status:`, which is often derived ("5.0.0") or stale; the
    // first that names more than "failed" wins.
    let found: Vec<Status> = close
        .iter()
        .take(1)
        .filter_map(|t| Status::find(t))
        .chain(e.status)
        .chain(close.iter().skip(1).filter_map(|t| Status::find(t)))
        .collect();
    let status = found
        .iter()
        .copied()
        .find(|s| !s.is_generic())
        .or_else(|| found.first().copied());
    let coded = status.and_then(rules::by_status);

    let said = close.map(rules::normalise);
    let near = rules::by_phrase(&[&said[0], &said[1]]);
    let far = || rules::by_phrase(&[&rules::normalise(e.notice), &rules::normalise(e.subject)]);

    let (mut class, mut label) = match (coded, near) {
        (_, Some(rule)) if rule.beats_codes => (rule.class, rule.label),
        (Some((class, Weight::Decisive, label)), _) => (class, label),
        (Some((class, Weight::Hint, label)), Some(rule)) if !overrules(rule, status) => (class, label),
        (_, Some(rule)) => (rule.class, rule.label),
        (Some((class, _, label)), None) => (class, label),
        (None, None) => match far() {
            Some(rule) => (rule.class, rule.label),
            None => fallback(e.action, status, code),
        },
    };

    // A name server that failed to answer, reported while the sender is
    // still retrying (4.x.x), is a passing trouble, not a missing domain.
    let deferred = status.map(|s| s.class) == Some(4) || e.action == Some(Action::Delayed);
    if class == Class::InvalidAddr && !decisive_code(coded) && deferred {
        class = Class::Transient;
        label = "name service trouble, still retrying";
    }

    // A refusal of the greeting or of the sender is no verdict on the
    // recipient's mailbox or domain, whatever words it uses ("501 Invalid
    // domain name" to HELO).
    if matches!(class, Class::NotExist | Class::InvalidAddr)
        && !decisive_code(coded)
        && said.iter().any(|t| before_rcpt(t))
    {
        class = Class::UserReject;
        label = "refused before the recipient was named";
    }
    // Nor is a refusal of the message, once the recipient was accepted, a
    // sign that the recipient's domain does not exist ("550 5.2.0 <sender>
    // From: Domain is invalid" after end of data).
    if class == Class::InvalidAddr && !decisive_code(coded) && said.iter().any(|t| after_data(t)) {
        class = Class::UserReject;
        label = "refused after the message was sent";
    }

    // "User unknown" from an SMTP server names a missing mailbox only as
    // the answer to RCPT TO (or with 5.1.1); after DATA, or with no sign
    // of when it was said, it is a content filter's refusal.
    let decisive = decisive_code(coded);
    let stage_bound = !e.live_reply && near.or_else(far).is_some_and(|r| r.needs_rcpt);
    if class == Class::NotExist
        && !decisive
        && stage_bound
        && (said.iter().any(|t| after_data(t)) || !at_rcpt(&said, coded.is_some()))
    {
        class = Class::UserReject;
        label = "refused after the message was sent";
    }
    Judgement {
        class,
        status,
        code,
        label,
    }
}

/// May a phrase overrule a status code's hint? A weak one never; a passing
/// trouble ("try again later") never overrules a permanent or a policy
/// code (5.x.x, x.7.x), which says the server decided.
fn overrules(rule: &rules::Rule, status: Option<Status>) -> bool {
    let decided = status.is_some_and(|s| s.is_permanent() || s.subject == 7);
    rule.strong && !(rule.class == Class::Transient && decided)
}

fn decisive_code(coded: Option<(Class, Weight, &'static str)>) -> bool {
    matches!(coded, Some((_, Weight::Decisive, _)))
}

/// No code names a cause and no phrase matched: the first digit says
/// whether it was final. A report that gives no code and no reason at all
/// is no verdict on the address: `transient`, like a give-up.
fn fallback(action: Option<Action>, status: Option<Status>, code: Option<u16>) -> (Class, &'static str) {
    let digit = status.map(|s| s.class).or(code.map(|c| (c / 100) as u8));
    match (action, digit) {
        (Some(Action::Delayed), _) | (_, Some(4)) => (Class::Transient, "deferred"),
        (_, Some(5)) => (Class::UserReject, "refused"),
        _ => (Class::Transient, "failed, no reason given"),
    }
}

/// The reply was to RCPT TO: the transcript says so, or the server quotes
/// the address it refuses as Postfix's RCPT answer does (`550 <a@b>: User
/// unknown`); local delivery has no DATA. Sendmail's `a@b... No such user`
/// is no sign: gateways and content filters say it after DATA too.
/// When the status code names another cause (5.2.1 disabled, 5.7.1
/// policy), only the transcript's word counts.
fn at_rcpt(said: &[String; 2], code_names_a_cause: bool) -> bool {
    let [reply, notice] = said;
    let quotes = |t: &str| t.contains(">: ");
    [reply, notice]
        .iter()
        .any(|t| names_rcpt(t) || t.contains("mail.local"))
        || (quotes(reply) && !code_names_a_cause)
}

/// The text names RCPT as the command answered (`in reply to RCPT TO`,
/// `SMTP:RCPT host`, `[RCPT_TO]`), not as what a later command lacked
/// (`503 Need RCPT`, the answer to DATA after every RCPT failed).
fn names_rcpt(text: &str) -> bool {
    text.match_indices("rcpt")
        .any(|(at, _)| !text[..at].ends_with("need "))
}

/// The reply was to the greeting, HELO/EHLO or MAIL FROM: the reporting
/// MTA says which (Postfix's `in reply to MAIL FROM command`, Exim's
/// `after MAIL FROM`, qmail's `my name was rejected`).
fn before_rcpt(text: &str) -> bool {
    const SIGNS: &[&str] = &[
        "in reply to mail from",
        "in reply to helo",
        "in reply to ehlo",
        "after mail from",
        "after helo",
        "after ehlo",
        "my name was rejected",
        "sender was rejected",
        "refused to talk to me",
    ];
    SIGNS.iter().any(|p| text.contains(p))
}

/// The reply was to the message's end of data, not to RCPT TO. (A
/// sendmail transcript's `>>> DATA` is no sign: it pipelines DATA after
/// RCPT and prints the RCPT refusal below it.)
fn after_data(text: &str) -> bool {
    ["end of data", "after data", "final data", "data command"]
        .iter()
        .any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(status: Option<&str>, diagnostic: &str) -> Class {
        judge(&Evidence {
            status: status.and_then(Status::parse),
            diagnostic,
            ..Evidence::default()
        })
        .class
    }

    #[test]
    fn decisive_codes_beat_phrases() {
        assert_eq!(class_of(Some("5.1.1"), "550 blocked"), Class::NotExist);
        assert_eq!(class_of(Some("5.2.2"), "550 rejected"), Class::OverQuota);
        assert_eq!(class_of(None, "550 5.1.2 Host unknown"), Class::InvalidAddr);
    }

    #[test]
    fn specific_phrases_beat_loose_codes() {
        assert_eq!(
            class_of(Some("5.7.1"), "RCPT TO: 550 5.7.1 User unknown"),
            Class::NotExist
        );
        assert_eq!(
            class_of(Some("5.0.0"), "RCPT TO: 550 Unknown user"),
            Class::NotExist
        );
        assert_eq!(class_of(Some("5.0.0"), "552 Mailbox full"), Class::OverQuota);
        // A weak phrase does not overrule the code's hint.
        assert_eq!(
            class_of(Some("5.7.1"), "550 5.7.1 mailbox unavailable"),
            Class::UserReject
        );
    }

    #[test]
    fn a_dsn_status_that_only_says_failed_yields_to_the_reply() {
        let j = judge(&Evidence {
            status: Status::parse("5.0.0"),
            diagnostic: "smtp; 550 5.2.2 <a@b.example>... Mailbox Full",
            ..Evidence::default()
        });
        assert_eq!(j.status, Status::parse("5.2.2"));
        assert_eq!(j.code, Some(550));
        assert_eq!(j.class, Class::OverQuota);
    }

    #[test]
    fn unknown_user_counts_only_as_the_answer_to_rcpt() {
        let at_rcpt = judge(&Evidence {
            diagnostic: "550 Unknown user a@b.example",
            context: "<a@b.example>: host mx said: 550 Unknown user (in reply to RCPT TO command)",
            ..Evidence::default()
        });
        assert_eq!(at_rcpt.class, Class::NotExist);
        let unsaid = judge(&Evidence {
            diagnostic: "550 Unknown user a@b.example",
            ..Evidence::default()
        });
        assert_eq!(unsaid.class, Class::UserReject);
        let coded = judge(&Evidence {
            diagnostic: "550 5.1.1 Unknown user a@b.example",
            ..Evidence::default()
        });
        assert_eq!(coded.class, Class::NotExist);
        let own_words = judge(&Evidence {
            context: "a@b.example on 4/29/01\n  The recipient name is not recognized",
            ..Evidence::default()
        });
        assert_eq!(own_words.class, Class::NotExist);
    }

    #[test]
    fn which_words_say_the_reply_answered_rcpt() {
        let unknown = |diagnostic: &str, context: &str| {
            judge(&Evidence {
                status: Status::parse("5.0.0"),
                diagnostic,
                context,
                ..Evidence::default()
            })
            .class
        };
        // Sendmail's quoting is also a gateway's or a filter's after DATA.
        assert_eq!(unknown("550 a@b.example... No such user", ""), Class::UserReject);
        assert_eq!(unknown("550 <a@b.example>: User unknown", ""), Class::NotExist);
        for context in ["SMTP:RCPT host 192.0.2.8: 553", "Remote host said: [RCPT_TO]"] {
            assert_eq!(
                unknown("553 a@b.example... No such user here", context),
                Class::NotExist
            );
        }
        // "Need RCPT" answers the DATA that followed a refused RCPT.
        assert_eq!(
            unknown(
                "550 a@b.example... User unknown",
                ">>> DATA\n<<< 503 5.0.0 Need RCPT (recipient)"
            ),
            Class::UserReject
        );
    }

    #[test]
    fn a_refused_greeting_or_sender_is_no_verdict_on_the_recipient() {
        let j = judge(&Evidence {
            diagnostic: "Remote host said: 501 5.0.0 Invalid domain name",
            context: "Connected to 192.0.2.1 but my name was rejected.\nRemote host said: 501 5.0.0 Invalid domain name",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject);
        let j = judge(&Evidence {
            diagnostic: "550 No such user",
            context: "host mx said: 550 No such user (in reply to MAIL FROM command)",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject);
        // After end of data the recipient was accepted: its domain exists.
        let j = judge(&Evidence {
            status: Status::parse("5.2.0"),
            diagnostic: "550 5.2.0 <s@a.example> From: Domain is invalid.",
            context: "SMTP error from remote mail server after end of data:\n550 5.2.0 <s@a.example> From: Domain is invalid.",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject);
        // A code that names the cause still decides.
        assert_eq!(
            class_of(
                Some("5.1.2"),
                "host mx refused to talk to me: 550 5.1.2 no such domain"
            ),
            Class::InvalidAddr
        );
    }

    #[test]
    fn a_rate_limit_overrules_even_a_decisive_code() {
        assert_eq!(
            class_of(
                Some("5.1.1"),
                "550 5.1.1 <a@b.example> - 192.0.2.1 has sent to too many recipients this hour"
            ),
            Class::Transient
        );
        assert_eq!(
            class_of(Some("5.1.1"), "550 5.1.1 too many hops"),
            Class::NotExist
        );
    }

    #[test]
    fn unknown_user_after_data_is_a_filter() {
        let j = judge(&Evidence {
            status: Status::parse("5.0.0"),
            diagnostic: "550 Unknown user a@b.example",
            context: "<a@b.example>: host mx said: 550 Unknown user (in reply to end of DATA command)",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject);
    }

    #[test]
    fn without_reason_the_first_digit_decides() {
        assert_eq!(class_of(None, "451 please hold"), Class::Transient);
        assert_eq!(class_of(None, "554 go away"), Class::UserReject);
        assert_eq!(class_of(Some("4.0.0"), ""), Class::Transient);
        let delayed = judge(&Evidence {
            action: Some(Action::Delayed),
            ..Evidence::default()
        });
        assert_eq!(delayed.class, Class::Transient);
    }

    #[test]
    fn delivered_is_ignored() {
        let j = judge(&Evidence {
            action: Some(Action::Delivered),
            status: Status::parse("2.0.0"),
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::Ignore);
    }

    #[test]
    fn far_text_is_read_last() {
        let j = judge(&Evidence {
            notice: "Storage quota exceeded",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::OverQuota);
        let j = judge(&Evidence {
            status: Status::parse("5.7.1"),
            notice: "Storage quota exceeded",
            ..Evidence::default()
        });
        assert_eq!(j.class, Class::UserReject, "the notice never overrules a code");
    }
}
