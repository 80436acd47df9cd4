//! The tables the classifier decides with: phrase families that name one
//! reason, generic wording, and what each enhanced status code means
//! (RFC 3463 and the IANA registry of enhanced status codes). Everything here
//! is data plus small lookups, so a new server's wording is one line in
//! [`PHRASES`] and one test case.

use super::Class;
use super::status::Status;

/// What an enhanced status code says, by subject and detail (the class digit
/// only says whether the server would take it again). `None` for codes that
/// only say "failed" in some area (`x.0.0`, `x.1.0`, `x.5.0`) or that the
/// registry does not know: those never decide alone.
pub fn by_status(s: Status) -> Option<(Class, &'static str)> {
    use Class::*;
    let hit = match (s.subject, s.detail) {
        (1, 1) => (NotExist, "bad destination mailbox address"),
        (1, 2) => (InvalidAddr, "bad destination system address"),
        (1, 3) => (NotExist, "bad destination mailbox address syntax"),
        (1, 4) => (UserReject, "destination mailbox address ambiguous"),
        (1, 6) => (UserReject, "destination mailbox has moved"),
        (1, 7) | (1, 8) => (UserReject, "sender address refused"),
        (1, 9) => (Transient, "relayed to a non-compliant mailer"),
        // RFC 7505: the recipient's domain publishes a null MX.
        (1, 10) => (InvalidAddr, "recipient domain has a null MX"),
        (2, 0) | (2, 1) => (UserReject, "mailbox disabled or refusing"),
        (2, 2) => (OverQuota, "mailbox full"),
        (2, 3) => (UserReject, "message length exceeds a limit"),
        (2, 4) => (UserReject, "mailing list expansion problem"),
        (3, 0) | (3, 3) | (3, 5) => (Transient, "mail system trouble"),
        (3, 1) => (Transient, "mail system full"),
        (3, 2) => (UserReject, "system not accepting messages"),
        (3, 4) => (UserReject, "message too big for the system"),
        (4, 4) if s.class == 5 => (InvalidAddr, "unable to route"),
        (4, _) => (Transient, "network or routing trouble"),
        (5, 3) => (Transient, "too many recipients"),
        (5, 4) | (5, 5) => (Transient, "protocol trouble"),
        (5, 1) | (5, 2) | (5, 6) => (UserReject, "command refused as malformed"),
        (6, _) => (UserReject, "message content refused"),
        (7, _) => (UserReject, "refused by security policy"),
        _ => return None,
    };
    Some(hit)
}

/// What a reply code alone says (RFC 5321, RFC 7504), for a reply that
/// carries no more specific code. 550, 553 and 554 say only "refused".
pub fn by_reply_code(code: u16) -> Option<(Class, &'static str)> {
    use Class::*;
    Some(match code {
        552 => (OverQuota, "exceeded storage allocation"),
        551 => (UserReject, "user not local"),
        521 | 556 => (UserReject, "domain does not accept mail"),
        530 | 534 | 535 | 538 => (UserReject, "authentication required"),
        500..=504 => (UserReject, "command refused"),
        400..=499 => (Transient, "deferred"),
        _ => return None,
    })
}

/// One phrase family: the phrases that name one reason, and its class.
/// Phrases are matched on lower-cased text with runs of white space made one
/// space; `*` stands for a gap of up to [`GAP`] characters.
pub struct Rule {
    pub class: Class,
    pub label: &'static str,
    pub tier: Tier,
    /// An SMTP server's "user unknown" is a verdict on the address only as
    /// its answer to RCPT TO (or with x.1.x); the same words after DATA, to
    /// MAIL FROM or with no sign of when come from a filter (`user_reject`).
    pub needs_rcpt: bool,
    pub phrases: &'static [&'static str],
}

/// How much a phrase says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Names one reason ("user unknown", "mailbox full", "blocked"):
    /// ranks above the status code.
    Reason,
    /// Says no, or later, without saying why ("rejected", "try again
    /// later"): ranks below the codes, read only when they say nothing.
    Generic,
}

const GAP: usize = 48;

/// In order of precedence: when a diagnostic holds phrases of more than one
/// family (and the status code names none of them), the first family here
/// decides. A full mailbox, an oversized message, a suspended account and a
/// refused relay explain a failure better than the words around them; a
/// poor reputation explains a rate limit, and a rate limit a block ("IP
/// frequency limited … blocked"); a block list names the cause even when
/// the server also says "user unknown"; expiry and network trouble come
/// after every verdict on the address.
pub static PHRASES: &[Rule] = &[
    Rule {
        class: Class::OverQuota,
        label: "mailbox full",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
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
            "their mailbox is full",
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
            "容量超過",
            "容量オーバー",
            "メールボックスがいっぱい",
            "メールボックスの容量",
            "postfach voll",
            "postfach ist voll",
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
        class: Class::UserReject,
        label: "message too big",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            "message too large",
            "message too big",
            "message is too big",
            "message is too large",
            "message size exceeds",
            "message length exceeds",
            "exceeds size limit",
            "size limit",
            "exceeds the maximum message size",
            "exceeded maximum inbound message size",
            "メッセージサイズ",
            "邮件大小",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "account suspended or moved",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
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
            "account expired",
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
            "no longer on server",
            "not our customer",
            "账户已冻结",
            "帐户已冻结",
            "利用停止",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "relaying refused",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            "relay access denied",
            "relaying denied",
            "relay not permitted",
            "not permitted to relay",
            "relay denied",
            "relaying not allowed",
            "unable to relay",
            "we do not relay",
            "not a gateway",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "poor reputation",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &["reputation", "senderscore", "sender score"],
    },
    Rule {
        class: Class::Transient,
        label: "sending too fast",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            "too many connections",
            "too many concurrent",
            "too many messages",
            "too many recipients",
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
        label: "sender blocked",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
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
            "refused due to recipient preferences",
            "recipient preferences",
            "receiving mail from you",
            "sender rejected",
            "sender address rejected",
            "domain of sender address",
            "sender was rejected",
            "not accepting mail from",
            "receiving of mail refused",
            "受信拒否",
            "拒否",
            "拒收",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "no such recipient",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            // The reporting system's own words, not a relayed SMTP reply.
            "recipient name is not recognized",
            "not listed in * directory",
            "not listed in public name",
            "invalid final delivery userid",
            "address couldn't be found",
            "address could not be found",
            "no valid recipients",
            "recipientnotfound",
            // Yahoo's documented answer for an address it has no account for.
            "delivery error: dd this user doesn't have a * account",
            "delivery error: dd this user does not have a * account",
            "recipient not found by smtp address lookup",
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
            "存在しない",
            "存在しません",
            "宛先不明",
            "該当するユーザ",
            "ユーザーが見つかりません",
            "見つかりません",
            "benutzer unbekannt",
            "empfänger unbekannt",
            "adresse unbekannt",
            "unbekannter empfänger",
            "unbekannter benutzer",
            "postfach existiert nicht",
            "utilisateur inconnu",
            "destinataire inconnu",
            "adresse inconnue",
            "destinataire invalide",
            "adresse destinataire invalide",
            "usuario desconocido",
            "destinatario desconocido",
            "utente sconosciuto",
            "usuário desconhecido",
            "utilizador desconhecido",
            "нет такого пользователя",
            "пользователь не найден",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "mailbox does not exist",
        tier: Tier::Reason,
        needs_rcpt: true,
        phrases: &[
            // SMTP servers' wording, quoted by the report.
            "user unknown",
            "unknown user",
            "returned unknown recipient",
            "doesn't have a * account",
            "does not have a * account",
            "email account that you tried to reach does not exist",
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
            "not a valid user",
            "not a valid mailbox",
            "not a valid recipient",
            "is not a known user",
            "invalid recipient",
            "invalid mailbox",
            "invalid user",
            "bad recipient",
            "bad destination mailbox",
            "mailbox unavailable or not local",
            "no such local user",
            "destination address does not exist",
            "existiert nicht",
            "n'existe pas",
            "no existe",
            "non esiste",
            "não existe",
            "не существует",
        ],
    },
    Rule {
        class: Class::InvalidAddr,
        label: "domain can't receive mail",
        tier: Tier::Reason,
        needs_rcpt: false,
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
        class: Class::UserReject,
        label: "refused by policy",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            "not accepting mail",
            "not accepting messages",
            "not accepting network messages",
            "does not accept mail",
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
            "access denied",
            "service refused",
            "service refusé",
            "invalid domain name",
            "header error",
            "malformed recipient",
            "malformed address",
            "incorrectly constructed",
            "syntax error",
            "content error",
            "media error",
            "not a member",
            "does not advertise auth",
            "'send mail as'",
            "permission to post",
            "垃圾邮件",
        ],
    },
    Rule {
        class: Class::Transient,
        label: "expired after retries",
        tier: Tier::Reason,
        needs_rcpt: false,
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
        label: "network or system trouble",
        tier: Tier::Reason,
        needs_rcpt: false,
        phrases: &[
            "connection timed out",
            "connection refused",
            "connection reset",
            "connection closed",
            "connection dropped",
            "lost connection",
            "timed out",
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
            "system error",
            "internal error",
            "local error",
            "mailer error",
            "pipe to |",
            "mail system full",
            "insufficient system storage",
            "out of memory",
            "insufficient resources",
            "routing loop",
            "mail loop",
            "loop detected",
            "too many hops",
            "greylist",
            "graylist",
            "超时",
        ],
    },
    Rule {
        class: Class::UserReject,
        label: "refused",
        tier: Tier::Generic,
        needs_rcpt: false,
        phrases: &[
            "rejected",
            "refused",
            "denied",
            "not allowed",
            "prohibited",
            "forbidden",
            "拒绝",
            "被退回",
            "abgelehnt",
            "refusé",
        ],
    },
    Rule {
        class: Class::NotExist,
        label: "mailbox unavailable",
        tier: Tier::Generic,
        needs_rcpt: true,
        phrases: &[
            "mailbox unavailable",
            "mailbox not available",
            "no mailbox",
            "no longer available",
            "no longer valid",
            "invalid address",
            "invalid recipient address",
        ],
    },
    Rule {
        class: Class::Transient,
        label: "try later",
        tier: Tier::Generic,
        needs_rcpt: false,
        phrases: &[
            "try again later",
            "try later",
            "please retry",
            "temporarily",
            "temporary failure",
            "temporary error",
            "time out",
            "timeout",
            "service unavailable",
            "service currently unavailable",
            "service not available",
            "server busy",
            "transaction failed",
            "on hold",
            "暂时",
            "稍后",
            "一時的",
        ],
    },
];

/// Every family of `tier` whose phrases occur in `text` (normalised by
/// [`normalise`]), in precedence order.
pub fn matching(text: &str, tier: Tier) -> Vec<&'static Rule> {
    PHRASES
        .iter()
        .filter(|rule| rule.tier == tier && rule.phrases.iter().any(|p| matches(text, p)))
        .collect()
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

    /// The class of the first reason family the text names.
    fn phrase(text: &str) -> Option<Class> {
        matching(&normalise(text), Tier::Reason).first().map(|r| r.class)
    }

    fn generic(text: &str) -> Option<Class> {
        matching(&normalise(text), Tier::Generic).first().map(|r| r.class)
    }

    fn status(code: &str) -> Option<Class> {
        Status::parse(code).and_then(by_status).map(|(c, _)| c)
    }

    #[test]
    fn status_codes_by_their_registered_meaning() {
        let cases = [
            ("5.1.1", Some(Class::NotExist)),
            ("4.1.1", Some(Class::NotExist)),
            ("5.1.3", Some(Class::NotExist)),
            ("5.1.2", Some(Class::InvalidAddr)),
            ("5.1.10", Some(Class::InvalidAddr)),
            ("5.4.4", Some(Class::InvalidAddr)),
            ("4.4.4", Some(Class::Transient)),
            ("5.1.6", Some(Class::UserReject)),
            ("5.1.8", Some(Class::UserReject)),
            ("5.2.1", Some(Class::UserReject)),
            ("5.2.2", Some(Class::OverQuota)),
            ("4.2.2", Some(Class::OverQuota)),
            ("5.2.3", Some(Class::UserReject)),
            ("5.3.1", Some(Class::Transient)),
            ("5.3.2", Some(Class::UserReject)),
            ("5.3.4", Some(Class::UserReject)),
            ("4.4.1", Some(Class::Transient)),
            ("4.4.7", Some(Class::Transient)),
            ("5.4.7", Some(Class::Transient)),
            ("5.5.3", Some(Class::Transient)),
            ("5.5.2", Some(Class::UserReject)),
            ("5.6.0", Some(Class::UserReject)),
            ("5.7.0", Some(Class::UserReject)),
            ("5.7.1", Some(Class::UserReject)),
            ("4.7.1", Some(Class::UserReject)),
            ("5.7.26", Some(Class::UserReject)),
            ("5.0.0", None),
            ("4.0.0", None),
            ("5.1.0", None),
            ("5.5.0", None),
            ("5.9.9", None),
        ];
        for (code, want) in cases {
            assert_eq!(status(code), want, "{code}");
        }
    }

    #[test]
    fn reply_codes_alone() {
        let class = |c| by_reply_code(c).map(|(c, _)| c);
        assert_eq!(class(552), Some(Class::OverQuota));
        assert_eq!(class(551), Some(Class::UserReject));
        assert_eq!(class(556), Some(Class::UserReject));
        assert_eq!(class(521), Some(Class::UserReject));
        assert_eq!(class(535), Some(Class::UserReject));
        assert_eq!(class(501), Some(Class::UserReject));
        assert_eq!(class(421), Some(Class::Transient));
        assert_eq!(class(452), Some(Class::Transient));
        for bare in [550, 553, 554, 250] {
            assert_eq!(class(bare), None, "{bare}");
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
            "Could not be delivered to: <a@b.jp> As their mailbox is full.",
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
            "554 delivery error: dd This user doesn't have a yahoo.com account (a@yahoo.com) [0]",
            "The email account that you tried to reach does not exist.",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            "550 5.5.0 Adresse destinataire invalide. Invalid recipient.",
            "收件人不存在",
            "该用户不存在",
            "指定されたメールアドレスは存在しません",
            "Benutzer unbekannt",
            "Utilisateur inconnu",
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
            "421 Too many connections",
            "Mailer error",
            "450 4.7.1 rate limited, slow down",
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
            "550 5.1.1 Refused due to recipient preferences",
            "421 4.7.0 rate limited due to IP reputation",
            "The group you tried to contact may not exist, or you may not have permission to post",
            "該当アドレスは受信拒否",
            "Smtp server does not advertise AUTH capability",
        ] {
            assert_eq!(phrase(text), Some(Class::UserReject), "{text}");
        }
    }

    #[test]
    fn generic_wording_names_no_reason() {
        for (text, want) in [
            ("550 Message rejected", Some(Class::UserReject)),
            ("554 Request denied", Some(Class::UserReject)),
            ("451 Please try again later", Some(Class::Transient)),
            (
                "550 Requested action not taken: mailbox unavailable",
                Some(Class::NotExist),
            ),
            ("", None),
        ] {
            assert_eq!(phrase(text), None, "{text}");
            assert_eq!(generic(text), want, "{text}");
        }
    }

    #[test]
    fn boilerplate_says_nothing() {
        for text in [
            "This is a permanent error. The following address(es) failed:",
            "I'm sorry to have to inform you that your message could not be delivered",
            "Delivery to the following recipient failed permanently:",
            "Your message did not reach some or all of the intended recipients.",
            "A message that you sent could not be delivered to one or more of its recipients.",
        ] {
            assert_eq!(phrase(text), None, "{text}");
            assert_eq!(generic(text), None, "{text}");
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
