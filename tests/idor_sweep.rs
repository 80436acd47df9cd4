//! Tenant isolation, swept: every call that takes an id is made by a
//! second customer with the first one's ids, and must answer exactly as for
//! an id that exists nowhere (D-5); afterwards the first customer's data is
//! as it was. Also: forged and altered tokens, and logs without secrets.

mod common;

use common::*;

/// (script, query with `{ID}`, Alice's value, a value that exists nowhere).
type Probe = (&'static str, &'static str, String, &'static str);

/// Everything an answer says.
fn shape(a: &Answer) -> String {
    format!("{} {} {}", a.status, a.content_type, a.text())
}

/// Everything Alice can read of her own data.
async fn alice_sees(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for (script, q) in [
        ("mloperate.php", "do=maillist-list"),
        ("mloperate.php", "do=maillist-detail&id=1"),
        ("mloperate.php", "do=ml-addr-list&list_id=1"),
        ("mloperate.php", "do=subscription-export&id=1"),
        ("template.php", "do=list-tpl"),
        ("task.php", "do=task-list"),
        ("bs.php", "do=mailbox-list&domain=alice.cn"),
        ("track.php", "do=overview&id=1"),
    ] {
        out.push(app.api(script, "alice", "pw", q).await.text());
    }
    out
}

async fn another_customers_ids_answer_like_missing_ones(app: TestApp) {
    app.customer("alice", "pw", 1000).await;
    app.customer("bob", "pw", 1000).await;
    add_manager(&app).await;
    add_sender_domain(&app, 1, "alice", "alice.cn", &["news@alice.cn"]).await;
    add_sender_domain(&app, 2, "bob", "bob.cn", &["news@bob.cn"]).await;
    let ml = |user: &'static str, q: &'static str, form: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let a = app.api_post("mloperate.php", user, "pw", q, &form).await;
            assert_eq!(a.code(), "success", "{q}: {}", a.text());
        }
    };
    ml(
        "alice",
        "do=maillist-add",
        vec![("subject", "Alice's"), ("status", "enabled")],
    )
    .await;
    ml(
        "alice",
        "do=ml-addr-add&list_id=1",
        vec![("ml_addr", "a1@x.cn;A1\na2@x.cn;A2")],
    )
    .await;
    let tpl = app
        .api_post(
            "template.php",
            "alice",
            "pw",
            "do=add-tpl",
            &[
                ("name", "T"),
                ("subject", "S"),
                ("content", "<a href=\"https://a.cn/\">a</a>"),
            ],
        )
        .await;
    assert_eq!(tpl.code(), "success");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"attached".to_vec()).file_name("a.txt"),
    );
    let att = app
        .send(
            app.client
                .post(format!(
                    "{}/mm-ms/api/template.php?username=alice&password={}&do=tpl-attachment-add&tpl_id=1",
                    app.base,
                    md5_hex("pw")
                ))
                .multipart(form),
        )
        .await;
    assert_eq!(att.code(), "success", "{}", att.text());
    let task = app
        .api(
            "task.php",
            "alice",
            "pw",
            "do=add-task&tpl_id=1&maillist_id=1&send_account=news%40alice.cn&status=-1&track_status=2&time=2099-01-01%2010:00",
        )
        .await;
    assert_eq!(task.code(), "success", "{}", task.text());
    let ident = app
        .api("task.php", "alice", "pw", "do=task-list&id=1")
        .await
        .element("sn")
        .unwrap();
    // Bob has things of his own, so that ids of his exist too.
    ml(
        "bob",
        "do=maillist-add",
        vec![("subject", "Bob's"), ("status", "enabled")],
    )
    .await;
    let before = alice_sees(&app).await;

    let id = |v: &str| v.to_string();
    let today = app.app().clock.day_of(app.app().clock.now());
    let probes: Vec<Probe> = vec![
        ("mloperate.php", "do=maillist-detail&id={ID}", id("1"), "999999"),
        (
            "mloperate.php",
            "do=maillist-edit&id={ID}&subject=Mine",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=subscription-export&id={ID}",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=unsubscribe-export&id={ID}",
            id("1"),
            "999999",
        ),
        ("mloperate.php", "do=ml-addr-list&list_id={ID}", id("1"), "999999"),
        (
            "mloperate.php",
            "do=ml-addr-list&address_id={ID}",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=ml-addr-add&list_id={ID}&address=b%40x.cn",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=ml-addr-add&list_id={ID}&ml_addr=b%40x.cn",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=ml-addr-edit&id={ID}&fullname=Mine",
            id("1"),
            "999999",
        ),
        ("mloperate.php", "do=ml-addr-del&id={ID}", id("1"), "999999"),
        (
            "mloperate.php",
            "do=ml-addr-empty&list_id={ID}",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=ml-sub&list_id={ID}&address=b%40x.cn",
            id("1"),
            "999999",
        ),
        (
            "mloperate.php",
            "do=ml-unsub&list_id={ID}&address=a1%40x.cn",
            id("1"),
            "999999",
        ),
        ("mloperate.php", "do=maillist-del&id={ID}", id("1"), "999999"),
        ("template.php", "do=list-tpl&tpl_id={ID}", id("1"), "999999"),
        (
            "template.php",
            "do=edit-tpl&tpl_id={ID}&name=Mine",
            id("1"),
            "999999",
        ),
        (
            "template.php",
            "do=tpl-attachment-del&tpl_id={ID}",
            id("1"),
            "999999",
        ),
        (
            "template.php",
            "do=tpl-attachment-del&tpl_id=1&attachment_id={ID}",
            id("1"),
            "999999",
        ),
        ("template.php", "do=del-tpl&tpl_id={ID}", id("1"), "999999"),
        (
            "task.php",
            "do=add-task&tpl_id={ID}&maillist_id=2&send_account=news%40bob.cn&status=-1&time=2099-01-01%2010:00",
            id("1"),
            "999999",
        ),
        ("task.php", "do=task-list&id={ID}", id("1"), "999999"),
        ("task.php", "do=list-task&id={ID}", id("1"), "999999"),
        (
            "task.php",
            "do=list-task&ident={ID}",
            ident.clone(),
            "20990101-9-ABCDEF",
        ),
        (
            "task.php",
            "do=edit-task&id={ID}&send_fullname=Mine",
            id("1"),
            "999999",
        ),
        ("task.php", "do=del-task&id={ID}", id("1"), "999999"),
        ("track.php", "do=overview&id={ID}", id("1"), "999999"),
        (
            "track.php",
            "do=overview&ident={ID}",
            ident.clone(),
            "20990101-9-ABCDEF",
        ),
        ("track.php", "do=open-detail&id={ID}", id("1"), "999999"),
        ("track.php", "do=click-detail&id={ID}", id("1"), "999999"),
        ("track.php", "do=link-stat&id={ID}", id("1"), "999999"),
        ("trackexport.php", "track_id={ID}", id("1"), "999999"),
        ("failexport.php", "type=1&task_id={ID}&date=", id("1"), "999999"),
        (
            "failexport.php",
            "type=1&task_ident={ID}&date=",
            ident.clone(),
            "20990101-9-ABCDEF",
        ),
        ("stask.php", "ident={ID}", ident.clone(), "20990101-9-ABCDEF"),
        ("stask.php", "id={ID}", id("1"), "999999"),
        ("bs.php", "do=mailbox-list&domain={ID}", id("alice.cn"), "nope.cn"),
        (
            "bs.php",
            "do=mailbox-add&mailbox=x%40{ID}&pwd=s3cret-x",
            id("alice.cn"),
            "nope.cn",
        ),
        (
            "bs.php",
            "do=mailbox-del&mailbox=news%40{ID}",
            id("alice.cn"),
            "nope.cn",
        ),
        (
            "bs.php",
            "do=mailbox-edit&mailbox=news%40{ID}&pwd=s3cret-y",
            id("alice.cn"),
            "nope.cn",
        ),
    ];
    for (script, query, alices, missing) in &probes {
        let query = query.replace("&date=", &format!("&date={today}"));
        let theirs = app.api(script, "bob", "pw", &query.replace("{ID}", alices)).await;
        let nowhere = app
            .api(script, "bob", "pw", &query.replace("{ID}", missing))
            .await;
        assert_eq!(
            shape(&theirs),
            shape(&nowhere),
            "{script}?{query}: Alice's id must answer like a missing one"
        );
    }
    assert_eq!(alice_sees(&app).await, before, "nothing of Alice's changed");
    app.stop().await;
}

/// A token changed in any way is a 404 that counts nothing, on every path.
async fn altered_tokens_are_refused(app: TestApp) {
    let signer = qunfa::mail::LinkSigner::new(&app.app().link_secret);
    let good = signer.sign(qunfa::mail::Claim::Open { delivery: 1 });
    let other = qunfa::mail::LinkSigner::new(&[7u8; 32]).sign(qunfa::mail::Claim::Open { delivery: 1 });
    let mut flipped = good.clone().into_bytes();
    flipped[3] = if flipped[3] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    for token in [
        other.as_str(),
        flipped.as_str(),
        &good[..good.len() - 1],
        "",
        "..",
        "%00",
    ] {
        for kind in ["o", "c", "u"] {
            let r = app
                .client
                .get(format!("{}/t/{kind}/{token}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "/t/{kind}/{token}");
        }
        let r = app
            .client
            .post(format!("{}/t/u/{token}", app.base))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 404 || r.status() == 405,
            "POST /t/u/{token}: {}",
            r.status()
        );
    }
    assert!(
        signer
            .verp_delivery(&format!("bounce+{flipped}@x.test"))
            .is_none()
    );
    app.stop().await;
}

both_stores!(
    another_customers_ids_answer_like_missing_ones,
    altered_tokens_are_refused
);
