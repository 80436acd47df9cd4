//! The tables the classifier decides with: enhanced status codes first, then
//! phrases per language. Everything here is data plus two small lookups, so a
//! new server's wording is one line in [`PHRASES`] and one test case.

use super::Class;
use super::status::Status;

/// How far a status code alone decides the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    /// The code names the cause exactly (5.1.1, 5.2.2, 5.1.2): text can't overrule it.
    Decisive,
    /// The code points somewhere (5.7.1 policy, 5.2.1 disabled) but servers
    /// use it loosely: a specific phrase in the text wins.
    Hint,
}

/// The class a status code gives, by subject and detail (the class digit
/// 4 or 5 only says whether to retry, which the caller knows).
pub fn by_status(s: Status) -> Option<(Class, Weight, &'static str)> {
    use Class::*;
    use Weight::*;
    let hit = match (s.subject, s.detail) {
        (1, 1) => (NotExist, Decisive, "bad destination mailbox"),
        (1, 10) => (NotExist, Decisive, "recipient address not found"),
        (1, 3) => (NotExist, Hint, "bad destination mailbox address syntax"),
        (1, 2) => (InvalidAddr, Decisive, "bad destination system"),
        (1, 4) => (UserReject, Hint, "ambiguous destination mailbox"),
        (1, 6) => (UserReject, Decisive, "mailbox has moved"),
        (1, 7) | (1, 8) => (UserReject, Decisive, "sender address rejected"),
        (2, 1) => (UserReject, Hint, "mailbox disabled"),
        (2, 2) => (OverQuota, Decisive, "mailbox full"),
        (2, 3) => (UserReject, Hint, "message too large for the recipient"),
        (2, 4) => (UserReject, Hint, "mailing list expansion problem"),
        (3, 1) => (Transient, Hint, "mail system full"),
        (3, 2) => (UserReject, Hint, "system not accepting messages"),
        (3, 4) => (UserReject, Hint, "message too big for the system"),
        (3, 5) => (Transient, Hint, "system incorrectly configured"),
        (4, 1) | (4, 2) => (Transient, Hint, "no answer from the host"),
        (4, 3) => (Transient, Hint, "directory server failure"),
        (4, 4) => (InvalidAddr, Decisive, "unable to route"),
        (4, 5) => (Transient, Hint, "mail system congestion"),
        (4, 6) => (Transient, Hint, "routing loop"),
        (4, 7) => (Transient, Decisive, "delivery time expired"),
        (5, 1..=6) => (UserReject, Hint, "protocol error"),
        (6, _) => (UserReject, Hint, "message content refused"),
        (7, 0) => (UserReject, Hint, "refused by policy"),
        (7, _) => (UserReject, Hint, "refused by security policy"),
        _ => return None,
    };
    Some(hit)
}

/// One rule: a class and the phrases that say it. Phrases are matched on
/// lower-cased text with runs of white space made one space; `*` stands for
/// a gap of up to [`GAP`] characters.
pub struct Rule {
    pub class: Class,
    pub label: &'static str,
    /// A strong rule names a cause and overrules a loose status code; a weak
    /// one only speaks when no code does.
    pub strong: bool,
    /// An SMTP server's "user unknown" is a verdict on the address only
    /// when it answered RCPT TO (or said 5.1.1); the same words after DATA,
    /// or with no sign of when, come from a content filter (`user_reject`).
    pub needs_rcpt: bool,
    /// The phrase names a cause so plainly that it overrules even a
    /// decisive code: a rate limit sent as `550 5.1.1 … too many recipients
    /// this hour` says nothing about the mailbox.
    pub beats_codes: bool,
    pub phrases: &'static [&'static str],
}

const GAP: usize = 48;

/// Checked in order; the first rule with a matching phrase decides. The order
/// is the precedence: a full mailbox, a missing domain or mailbox explain a
/// failure better than the words around them; a give-up after retries takes
/// the cause of the last attempt when the report names one (API.md H-4) and
/// is `transient` only when it names none; bare refusal words ("rejected",
/// "denied") and the weak sign of a missing mailbox come last.
pub static PHRASES: &[Rule] = &[
    Rule {
        class: Class::OverQuota,
        label: "mailbox full",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            // English
            "mailbox full",
            "mailbox is full",
            "mailbox was full",
            "mail box full",
            "mailbox has exceeded",
            "mailbox exceeds",
            "mailbox size limit exceeded",
            "mailbox would exceed",
            "mailbox quota",
            "mailbox over quota",
            "mailfolder is full",
            "inbox is full",
            "account is full",
            "over quota",
            "overquota",
            "over the quota",
            "over its quota",
            "quota exceeded",
            "quota exceed",
            "exceeded quota",
            "exceeds quota",
            "exceed the quota",
            "would exceed * quota",
            "storage quota",
            "disk quota",
            "user quota",
            "exceeded storage allocation",
            "exceeds allowed size",
            "not enough storage space in the mailbox",
            "out of storage space",
            "full mailbox",
            "user is over",
            // Chinese
            "邮箱已满",
            "邮箱满",
            "信箱已满",
            "邮箱空间不足",
            "空间不足",
            "容量不足",
            "超过配额",
            "超出配额",
            "超过容量",
            "空间已满",
            "郵箱已滿",
            // Japanese
            "容量超過",
            "容量オーバー",
            "メールボックスがいっぱい",
            "メールボックスの容量",
            // German, French, Spanish, Russian
            "postfach voll",
            "postfach ist voll",
            "speicherplatz",
            "quota überschritten",
            "boîte pleine",
            "boite pleine",
            "boîte aux lettres pleine",
            "quota dépassé",
            "buzón lleno",
            "cuota excedida",
            "переполнен",
        ],
    },
    Rule {
        class: Class::InvalidAddr,
        label: "domain can't receive mail",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            "host unknown",
            "unknown host",
            "host not found",
            "host or domain name not found",
            "name service error",
            "dns lookup failure",
            "dns error",
            "domain not found",
            "domain does not exist",
            "domain doesn't exist",
            "domain name not found",
            "no such domain",
            "unknown domain",
            "domain unknown",
            "invalid domain",
            "domain is invalid",
            "nxdomain",
            "no mx record",
            "no mx or a",
            "mx record",
            "mx lookup",
            "no valid mx",
            "null mx",
            "unrouteable address",
            "unroutable address",
            "unroutable domain",
            "could not be resolved",
            "cannot be resolved",
            "can't be resolved",
            "name or service not known",
            "illegal host/domain",
            "bad destination system",
            "no route to domain",
            "domain is not reachable",
            "domain is unreachable",
            "域名不存在",
            "域名错误",
            "ドメインが存在しません",
            "domain existiert nicht",
            "domaine inexistant",
            "domaine inconnu",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "no such recipient",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            // The reporting system's own words, not a relayed SMTP reply.
            "recipient name is not recognized",
            "returned unknown recipient",
            "not listed in * directory",
            "not listed in public name",
            "invalid final delivery userid",
            "address couldn't be found",
            "address could not be found",
            "no valid recipients",
            "doesn't have a * account",
            "does not have a * account",
            "email account that you tried to reach does not exist",
            // Chinese
            "用户不存在",
            "用户名不存在",
            "收件人不存在",
            "收信人不存在",
            "邮箱不存在",
            "邮件地址不存在",
            "地址不存在",
            "帐户不存在",
            "账户不存在",
            "帐号不存在",
            "账号不存在",
            "无此用户",
            "沒有這個用戶",
            "用戶不存在",
            // Japanese
            "存在しない",
            "存在しません",
            "宛先不明",
            "該当するユーザ",
            "ユーザーが見つかりません",
            // German, French, Spanish, Italian, Portuguese, Russian
            "benutzer unbekannt",
            "empfänger unbekannt",
            "adresse unbekannt",
            "unbekannter empfänger",
            "unbekannter benutzer",
            "postfach existiert nicht",
            "existiert nicht",
            "utilisateur inconnu",
            "destinataire inconnu",
            "adresse inconnue",
            "destinataire invalide",
            "adresse destinataire invalide",
            "n'existe pas",
            "usuario desconocido",
            "destinatario desconocido",
            "no existe",
            "utente sconosciuto",
            "non esiste",
            "usuário desconhecido",
            "utilizador desconhecido",
            "não existe",
            "нет такого пользователя",
            "не существует",
            "пользователь не найден",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "mailbox does not exist",
        strong: true,
        needs_rcpt: true,
        beats_codes: false,
        phrases: &[
            // English
            "user unknown",
            "unknown user",
            "user is unknown",
            "user not known",
            "unknown recipient",
            "recipient unknown",
            "unknown or illegal alias",
            "unknown local part",
            "unknown local-part",
            "unknown address",
            "address unknown",
            "addressee unknown",
            "unknown mailbox",
            "mailbox unknown",
            "no such user",
            "no such mailbox",
            "no such recipient",
            "no such account",
            "no such address",
            "no such person",
            "no mailbox here",
            "no mailbox by that name",
            "no account by that name",
            "user not found",
            "user was not found",
            "recipient not found",
            "recipient was not found",
            "mailbox not found",
            "mailbox was not found",
            "account not found",
            "address not found",
            "addressee not found",
            "user does not exist",
            "user doesn't exist",
            "user not exist",
            "mailbox does not exist",
            "mailbox doesn't exist",
            "mailbox not exist",
            "account does not exist",
            "account doesn't exist",
            "address does not exist",
            "address doesn't exist",
            "recipient does not exist",
            "recipient doesn't exist",
            "recipient not exist",
            "does not exist here",
            "no longer exists",
            "no longer available",
            "no longer valid",
            "not a valid user",
            "not a valid mailbox",
            "not a valid recipient",
            "is not a known user",
            "invalid recipient",
            "invalid mailbox",
            "invalid user",
            "invalid address",
            "bad recipient",
            "bad destination mailbox",
            "recipient address rejected: user unknown",
            "mailbox unavailable or not local",
            "no such local user",
            "unknown mailbox",
            "destination address does not exist",
        ],
    },
    Rule {
        class: Class::Transient,
        label: "sending too fast",
        strong: true,
        needs_rcpt: false,
        beats_codes: true,
        phrases: &[
            // Rate limits name a passing condition, even when worded "blocked".
            "too many connections",
            "too many concurrent",
            "too many messages",
            "too many recipients this",
            "too many sessions",
            "frequency limited",
            "frequency limit",
            "rate limit",
            "rate-limit",
            "ratelimit",
            "throttl",
            "sending too fast",
            "exceeded the rate",
            "connection limit",
            "发送频率",
            "频率过快",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "refused by the recipient's server",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            // account state
            "account disabled",
            "account has been disabled",
            "account is disabled",
            "account is inactive",
            "account inactive",
            "account is locked",
            "account has been locked",
            "account suspended",
            "account has been suspended",
            "account is suspended",
            "tried to reach is disabled",
            "tried to reach is inactive",
            "mailbox disabled",
            "mailbox is disabled",
            "mailbox is inactive",
            "mailbox has been disabled",
            "disabled mailbox",
            "deactivated",
            "suspended",
            "has been terminated",
            "has moved",
            "not our customer",
            "not accepting mail",
            "not accepting messages",
            "not accepting connections",
            "not accepting network messages",
            "does not accept mail",
            // reputation, policy, authentication
            "blocked",
            "block list",
            "blocklist",
            "blacklist",
            "black list",
            "denylist",
            "banned",
            "spamhaus",
            "spamcop",
            "rbl",
            "dnsbl",
            "bad reputation",
            "poor reputation",
            "low reputation",
            "spam",
            "junk mail",
            "unsolicited",
            "bulk mail",
            "virus",
            "malware",
            "infected",
            "policy",
            "dmarc",
            "dkim",
            "spf",
            "authentication",
            "not authorized",
            "unauthorized",
            "unauthenticated",
            "reverse dns",
            "reverse hostname",
            "ptr record",
            "reverse lookup",
            "rdns",
            "unverifyable",
            "unverifiable",
            "may not be mail exchanger",
            "relay access denied",
            "relaying denied",
            "relay not permitted",
            "not permitted to relay",
            "relay denied",
            "access denied",
            "sender address rejected",
            "service refused",
            "service refusé",
            "sender rejected",
            "domain of sender address",
            "invalid domain name",
            // the message itself
            "message too large",
            "message too big",
            "message size exceeds",
            "message length exceeds",
            "size limit",
            "exceeds the maximum",
            "too many recipients",
            "header error",
            "malformed recipient",
            "malformed address",
            "incorrectly constructed",
            "syntax error",
            "content error",
            "media error",
            "not a member",
            // the sender's own setup (a relay it must log in to)
            "does not advertise auth",
            "'send mail as'",
            "permission to post",
            "δικαίωμα αναρτήσεων",
            "אישור לפרסם",
            "permiso para publicar",
            "autorisation de publier",
            "permissão para postar",
            "投稿する権限",
            "垃圾邮件",
            "受信拒否",
            "拒否",
        ],
    },
    Rule {
        class: Class::Transient,
        label: "expired after retries",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            "retry timeout exceeded",
            "retry time exceeded",
            "message expired",
            "delivery expired",
            "delivery time expired",
            "expired after",
            "time limit exceeded",
            "timeout exceeded",
            "was not delivered within",
            "could not deliver for the last",
            "could not be delivered for",
            "unable to deliver in",
            "too long in queue",
            "too long in the queue",
            "in queue too long",
            "queue too long",
            "retry period",
            "no longer retrying",
            "will not be retried",
            "message timed out",
            "送信期限",
        ],
    },
    Rule {
        class: Class::Transient,
        label: "temporary trouble",
        strong: true,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            "connection timed out",
            "connection refused",
            "connection reset",
            "connection closed",
            "connection dropped",
            "lost connection",
            "timed out",
            "time out",
            "timeout",
            "socket error",
            "could not connect",
            "couldn't connect",
            "unable to connect",
            "requests to connect",
            "not responding",
            "no route to host",
            "network is unreachable",
            "network error",
            "host is unreachable",
            "try again later",
            "try later",
            "please retry",
            "temporarily",
            "temporary failure",
            "temporary error",
            "system error",
            "internal error",
            "local error",
            "mailer error",
            "pipe to |",
            "mail system full",
            "insufficient system storage",
            "out of memory",
            "insufficient resources",
            "service unavailable",
            "service currently unavailable",
            "service not available",
            "transaction failed",
            "server busy",
            "on hold",
            "greylist",
            "graylist",
            "暂时",
            "超时",
            "稍后",
            "一時的",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "refused",
        strong: false,
        needs_rcpt: false,
        beats_codes: false,
        phrases: &[
            // Bare refusal words: they say no, not why.
            "rejected",
            "refused",
            "denied",
            "not allowed",
            "prohibited",
            "forbidden",
            "拒绝",
            "拒收",
            "被退回",
            "abgelehnt",
            "refusé",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "mailbox unavailable",
        strong: false,
        needs_rcpt: true,
        beats_codes: false,
        phrases: &["mailbox unavailable", "mailbox not available", "no mailbox"],
    },
];

/// The rule that speaks for `texts` (most specific first, each already
/// normalised by [`normalise`]): the first strong rule matching the first
/// text that has one, else the first weak rule likewise. A cause named in
/// the notice ("address couldn't be found") beats a bare "rejected" in the
/// reply, but the reply's own cause beats words elsewhere in the notice.
pub fn by_phrase(texts: &[&str]) -> Option<&'static Rule> {
    [true, false].into_iter().find_map(|strong| {
        texts.iter().find_map(|t| {
            PHRASES
                .iter()
                .filter(|rule| rule.strong == strong)
                .find(|rule| rule.phrases.iter().any(|p| matches(t, p)))
        })
    })
}

/// Lower case, every run of white space one space: the form phrases are
/// written in.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// Does `pattern` occur in `text`? A `*` in the pattern is a gap of up to
/// [`GAP`] characters. A pattern that begins with a letter or digit must
/// begin a word ("rbl" is not in "verbless"). Linear in the text per piece.
fn matches(text: &str, pattern: &str) -> bool {
    let mut pieces = pattern.split('*');
    let Some(first) = pieces.next().filter(|p| !p.is_empty()) else {
        return false;
    };
    let rest: Vec<&str> = pieces.collect();
    let word = first.starts_with(|c: char| c.is_ascii_alphanumeric());
    let mut from = 0;
    while let Some(pos) = text[from..].find(first) {
        let start = from + pos;
        let begins_word = !word
            || !text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if begins_word && follows(&text[start + first.len()..], &rest) {
            return true;
        }
        from = start + first.len();
    }
    false
}

fn follows(text: &str, pieces: &[&str]) -> bool {
    let Some((piece, rest)) = pieces.split_first() else {
        return true;
    };
    let window_end = text
        .char_indices()
        .nth(GAP + piece.chars().count())
        .map_or(text.len(), |(i, _)| i);
    match text[..window_end].find(piece) {
        Some(pos) => follows(&text[pos + piece.len()..], rest),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(text: &str) -> Option<Class> {
        by_phrase(&[&normalise(text)]).map(|r| r.class)
    }

    #[test]
    fn status_codes_decide_first() {
        let cases = [
            ("5.1.1", Some((Class::NotExist, Weight::Decisive))),
            ("5.1.10", Some((Class::NotExist, Weight::Decisive))),
            ("4.1.1", Some((Class::NotExist, Weight::Decisive))),
            ("5.2.2", Some((Class::OverQuota, Weight::Decisive))),
            ("4.2.2", Some((Class::OverQuota, Weight::Decisive))),
            ("5.1.2", Some((Class::InvalidAddr, Weight::Decisive))),
            ("5.4.4", Some((Class::InvalidAddr, Weight::Decisive))),
            ("4.4.7", Some((Class::Transient, Weight::Decisive))),
            ("5.7.1", Some((Class::UserReject, Weight::Hint))),
            ("5.7.26", Some((Class::UserReject, Weight::Hint))),
            ("5.2.1", Some((Class::UserReject, Weight::Hint))),
            ("5.1.6", Some((Class::UserReject, Weight::Decisive))),
            ("5.3.4", Some((Class::UserReject, Weight::Hint))),
            ("4.4.1", Some((Class::Transient, Weight::Hint))),
            ("5.1.3", Some((Class::NotExist, Weight::Hint))),
            ("5.0.0", None),
            ("5.1.0", None),
            ("5.5.0", None),
            ("4.0.0", None),
        ];
        for (code, want) in cases {
            let got = by_status(Status::parse(code).unwrap()).map(|(c, w, _)| (c, w));
            assert_eq!(got, want, "{code}");
        }
    }

    #[test]
    fn over_quota_phrases() {
        for text in [
            "552 Mailbox Full",
            "User mailbox exceeds allowed size: a@b.jp",
            "Storage quota exceeded",
            "The email account that you tried to reach is over quota.",
            "552 Requested mail action aborted: exceeded storage allocation",
            "收件人邮箱已满",
            "ユーザのメールボックスの容量が超過",
            "容量超過のため",
            "Postfach voll",
        ] {
            assert_eq!(phrase(text), Some(Class::OverQuota), "{text}");
        }
    }

    #[test]
    fn not_exist_phrases() {
        for text in [
            "550 Unknown user a@b.jp",
            "550 5.1.1 <a@b.jp>... User Unknown",
            "550 sorry, no mailbox here by that name",
            "Recipient address rejected: User unknown in local recipient table",
            "The recipient name is not recognized",
            "User a (a@b.jp) not listed in Domino Directory",
            "Invalid final delivery userid: a@b.jp",
            "This user doesn't have a yahoo.co.jp account",
            "The email account that you tried to reach does not exist.",
            "550 Requested action not taken: mailbox unavailable",
            "554 delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0] - mta1061",
            "550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_416",
            "收件人不存在",
            "该用户不存在",
            "指定されたメールアドレスは存在しません",
            "Benutzer unbekannt",
            "Utilisateur inconnu",
            "550 5.5.0 Adresse destinataire invalide. LPN007_416",
            "нет такого пользователя",
        ] {
            assert_eq!(phrase(text), Some(Class::NotExist), "{text}");
        }
    }

    #[test]
    fn invalid_addr_phrases() {
        for text in [
            "Host or domain name not found. Name service error for name=x.example type=A",
            "DNS lookup failure: host cx.example not found",
            "Unrouteable address",
            "550 Host unknown",
            "domain does not exist",
            "域名不存在",
        ] {
            assert_eq!(phrase(text), Some(Class::InvalidAddr), "{text}");
        }
    }

    #[test]
    fn transient_phrases() {
        for text in [
            "retry timeout exceeded",
            "Message expired: unable to deliver in 840 minutes",
            "Could not deliver for the last 432000 seconds. Giving up.",
            "Your message was not delivered within 0 days and 1 hours.",
            "The recipient server did not accept our requests to connect.",
            "Connection timed out",
            "421 Too many connections, try again later",
            "Mailer error",
        ] {
            assert_eq!(phrase(text), Some(Class::Transient), "{text}");
        }
    }

    #[test]
    fn user_reject_phrases() {
        for text in [
            "550 5.7.1 Message rejected as spam",
            "Access denied, sending domain does not pass DMARC verification",
            "554 5.7.9 Message not accepted for policy reasons",
            "Client host rejected: cannot find your reverse hostname",
            "554 Relay access denied",
            "Mail size limit exceeded",
            "The user(s) account is disabled.",
            "Blocked by the recipient's server",
            "The group you tried to contact may not exist, or you may not have permission to post",
            "該当アドレスは受信拒否",
            "Unspecified Error (SENT_SECOND_EHLO): Smtp server does not advertise AUTH capability",
            "Μπορεί να απαιτείται η εγγραφή σας στην ομάδα προκειμένου να έχετε το δικαίωμα αναρτήσεων.",
            "ייתכן שהקבוצה אינה קיימת, או שאין לך אישור לפרסם הודעות בקבוצה.",
        ] {
            assert_eq!(phrase(text), Some(Class::UserReject), "{text}");
        }
    }

    #[test]
    fn boilerplate_says_nothing() {
        for text in [
            "This is a permanent error. The following address(es) failed:",
            "I'm sorry to have to inform you that your message could not be delivered",
            "Delivery to the following recipient failed permanently:",
            "Your message did not reach some or all of the intended recipients.",
            "",
        ] {
            assert_eq!(phrase(text), None, "{text}");
        }
    }

    #[test]
    fn wildcards_bridge_a_short_gap_only() {
        assert!(matches(
            "this user doesn't have a yahoo.co.jp account",
            "doesn't have a * account"
        ));
        assert!(!matches(
            &format!("doesn't have a {} account", "x".repeat(80)),
            "doesn't have a * account"
        ));
        assert!(matches("mailbox would exceed the quota", "would exceed * quota"));
        assert!(!matches("", "a*b"));
        assert!(matches("日本語 a 日本 b", "a*b"));
        assert!(!matches("verbless", "rbl"));
        assert!(matches("listed in rbl", "rbl"));
        assert!(!matches("abc", ""));
    }

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(normalise("  User\r\n\tUnknown  "), "user unknown");
        assert_eq!(normalise(""), "");
    }
}
