//! 4.9.3 file imports: accepted at once, processed by the engine, every
//! encoding and separator, counts that add up, and a job that resumes after
//! a restart without doubling anything.

mod common;

use std::time::Duration;

use common::*;
use qunfa::domain::ids::CustomerId;
use qunfa::domain::lists::{self, ImportState};
use reqwest::multipart::{Form, Part};

const ML: &str = "mloperate.php";

async fn upload(app: &TestApp, list: &str, name: &str, bytes: Vec<u8>) -> Answer {
    let url = format!(
        "{}/mm-ms/api/{ML}?username=acme&password={}&do=ml-addr-add-file",
        app.base,
        md5_hex("pw")
    );
    let form = Form::new()
        .text("list_id", list.to_string())
        .part("file", Part::bytes(bytes).file_name(name.to_string()));
    app.send(app.client.post(url).multipart(form)).await
}

async fn new_list(app: &TestApp) -> i64 {
    let a = app
        .api_post(
            ML,
            "acme",
            "pw",
            "do=maillist-add",
            &[("subject", "imports"), ("status", "enabled")],
        )
        .await;
    a.element("id").unwrap().parse().unwrap()
}

/// Waits until every import job of customer 1 has ended.
async fn settled(app: &TestApp) -> Vec<lists::ImportJob> {
    for _ in 0..600 {
        let jobs = lists::import_jobs(&app.app().store, Some(CustomerId(1)))
            .await
            .unwrap();
        if jobs
            .iter()
            .all(|j| matches!(j.state, ImportState::Done | ImportState::Failed))
        {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("imports did not finish within a minute");
}

async fn names(app: &TestApp, list: i64) -> Vec<(String, String)> {
    let l = app
        .api(ML, "acme", "pw", &format!("do=ml-addr-list&list_id={list}"))
        .await;
    l.elements("address")
        .into_iter()
        .zip(l.elements("fullname"))
        .collect()
}

async fn files_of_every_kind_are_imported(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = new_list(&app).await;
    app.api(
        ML,
        "acme",
        "pw",
        &format!("do=ml-addr-add&list_id={list}&address=already@x.cn"),
    )
    .await;

    // UTF-8 with a BOM, a header line, CRLF, semicolon records, a duplicate
    // of the list and one within the file, an invalid line.
    let utf8 = "\u{feff}email;name;var1\r\na@x.cn;张三;v1\r\nALREADY@x.cn;dup\r\nb@x.cn;李四\r\nbroken line\r\nA@X.CN;again\r\n".as_bytes().to_vec();
    let a = upload(&app, &list.to_string(), "名单.txt", utf8).await;
    assert_eq!(a.status_code().as_deref(), Some("success"), "{}", a.text());
    // GBK: "王五" = CD F5 CE E5; comma separated; no trailing newline.
    let gbk = b"c@x.cn,\xCD\xF5\xCE\xE5,v1\nd@x.cn\t\xCD\xF5\n\ne@x.cn".to_vec();
    assert_eq!(
        upload(&app, &list.to_string(), "gbk.csv", gbk)
            .await
            .status_code()
            .as_deref(),
        Some("success")
    );

    let jobs = settled(&app).await;
    let mut counts: Vec<(i64, i64, i64, String)> = jobs
        .iter()
        .map(|j| (j.added, j.invalid, j.duplicate, j.state.as_str().to_string()))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![(2, 1, 2, "done".to_string()), (3, 0, 0, "done".to_string())]
    );
    let got = names(&app, list).await;
    for (addr, name) in [
        ("a@x.cn", "张三"),
        ("b@x.cn", "李四"),
        ("c@x.cn", "王五"),
        ("d@x.cn", "王"),
        ("e@x.cn", "e"),
    ] {
        assert!(
            got.contains(&(addr.to_string(), name.to_string())),
            "{addr} {name} in {got:?}"
        );
    }
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count").as_deref(), Some("6"));

    // The operator sees the jobs and their counts.
    let status = app.admin_ok(&["import", "status", "--username", "acme"]).await;
    assert!(
        status
            .lines()
            .any(|l| l.contains("名单.txt") && l.contains("\tdone\t100%\t")),
        "{status}"
    );
    // The stored files are gone once imported.
    assert!(jobs.iter().all(|j| j.file_id.is_none()));
    app.stop().await;
}

async fn bad_uploads_are_refused(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = new_list(&app).await.to_string();
    let url = format!(
        "{}/mm-ms/api/{ML}?username=acme&password={}&do=ml-addr-add-file",
        app.base,
        md5_hex("pw")
    );
    let no_file = app
        .send(
            app.client
                .post(&url)
                .multipart(Form::new().text("list_id", list.clone())),
        )
        .await;
    assert_eq!(no_file.status_code().as_deref(), Some("missing_param"));
    assert_eq!(
        upload(&app, &list, "empty.txt", Vec::new())
            .await
            .status_code()
            .as_deref(),
        Some("file_error")
    );
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8 | 0x80).collect();
    assert_eq!(
        upload(&app, &list, "x.bin", binary)
            .await
            .status_code()
            .as_deref(),
        Some("file_error")
    );
    assert_eq!(
        upload(&app, "999", "a.txt", b"a@b.cn\n".to_vec())
            .await
            .status_code()
            .as_deref(),
        Some("not_found")
    );
    assert_eq!(
        upload(&app, "", "a.txt", b"a@b.cn\n".to_vec())
            .await
            .status_code()
            .as_deref(),
        Some("missing_param")
    );
    assert!(
        lists::import_jobs(&app.app().store, Some(CustomerId(1)))
            .await
            .unwrap()
            .is_empty(),
        "nothing was queued"
    );
    app.stop().await;
}

async fn an_import_resumes_after_a_restart_without_doubling(mut app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.restart_with(false).await;
    let list = new_list(&app).await;
    // 45,000 lines with invalid ones and repeats of earlier addresses
    // (in another case), counted here as the import must count them.
    let mut text = String::from("email;name;var1\n");
    let (mut seen, mut expected_invalid, mut expected_dup) = (std::collections::HashSet::new(), 0i64, 0i64);
    for i in 0..45_000i64 {
        let address = match i % 90 {
            0 => {
                text.push_str(&format!("invalid-{i}\n"));
                expected_invalid += 1;
                continue;
            }
            1..=8 if i > 90 => format!("USER{}@EXAMPLE.CN", i - 81),
            _ => format!("user{i}@example.cn"),
        };
        text.push_str(&format!("{address};User {i};v{i}\n"));
        if !seen.insert(address.to_lowercase()) {
            expected_dup += 1;
        }
    }
    assert_eq!(
        upload(&app, &list.to_string(), "big.txt", text.into_bytes())
            .await
            .status_code()
            .as_deref(),
        Some("success")
    );

    // One batch, then the process goes away.
    assert!(qunfa::engine::imports::run_batches(app.app(), 1).await.unwrap());
    let job = &lists::import_jobs(&app.app().store, Some(CustomerId(1)))
        .await
        .unwrap()[0];
    assert_eq!(
        (job.state.clone(), job.lines_done),
        (ImportState::Running, 20_000)
    );
    app.restart_with(false).await;
    while qunfa::engine::imports::run_batches(app.app(), 1).await.unwrap() {}

    let job = &lists::import_jobs(&app.app().store, Some(CustomerId(1)))
        .await
        .unwrap()[0];
    assert_eq!(job.state, ImportState::Done);
    assert_eq!(job.lines_done, 45_001, "the header line and 45,000 more");
    assert!(expected_dup > 3_000 && expected_invalid == 500);
    assert_eq!(
        (job.added, job.invalid, job.duplicate),
        (
            45_000 - expected_invalid - expected_dup,
            expected_invalid,
            expected_dup
        )
    );
    let d = app
        .api(ML, "acme", "pw", &format!("do=maillist-detail&id={list}"))
        .await;
    assert_eq!(d.element("count"), Some(job.added.to_string()));
    let export = app
        .api(ML, "acme", "pw", &format!("do=subscription-export&id={list}"))
        .await;
    assert_eq!(export.text().lines().count() as i64, job.added);
    app.stop().await;
}

async fn a_large_import_keeps_the_file_order_and_skips_the_list(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = new_list(&app).await;
    // Two addresses of the file's first batch are in the list already: that
    // batch takes the careful way, the second the fast one.
    for address in ["user1500@x.cn", "USER11999@X.CN"] {
        app.api(
            ML,
            "acme",
            "pw",
            &format!("do=ml-addr-add&list_id={list}&address={address}"),
        )
        .await;
    }
    // Two batches, big enough for the bulk path; every tenth line repeats an
    // earlier address (in another case), some of them a batch back.
    let mut text = String::new();
    let mut expected = vec!["user1500@x.cn".to_string(), "USER11999@X.CN".to_string()];
    let mut seen: std::collections::HashSet<String> = expected.iter().map(|a| a.to_lowercase()).collect();
    for i in 0..25_000 {
        let address = match i % 10 {
            9 => format!("USER{}@X.CN", (i - 1 - i * 131 % 6_000).max(0)),
            _ => format!("user{i}@x.cn"),
        };
        text.push_str(&format!("{address};N{i}\n"));
        if seen.insert(address.to_lowercase()) {
            expected.push(address);
        }
    }
    let added = expected.len() as i64 - 2;
    for round in 0..2 {
        assert_eq!(
            upload(&app, &list.to_string(), "big.txt", text.clone().into_bytes())
                .await
                .status_code()
                .as_deref(),
            Some("success")
        );
        let jobs = settled(&app).await;
        let job = &jobs[0];
        // Imported again, every line is a duplicate of the list.
        let added = if round == 0 { added } else { 0 };
        assert_eq!(
            (job.added, job.invalid, job.duplicate),
            (added, 0, 25_000 - added),
            "round {round}"
        );
        let got: Vec<String> = names(&app, list).await.into_iter().map(|(a, _)| a).collect();
        assert_eq!(got, expected, "the list shows the file's order (round {round})");
    }
    app.stop().await;
}

/// The reader marks the rows that may repeat an earlier line of the file;
/// the store must still add a marked row that is new (the reader's filter
/// errs that way, seldom) in its place, and skip the others.
async fn a_row_marked_as_a_repeat_by_mistake_keeps_its_place(mut app: TestApp) {
    app.customer("acme", "pw", 0).await;
    app.restart_with(false).await;
    let list = new_list(&app).await;
    app.api(
        ML,
        "acme",
        "pw",
        &format!("do=ml-addr-add&list_id={list}&address=old@x.cn"),
    )
    .await;
    let file = b"old@x.cn\n".to_vec();
    let answer = upload(&app, &list.to_string(), "one.txt", file).await;
    assert_eq!(answer.status_code().as_deref(), Some("success"));
    let job = lists::import_jobs(&app.app().store, Some(CustomerId(1)))
        .await
        .unwrap()
        .remove(0);
    // A batch big enough for the bulk path: rows 5 and 700 are new though
    // marked, row 1500 repeats row 3 and row 1800 the list.
    let mut rows = lists::PackedAddresses::default();
    let mut expected = vec!["old@x.cn".to_string()];
    for i in 0..2_000 {
        let address = match i {
            1500 => "USER3@X.CN".to_string(),
            1800 => "OLD@x.cn".to_string(),
            _ => format!("user{i}@x.cn"),
        };
        rows.push(&lists::parse_import_line(&format!("{address};N{i}")).unwrap());
        if !matches!(i, 1500 | 1800) {
            expected.push(address);
        }
    }
    let progress = lists::ImportProgress {
        offset: 9,
        lines: 2_000,
        finished: true,
        ..Default::default()
    };
    let now = app.app().clock.now();
    let added = app
        .app()
        .store
        .import_batch(&job, &rows, &[5, 700, 1500, 1800], progress, now, now + 30)
        .await
        .unwrap();
    assert_eq!(added, Some(1_998));
    let got: Vec<String> = names(&app, list).await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, expected, "the list shows the batch's order");
    app.stop().await;
}

/// A malformed file (the small one; bench/huge_line.sh has the full size): a line of 1 MiB with no line end
/// before it is over, GBK bytes and binary junk in a UTF-8 file, NUL bytes:
/// the job ends, each bad line is counted invalid, the good ones are there.
async fn a_malformed_file_keeps_its_good_lines(app: TestApp) {
    app.customer("acme", "pw", 0).await;
    let list = new_list(&app).await;
    let mut file = "good1@x.cn;一\n".as_bytes().to_vec();
    file.extend(std::iter::repeat_n(b'a', 1 << 20));
    file.extend_from_slice("@x.cn;huge\ngood2@x.cn;二\n".as_bytes());
    file.extend_from_slice(b"gbk@x.cn;\xCD\xF5\xCE\xE5\n");
    file.extend_from_slice(b"\x00\x01\x02\xff\xfe@junk\n");
    file.extend_from_slice(b"nul\x00@x.cn;n\n");
    file.extend_from_slice("good3@x.cn;三".as_bytes());
    let a = upload(&app, &list.to_string(), "mixed.txt", file).await;
    assert_eq!(a.status_code().as_deref(), Some("success"), "{}", a.text());
    let jobs = settled(&app).await;
    let j = &jobs[0];
    assert_eq!(
        (j.state.as_str(), j.added, j.invalid, j.duplicate),
        ("done", 3, 4, 0),
        "{j:?}"
    );
    let got = names(&app, list).await;
    assert_eq!(
        got,
        [("good1@x.cn", "一"), ("good2@x.cn", "二"), ("good3@x.cn", "三")]
            .map(|(a, n)| (a.to_string(), n.to_string()))
    );
    app.stop().await;
}

both_stores!(
    a_malformed_file_keeps_its_good_lines,
    a_large_import_keeps_the_file_order_and_skips_the_list,
    a_row_marked_as_a_repeat_by_mistake_keeps_its_place,
    files_of_every_kind_are_imported,
    bad_uploads_are_refused,
    an_import_resumes_after_a_restart_without_doubling
);
