//! The language of the unsubscribe footer and page: the template's by
//! default, the customer's `footer_language` (`qunfa admin customer set`),
//! the task's (`footer_language` of add-task/edit-task) over both; and the
//! template preview of `template.php?do=preview-tpl` with the text part
//! messages carry.

mod common;

use std::time::Duration;

use common::smtp::Received;
use common::*;
use mail_parser::MessageParser;
use qunfa::domain::ids::{CustomerId, TaskId};
use qunfa::domain::tasks;

const ENGLISH: &str = "<h1>Spring sale</h1><p>Dear {{ fullname }}, our spring teas are half price \
until Sunday.</p><p><a href=\"https://shop.example.com/sale\">Shop the sale</a></p>";
const CHINESE: &str = "<h1>春茶上市</h1><p>{{ fullname }}，您好！今年的春茶已经到店，本周日前全场五折。</p>\
<p><a href=\"https://shop.example.com/sale\">立即选购</a></p>";

/// The footer languages a message's parts speak: (Chinese, English) for the
/// text part's last lines and the HTML part's footer paragraph.
fn footer_languages(r: &Received) -> [(bool, bool); 2] {
    let m = MessageParser::default().parse(&r.data).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    let html = m.body_html(0).unwrap().into_owned();
    let text_footer: String = text.lines().rev().take(3).collect::<Vec<_>>().join("\n");
    let html_footer = &html[html.rfind("margin:24px").expect("a footer in the HTML")..];
    [text_footer.as_str(), html_footer].map(|f| (f.contains("退订"), f.contains("unsubscribe")))
}

fn unsubscribe_path(r: &Received) -> String {
    let raw = String::from_utf8_lossy(&r.data);
    tracking_paths(&raw, "u")
        .into_iter()
        .next()
        .expect("a List-Unsubscribe link")
}

async fn the_footer_speaks_the_template_s_language_unless_told(backend: Backend) {
    let Some((app, sink)) = TestApp::start_relaying(backend, |_| {}).await else {
        return;
    };
    app.customer("acme", "pw", 100).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["news@acme.cn"]).await;
    add_template(
        &app,
        "acme",
        &[("name", "en"), ("subject", "Spring sale"), ("content", ENGLISH)],
    )
    .await;
    add_template(
        &app,
        "acme",
        &[("name", "zh"), ("subject", "春茶上市"), ("content", CHINESE)],
    )
    .await;
    add_list(&app, "acme", &["li@dest.cn;Li Lei".to_string()]).await;
    let send = async |tpl: i64, extra: &str| {
        let before = sink.received().len();
        let add = app
            .api(
                "task.php",
                "acme",
                "pw",
                &format!("do=add-task&tpl_id={tpl}&maillist_id=1&send_account=news@acme.cn&status=2&subs_link=1{extra}"),
            )
            .await;
        assert_eq!(add.code(), "success", "{}", add.text());
        sink.wait_for(before + 1, Duration::from_secs(30))
            .await
            .pop()
            .unwrap()
    };

    // By default, the template's language.
    let english = send(1, "").await;
    assert_eq!(footer_languages(&english), [(false, true); 2]);
    let chinese = send(2, "").await;
    assert_eq!(footer_languages(&chinese), [(true, false); 2]);

    // The unsubscribe page too, with a switch to the other language.
    let page = app.get(&unsubscribe_path(&english)).await;
    let html = page.text();
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Do you want to stop"),
        "{html}"
    );
    assert!(
        !html.contains("您确定") && html.contains("href=\"?lang=zh\""),
        "{html}"
    );
    let switched = app
        .get(&format!("{}?lang=zh", unsubscribe_path(&english)))
        .await
        .text();
    assert!(
        switched.contains("您确定不再接收") && !switched.contains("Do you want"),
        "{switched}"
    );
    let page = app.get(&unsubscribe_path(&chinese)).await.text();
    assert!(
        page.contains("<html lang=\"zh-CN\">") && page.contains("您确定不再接收"),
        "{page}"
    );
    assert!(page.contains("href=\"?lang=en\""), "{page}");

    // The customer's setting, then the task's over it.
    let set = app
        .admin_ok(&["customer", "set", "--username", "acme", "--footer-language", "zh"])
        .await;
    assert_eq!(set, "footer_language: zh\n");
    assert!(
        app.admin_ok(&["customer", "show", "--username", "acme"])
            .await
            .contains("footer_language: zh\n")
    );
    let customer_zh = send(1, "").await;
    assert_eq!(footer_languages(&customer_zh), [(true, false); 2]);
    let page = app.get(&unsubscribe_path(&customer_zh)).await.text();
    assert!(page.contains("您确定不再接收"), "{page}");
    let task_both = send(1, "&footer_language=both").await;
    assert_eq!(footer_languages(&task_both), [(true, true); 2]);
    let page = app.get(&unsubscribe_path(&task_both)).await.text();
    assert!(
        page.contains("您确定不再接收") && page.contains("Do you want to stop"),
        "{page}"
    );
    let task_en = send(2, "&footer_language=EN").await;
    assert_eq!(footer_languages(&task_en), [(false, true); 2]);

    // A bad value is refused and changes nothing.
    let tasks = app
        .api("task.php", "acme", "pw", "do=task-list")
        .await
        .elements("id")
        .len();
    let bad = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news@acme.cn&status=2&footer_language=fr",
        )
        .await;
    assert_eq!(bad.code(), "invalid_param", "{}", bad.text());
    assert_eq!(
        app.api("task.php", "acme", "pw", "do=task-list")
            .await
            .elements("id")
            .len(),
        tasks
    );
    refused(
        &app.qunfa(&[
            "admin",
            "customer",
            "set",
            "--username",
            "acme",
            "--footer-language",
            "de",
        ])
        .await,
        "--footer-language",
    );

    // edit-task changes it on a task that waits; alone, it is a change.
    let held = app
        .api(
            "task.php",
            "acme",
            "pw",
            "do=add-task&tpl_id=2&maillist_id=1&send_account=news@acme.cn&status=-1&time=2030-01-01%2010:00:00",
        )
        .await;
    let id: i64 = held.element("id").unwrap().parse().unwrap();
    let edit = app
        .api(
            "task.php",
            "acme",
            "pw",
            &format!("do=edit-task&id={id}&footer_language=en"),
        )
        .await;
    assert_eq!(edit.code(), "success", "{}", edit.text());
    let stored = tasks::task(&app.app().store, CustomerId(1), TaskId(id))
        .await
        .unwrap();
    assert_eq!(stored.footer_language.as_str(), "en");
    app.stop().await;
}

async fn the_template_preview_shows_the_text_part(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "en"),
            ("subject", "Hi {{ fullname }}"),
            ("content", ENGLISH),
        ],
    )
    .await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "own"),
            ("subject", "Hi"),
            ("content", ENGLISH),
            (
                "text_content",
                "Dear {{ fullname }}, see https://shop.example.com/sale",
            ),
        ],
    )
    .await;
    let derived = app
        .api("template.php", "acme", "pw", "do=preview-tpl&tpl_id=1")
        .await;
    assert_eq!(
        derived.element("text_derived").as_deref(),
        Some("1"),
        "{}",
        derived.text()
    );
    assert_eq!(derived.element("subject").as_deref(), Some("Hi 张三"));
    assert_eq!(
        derived.element("text_content").as_deref(),
        Some(
            "Spring sale\n===========\n\nDear 张三, our spring teas are half price until Sunday.\n\n\
             Shop the sale <https://shop.example.com/sale>\n"
        )
    );
    assert!(
        derived
            .element("content")
            .unwrap()
            .contains("<h1>Spring sale</h1>")
    );
    let own = app
        .api("template.php", "acme", "pw", "do=preview-tpl&tpl_id=2")
        .await;
    assert_eq!(own.element("text_derived").as_deref(), Some("0"));
    assert_eq!(
        own.element("text_content").as_deref(),
        Some("Dear 张三, see https://shop.example.com/sale")
    );
    // Another customer's template, or none, is not found.
    app.customer("other", "pw", 0).await;
    for (user, id) in [("other", 1), ("acme", 9)] {
        let a = app
            .api("template.php", user, "pw", &format!("do=preview-tpl&tpl_id={id}"))
            .await;
        assert_eq!(a.code(), "not_found", "{}", a.text());
    }
    app.stop().await;
}

both_stores!(by_backend; the_footer_speaks_the_template_s_language_unless_told);
both_stores!(the_template_preview_shows_the_text_part);
