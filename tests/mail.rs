//! Message building (`mail::PreparedTask`) as a recipient's mail client, an
//! independent DKIM verifier and the tracking endpoints will meet it: the
//! message parsed back with mail-parser, its signatures checked by dkimpy,
//! its whole text pinned by a golden file.

mod common;

use common::*;
use jiff::ZonedDateTime;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use qunfa::domain::templates::{Encoding, Recipient};
use qunfa::mail::dkim::{DkimAlgorithm, DkimKey, DomainSigner, SIGNED_HEADERS};
use qunfa::mail::footer::FooterLanguage;
use qunfa::mail::{AttachmentFile, Claim, LinkSigner, PreparedTask, TaskMessage, Tracking};

const SECRET: [u8; 32] = [42; 32];
const DELIVERY: i64 = 1_234_567;
const FROM: &str = "sales@shop.example.cn";

const SUBJECT: &str = "{{ fullname }}，春季促销开始了 | Spring sale";
const HTML: &str = "<!DOCTYPE html>
<html><body>
<p>{{ fullname }}，您好！会员号 {{ var1 }}</p>
<p><a href=\"https://shop.example.cn/spring?from=edm&amp;id=7\">春季新品</a> ·
<a class=\"en\" href='https://example.org/en/#spring'>Spring</a> ·
<a href=\"mailto:service@shop.example.cn\">联系我们</a></p>
</body></html>
";
const TEXT: &str = "{{ fullname }}，您好！会员号 {{ var1 }}
春季新品: https://shop.example.cn/spring
";

fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    v.extend((0..=255u8).cycle().take(600));
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

const PRICE_LIST_NAME: &str = "价格表（2026 春季）.csv";
const PRICE_LIST: &str = "商品,价格\n春茶,128\n";

fn task<'a>(attachments: &'a [AttachmentFile<'a>], encoding: Encoding) -> TaskMessage<'a> {
    TaskMessage {
        subject: SUBJECT,
        html: HTML,
        text: TEXT,
        encoding,
        attachments,
        sender_name: "张三 (Acme 商城)",
        reply_to: Some("service@shop.example.cn"),
        unsubscribe_link: true,
        footer_language: FooterLanguage::Auto,
        tracking: Tracking::OpensAndClicks,
        link_base: "https://t.example.cn",
        helo_name: "mx1.qunfa.example",
        bounce_domain: "bounce.qunfa.example",
    }
}

fn recipient() -> Recipient<'static> {
    Recipient {
        email: "li.si@example.org",
        fullname: "李四 <Li & Si>",
        vars: ["VIP-0042", "", "", "", "", "", "", "", "", ""],
        unsubscribe_url: "",
    }
}

fn now() -> ZonedDateTime {
    jiff::civil::date(2026, 11, 26)
        .at(10, 0, 0, 0)
        .in_tz("Asia/Shanghai")
        .unwrap()
}

fn unsigned() -> DomainSigner {
    DomainSigner::new("shop.example.cn", &[], SIGNED_HEADERS).unwrap()
}

/// The message with both attachments.
fn build(encoding: Encoding, signer: &DomainSigner) -> (PreparedTask, Vec<u8>) {
    let pdf = pdf();
    let files = [
        AttachmentFile {
            file_name: "catalogue.pdf",
            content_type: "application/pdf",
            content: &pdf,
        },
        AttachmentFile {
            file_name: PRICE_LIST_NAME,
            content_type: "text/csv; charset=utf-8",
            content: PRICE_LIST.as_bytes(),
        },
    ];
    let prepared = PreparedTask::new(&task(&files, encoding), &SECRET).unwrap();
    let bytes = prepared
        .build(FROM, signer, &recipient(), DELIVERY, &now())
        .unwrap();
    (prepared, bytes)
}

/// The token at the end of a URL under `{base}{path}`.
fn token_of<'a>(url: &'a str, path: &str) -> &'a str {
    url.strip_prefix(&format!("https://t.example.cn{path}"))
        .unwrap_or_else(|| panic!("{url} is not under {path}"))
}

/// The `href`/`src` values of an HTML text, in order.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let key = format!("{attribute}=\"");
    html.match_indices(&key)
        .map(|(at, _)| {
            let rest = &html[at + key.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

fn assert_crlf_and_short_lines(raw: &[u8]) {
    let text = std::str::from_utf8(raw).expect("7-bit message");
    assert!(text.is_ascii(), "every byte is ASCII");
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF");
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "{} bytes: {line}", line.len());
    }
}

#[test]
fn a_mail_client_reads_the_personalised_message_with_its_attachments() {
    let (prepared, raw) = build(Encoding::Base64, &unsigned());
    assert_crlf_and_short_lines(&raw);
    let links = LinkSigner::new(&SECRET);
    let m: Message = MessageParser::default().parse(&raw).unwrap();

    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("张三 (Acme 商城)"));
    assert_eq!(from.address(), Some(FROM));
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("li.si@example.org")
    );
    assert_eq!(
        m.reply_to().unwrap().first().unwrap().address(),
        Some("service@shop.example.cn")
    );
    assert_eq!(m.subject(), Some("李四 <Li & Si>，春季促销开始了 | Spring sale"));
    assert_eq!(m.date().unwrap().to_rfc3339(), "2026-11-26T10:00:00+08:00");
    let message_id = m.message_id().unwrap();
    assert!(message_id.ends_with("@mx1.qunfa.example"), "{message_id}");
    assert!(message_id.starts_with(&format!("{DELIVERY:x}.")), "{message_id}");

    // One-click unsubscribe (RFC 8058), on a link that names this delivery.
    let header = |name: &str| {
        m.header_raw(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let list_unsubscribe = header("List-Unsubscribe");
    let unsubscribe_url = list_unsubscribe.trim_matches(['<', '>']);
    assert_eq!(
        links.verify(token_of(unsubscribe_url, "/t/u/")),
        Some(Claim::Unsubscribe { delivery: DELIVERY })
    );
    assert_eq!(header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert_eq!(header("MIME-Version"), "1.0");

    // multipart/mixed: multipart/alternative (text, HTML), then the attachments.
    let root = &m.parts[0];
    assert_eq!(root.content_type().unwrap().subtype(), Some("mixed"));
    let PartType::Multipart(children) = &root.body else {
        panic!("not multipart")
    };
    assert_eq!(children.len(), 3);
    let alternative = &m.parts[children[0] as usize];
    assert_eq!(alternative.content_type().unwrap().subtype(), Some("alternative"));

    // The HTML part: personalised (escaped), links through signed click
    // URLs in document order, mailto kept, the visible unsubscribe link (in
    // the template's language, Chinese) and the pixel before </body>.
    let html = m.body_html(0).unwrap();
    assert!(
        html.contains("<p>李四 &lt;Li &amp; Si&gt;，您好！会员号 VIP-0042</p>"),
        "{html}"
    );
    let hrefs = attribute_values(&html, "href");
    assert_eq!(hrefs.len(), 4, "{hrefs:?}");
    for (n, href) in hrefs[..2].iter().enumerate() {
        assert_eq!(
            links.verify(token_of(href, "/t/c/")),
            Some(Claim::Click {
                delivery: DELIVERY,
                link: n as u32 + 1
            })
        );
    }
    assert_eq!(hrefs[2], "mailto:service@shop.example.cn");
    assert_eq!(hrefs[3..], [unsubscribe_url]);
    assert_eq!(
        prepared.links(),
        [
            "https://shop.example.cn/spring?from=edm&id=7",
            "https://example.org/en/#spring"
        ]
    );
    let pixel = attribute_values(&html, "src");
    assert_eq!(pixel.len(), 1);
    assert_eq!(
        links.verify(token_of(&pixel[0], "/t/o/")),
        Some(Claim::Open { delivery: DELIVERY })
    );
    assert!(
        html.contains("退订</a>。</p>")
            && !html.contains("unsubscribe</a>")
            && html.ends_with("alt=\"\"></body></html>\r\n"),
        "{html}"
    );

    // The text part: personalised as written, links as written, the link to
    // unsubscribe at the end.
    let text = m.body_text(0).unwrap();
    assert_eq!(
        text,
        format!(
            "李四 <Li & Si>，您好！会员号 VIP-0042\r\n春季新品: https://shop.example.cn/spring\r\n\
             \r\n如不想再收到此类邮件，请点击以下链接退订：\r\n{unsubscribe_url}\r\n"
        )
    );

    // The attachments, byte for byte, with their names.
    assert_eq!(m.attachment_count(), 2);
    let pdf_part = m.attachment(0).unwrap();
    assert_eq!(pdf_part.attachment_name(), Some("catalogue.pdf"));
    assert_eq!(pdf_part.content_type().unwrap().subtype(), Some("pdf"));
    assert_eq!(pdf_part.contents(), pdf().as_slice());
    let csv = m.attachment(1).unwrap();
    assert_eq!(csv.attachment_name(), Some(PRICE_LIST_NAME));
    assert_eq!(csv.contents(), PRICE_LIST.as_bytes());

    // The envelope sender names the delivery too.
    let envelope = prepared.envelope_sender(DELIVERY);
    assert!(envelope.starts_with("bounce+") && envelope.ends_with("@bounce.qunfa.example"));
    assert_eq!(links.verp_delivery(&envelope), Some(DELIVERY));
}

#[test]
fn quoted_printable_message_matches_its_golden_file() {
    let keys = [DkimKey::generate(DkimAlgorithm::Ed25519, "qunfa-ed25519-20261126".into()).unwrap()];
    let signer = DomainSigner::new("shop.example.cn", &keys, SIGNED_HEADERS).unwrap();
    let (_, raw) = build(Encoding::QuotedPrintable, &signer);
    assert_crlf_and_short_lines(&raw);
    let text = String::from_utf8(raw).unwrap();
    assert_golden("mail/spring-sale.eml", mask_signatures(&text).as_bytes());
}

/// The message with LF line breaks and each DKIM-Signature on one line, its
/// time and signature (new keys each run) masked.
fn mask_signatures(message: &str) -> String {
    let (head, body) = message.split_once("\r\n\r\n").unwrap();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push('\n');
                last.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    let mut out = String::new();
    for field in &fields {
        if let Some(value) = field.strip_prefix("DKIM-Signature:") {
            let tags: Vec<String> = value
                .split(';')
                .map(|t| t.split_whitespace().collect::<String>())
                .filter(|t| !t.is_empty())
                .map(|t| match t.split_once('=') {
                    Some((k @ ("b" | "t"), _)) => format!("{k}=…"),
                    _ => t,
                })
                .collect();
            out.push_str(&format!("DKIM-Signature: {}\n", tags.join("; ")));
        } else {
            out.push_str(field);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&body.replace("\r\n", "\n"));
    out
}

#[tokio::test]
async fn dkimpy_verifies_both_signatures() {
    let keys: Vec<DkimKey> = DkimAlgorithm::ALL
        .iter()
        .map(|a| DkimKey::generate(*a, a.selector(jiff::civil::date(2026, 11, 26))).unwrap())
        .collect();
    let records: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            (
                format!("{}._domainkey.shop.example.cn", k.selector),
                k.txt_value(),
            )
        })
        .collect();
    let signer = DomainSigner::new("shop.example.cn", &keys, SIGNED_HEADERS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for encoding in [Encoding::Base64, Encoding::QuotedPrintable] {
        let (_, raw) = build(encoding, &signer);
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("DKIM-Signature: "), "signatures first");
        let rsa = text.split("DKIM-Signature: ").nth(1).unwrap();
        for h in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "reply-to",
            "mime-version",
            "content-type",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            let signed = rsa.split("h=").nth(1).unwrap().split(';').next().unwrap();
            let signed: Vec<String> = signed
                .split(':')
                .map(|s| s.split_whitespace().collect::<String>().to_ascii_lowercase())
                .collect();
            assert!(signed.contains(&h.to_string()), "{h} not in h={signed:?}");
        }
        assert_eq!(
            dkimpy_verdicts(dir.path(), text.as_bytes(), &records).await,
            "pass pass",
            "{encoding:?}"
        );
        // A changed header, a changed attachment.
        for (from, to) in [("To: li.si@", "To: li.sj@"), ("JVBERi0x", "JVBERi0y")] {
            let tampered = text.replacen(from, to, 1);
            assert_ne!(tampered, text);
            assert_eq!(
                dkimpy_verdicts(dir.path(), tampered.as_bytes(), &records).await,
                "fail fail",
                "{to}"
            );
        }
    }
    // A template without text: the signatures cover the derived text part.
    for encoding in [Encoding::Base64, Encoding::QuotedPrintable] {
        let mut t = task(&[], encoding);
        t.html = NEWSLETTER;
        t.text = "";
        let raw = PreparedTask::new(&t, &SECRET)
            .unwrap()
            .build(FROM, &signer, &recipient(), DELIVERY, &now())
            .unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        assert!(
            m.body_text(0)
                .unwrap()
                .contains("Shop the sale <https://t.example.cn/t/c/")
        );
        assert_eq!(
            dkimpy_verdicts(dir.path(), &raw, &records).await,
            "pass pass",
            "{encoding:?}"
        );
        let text = String::from_utf8(raw).unwrap();
        // One more line at the end of the text part.
        let tampered = text.replacen("\r\n\r\n--=_qunfa_a_", "\r\nAAAA\r\n\r\n--=_qunfa_a_", 1);
        assert_ne!(tampered, text);
        assert_eq!(
            dkimpy_verdicts(dir.path(), tampered.as_bytes(), &records).await,
            "fail fail"
        );
    }
}

#[test]
fn without_tracking_or_unsubscribe_link_the_text_alternative_is_still_there() {
    let mut t = task(&[], Encoding::Base64);
    t.text = "";
    t.tracking = Tracking::Off;
    t.unsubscribe_link = false;
    t.reply_to = None;
    t.sender_name = "";
    let prepared = PreparedTask::new(&t, &SECRET).unwrap();
    assert!(prepared.links().is_empty());
    let raw = prepared
        .build(FROM, &unsigned(), &recipient(), 9, &now())
        .unwrap();
    assert_crlf_and_short_lines(&raw);
    let text = String::from_utf8(raw.clone()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    assert!(
        head.starts_with(&format!("From: {FROM}\r\nTo: li.si@example.org\r\nSubject: ")),
        "{head}"
    );
    assert!(
        !head.contains("Reply-To") && !head.contains("List-Unsubscribe"),
        "{head}"
    );
    assert!(head.contains("Content-Type: multipart/alternative;"), "{head}");
    let m = MessageParser::default().parse(&raw).unwrap();
    let html = m.body_html(0).unwrap();
    assert!(html.contains("href=\"https://shop.example.cn/spring?from=edm&amp;id=7\""));
    assert!(!html.contains("<img") && !html.contains("退订"), "{html}");
    // The text the HTML shows: the recipient's values as written, the links' URLs.
    assert_eq!(
        m.body_text(0).unwrap(),
        "李四 <Li & Si>，您好！会员号 VIP-0042\r\n\r\n\
         春季新品 <https://shop.example.cn/spring?from=edm&id=7> · Spring\r\n\
         <https://example.org/en/#spring> · 联系我们 <service@shop.example.cn>\r\n"
    );
}

const NEWSLETTER_SUBJECT: &str = "{{ fullname }}, our spring sale starts today";
const NEWSLETTER: &str = "<!DOCTYPE html>
<html><head><title>Spring sale</title><style>h1 { color: #c00 }</style></head>
<body><div style=\"display:none\">Half price on everything, three days only</div>
<table width=\"100%\"><tr><td align=\"center\">
<img src=\"https://shop.example.com/logo.png\" alt=\"Acme Shop\" width=\"120\">
<h1>Spring sale &ndash; 50&nbsp;% off</h1>
<p>Dear {{ fullname }},</p>
<p>Our spring sale starts today. For three days, every item in the shop is half price, and
members get free delivery on orders over $50.</p>
<ul><li>Tea &amp; coffee</li><li>Kitchen <em>and</em> tableware</li></ul>
<p><a href=\"https://shop.example.com/spring?utm_source=edm\">Shop the sale</a></p>
<p>Questions? <a href=\"mailto:help@shop.example.com\">Write to us</a>.<br>Acme Shop, 1 Market Street</p>
</td></tr></table>
</body></html>
";

#[test]
fn an_english_template_without_text_gets_its_text_and_footer_in_english() {
    let keys = [DkimKey::generate(DkimAlgorithm::Ed25519, "qunfa-ed25519-20261126".into()).unwrap()];
    let signer = DomainSigner::new("shop.example.cn", &keys, SIGNED_HEADERS).unwrap();
    let mut t = task(&[], Encoding::QuotedPrintable);
    t.subject = NEWSLETTER_SUBJECT;
    t.html = NEWSLETTER;
    t.text = "";
    t.sender_name = "Acme Shop";
    let recipient = Recipient {
        email: "tom@example.org",
        fullname: "Tom <Jones>",
        ..recipient()
    };
    let prepared = PreparedTask::new(&t, &SECRET).unwrap();
    let raw = prepared
        .build(FROM, &signer, &recipient, DELIVERY, &now())
        .unwrap();
    assert_crlf_and_short_lines(&raw);
    let m = MessageParser::default().parse(&raw).unwrap();
    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    for body in [&text, &html] {
        assert!(
            !body.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{body}"
        );
    }
    assert!(html.contains(">unsubscribe</a>.</p>"), "{html}");
    for line in text.lines() {
        assert!(line.chars().count() <= 78, "{line}");
    }
    // The click URL in the text is the one in the HTML.
    let clicks = attribute_values(&html, "href");
    assert!(text.contains(&format!("Shop the sale <{}>", clicks[0])), "{text}");
    assert_golden(
        "mail/newsletter-derived-text.eml",
        mask_signatures(&String::from_utf8(raw).unwrap()).as_bytes(),
    );
}

#[test]
fn the_footer_language_is_the_task_s_when_set() {
    for (setting, zh, en) in [
        (FooterLanguage::En, false, true),
        (FooterLanguage::Both, true, true),
        (FooterLanguage::Zh, true, false),
    ] {
        let mut t = task(&[], Encoding::Base64);
        t.footer_language = setting;
        let raw = PreparedTask::new(&t, &SECRET)
            .unwrap()
            .build(FROM, &unsigned(), &recipient(), 11, &now())
            .unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        for body in [m.body_text(0).unwrap(), m.body_html(0).unwrap()] {
            let footer = &body[body
                .rfind("margin:24px")
                .unwrap_or(body.len().saturating_sub(200))..];
            assert_eq!(footer.contains("退订"), zh, "{setting}: {footer}");
            assert_eq!(footer.contains("unsubscribe"), en, "{setting}: {footer}");
        }
    }
}

#[test]
fn opens_only_tracking_keeps_links_and_a_placed_unsubscribe_link_is_not_repeated() {
    let html = "<p>Hi</p><p><a href=\"{{ unsubscribe_url }}\">退订</a> <a href=\"https://a.cn/\">a</a></p>";
    let mut t = task(&[], Encoding::Base64);
    t.html = html;
    t.tracking = Tracking::Opens;
    let prepared = PreparedTask::new(&t, &SECRET).unwrap();
    let raw = prepared
        .build(FROM, &unsigned(), &recipient(), 10, &now())
        .unwrap();
    let m = MessageParser::default().parse(&raw).unwrap();
    let html = m.body_html(0).unwrap();
    let hrefs = attribute_values(&html, "href");
    let unsubscribe = m
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .trim_matches(['<', '>'])
        .to_string();
    // The template's own link, as a plain URL (not HTML-escaped), then the
    // untracked link; no second unsubscribe link in the HTML part…
    assert_eq!(hrefs, [unsubscribe.clone(), "https://a.cn/".to_string()]);
    assert_eq!(attribute_values(&html, "src").len(), 1, "the pixel");
    // …while the text part, which doesn't place it, gets one.
    assert!(
        m.body_text(0)
            .unwrap()
            .ends_with(&format!("请点击以下链接退订：\r\n{unsubscribe}\r\n"))
    );
}

#[test]
fn bad_task_settings_are_refused_before_sending() {
    type Change = fn(&mut TaskMessage<'static>);
    let cases: [(&str, Change); 4] = [
        ("reply-to", |t| t.reply_to = Some("not an address")),
        ("link base", |t| t.link_base = "https://t.example.cn/\"><script>"),
        ("link base", |t| t.link_base = "ftp://t.example.cn"),
        ("domain", |t| t.bounce_domain = "bad domain"),
    ];
    for (what, change) in cases {
        let mut t = task(&[], Encoding::Base64);
        change(&mut t);
        let e = PreparedTask::new(&t, &SECRET).unwrap_err().to_string();
        assert!(e.contains(what) || e.contains("not a domain"), "{what}: {e}");
    }
    let prepared = PreparedTask::new(&task(&[], Encoding::Base64), &SECRET).unwrap();
    let bad = Recipient {
        email: "no-at-sign",
        ..recipient()
    };
    assert!(prepared.build(FROM, &unsigned(), &bad, 1, &now()).is_err());
}
