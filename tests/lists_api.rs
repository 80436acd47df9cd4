//! Chapter 4 of the vendor API as a client uses it: contact lists, addresses
//! one at a time and in batches, paging, search, exports, subscribe and
//! unsubscribe, and what another customer can't see.

mod common;

use common::*;

const ML: &str = "mloperate.php";

/// Adds a list through the API and returns its id.
async fn add_list(app: &TestApp, user: &str, subject: &str) -> i64 {
    let a = app
        .api_post(
            ML,
            user,
            "pw",
            "do=maillist-add",
            &[("subject", subject), ("status", "enabled")],
        )
        .await;
    assert_eq!(a.status_code().as_deref(), Some("success"), "{}", a.text());
    a.element("id").unwrap().parse().unwrap()
}

async fn batch(app: &TestApp, list: i64, ml_addr: &str) -> Answer {
    app.api_post(
        ML,
        "acme",
        "pw",
        &format!("do=ml-addr-add&list_id={list}"),
        &[("ml_addr", ml_addr)],
    )
    .await
}

async fn lists_are_created_edited_and_deleted(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    // F.5 #5: the macron spelling of description, in a POST body.
    let added = app
        .post_form(
            &format!(
                "/mm-ms/api/{ML}?username=acme&password={}&do=maillist-add",
                md5_hex("pw")
            ),
            &[
                ("subject", "客户 & <VIP>"),
                ("status", "enabled"),
                ("descrīption", "B"),
            ],
        )
        .await;
    assert_golden("maillist-add.xml", &added.body);
    let detail = app.api(ML, "acme", "pw", "do=maillist-detail&id=1").await;
    assert_golden("maillist-detail.xml", &detail.body);
    add_list(&app, "acme", "second").await;
    let all = app.api(ML, "acme", "pw", "do=maillist-list").await;
    assert_golden("maillist-list.xml", &all.body);

    // Edit one field; an empty description clears it; the rest stays.
    let e = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=maillist-edit&id=1",
            &[("status", "disabled"), ("description", "")],
        )
        .await;
    assert_eq!(e.status_code().as_deref(), Some("success"), "{}", e.text());
    let d = app.api(ML, "acme", "pw", "do=maillist-detail&id=1").await;
    assert_eq!(d.element("status").as_deref(), Some("disabled"));
    assert_eq!(d.element("description").as_deref(), Some(""));
    assert_eq!(d.element("subject").as_deref(), Some("客户 &amp; &lt;VIP&gt;"));

    for (rest, form, code) in [
        ("do=maillist-add", vec![("subject", "x")], "missing_param"),
        (
            "do=maillist-add",
            vec![("subject", "x"), ("status", "on")],
            "invalid_param",
        ),
        ("do=maillist-add", vec![("status", "enabled")], "missing_param"),
        ("do=maillist-edit&id=1", vec![], "missing_param"),
        ("do=maillist-edit", vec![("subject", "y")], "missing_param"),
        ("do=maillist-edit&id=abc", vec![("subject", "y")], "invalid_param"),
        ("do=maillist-edit&id=99", vec![("subject", "y")], "not_found"),
        ("do=maillist-detail&id=99", vec![], "not_found"),
        ("do=maillist-detail", vec![], "missing_param"),
    ] {
        let a = app.api_post(ML, "acme", "pw", rest, &form).await;
        assert_eq!(
            a.status_code().as_deref(),
            Some(code),
            "{rest} {form:?}: {}",
            a.text()
        );
    }
    let long = "x".repeat(101);
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=maillist-add",
            &[("subject", &long), ("status", "enabled")],
        )
        .await;
    assert_eq!(a.status_code().as_deref(), Some("invalid_param"));

    batch(&app, 1, "a@b.cn\nc@d.cn").await;
    let del = app.api(ML, "acme", "pw", "do=maillist-del&id=1").await;
    assert_eq!(del.status_code().as_deref(), Some("success"));
    assert_eq!(
        app.api(ML, "acme", "pw", "do=maillist-del&id=1")
            .await
            .status_code()
            .as_deref(),
        Some("not_found")
    );
    // Its addresses went with it.
    let rest = app.api(ML, "acme", "pw", "do=ml-addr-list").await;
    assert!(rest.elements("addr").is_empty(), "{}", rest.text());
    app.stop().await;
}

async fn one_address_at_a_time(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = add_list(&app, "acme", "L").await;
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&return_id=1"),
            &[
                ("address", " Zhang.San@Example.CN "),
                ("var1", "v1"),
                ("Var2", "v2"),
                ("var3", "lower"),
                ("Var3", "upper"),
                ("sex", "m"),
                ("birthday", "1990-7-4"),
                ("phone", "13800000000"),
                ("area", "上海"),
            ],
        )
        .await;
    assert_eq!(a.status_code().as_deref(), Some("success"), "{}", a.text());
    assert_eq!(
        a.element("id"),
        a.element("data"),
        "H-1: the id in <id> and in <data>"
    );
    let id = a.element("id").unwrap();

    let dup = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&address=zhang.san@example.cn"),
        )
        .await;
    assert_eq!(dup.status_code().as_deref(), Some("already_exists"));
    let plain = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&address=li@example.cn&fullname=李四"),
        )
        .await;
    assert_eq!(plain.status_code().as_deref(), Some("success"));
    assert!(plain.element("id").is_none(), "no id without return_id=1");

    for (rest, code) in [
        (
            format!("do=ml-addr-add&list_id={list}&address=not-an-address"),
            "format_error",
        ),
        (format!("do=ml-addr-add&list_id={list}"), "missing_param"),
        ("do=ml-addr-add&address=a@b.cn".to_string(), "missing_param"),
        (
            "do=ml-addr-add&list_id=77&address=a@b.cn".to_string(),
            "not_found",
        ),
        (
            format!("do=ml-addr-add&list_id={list}&address=a@b.cn&sex=X"),
            "invalid_param",
        ),
        (
            format!("do=ml-addr-add&list_id={list}&address=a@b.cn&birthday=2012-02-30"),
            "invalid_param",
        ),
    ] {
        assert_eq!(
            app.api(ML, "acme", "pw", &rest).await.status_code().as_deref(),
            Some(code),
            "{rest}"
        );
    }
    // list_id 0: unclassified.
    let u = app
        .api(
            ML,
            "acme",
            "pw",
            "do=ml-addr-add&list_id=0&address=loose@example.cn",
        )
        .await;
    assert_eq!(u.status_code().as_deref(), Some("success"));

    let listed = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-list&list_id={list}&address_id={id}"),
        )
        .await;
    let mut text = listed.text();
    let time = listed.element("time").unwrap();
    text = text.replace(&time, "TIME");
    assert_golden("ml-addr-list.xml", text.as_bytes());
    let unclassified = app.api(ML, "acme", "pw", "do=ml-addr-list&list_id=0").await;
    assert_eq!(unclassified.elements("address"), vec!["loose@example.cn"]);
    assert_eq!(
        unclassified.element("fullname").as_deref(),
        Some("loose"),
        "the name defaults to the local part"
    );
    let count = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(count.element("count").as_deref(), Some("2"));
    app.stop().await;
}

async fn batches_keep_the_good_rows(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = add_list(&app, "acme", "L").await;
    // F.5 #9: the original's example lines.
    let a = batch(
        &app,
        list,
        "comingchina@bestdem.org;comingchina;var1;var2;....var10;\r\ntest@bestdem.org;test;var1;var2;....var10;",
    )
    .await;
    assert_eq!(a.element("count").as_deref(), Some("2"), "{}", a.text());
    let l = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&list_id={list}"))
        .await;
    assert_eq!(l.elements("fullname"), vec!["comingchina", "test"]);
    assert_eq!(l.elements("var3"), vec!["....var10", "....var10"]);

    // Invalid and duplicate records are left out and counted.
    let a = batch(
        &app,
        list,
        "TEST@bestdem.org;again\nbad-address;x\nnew@bestdem.org\nnew@bestdem.org;twice\n\n",
    )
    .await;
    assert_eq!(a.element("count").as_deref(), Some("1"));
    assert_eq!(
        a.element("data").as_deref(),
        Some("added 1, invalid 1, duplicate 2")
    );

    // A custom separator with an escape, and the array form.
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&separate=%5Ct"),
            &[("ml_addr", "t1@x.cn;T1\tt2@x.cn;T2")],
        )
        .await;
    assert_eq!(a.element("count").as_deref(), Some("2"), "{}", a.text());
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&addr_type=array"),
            &[("ml_addr[]", "r1@x.cn;R1"), ("ml_addr[]", "r2@x.cn;R2;v")],
        )
        .await;
    assert_eq!(a.element("count").as_deref(), Some("2"), "{}", a.text());
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&addr_type=json"),
            &[("ml_addr", "a@b.cn")],
        )
        .await;
    assert_eq!(a.status_code().as_deref(), Some("invalid_param"));
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count").as_deref(), Some("7"));
    app.stop().await;
}

async fn paging_search_and_deep_pages(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = add_list(&app, "acme", "L").await;
    let other = add_list(&app, "acme", "other").await;
    let lines: Vec<String> = (1..=5000)
        .map(|i| format!("user{i:04}@example.cn;Name{i}"))
        .collect();
    batch(&app, list, &lines.join("\n")).await;
    batch(
        &app,
        other,
        "user0001@example.cn;Elsewhere\n50%off@example.cn;Fifty_Per",
    )
    .await;

    let page = |p: i64, limit: i64| {
        let app = &app;
        async move {
            app.api(
                ML,
                "acme",
                "pw",
                &format!("do=ml-addr-list&list_id={list}&page={p}&limit={limit}"),
            )
            .await
            .elements("address")
        }
    };
    assert_eq!(page(1, 50).await.len(), 50);
    assert_eq!(page(1, 50).await[0], "user0001@example.cn");
    assert_eq!(page(100, 50).await.last().unwrap(), "user5000@example.cn");
    assert!(page(101, 50).await.is_empty());
    // Deep pages (past what an OFFSET is allowed to skip) are exact.
    assert_eq!(
        page(400, 10).await,
        (3991..=4000)
            .map(|i| format!("user{i:04}@example.cn"))
            .collect::<Vec<_>>()
    );
    // After a change the deep pages follow it.
    let first = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-list&list_id={list}&page=1&limit=1"),
        )
        .await;
    let first_id = first.element("id").unwrap();
    app.api(ML, "acme", "pw", &format!("do=ml-addr-del&id={first_id}"))
        .await;
    assert_eq!(
        page(400, 10).await,
        (3992..=4001)
            .map(|i| format!("user{i:04}@example.cn"))
            .collect::<Vec<_>>()
    );
    // Out-of-range values are normalised (A.8, H-9).
    assert_eq!(page(0, 0).await.len(), 50);
    let all = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-list&list_id={list}&limit=10"),
        )
        .await;
    assert_eq!(
        all.elements("addr").len(),
        4999,
        "limit without page: everything (F.5 #13)"
    );

    // Keyword: case-insensitive, over address and name, `%` and `_` literal.
    let k = |kw: &str| {
        let app = &app;
        let kw = urlencode(kw);
        async move {
            app.api(ML, "acme", "pw", &format!("do=ml-addr-list&keyword={kw}"))
                .await
                .elements("address")
        }
    };
    assert_eq!(k("USER4999").await, vec!["user4999@example.cn"]);
    assert_eq!(k("name4998").await, vec!["user4998@example.cn"]);
    assert_eq!(k("elsewhere").await, vec!["user0001@example.cn"]);
    assert_eq!(k("50%").await, vec!["50%off@example.cn"]);
    assert_eq!(k("y_p").await, vec!["50%off@example.cn"]);
    assert!(k("user_001").await.is_empty());
    let unknown = app.api(ML, "acme", "pw", "do=ml-addr-list&list_id=999").await;
    assert_eq!(unknown.status_code().as_deref(), Some("not_found"));
    app.stop().await;
}

async fn addresses_are_edited_deleted_and_emptied(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = add_list(&app, "acme", "L").await;
    batch(&app, list, "a@x.cn;A;v1\nb@x.cn;B").await;
    let l = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&list_id={list}"))
        .await;
    let ids = l.elements("id");
    let (a, b) = (&ids[0], &ids[1]);

    let e = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-edit&id={a}"),
            &[("fullname", ""), ("Var1", "new")],
        )
        .await;
    assert_eq!(e.status_code().as_deref(), Some("success"), "{}", e.text());
    let got = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&address_id={a}"))
        .await;
    assert_eq!(got.element("fullname").as_deref(), Some(""));
    assert_eq!(got.element("var1").as_deref(), Some("new"));

    for (rest, code) in [
        (format!("do=ml-addr-edit&id={a}&address=B@X.CN"), "already_exists"),
        (format!("do=ml-addr-edit&id={a}&address=nonsense"), "format_error"),
        (format!("do=ml-addr-edit&id={a}"), "missing_param"),
        ("do=ml-addr-edit&id=9999&fullname=x".to_string(), "not_found"),
        ("do=ml-addr-del&id=9999".to_string(), "not_found"),
        ("do=ml-addr-empty&list_id=9999".to_string(), "not_found"),
    ] {
        assert_eq!(
            app.api(ML, "acme", "pw", &rest).await.status_code().as_deref(),
            Some(code),
            "{rest}"
        );
    }
    let moved = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-edit&id={a}&address=c@x.cn&sex=F"),
        )
        .await;
    assert_eq!(moved.status_code().as_deref(), Some("success"));
    assert_eq!(
        app.api(ML, "acme", "pw", &format!("do=ml-addr-del&id={b}"))
            .await
            .status_code()
            .as_deref(),
        Some("success")
    );
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count").as_deref(), Some("1"));
    batch(&app, list, "d@x.cn\ne@x.cn").await;
    let emptied = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-empty&list_id={list}"))
        .await;
    assert_eq!(emptied.element("count").as_deref(), Some("3"));
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count").as_deref(), Some("0"));
    app.stop().await;
}

async fn subscribe_unsubscribe_and_exports(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = add_list(&app, "acme", "News").await;
    // F.5 #10: the literal illustration of format 2.
    let literal = "test1@bestedm.com\ntest1\n\ntest2@bestedm.com\ntest2\n";
    let s = app
        .api_post(
            ML,
            "acme",
            "pw",
            &format!("do=ml-sub&list_id={list}"),
            &[("maillist", literal)],
        )
        .await;
    assert_eq!(s.element("count").as_deref(), Some("2"), "{}", s.text());
    let s = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-sub&list_id={list}&address=solo@bestedm.com&fullname=Solo"),
        )
        .await;
    assert_eq!(s.element("count").as_deref(), Some("1"));
    let again = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-sub&list_id={list}&address=SOLO@bestedm.com"),
        )
        .await;
    assert_eq!(
        again.element("count").as_deref(),
        Some("0"),
        "D-16: already there is a success with 0"
    );
    let bad = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-sub&list_id={list}&address=nope"),
        )
        .await;
    assert_eq!(bad.status_code().as_deref(), Some("format_error"));

    let export = app
        .api(ML, "acme", "pw", &format!("do=subscription-export&id={list}"))
        .await;
    assert_eq!(export.content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        export.headers.get("content-disposition").unwrap(),
        &format!("attachment; filename=\"subscription-export-{list}.txt\"")
    );
    assert_eq!(
        export.text(),
        "test1@bestedm.com\ttest1\ntest2@bestedm.com\ttest2\nsolo@bestedm.com\tSolo\n"
    );

    // F.5 #11.
    let u = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-unsub&list_id={list}&address=test1@bestedm.com,test2@bestedm.com"),
        )
        .await;
    assert_eq!(u.element("count").as_deref(), Some("2"));
    let log = app
        .api(ML, "acme", "pw", &format!("do=unsubscribe-export&id={list}"))
        .await;
    let lines: Vec<&str> = log.text().leak().lines().collect();
    assert_eq!(lines.len(), 2);
    for (line, addr) in lines.iter().zip(["test1@bestedm.com", "test2@bestedm.com"]) {
        let (time, email) = line.split_once('\t').unwrap();
        assert_eq!(email, addr);
        assert!(
            qunfa::clock::parse_local_datetime(time).is_ok() && time.len() == 19,
            "{time}"
        );
    }
    assert!(log.text().ends_with('\n'));
    // Unsubscribed addresses are suppressed until they subscribe again (H-5).
    let store = &app.app().store;
    let t1 = qunfa::domain::email::EmailAddress::parse("test1@bestedm.com").unwrap();
    let customer = qunfa::domain::ids::CustomerId(1);
    let is_suppressed = |e| qunfa::domain::lists::is_suppressed(store, customer, e);
    assert!(is_suppressed(&t1).await.unwrap());
    // 4.9.x stores it but does not lift the suppression.
    batch(&app, list, "test1@bestedm.com").await;
    assert!(is_suppressed(&t1).await.unwrap());
    let none = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-unsub&list_id={list}&address=never@bestedm.com"),
        )
        .await;
    assert_eq!(none.element("count").as_deref(), Some("0"));
    app.api(
        ML,
        "acme",
        "pw",
        &format!("do=ml-sub&list_id={list}&address=test1@bestedm.com"),
    )
    .await;
    assert!(!is_suppressed(&t1).await.unwrap());

    // An empty export is an empty body; an error is the XML envelope.
    let empty_list = add_list(&app, "acme", "empty").await;
    let e = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=subscription-export&id={empty_list}"),
        )
        .await;
    assert_eq!((e.status, e.body.len()), (200, 0));
    let err = app.api(ML, "acme", "pw", "do=subscription-export&id=999").await;
    assert_eq!(err.content_type, "text/xml; charset=UTF-8");
    assert_eq!(err.status_code().as_deref(), Some("not_found"));
    app.stop().await;
}

async fn another_customers_ids_are_not_found(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.customer("rival", "pw", 0).await;
    let list = add_list(&app, "acme", "mine").await;
    batch(&app, list, "secret@acme.cn;Secret").await;
    let addr = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&list_id={list}"))
        .await
        .element("id")
        .unwrap();
    let missing_list = 424242;
    for (rest, form) in [
        ("do=maillist-detail&id={L}".to_string(), vec![]),
        ("do=maillist-edit&id={L}".to_string(), vec![("subject", "x")]),
        ("do=maillist-del&id={L}".to_string(), vec![]),
        ("do=subscription-export&id={L}".to_string(), vec![]),
        ("do=unsubscribe-export&id={L}".to_string(), vec![]),
        ("do=ml-addr-list&list_id={L}".to_string(), vec![]),
        ("do=ml-addr-add&list_id={L}&address=a@b.cn".to_string(), vec![]),
        (
            "do=ml-addr-add&list_id={L}".to_string(),
            vec![("ml_addr", "a@b.cn")],
        ),
        ("do=ml-addr-empty&list_id={L}".to_string(), vec![]),
        ("do=ml-sub&list_id={L}&address=a@b.cn".to_string(), vec![]),
        (
            "do=ml-unsub&list_id={L}&address=secret@acme.cn".to_string(),
            vec![],
        ),
    ] {
        let foreign = app
            .api_post(ML, "rival", "pw", &rest.replace("{L}", &list.to_string()), &form)
            .await;
        let missing = app
            .api_post(
                ML,
                "rival",
                "pw",
                &rest.replace("{L}", &missing_list.to_string()),
                &form,
            )
            .await;
        assert_eq!(foreign.status_code().as_deref(), Some("not_found"), "{rest}");
        assert_eq!(
            foreign.body, missing.body,
            "{rest}: a foreign id must answer like a missing one"
        );
    }
    for rest in [
        format!("do=ml-addr-edit&id={addr}&fullname=x"),
        format!("do=ml-addr-del&id={addr}"),
    ] {
        let foreign = app.api(ML, "rival", "pw", &rest).await;
        assert_eq!(foreign.status_code().as_deref(), Some("not_found"), "{rest}");
    }
    let rival_view = app
        .api(ML, "rival", "pw", &format!("do=ml-addr-list&address_id={addr}"))
        .await;
    assert!(rival_view.elements("addr").is_empty());
    assert!(
        app.api(ML, "rival", "pw", "do=maillist-list")
            .await
            .elements("item")
            .is_empty()
    );
    // Nothing changed for the owner.
    let mine = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&list_id={list}"))
        .await;
    assert_eq!(mine.elements("address"), vec!["secret@acme.cn"]);
    assert_eq!(mine.elements("fullname"), vec!["Secret"]);
    app.stop().await;
}

/// The batch use-case as qunfa's own interfaces call it: every row left
/// out is reported with its position and why, and the suppressed rows it
/// added are named; by the store's small and large (staged) ways alike.
async fn a_batch_reports_each_row_left_out(app: TestApp) {
    use qunfa::domain::email::EmailAddress;
    use qunfa::domain::ids::{CustomerId, ListId};
    use qunfa::domain::lists::{self, LeftOut, LeftOutReason, ListError, NewAddress};

    app.customer("acme", "pw", 0).await;
    let gone_from = add_list(&app, "acme", "old news").await;
    batch(&app, gone_from, "gone@x.cn").await;
    let u = app
        .api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-unsub&list_id={gone_from}&address=gone@x.cn"),
        )
        .await;
    assert_eq!(u.element("count").as_deref(), Some("1"));
    let (store, clock) = (&app.app().store, &app.app().clock);
    let customer = CustomerId(1);
    for filler in [0usize, 1500] {
        let list = add_list(&app, "acme", &format!("L{filler}")).await;
        batch(&app, list, "old@x.cn").await;
        let mut lines: Vec<String> = [
            "new@x.cn;New",
            "not-an-address;x",
            "OLD@x.cn",
            "gone@x.cn",
            "NEW@X.CN;again",
        ]
        .map(String::from)
        .to_vec();
        lines.extend((0..filler).map(|i| format!("f{i}@x.cn")));
        let rows = lists::parse_records(lines.iter().map(String::as_str));
        let out = lists::add_addresses(store, customer, ListId(list), rows, clock.now())
            .await
            .unwrap();
        assert_eq!(out.added, 2 + filler as u64, "{filler}");
        let left_out = |index, email: &str, reason| LeftOut {
            index,
            email: email.to_string(),
            reason,
        };
        assert_eq!(
            out.left_out,
            vec![
                left_out(1, "not-an-address", LeftOutReason::Invalid),
                left_out(2, "OLD@x.cn", LeftOutReason::InList),
                left_out(4, "NEW@X.CN", LeftOutReason::Repeated { first: 0 }),
            ],
            "{filler}"
        );
        assert_eq!(out.suppressed, vec![3], "added, and named as suppressed");
        assert_eq!((out.invalid(), out.duplicates()), (1, 2));
        let d = app
            .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
            .await;
        assert_eq!(d.element("count"), Some((3 + filler).to_string()));
        let names = app
            .api(
                ML,
                "acme",
                "pw",
                &format!("do=ml-addr-list&list_id={list}&page=1&limit=3"),
            )
            .await;
        assert_eq!(
            names.elements("fullname"),
            vec!["old", "New", "gone"],
            "the first of a repeat is kept"
        );
    }

    // One address: a suppressed one is added and said to be; a repeat is refused.
    let gone = NewAddress::new(EmailAddress::parse("gone@x.cn").unwrap(), "");
    let added = lists::add_address(store, customer, ListId(gone_from), &gone, clock.now())
        .await
        .unwrap();
    assert!(added.suppressed);
    let again = lists::add_address(store, customer, ListId(gone_from), &gone, clock.now()).await;
    assert!(matches!(again, Err(ListError::Duplicate)), "{again:?}");
    let elsewhere = lists::add_address(store, CustomerId(1), ListId(4242), &gone, clock.now()).await;
    assert!(matches!(elsewhere, Err(ListError::NotFound)), "{elsewhere:?}");
    app.stop().await;
}

/// A list or a template that a task which has not ended uses can't be
/// deleted, nor the list emptied (4.5, 4.12, 5.4); once the task is
/// deleted they can.
async fn what_a_task_uses_is_kept_until_it_ends(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "acme", "acme.cn", &["a@acme.cn"]).await;
    add_template(&app, "acme", &[("name", "t"), ("subject", "s"), ("content", "c")]).await;
    let list = add_list(&app, "acme", "L").await;
    batch(&app, list, "r@dest.cn").await;
    let t = app
        .api(
            "task.php",
            "acme",
            "pw",
            &format!("do=add-task&tpl_id=1&maillist_id={list}&send_account=a@acme.cn&status=-1&time=2099-01-01%2010:00"),
        )
        .await;
    assert_eq!(t.code(), "success", "{}", t.text());
    let task = t.element("id").unwrap();
    for (script, rest) in [
        (ML, format!("do=maillist-del&id={list}")),
        (ML, format!("do=ml-addr-empty&list_id={list}")),
        ("template.php", "do=del-tpl&tpl_id=1".to_string()),
    ] {
        let a = app.api(script, "acme", "pw", &rest).await;
        assert_eq!(a.code(), "in_use", "{rest}: {}", a.text());
    }
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count").as_deref(), Some("1"), "nothing changed");

    let gone = app
        .api("task.php", "acme", "pw", &format!("do=del-task&id={task}"))
        .await;
    assert_eq!(gone.code(), "success", "{}", gone.text());
    for (script, rest) in [
        (ML, format!("do=ml-addr-empty&list_id={list}")),
        (ML, format!("do=maillist-del&id={list}")),
        ("template.php", "do=del-tpl&tpl_id=1".to_string()),
    ] {
        let a = app.api(script, "acme", "pw", &rest).await;
        assert_eq!(a.code(), "success", "{rest}: {}", a.text());
    }
    app.stop().await;
}

both_stores!(
    a_batch_reports_each_row_left_out,
    what_a_task_uses_is_kept_until_it_ends,
    lists_are_created_edited_and_deleted,
    one_address_at_a_time,
    batches_keep_the_good_rows,
    paging_search_and_deep_pages,
    addresses_are_edited_deleted_and_emptied,
    subscribe_unsubscribe_and_exports,
    another_customers_ids_are_not_found,
);
