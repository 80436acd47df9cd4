//! Which error the report scripts answer when a request is wrong in more
//! than one way: parameters are read in a fixed order, a missing one before
//! a malformed one, a malformed one before a missing record; `ident` wins
//! over `id` (and `task_ident` over `task_id`), and a task that is not
//! tracked, or is another customer's, is `not_found`.

mod common;

use common::*;

/// Customer acme (task 1, tracked, on hold; task 2, not tracked) and bob.
async fn ready(app: &TestApp) {
    acme_campaign_ready(app, &["a@dest.cn".to_string()]).await;
    for track in [2, 0] {
        let add = app
            .api(
                "task.php",
                "acme",
                "pw",
                &format!(
                    "do=add-task&tpl_id=1&maillist_id=1&send_account=a@acme.cn&status=-1\
                     &time=2099-01-01%2010:00&track_status={track}"
                ),
            )
            .await;
        assert_eq!(add.code(), "success", "{}", add.text());
    }
    app.customer("bob", "pw", 10).await;
}

/// The `<status>` and `<data>` of an answer.
async fn answer(app: &TestApp, user: &str, script: &str, query: &str) -> (String, String) {
    let a = app.api(script, user, "pw", query).await;
    (a.code(), a.element("data").unwrap_or_default())
}

async fn the_first_wrong_thing_is_reported(app: TestApp) {
    ready(&app).await;
    let cases: &[(&str, &str, &str, &str)] = &[
        // (script, query, status, data)
        ("statistic.php", "", "missing_param", "缺少参数: date"),
        (
            "statistic.php",
            "date=2012-02-30",
            "invalid_param",
            "参数错误: date",
        ),
        (
            "statistic.php",
            "date=9999-12-31",
            "invalid_param",
            "参数错误: date",
        ),
        ("deduction.php", "date=x", "invalid_param", "参数错误: date"),
        ("stask.php", "", "missing_param", "缺少参数: date"),
        ("stask.php", "date=bad&id=abc", "invalid_param", "参数错误: id"),
        ("stask.php", "date=bad&ident=x", "invalid_param", "参数错误: date"),
        ("failexport.php", "type=bogus", "missing_param", "缺少参数: date"),
        (
            "failexport.php",
            "date=bad&type=bogus",
            "invalid_param",
            "参数错误: date",
        ),
        (
            "failexport.php",
            "date=9999-12-31&type=all",
            "invalid_param",
            "参数错误: date",
        ),
        (
            "failexport.php",
            "date=2012-03-02",
            "missing_param",
            "缺少参数: type",
        ),
        (
            "failexport.php",
            "date=2012-03-02&date_end=2012-03-01&type=bogus",
            "invalid_param",
            "参数错误: date_end",
        ),
        (
            "failexport.php",
            "date=2012-03-02&date_end=9999-12-31&type=all",
            "invalid_param",
            "参数错误: date_end",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=bogus&out_type=pdf",
            "invalid_param",
            "参数错误: type",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=all&out_type=pdf",
            "invalid_param",
            "参数错误: out_type",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=all&task_ident=x&task_id=abc",
            "invalid_param",
            "参数错误: task_id",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=1",
            "missing_param",
            "缺少参数: task_id",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=user_reject",
            "missing_param",
            "缺少参数: task_id",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=2&task_id=99",
            "not_found",
            "记录不存在",
        ),
        (
            "failexport.php",
            "date=2012-03-02&type=1&task_ident=nope&task_id=1",
            "not_found",
            "记录不存在",
        ),
        (
            "failexportall.php",
            "date=2012-03-02&task_id=99",
            "not_found",
            "记录不存在",
        ),
        ("track.php", "do=overview", "missing_param", "缺少参数: id"),
        ("track.php", "do=overview&id=abc", "invalid_param", "参数错误: id"),
        (
            "track.php",
            "do=overview&ident=nope&id=abc",
            "not_found",
            "记录不存在",
        ),
        (
            "track.php",
            "do=overview&id=2",
            "not_found",
            "记录不存在: task is not tracked",
        ),
        (
            "track.php",
            "do=link-stat&id=2&link_id=abc",
            "not_found",
            "记录不存在: task is not tracked",
        ),
        (
            "track.php",
            "do=link-stat&id=1&link_id=abc",
            "invalid_param",
            "参数错误: link_id",
        ),
        (
            "track.php",
            "do=click-detail&id=1&link_id=1",
            "not_found",
            "记录不存在",
        ),
        ("trackexport.php", "", "missing_param", "缺少参数: track_id"),
        (
            "trackexport.php",
            "track_id=abc&is_click=2",
            "invalid_param",
            "参数错误: track_id",
        ),
        (
            "trackexport.php",
            "track_id=99&is_click=2",
            "invalid_param",
            "参数错误: is_click",
        ),
        ("trackexport.php", "track_id=99", "not_found", "记录不存在"),
        (
            "trackexport.php",
            "track_id=2&link_id=abc",
            "not_found",
            "记录不存在: task is not tracked",
        ),
        (
            "trackexport.php",
            "track_id=1&link_id=1&email_id=abc",
            "not_found",
            "记录不存在",
        ),
        (
            "trackexport.php",
            "track_id=1&email_id=abc",
            "invalid_param",
            "参数错误: email_id",
        ),
        (
            "trackexport.php",
            "track_id=1&email_id=1",
            "not_found",
            "记录不存在",
        ),
    ];
    for (script, query, status, data) in cases {
        assert_eq!(
            answer(&app, "acme", script, query).await,
            (status.to_string(), data.to_string()),
            "{script}?{query}"
        );
    }

    // Task 1 exists for acme only: bob's answers are those of a missing task.
    let tracked_reads = [
        ("track.php", "do=overview&id=1"),
        ("track.php", "do=open-detail&id=1"),
        ("track.php", "do=click-detail&id=1"),
        ("track.php", "do=link-stat&id=1"),
        ("trackexport.php", "track_id=1"),
        ("failexport.php", "date=2012-03-02&type=1&task_id=1"),
        ("failexportall.php", "date=2012-03-02&task_id=1"),
    ];
    for (script, query) in tracked_reads {
        assert_eq!(
            answer(&app, "bob", script, query).await.0,
            "not_found",
            "{script}?{query}"
        );
        let acme = app.api(script, "acme", "pw", query).await;
        assert_eq!(acme.status_code(), None, "{script}?{query}: {}", acme.text());
    }

    // Complaints (type 5) are no failures: an empty export, for any task.
    let t = app
        .api(
            "failexport.php",
            "acme",
            "pw",
            "date=2012-03-02&type=5&out_type=xml",
        )
        .await;
    assert_eq!(
        t.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<fail_recipient_list>\n</fail_recipient_list>\n"
    );
    app.stop().await;
}

both_stores!(the_first_wrong_thing_is_reported);
