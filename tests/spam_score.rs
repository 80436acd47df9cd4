//! What a spam filter makes of the messages qunfa sends: two English
//! campaigns (a newsletter and a short note) and a Chinese one (HTML
//! templates without a text part, open and click
//! tracking, the unsubscribe link) are sent by the engine to an SMTP
//! server, and Debian's SpamAssassin scores what arrived with its local
//! rules (`spamassassin -L -t`: no network tests, no Bayes; scripts/test.sh
//! installs it).
//!
//! No rule about the message's structure may fire (MIME layout, headers,
//! encodings: see [`STRUCTURAL`]), and the English messages score at most
//! 0.5 leaving out the rules about a short text beside an image — a test
//! template is short, and the open pixel is an image (a real newsletter
//! has more text).

mod common;

use std::time::Duration;

use common::*;

const ENGLISH: &str = "<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>Spring sale</title></head>
<body style=\"margin:0;padding:0;background:#f4f4f4\">
<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\">
<table width=\"600\" cellpadding=\"20\" cellspacing=\"0\" style=\"background:#ffffff\"><tr><td>
<h1 style=\"font-family:Arial,sans-serif;color:#333333\">Our spring collection is here</h1>
<p style=\"font-family:Arial,sans-serif;font-size:15px;line-height:22px;color:#333333\">Dear {{ fullname }},</p>
<p style=\"font-family:Arial,sans-serif;font-size:15px;line-height:22px;color:#333333\">Thank you for
being a member of the Acme Tea Club. The first teas of the spring harvest have arrived from our
gardens in Hangzhou and Fujian, and we have put together a tasting box of four of them for our
members: a Longjing green tea, a white Silver Needle, an Oolong from the Wuyi mountains and a
jasmine tea scented five times.</p>
<p style=\"font-family:Arial,sans-serif;font-size:15px;line-height:22px;color:#333333\">Each box
comes with brewing notes written by our tea master, so that you can enjoy every cup at its best.
Your member number is {{ var1 }}; use it at checkout and the delivery is on us.</p>
<p style=\"font-family:Arial,sans-serif;font-size:15px;line-height:22px\"><a
href=\"https://www.acme-tea.example.com/spring-box?ref=newsletter\" style=\"color:#2a6f3f\">See the
spring tasting box</a></p>
<p style=\"font-family:Arial,sans-serif;font-size:15px;line-height:22px;color:#333333\">With warm
regards,<br>Mei Lin<br>Acme Tea Club</p>
<p style=\"font-family:Arial,sans-serif;font-size:12px;line-height:18px;color:#888888\">Acme Tea
Club, 18 Harbour Road, Hong Kong. You receive this letter because you joined the club at
<a href=\"https://www.acme-tea.example.com/\" style=\"color:#888888\">acme-tea.example.com</a>.</p>
</td></tr></table>
</td></tr></table>
</body></html>
";

/// Short, as many are: a second language's footer weighed most here.
const ENGLISH_SHORT: &str = "<p>Dear {{ fullname }},</p><p>Our spring sale starts today: every tea in the \
shop is half price until Sunday.</p><p><a href=\"https://www.acme-tea.example.com/sale\">Shop the sale</a></p>";

const CHINESE: &str = "<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>春茶上市</title></head>
<body style=\"margin:0;padding:0;background:#f4f4f4\">
<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\">
<table width=\"600\" cellpadding=\"20\" cellspacing=\"0\" style=\"background:#ffffff\"><tr><td>
<h1 style=\"font-size:22px;color:#333333\">今年的春茶到了</h1>
<p style=\"font-size:15px;line-height:24px;color:#333333\">{{ fullname }}，您好！</p>
<p style=\"font-size:15px;line-height:24px;color:#333333\">感谢您一直以来对艾可茶社的支持。今年第一批春茶已经从杭州和福建的茶园到店，
我们为会员准备了四款新茶的品鉴礼盒：西湖龙井、白毫银针、武夷岩茶和七窨茉莉花茶。</p>
<p style=\"font-size:15px;line-height:24px;color:#333333\">每个礼盒都附有茶艺师手写的冲泡说明。
您的会员号是 {{ var1 }}，下单时填写即可免运费。</p>
<p style=\"font-size:15px;line-height:24px\"><a href=\"https://www.acme-tea.example.com/spring-box?ref=newsletter\"
style=\"color:#2a6f3f\">查看春茶品鉴礼盒</a></p>
<p style=\"font-size:15px;line-height:24px;color:#333333\">祝好！<br>林梅<br>艾可茶社</p>
<p style=\"font-size:12px;line-height:18px;color:#888888\">艾可茶社，香港海港道十八号。您收到这封邮件，是因为您在
<a href=\"https://www.acme-tea.example.com/\" style=\"color:#888888\">acme-tea.example.com</a> 加入了会员。</p>
</td></tr></table>
</td></tr></table>
</body></html>
";

/// Rule families about how a message is put together rather than what it
/// says (SpamAssassin's rule descriptions):
///
/// - `MIME_`, `MPART_`: the MIME layout and its parts — `MIME_HTML_ONLY`
///   "Message only has text/html MIME parts", `MPART_ALT_DIFF` "HTML and
///   text parts are different", `MIME_QP_LONG_LINE`, `MIME_BASE64_TEXT`
///   "Message text disguised using base64 encoding", bad boundaries, …
/// - `MISSING_`, `INVALID_`, `HEADER_`, `MSGID_`, `DATE_IN_`, `FORGED_`,
///   `TO_NO_BRKTS`, `TO_EQ_FM`, `HDR_`, `FROM_`, `REPTO_`: headers absent,
///   malformed or inconsistent (`MISSING_MID`, `INVALID_DATE`,
///   `FROM_EXCESS_BASE64` "From: base64 encoded unnecessarily", …).
/// - `SUBJ_ILLEGAL_CHARS`, `CHARSET_FARAWAY`, `BASE64_LENGTH_`, `_QP_`:
///   encodings (raw 8-bit headers, an unexpected charset, base64 line lengths).
/// - `HTML_MIME_NO_HTML_TAG`, `HTML_OBFUSCATE_`: HTML that is no HTML, and
///   text mixing scripts (what a second-language footer looked like).
pub const STRUCTURAL: &[&str] = &[
    "MIME_",
    "MPART_",
    "MISSING_",
    "INVALID_",
    "HEADER_",
    "MSGID_",
    "DATE_IN_",
    "FORGED_",
    "TO_NO_BRKTS",
    "TO_EQ_FM",
    "HDR_",
    "FROM_",
    "REPTO_",
    "SUBJ_ILLEGAL_CHARS",
    "CHARSET_FARAWAY",
    "BASE64_LENGTH_",
    "_QP_",
    "HTML_MIME_NO_HTML_TAG",
    "HTML_OBFUSCATE_",
];

fn structural(rule: &str) -> bool {
    STRUCTURAL
        .iter()
        .any(|p| rule.starts_with(p) || (p.starts_with('_') && rule.contains(p)))
}

/// The rules about a short text beside an image: the open pixel is one.
fn about_images(rule: &str) -> bool {
    rule.starts_with("HTML_IMAGE_")
}

/// SpamAssassin's verdict: each rule that fired with its points.
struct Verdict {
    rules: Vec<(String, f64)>,
    report: String,
}

/// `spamassassin -L -t` over a message: its report table.
async fn spamassassin(message: &[u8]) -> Verdict {
    use tokio::io::AsyncWriteExt;
    let home = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new("spamassassin")
        .args(["-L", "-t"])
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run spamassassin ({e}): scripts/test.sh installs it (apt-get install spamassassin)"
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(message).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("spamassassin within two minutes")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The table after "Content analysis details:": " pts rule name  description",
    // one rule a line (its description may continue on the next lines).
    let table = text.split("Content analysis details:").nth(1).unwrap_or_else(|| {
        panic!(
            "no SpamAssassin report:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut rules = Vec::new();
    for line in table.lines() {
        let mut words = line.split_whitespace();
        let (Some(points), Some(rule)) = (words.next(), words.next()) else {
            continue;
        };
        if let Ok(points) = points.parse::<f64>()
            && rule
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            rules.push((rule.to_string(), points));
        }
    }
    Verdict {
        rules,
        report: table.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spamassassin_finds_no_fault_in_the_structure_of_what_is_sent() {
    let Some((app, sink)) = TestApp::start_relaying(Backend::Sqlite, |s| {
        s.helo_name = Some("mta.acme-tea.example.com".into());
        s.bounce_domain = Some("bounce.acme-tea.example.com".into());
        s.public_url = Some("https://t.acme-tea.example.com".into());
    })
    .await
    else {
        return;
    };
    app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(
        &app,
        1,
        "acme",
        "acme-tea.example.com",
        &["news@acme-tea.example.com"],
    )
    .await;
    for (name, subject, html) in [
        ("en", "{{ fullname }}, the spring teas have arrived", ENGLISH),
        ("zh", "{{ fullname }}，今年的春茶到了", CHINESE),
        ("short", "{{ fullname }}, our spring sale", ENGLISH_SHORT),
    ] {
        add_template(
            &app,
            "acme",
            &[("name", name), ("subject", subject), ("content", html)],
        )
        .await;
    }
    add_list(
        &app,
        "acme",
        &["mei.chen@example.org;Mei Chen;AC-1042".to_string()],
    )
    .await;
    for tpl in [1, 2, 3] {
        let add = app
            .api(
                "task.php",
                "acme",
                "pw",
                &format!(
                    "do=add-task&tpl_id={tpl}&maillist_id=1&send_account=news@acme-tea.example.com\
                     &send_fullname=Acme%20Tea%20Club&status=2&track_status=2&subs_link=1"
                ),
            )
            .await;
        assert_eq!(add.code(), "success", "{}", add.text());
    }
    let got = sink.wait_for(3, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 3);

    let mut english = Vec::new();
    for r in &got {
        let raw = String::from_utf8_lossy(&r.data);
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "a text part: {raw}"
        );
        let verdict = spamassassin(&r.data).await;
        let faults: Vec<&(String, f64)> = verdict
            .rules
            .iter()
            .filter(|(rule, _)| structural(rule))
            .collect();
        assert!(
            faults.is_empty(),
            "structural rules fired: {faults:?}\n{}",
            verdict.report
        );
        if raw.contains("Subject: Mei Chen, ") {
            english.push(verdict);
        }
    }
    assert_eq!(english.len(), 2, "the English messages");
    for verdict in english {
        let score: f64 = verdict
            .rules
            .iter()
            .filter(|(rule, _)| !about_images(rule))
            .map(|(_, points)| points)
            .sum();
        assert!(
            score <= 0.5,
            "an English message scores {score}:\n{}",
            verdict.report
        );
    }
    app.stop().await;
}
