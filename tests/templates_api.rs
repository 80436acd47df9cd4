//! Chapter 5 of the vendor API (5.2–5.7): templates with attachments, sent
//! as real multipart bodies and read back from storage byte for byte.

mod common;

use common::*;
use qunfa::domain::ids::{CustomerId, TemplateId};
use qunfa::domain::storage::FileStorage;
use qunfa::domain::templates;
use qunfa::store::Store;
use reqwest::multipart::{Form, Part};

const TEMPLATE: &str = "template.php";

/// A small but real PDF with every byte value in a stream.
fn pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Length 512 >>\nstream\n".to_vec();
    b.extend((0..=255u8).chain((0..=255u8).rev()));
    b.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    b
}

fn file(bytes: Vec<u8>, name: &str, mime: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap()
}

/// A browser-like form: field names and file names as raw UTF-8.
fn form() -> Form {
    Form::new().percent_encode_noop()
}

async fn post(app: &TestApp, user: &str, pw: &str, op: &str, form: Form) -> Answer {
    let url = format!(
        "{}/mm-ms/api/{TEMPLATE}?username={user}&password={}&do={op}",
        app.base,
        md5_hex(pw)
    );
    app.send(app.client.post(url).multipart(form)).await
}

/// The times of 5.3 vary per run: golden files see a placeholder.
fn mask_times(body: &[u8]) -> Vec<u8> {
    let mut text = String::from_utf8(body.to_vec()).unwrap();
    for tag in ["created", "updated"] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut from = 0;
        while let Some(at) = text[from..].find(&open) {
            let start = from + at + open.len();
            let end = start + text[start..].find(&close).unwrap();
            let value = &text[start..end];
            assert_eq!(value.len(), 19, "a date-time: {value}");
            text.replace_range(start..end, "YYYY-MM-DD HH:MM:SS");
            from = start;
        }
    }
    text.into_bytes()
}

/// Rows of a table, straight from the database.
async fn rows(app: &TestApp, count_sql: &'static str) -> i64 {
    match &app.app().store {
        Store::Sqlite(p) => sqlx::query_scalar(count_sql).fetch_one(p).await.unwrap(),
        Store::Postgres(p) => sqlx::query_scalar(count_sql).fetch_one(p).await.unwrap(),
    }
}

async fn stored_files(app: &TestApp) -> i64 {
    let on_disk = match std::fs::read_dir(app.data_path().join("files")) {
        Ok(dir) => dir.count() as i64,
        Err(_) => 0,
    };
    let in_db = rows(app, "SELECT COUNT(*) FROM files").await;
    if app.backend == Backend::Sqlite {
        assert_eq!(on_disk, in_db, "every file row has its bytes and no more");
    }
    in_db
}

/// The attachments of a template as stored: (name, type, bytes).
async fn attachments_of(app: &TestApp, customer: i64, template: i64) -> Vec<(String, String, Vec<u8>)> {
    let qa = app.app();
    let mut out = Vec::new();
    let (customer, template) = (CustomerId(customer), TemplateId(template));
    for a in templates::attachments(&qa.store, customer, template)
        .await
        .unwrap()
    {
        let bytes = qa.files.read(customer, a.file_id).await.unwrap();
        assert_eq!(bytes.len() as i64, a.size);
        out.push((a.file_name, a.content_type, bytes));
    }
    out
}

async fn a_template_with_attachments_round_trips(app: TestApp) {
    let acme = app.customer("acme", "pw", 0).await;
    app.customer("other", "pw2", 0).await;
    let notes = "说明：第一行\r\n第二行\n".as_bytes().to_vec();
    let added = post(
        &app,
        "acme",
        "pw",
        "add-tpl",
        form()
            .text("name", "春季促销 ]]> & <more>")
            .text("subject", "{{ fullname }}，您好")
            .text(
                "content",
                "<p>您好 {{ fullname }}</p>\n<a href=\"{{ unsubscribe_url }}\">退订</a>\n",
            )
            .text("text_content", "您好 {{ fullname }}\n")
            .text("encoding", "quoted-printable")
            .part("file[]", file(pdf(), "报价单 2026.pdf", "application/pdf"))
            .part(
                "file[]",
                file(notes.clone(), "说明.txt", "text/plain; charset=utf-8"),
            ),
    )
    .await;
    assert_eq!(added.status, 200);
    let text = added.text();
    assert!(
        text.contains("<status>success</status>\n  <id>1</id>\n  <data>1</data>"),
        "{text}"
    );

    let stored = attachments_of(&app, acme, 1).await;
    assert_eq!(
        stored,
        vec![
            (
                "报价单 2026.pdf".to_string(),
                "application/pdf".to_string(),
                pdf()
            ),
            (
                "说明.txt".to_string(),
                "text/plain; charset=utf-8".to_string(),
                notes
            ),
        ]
    );
    let t = templates::template(&app.app().store, CustomerId(acme), TemplateId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.text_content, "您好 {{ fullname }}\n");
    assert_eq!(t.encoding.as_str(), "quoted-printable");

    // One file as `file`, and a template without any (url-encoded body).
    let single = post(
        &app,
        "acme",
        "pw",
        "add-tpl",
        form()
            .text("name", "单个附件")
            .text("subject", "s")
            .text("content", "c")
            .part("file", file(b"x".to_vec(), "a.bin", "application/octet-stream")),
    )
    .await;
    assert_eq!(single.code(), "success", "{}", single.text());
    let plain = app
        .api_post(
            TEMPLATE,
            "acme",
            "pw",
            "do=add-tpl",
            &[("name", "无附件"), ("subject", "s"), ("content", "<b>c</b>")],
        )
        .await;
    assert!(plain.text().contains("<id>3</id>"), "{}", plain.text());
    let t3 = templates::template(&app.app().store, CustomerId(acme), TemplateId(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t3.encoding.as_str(), t3.content_type.as_str()),
        ("base64", "html")
    );

    let list = app.api(TEMPLATE, "acme", "pw", "do=list-tpl").await;
    assert_eq!(list.content_type, "text/xml; charset=UTF-8");
    assert_golden("template-list.xml", &mask_times(&list.body));
    let one = app.api(TEMPLATE, "acme", "pw", "do=list-tpl&tpl_id=2").await;
    let one = one.text();
    assert!(one.contains("<id>2</id>") && !one.contains("<id>1</id>"), "{one}");
    assert!(
        one.contains("<atta_id>3</atta_id>\n        <atta_name>a.bin</atta_name>"),
        "{one}"
    );

    // Another customer sees none of it, and a foreign id is a missing one.
    let theirs = app.api(TEMPLATE, "other", "pw2", "do=list-tpl").await;
    assert!(
        theirs.text().contains("<template_list></template_list>"),
        "{}",
        theirs.text()
    );
    let foreign = app.api(TEMPLATE, "other", "pw2", "do=list-tpl&tpl_id=1").await;
    let missing = app.api(TEMPLATE, "other", "pw2", "do=list-tpl&tpl_id=999").await;
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(foreign.body, missing.body);
    assert_eq!(
        app.api(TEMPLATE, "acme", "pw", "do=list-tpl&tpl_id=x")
            .await
            .code(),
        "invalid_param"
    );
    app.stop().await;
}

async fn refused_templates_and_uploads_leave_nothing(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let base = || {
        form()
            .text("name", "n")
            .text("subject", "s")
            .text("content", "<p>{{ fullname }}</p>")
    };
    let cases: Vec<(Form, &str, &str)> = vec![
        (
            form().text("subject", "s").text("content", "c"),
            "missing_param",
            "name",
        ),
        (
            form().text("name", "n").text("content", "c"),
            "missing_param",
            "subject",
        ),
        (
            form().text("name", "n").text("subject", "s"),
            "missing_param",
            "content",
        ),
        (base().text("encoding", "7bit"), "invalid_param", "encoding"),
        (
            form()
                .text("name", "n")
                .text("subject", "s")
                .text("content", "<p>\n{{ fullname </p>"),
            "invalid_param",
            "content: line 2: syntax error",
        ),
        (
            base().text("text_content", "a\n{{ fulname }}"),
            "invalid_param",
            "text_content: line 2: unknown placeholder 'fulname'",
        ),
        (
            base()
                .part("file[]", file(pdf(), "ok.pdf", "application/pdf"))
                .part("file[]", file(vec![], "empty.pdf", "application/pdf")),
            "file_error",
            "empty.pdf: empty file",
        ),
        (
            base()
                .part("file[]", file(pdf(), "ok.pdf", "application/pdf"))
                .part(
                    "file[]",
                    file(vec![7; (10 << 20) + 1], "big.bin", "application/octet-stream"),
                ),
            "file_error",
            "big.bin",
        ),
        (
            base()
                .part(
                    "file[]",
                    file(vec![1; 8 << 20], "a.bin", "application/octet-stream"),
                )
                .part(
                    "file[]",
                    file(vec![2; 8 << 20], "b.bin", "application/octet-stream"),
                )
                .part(
                    "file[]",
                    file(vec![3; 8 << 20], "c.bin", "application/octet-stream"),
                ),
            "file_error",
            "files too large together",
        ),
    ];
    for (form, code, detail) in cases {
        let a = post(&app, "acme", "pw", "add-tpl", form).await;
        assert_eq!(a.status_code().as_deref(), Some(code), "{}", a.text());
        assert!(a.text().contains(detail), "{detail}: {}", a.text());
    }
    let list = app.api(TEMPLATE, "acme", "pw", "do=list-tpl").await;
    assert!(
        list.text().contains("<template_list></template_list>"),
        "{}",
        list.text()
    );
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM templates").await, 0);
    assert_eq!(stored_files(&app).await, 0);
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM template_attachments").await, 0);
    app.stop().await;
}

async fn templates_are_edited_and_deleted_with_their_files(app: TestApp) {
    let acme = app.customer("acme", "pw", 0).await;
    app.customer("other", "pw2", 0).await;
    post(
        &app,
        "acme",
        "pw",
        "add-tpl",
        form()
            .text("name", "n")
            .text("subject", "s")
            .text("content", "c")
            .text("text_content", "t")
            .part("file[]", file(pdf(), "报价单.pdf", "application/pdf")),
    )
    .await;
    let edit = async |rest: &str| {
        app.api(TEMPLATE, "acme", "pw", &format!("do=edit-tpl&{rest}"))
            .await
    };
    for (rest, code) in [
        ("tpl_id=1", "missing_param"),
        ("name=x", "missing_param"),
        ("tpl_id=1&encoding=uue", "invalid_param"),
        ("tpl_id=-1&name=x", "invalid_param"),
        ("tpl_id=999&name=x", "not_found"),
    ] {
        assert_eq!(edit(rest).await.code(), code, "{rest}");
    }
    let bad = edit("tpl_id=1&subject=%7B%25+if+%25%7D").await;
    assert!(bad.text().contains("subject: line 1"), "{}", bad.text());
    let foreign = app
        .api(TEMPLATE, "other", "pw2", "do=edit-tpl&tpl_id=1&name=mine")
        .await;
    assert_eq!(
        foreign.body,
        app.api(TEMPLATE, "other", "pw2", "do=edit-tpl&tpl_id=999&name=mine")
            .await
            .body
    );

    // Name only; then subject and encoding by POST; an empty text clears it.
    assert_eq!(edit("tpl_id=1&name=%E6%96%B0%E5%90%8D").await.code(), "success");
    let posted = app
        .api_post(
            TEMPLATE,
            "acme",
            "pw",
            "do=edit-tpl",
            &[
                ("tpl_id", "1"),
                ("subject", "Hi {{ fullname }}"),
                ("encoding", "QUOTED-PRINTABLE"),
                ("text_content", ""),
            ],
        )
        .await;
    assert_eq!(posted.code(), "success", "{}", posted.text());
    let t = templates::template(&app.app().store, CustomerId(acme), TemplateId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            t.name.as_str(),
            t.subject.as_str(),
            t.content.as_str(),
            t.text_content.as_str(),
            t.encoding.as_str()
        ),
        ("新名", "Hi {{ fullname }}", "c", "", "quoted-printable")
    );
    assert!(t.updated_at >= t.created_at);

    // Another customer can't delete it; its owner deletes it and its file.
    let foreign = app.api(TEMPLATE, "other", "pw2", "do=del-tpl&tpl_id=1").await;
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(stored_files(&app).await, 1);
    assert_eq!(
        app.api(TEMPLATE, "acme", "pw", "do=del-tpl").await.code(),
        "missing_param"
    );
    let deleted = app.api(TEMPLATE, "acme", "pw", "do=del-tpl&tpl_id=1").await;
    assert_eq!(deleted.code(), "success", "{}", deleted.text());
    assert_eq!(stored_files(&app).await, 0);
    let again = app.api(TEMPLATE, "acme", "pw", "do=del-tpl&tpl_id=1").await;
    assert_eq!(again.code(), "not_found");
    app.stop().await;
}

async fn attachments_are_added_and_deleted(app: TestApp) {
    let acme = app.customer("acme", "pw", 0).await;
    app.customer("other", "pw2", 0).await;
    for name in ["一", "二"] {
        post(
            &app,
            "acme",
            "pw",
            "add-tpl",
            form()
                .text("name", name)
                .text("subject", "s")
                .text("content", "c"),
        )
        .await;
    }
    let add =
        |user: &'static str, pw: &'static str, tpl: &'static str, files: Vec<(Vec<u8>, &'static str)>| {
            let mut f = form().text("tpl_id", tpl);
            for (bytes, name) in files {
                f = f.part("file[]", file(bytes, name, "application/pdf"));
            }
            post(&app, user, pw, "tpl-attachment-add", f)
        };
    let added = add(
        "acme",
        "pw",
        "1",
        vec![(pdf(), "合同.pdf"), (vec![9; 6 << 20], "附件 2.pdf")],
    )
    .await;
    assert_eq!(added.code(), "success", "{}", added.text());
    assert!(
        added.text().contains(
            "<attachments>\n    <attachment>\n      <atta_id>1</atta_id>\n      <atta_name>合同.pdf</atta_name>\n    </attachment>\n    <attachment>\n      <atta_id>2</atta_id>\n      <atta_name>附件 2.pdf</atta_name>\n    </attachment>\n  </attachments>\n  <data>"
        ),
        "{}",
        added.text()
    );
    assert_eq!(attachments_of(&app, acme, 1).await[0].2, pdf());
    let on_two = add("acme", "pw", "2", vec![(b"two".to_vec(), "two.pdf")]).await;
    assert!(
        on_two.text().contains("<atta_id>3</atta_id>"),
        "{}",
        on_two.text()
    );

    // Over 20 MiB with what the template has: refused, nothing kept.
    let over = add(
        "acme",
        "pw",
        "1",
        vec![(vec![1; 8 << 20], "a.pdf"), (vec![2; 7 << 20], "b.pdf")],
    )
    .await;
    assert_eq!(over.code(), "file_error", "{}", over.text());
    assert_eq!(attachments_of(&app, acme, 1).await.len(), 2);
    assert_eq!(stored_files(&app).await, 3);
    let none = post(
        &app,
        "acme",
        "pw",
        "tpl-attachment-add",
        form().text("tpl_id", "1"),
    )
    .await;
    assert_eq!(none.code(), "missing_param");
    for (user, pw) in [("other", "pw2"), ("acme", "pw")] {
        let tpl = if user == "other" { "1" } else { "999" };
        let a = add(user, pw, tpl, vec![(pdf(), "x.pdf")]).await;
        assert_eq!(a.code(), "not_found", "{user}");
    }
    assert_eq!(stored_files(&app).await, 3);

    let del = async |user: &str, pw: &str, rest: &str| {
        app.api(TEMPLATE, user, pw, &format!("do=tpl-attachment-del&{rest}"))
            .await
    };
    // An attachment of another template, or of another customer, is not found.
    for (user, pw, rest, code) in [
        ("acme", "pw", "tpl_id=1&attachment_id=x", "invalid_param"),
        ("acme", "pw", "tpl_id=1&attachment_id=3", "not_found"),
        ("other", "pw2", "tpl_id=1&attachment_id=1", "not_found"),
        ("other", "pw2", "tpl_id=1", "not_found"),
    ] {
        assert_eq!(del(user, pw, rest).await.code(), code, "{user} {rest}");
    }
    let one = del("acme", "pw", "tpl_id=1&attachment_id=2").await;
    assert!(one.text().contains("<count>1</count>"), "{}", one.text());
    assert_eq!(stored_files(&app).await, 2);
    // The default is all (F.5 #16).
    let all = del("acme", "pw", "tpl_id=1").await;
    assert!(
        all.text()
            .contains("<status>success</status>\n  <count>1</count>"),
        "{}",
        all.text()
    );
    let empty = del("acme", "pw", "tpl_id=1&attachment_id=all").await;
    assert!(empty.text().contains("<count>0</count>"), "{}", empty.text());
    assert_eq!(stored_files(&app).await, 1);
    assert_eq!(attachments_of(&app, acme, 2).await[0].2, b"two");
    app.stop().await;
}

/// The preview use-case as the console calls it: a stored template
/// rendered for a sample recipient, values escaped in the HTML only.
async fn a_template_is_previewed_for_a_recipient(app: TestApp) {
    let acme = app.customer("acme", "pw", 0).await;
    add_template(
        &app,
        "acme",
        &[
            ("name", "welcome"),
            ("subject", "Hi {{ fullname }}"),
            ("content", "<p>{{ fullname }} {{ var1 }}</p>"),
            ("text_content", "{{ fullname }} <{{ email }}>"),
        ],
    )
    .await;
    let sample = templates::Recipient {
        email: "zhang.san@example.com",
        fullname: "张三 & <co>",
        vars: ["VAR1", "", "", "", "", "", "", "", "", ""],
        unsubscribe_url: "#unsubscribe",
    };
    let store = &app.app().store;
    let p = templates::preview(store, CustomerId(acme), TemplateId(1), &sample)
        .await
        .unwrap();
    assert_eq!(p.template.name, "welcome");
    let r = p.rendered.unwrap();
    assert_eq!(r.subject, "Hi 张三 & <co>");
    assert_eq!(r.html, "<p>张三 &amp; &lt;co&gt; VAR1</p>");
    assert_eq!(r.text.as_deref(), Some("张三 & <co> <zhang.san@example.com>"));
    let other = app.customer("other", "pw", 0).await;
    let foreign = templates::preview(store, CustomerId(other), TemplateId(1), &sample).await;
    assert!(
        matches!(foreign, Err(templates::TemplateCaseError::NotFound)),
        "{foreign:?}"
    );
    app.stop().await;
}

both_stores!(
    a_template_is_previewed_for_a_recipient,
    a_template_with_attachments_round_trips,
    refused_templates_and_uploads_leave_nothing,
    templates_are_edited_and_deleted_with_their_files,
    attachments_are_added_and_deleted,
);
