//! The per-date reports of chapter 2 (scripts without `do`, D-23):
//! `statistic.php` (2.2), `failexport.php` and `failexportall.php` (2.3,
//! Part G), `stask.php` (2.4) and `deduction.php` (2.5).

use std::collections::HashSet;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use jiff::civil::Date;

use super::Call;
use super::reply::{ApiError, ApiResult, Code, xml_response};
use super::xml::Xml;
use crate::app::App;
use crate::clock::{format_date, parse_date};
use crate::domain::accounts;
use crate::domain::failure::FailureClass;
use crate::domain::ids::TaskId;
use crate::domain::reports::{
    self, DayRange, FailedOf, FailedQuery, FailedRecipient, FailedWalk, ReportError, TaskDayFilter, TaskRef,
};
use crate::http::stream::{Batch, STREAM_BATCH, streamed, text_export};

/// How the vendor API answers a report that could not be made. A task of
/// another customer is `not_found`, as a missing one is.
pub(super) fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::NotFound | ReportError::LinkNotFound | ReportError::RecipientNotFound => {
            ApiError::new(Code::NotFound)
        }
        ReportError::NotTracked => ApiError::with(Code::NotFound, "task is not tracked"),
        ReportError::Days(_) => ApiError::invalid("date"),
        ReportError::Store(e) => e.into(),
    }
}

/// A date parameter: a calendar day (`YYYY-M-D`) a report can cover.
fn date(name: &str, raw: &str) -> Result<Date, ApiError> {
    let d = parse_date(raw).map_err(|_| ApiError::invalid(name))?;
    DayRange::day(d).map_err(|_| ApiError::invalid(name))?;
    Ok(d)
}

/// A required date parameter.
fn required_date(c: &Call<'_>, name: &str) -> Result<Date, ApiError> {
    let raw = c.params.get(name)?.ok_or_else(|| ApiError::missing(name))?;
    date(name, raw)
}

/// A date parameter's day (`YYYY-MM-DD`) and its span in `QUNFA_TIMEZONE`.
pub(super) fn day_of(c: &Call<'_>, name: &str, raw: &str) -> Result<(String, (i64, i64)), ApiError> {
    let d = date(name, raw)?;
    let span = DayRange::day(d)
        .map_err(|_| ApiError::invalid(name))?
        .span(&c.app.clock);
    Ok((format_date(d), span))
}

/// 2.2 `statistic.php`.
pub async fn statistic(c: Call<'_>) -> ApiResult {
    let date = required_date(&c, "date")?;
    let s = reports::day_statistic(&c.app.store, &c.app.clock, c.customer(), date)
        .await
        .map_err(report_error)?;
    let mut x = Xml::new();
    x.open("statistic")
        .text("date", &format_date(date))
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
    let day = match p.get("date")? {
        Some(raw) => Some(date("date", raw)?),
        None if ident.is_none() && id.is_none() => return Err(ApiError::missing("date")),
        None => None,
    };
    let filter = TaskDayFilter {
        day,
        ident: ident.map(str::to_string),
        task: id.map(TaskId),
    };
    let rows = reports::task_days(&c.app.store, c.customer(), &filter)
        .await
        .map_err(report_error)?;
    let mut x = Xml::new();
    x.open("data");
    for r in &rows {
        x.open("task")
            .num("task_id", r.task_id)
            .text("task_date", &format_date(r.day))
            .text("task_ident", &r.ident)
            .num("total", r.sent + r.failed)
            .num("failed", r.failed)
            .num("success", r.sent)
            .num("actual", r.sent)
            .num("email_not_exist", r.classes.not_exist)
            .num("over_quota", r.classes.over_quota)
            .num("user_reject", r.classes.user_reject)
            .num("totalsum", r.recipients)
            .num("invalid", r.classes.invalid_addr + r.classes.format_error)
            .num("rubbish", r.complaints)
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
    let day = required_date(&c, "date")?;
    let store = &c.app.store;
    let company = accounts::customer_by_id(store, c.customer())
        .await?
        .map(|cu| cu.profile.company)
        .unwrap_or_default();
    let d = reports::credits_deducted(store, &c.app.clock, c.customer(), day)
        .await
        .map_err(report_error)?;
    let date = format_date(day);
    let mut x = Xml::new();
    x.open("data");
    for (label, num) in [(PRE_DEDUCTION, d.reserved), (ACTUAL_DEDUCTION, d.charged)] {
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
fn class_text(class: FailureClass) -> &'static str {
    match class {
        FailureClass::NotExist => "邮箱不存在",
        FailureClass::OverQuota => "空间不足",
        FailureClass::UserReject => "用户拒收",
        FailureClass::InvalidAddr => "无效地址",
        FailureClass::FormatError => "格式错误",
    }
}

/// Writes the failed recipients of an export, leaving out repeats.
struct FailWalk {
    app: App,
    walk: FailedWalk,
    /// Rows carry their class and task (type=all, failexportall).
    detailed: bool,
    out: OutType,
    seen: HashSet<(String, u8, TaskId)>,
    first: bool,
}

impl FailWalk {
    fn row(&mut self, r: &FailedRecipient, out: &mut Vec<u8>) {
        let code = r.class.code();
        let key = if self.detailed && self.out != OutType::Txt {
            (r.address.to_ascii_lowercase(), code, r.task_id)
        } else {
            (r.address.to_ascii_lowercase(), 0, TaskId(0))
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
                    serde_json::json!({"email": r.address, "type": code, "task_id": r.task_id.get()})
                } else {
                    serde_json::Value::String(r.address.clone())
                };
                out.extend_from_slice(v.to_string().as_bytes());
            }
            OutType::Xml => {
                let mut x = Xml::fragment_at(1, 512);
                x.open("recipient")
                    .text("email", &r.address)
                    .num("error_type", code)
                    .text("error_type_dec", class_text(r.class));
                if self.detailed {
                    x.num("task_id", r.task_id);
                }
                x.close("recipient");
                out.extend(x.finish_fragment());
            }
        }
        self.first = false;
    }
}

fn fail_rows(mut w: FailWalk) -> Batch<FailWalk> {
    Box::pin(async move {
        let rows = w.walk.next(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
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
    let first = required_date(&c, "date")?;
    let days = match p.get("date_end")? {
        Some(raw) => {
            DayRange::new(first, date("date_end", raw)?).map_err(|_| ApiError::invalid("date_end"))?
        }
        None => DayRange::day(first).map_err(|_| ApiError::invalid("date"))?,
    };
    let of = match p.get("type")? {
        None if all => FailedOf::Every,
        None => return Err(ApiError::missing("type")),
        Some("all" | "-1") => FailedOf::Every,
        Some("5") => FailedOf::Complaints,
        Some(t) => FailedOf::Class(
            t.parse::<u8>()
                .ok()
                .and_then(FailureClass::from_code)
                .or_else(|| FailureClass::parse(t))
                .ok_or_else(|| ApiError::invalid("type"))?,
        ),
    };
    let out = match p.get("out_type")? {
        None | Some("txt") => OutType::Txt,
        Some("json") => OutType::Json,
        Some("xml") => OutType::Xml,
        Some(_) => return Err(ApiError::invalid("out_type")),
    };
    // The task: `task_ident` wins over `task_id`; required for types 1–3.
    let task = match (p.get("task_ident")?, p.id("task_id")?) {
        (Some(ident), _) => Some(TaskRef::Ident(ident.to_string())),
        (None, Some(id)) => Some(TaskRef::Id(TaskId(id))),
        (None, None) => None,
    };
    let per_task_class = matches!(
        of,
        FailedOf::Class(FailureClass::NotExist | FailureClass::OverQuota | FailureClass::UserReject)
    );
    if task.is_none() && !all && per_task_class {
        return Err(ApiError::missing("task_id"));
    }
    let query = FailedQuery { days, of, task };
    let walk = reports::failed_recipients(&c.app.store, &c.app.clock, c.customer(), &query)
        .await
        .map_err(report_error)?;
    let walk = FailWalk {
        app: c.app.clone(),
        walk,
        detailed: all || of == FailedOf::Every,
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
