//! The per-date reports of chapter 2 (scripts without `do`, D-23):
//! `statistic.php` (2.2), `failexport.php` and `failexportall.php` (2.3,
//! Part G), `stask.php` (2.4) and `deduction.php` (2.5).

use std::collections::HashSet;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use super::Call;
use super::reply::{ApiError, ApiResult, Code, xml_response};
use super::stream::{Batch, STREAM_BATCH, streamed, text_export};
use super::xml::Xml;
use crate::app::App;
use crate::clock::{format_date, parse_date};
use crate::domain::failure::FailureClass;
use crate::store::{FailFilter, FailedRecipient, TaskFilter};

/// A required `date` parameter: the day's text (`YYYY-MM-DD`) and its span.
fn day(c: &Call<'_>, name: &str) -> Result<(String, (i64, i64)), ApiError> {
    let raw = c.params.get(name)?.ok_or_else(|| ApiError::missing(name))?;
    day_of(c, name, raw)
}

/// A date parameter's day (`YYYY-MM-DD`) and its span in `QUNFA_TIMEZONE`.
pub(super) fn day_of(c: &Call<'_>, name: &str, raw: &str) -> Result<(String, (i64, i64)), ApiError> {
    let d = parse_date(raw).map_err(|_| ApiError::invalid(name))?;
    let next = d.tomorrow().map_err(|_| ApiError::invalid(name))?;
    let clock = &c.app.clock;
    Ok((format_date(d), (clock.start_of_day(d), clock.start_of_day(next))))
}

/// 2.2 `statistic.php`.
pub async fn statistic(c: Call<'_>) -> ApiResult {
    let (date, span) = day(&c, "date")?;
    let s = c.app.store.day_statistic(c.account_id, &date, span).await?;
    let mut x = Xml::new();
    x.open("statistic")
        .text("date", &date)
        .num("ws_qty", s.ws_qty)
        .num("ws_error", s.failed)
        .num("ws_count", s.ws_count)
        .num("invalid_addr", s.invalid_addr)
        .num("format_error", s.format_error)
        .num("send_count", s.send_count)
        .num("deduc_count", s.deduc_count)
        .num("actual_send", s.sent)
        .num("send_error", s.failed)
        .num("actual_deduc", s.sent)
        .close("statistic");
    Ok(xml_response(x.finish()))
}

/// 2.4 `stask.php`: one row per task and day; `date`, `ident` and `id`
/// filter together, one of `date`/`ident`/`id` is required.
pub async fn stask(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let ident = p.get("ident")?;
    let id = p.id("id")?;
    let date = match p.get("date")? {
        Some(raw) => Some(day_of(&c, "date", raw)?.0),
        None if ident.is_none() && id.is_none() => return Err(ApiError::missing("date")),
        None => None,
    };
    let rows = c
        .app
        .store
        .task_days(c.account_id, date.as_deref(), ident, id)
        .await?;
    let mut x = Xml::new();
    x.open("data");
    for r in &rows {
        x.open("task")
            .num("task_id", r.task_id)
            .text("task_date", &r.day)
            .text("task_ident", &r.ident)
            .num("total", r.sent + r.failed)
            .num("failed", r.failed)
            .num("success", r.sent)
            .num("actual", r.sent)
            .num("email_not_exist", r.not_exist)
            .num("over_quota", r.over_quota)
            .num("user_reject", r.user_reject)
            .num("totalsum", r.recipients)
            .num("invalid", r.invalid_addr + r.format_error)
            .num("rubbish", r.complaint)
            .close("task");
    }
    x.close("data");
    Ok(xml_response(x.finish()))
}

/// The labels of 2.5's deduction types (opaque to clients).
const PRE_DEDUCTION: &str = "预扣点";
const ACTUAL_DEDUCTION: &str = "实际扣点";

/// 2.5 `deduction.php`: the day's credits pre-deducted for tasks, and those
/// actually deducted (one per accepted message); a row per type that day.
pub async fn deduction(c: Call<'_>) -> ApiResult {
    let (date, span) = day(&c, "date")?;
    let store = &c.app.store;
    let company = store
        .customer_by_id(c.account_id)
        .await?
        .map(|cu| cu.profile.company)
        .unwrap_or_default();
    let day = store.day_statistic(c.account_id, &date, span).await?;
    let (reserved, accepted) = (day.deduc_count, day.sent);
    let mut x = Xml::new();
    x.open("data");
    for (label, num) in [(PRE_DEDUCTION, reserved), (ACTUAL_DEDUCTION, accepted)] {
        if num != 0 {
            x.open("list")
                .text("date", &date)
                .text("company", &company)
                .text("deduction", label)
                .num("send_num", num)
                .num("total", num)
                .close("list");
        }
    }
    x.close("data");
    Ok(xml_response(x.finish()))
}

/// How 2.3 writes its rows (Part G `out_type`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OutType {
    Txt,
    Json,
    Xml,
}

/// The Chinese description of a class (`error_type_dec`).
fn class_text(code: i64) -> &'static str {
    match code {
        1 => "邮箱不存在",
        2 => "空间不足",
        3 => "用户拒收",
        5 => "垃圾邮件投诉",
        8 => "无效地址",
        9 => "格式错误",
        _ => "",
    }
}

/// Walks the failed recipients of an export, removing repeats.
struct FailWalk {
    app: App,
    customer: i64,
    filter: FailFilter,
    after: (i64, i64),
    /// Rows carry their class and task (type=all, failexportall).
    detailed: bool,
    out: OutType,
    seen: HashSet<(String, i64, i64)>,
    first: bool,
}

impl FailWalk {
    fn row(&mut self, r: &FailedRecipient, out: &mut Vec<u8>) {
        let key = if self.detailed && self.out != OutType::Txt {
            (r.address.to_ascii_lowercase(), r.failure_class, r.task_id)
        } else {
            (r.address.to_ascii_lowercase(), 0, 0)
        };
        if !self.seen.insert(key) {
            return;
        }
        match self.out {
            OutType::Txt => {
                out.extend_from_slice(r.address.as_bytes());
                out.push(b'\n');
            }
            OutType::Json => {
                if !self.first {
                    out.push(b',');
                }
                let v = if self.detailed {
                    serde_json::json!({"email": r.address, "type": r.failure_class, "task_id": r.task_id})
                } else {
                    serde_json::Value::String(r.address.clone())
                };
                out.extend_from_slice(v.to_string().as_bytes());
            }
            OutType::Xml => {
                let mut x = Xml::fragment();
                x.open("recipient")
                    .text("email", &r.address)
                    .num("error_type", r.failure_class)
                    .text("error_type_dec", class_text(r.failure_class));
                if self.detailed {
                    x.num("task_id", r.task_id);
                }
                x.close("recipient");
                out.extend(x.finish_fragment(1));
            }
        }
        self.first = false;
    }
}

fn fail_rows(mut w: FailWalk) -> Batch<FailWalk> {
    Box::pin(async move {
        let rows = w
            .app
            .store
            .failed_recipients(w.customer, &w.filter, w.after, STREAM_BATCH)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        w.after = (last.finished_at, last.id);
        let mut out = Vec::with_capacity(rows.len() * 40);
        for r in &rows {
            w.row(r, &mut out);
        }
        Ok(Some((out, w)))
    })
}

/// 2.3 `failexport.php` (`all` = false) and `failexportall.php` (every task
/// of the dates, rows with their class and task).
pub async fn failexport(c: Call<'_>, all: bool) -> ApiResult {
    let p = c.params;
    let (_, (from, mut to)) = day(&c, "date")?;
    if let Some(raw) = p.get("date_end")? {
        let (_, (end_from, end_to)) = day_of(&c, "date_end", raw)?;
        if end_from < from {
            return Err(ApiError::invalid("date_end"));
        }
        to = end_to;
    }
    let class = match p.get("type")? {
        None if all => None,
        None => return Err(ApiError::missing("type")),
        Some("all" | "-1") => None,
        Some("5") => Some(5),
        Some(t) => {
            let class = t
                .parse::<u8>()
                .ok()
                .and_then(FailureClass::from_code)
                .or_else(|| FailureClass::parse(t))
                .ok_or_else(|| ApiError::invalid("type"))?;
            Some(i64::from(class.code()))
        }
    };
    let out = match p.get("out_type")? {
        None | Some("txt") => OutType::Txt,
        Some("json") => OutType::Json,
        Some("xml") => OutType::Xml,
        Some(_) => return Err(ApiError::invalid("out_type")),
    };
    // The task: `task_ident` wins over `task_id`; required for types 1–3.
    let filter = match (p.get("task_ident")?, p.id("task_id")?) {
        (Some(ident), _) => Some(TaskFilter {
            ident: Some(ident.to_string()),
            ..Default::default()
        }),
        (None, Some(id)) => Some(TaskFilter {
            id: Some(id),
            ..Default::default()
        }),
        (None, None) => None,
    };
    let tasks = match filter {
        Some(f) => {
            let ids: Vec<i64> = c
                .app
                .store
                .tasks(c.account_id, &f)
                .await?
                .iter()
                .map(|t| t.id)
                .collect();
            if ids.is_empty() {
                return Err(ApiError::new(Code::NotFound));
            }
            Some(ids)
        }
        None if !all && matches!(class, Some(1..=3)) => return Err(ApiError::missing("task_id")),
        None => None,
    };
    let walk = FailWalk {
        app: c.app.clone(),
        customer: c.account_id,
        filter: FailFilter {
            between: (from, to),
            class,
            tasks,
        },
        after: (i64::MIN, 0),
        detailed: all || class.is_none(),
        out,
        seen: HashSet::new(),
        first: true,
    };
    let name = if all { "failexportall" } else { "failexport" };
    Ok(match out {
        OutType::Txt => text_export(format!("{name}.txt"), walk, fail_rows),
        OutType::Xml => xml_response(streamed(
            Xml::head("fail_recipient_list"),
            walk,
            fail_rows,
            b"</fail_recipient_list>\n",
        )),
        OutType::Json => {
            let mut r = streamed(b"[".to_vec(), walk, fail_rows, b"]").into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=UTF-8"),
            );
            r
        }
    })
}
