//! `task.php`: create, edit, delete and list bulk-send tasks (5.1/6.2,
//! 6.1, 6.3, 6.4) and the per-date task list of 2.1.

use super::Call;
use super::params::Params;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::clock::TimeError;
use crate::domain::accounts::ServiceType;
use crate::domain::email::EmailAddress;
use crate::domain::lists::ListStatus;
use crate::domain::senders::DomainName;
use crate::domain::tasks::{self, SendStatus, SenderErrorOr, SenderSelection, effective_quantity};
use crate::store::{StoreError, Task, TaskFilter, TaskRefusal};

pub const OPERATIONS: &[&str] = &["add-task", "edit-task", "del-task", "task-list", "list-task"];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "add-task" => add_task(c).await,
        "edit-task" => edit_task(c).await,
        "del-task" => del_task(c).await,
        "task-list" => task_list(c).await,
        "list-task" => list_task(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

fn flag(p: &Params, name: &str, allowed: &[i64]) -> Result<Option<i64>, ApiError> {
    match p.get(name)? {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| allowed.contains(n))
            .map(Some)
            .ok_or_else(|| ApiError::invalid(name)),
    }
}

fn count(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    p.id(name)
}

/// A send time (D-8, H-11): a gap or a malformed value is `invalid_param`.
fn send_time(c: &Call<'_>, name: &str, value: &str) -> Result<i64, ApiError> {
    c.app
        .clock
        .parse_datetime(value)
        .map_err(|e: TimeError| ApiError::with(Code::InvalidParam, format!("{name}: {e}")))
}

/// `track_domain`: a bare host name; a scheme and a trailing `/` are
/// stripped (5.1 [P]); empty means the platform's.
fn track_domain(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(raw) = p.raw("track_domain")? else {
        return Ok(None);
    };
    let host = raw
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if host.is_empty() {
        return Ok(Some(String::new()));
    }
    DomainName::parse(host)
        .map(|d| Some(d.as_str().to_string()))
        .ok_or_else(|| ApiError::invalid("track_domain"))
}

fn replyto(p: &Params) -> Result<Option<String>, ApiError> {
    match p.raw("send_replyto")?.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(String::new())),
        Some(v) => EmailAddress::parse(v)
            .map(|e| Some(e.as_str().to_string()))
            .ok_or_else(|| ApiError::invalid("send_replyto")),
    }
}

async fn sender(c: &Call<'_>, domain: Option<&str>, account: &str) -> Result<SenderSelection, ApiError> {
    tasks::resolve_sender(&c.app.store, c.account_id, domain, account)
        .await
        .map_err(|e| match e {
            SenderErrorOr::Sender(s) => ApiError::with(Code::SenderError, s.0),
            SenderErrorOr::Store(e) => e.into(),
        })
}

/// The list a task sends to: the customer's, enabled (else `state_error`);
/// returns its address count.
async fn usable_list(c: &Call<'_>, id: i64) -> Result<i64, ApiError> {
    let list = c
        .app
        .store
        .list(c.account_id, id)
        .await?
        .ok_or(ApiError::new(Code::NotFound))?;
    if list.status == ListStatus::Disabled {
        return Err(ApiError::with(
            Code::StateError,
            "maillist_id: the list is disabled",
        ));
    }
    Ok(list.count)
}

fn refusal(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::new(Code::NotFound),
        StoreError::Other(s) if s == "state" => ApiError::new(Code::StateError),
        StoreError::Other(s) if s == "quota" => ApiError::new(Code::QuotaError),
        e => e.into(),
    }
}

async fn add_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let status = flag(p, "status", &[1, -1, 2])?
        .or(flag(p, "send_status", &[1, -1, 2])?)
        .unwrap_or(1);
    p.require("tpl_id")?;
    p.require("send_account")?;
    p.require("maillist_id")?;
    let time = p.get_any(&["time", "send_time"])?;
    if status != 2 && time.is_none() {
        return Err(ApiError::missing("time"));
    }
    let tpl_id = p.require_id("tpl_id")?;
    let list_id = p.require_id("maillist_id")?;
    let send_qty = count(p, "send_qty")?.unwrap_or(0);
    let start = count(p, "send_qty_start")?.unwrap_or(1);
    if start < 1 {
        return Err(ApiError::invalid("send_qty_start"));
    }
    let now = c.app.clock.now();
    let send_time = match (status, time) {
        (2, _) | (_, None) => now,
        (_, Some(t)) => send_time(&c, "time", t)?,
    };
    let subs_link = flag(p, "subs_link", &[0, 1])?.unwrap_or(1) == 1;
    let track_status = flag(p, "track_status", &[0, 1, 2])?.unwrap_or(0);
    let track_domain = track_domain(p)?.unwrap_or_default();
    let replyto = replyto(p)?.unwrap_or_default();
    let sender_name = p.get("send_fullname")?.unwrap_or("").to_string();

    c.app
        .store
        .template(c.account_id, tpl_id)
        .await?
        .ok_or(ApiError::new(Code::NotFound))?;
    let list_count = usable_list(&c, list_id).await?;
    let selection = sender(
        &c,
        p.get_any(&["send_domain", "Send_domain"])?,
        p.require("send_account")?,
    )
    .await?;

    let service = c.app.store.service(c.account_id).await?;
    let today = c.app.clock.today();
    let releases = status != -1;
    if releases && !service.is_usable(today) {
        return Err(ApiError::new(Code::ServiceDisabled));
    }
    let remak = effective_quantity(send_qty, start, list_count);
    let reserve = if releases && service.service_type == ServiceType::All {
        remak
    } else {
        0
    };
    if reserve > service.available(today) {
        return Err(ApiError::new(Code::QuotaError));
    }
    let task = Task {
        id: 0,
        customer_id: c.account_id,
        ident: tasks::new_ident(c.app.clock.date_of(send_time), c.account_id),
        tpl_id,
        tpl_name: String::new(),
        list_id,
        list_name: String::new(),
        sender: selection,
        sender_name,
        replyto,
        send_qty,
        send_qty_start: start,
        send_qty_remak: remak,
        send_time,
        time_start: None,
        time_end: None,
        // "Send immediately" is waiting with the time now; the scheduler starts it at once.
        status: if status == -1 {
            SendStatus::Hold
        } else {
            SendStatus::Waiting
        },
        track_status,
        subs_link,
        track_domain,
        addr_type: 0,
        reserved: reserve,
        service_paused: false,
        recipients: 0,
        sent_count: 0,
        error_count: 0,
        skipped_count: 0,
    };
    let id = c.app.store.create_task(&task, now).await.map_err(refusal)?;
    c.app.engine_wakeup.notify_one();
    Ok(Success {
        id: Some(id),
        count: None,
        message: "添加群发任务成功！".into(),
        id_in_data: false,
    }
    .into_response())
}

async fn edit_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("id")?;
    const CHANGEABLE: &[&str] = &[
        "tpl_id",
        "send_domain",
        "Send_domain",
        "send_account",
        "send_fullname",
        "maillist_id",
        "send_qty",
        "send_qty_start",
        "send_status",
        "status",
        "send_time",
        "time",
        "subs_link",
        "track_status",
        "track_domain",
        "send_replyto",
    ];
    if !CHANGEABLE.iter().any(|n| p.is_present(n)) {
        return Err(ApiError::missing("send_time"));
    }
    let status = flag(p, "send_status", &[1, -1])?.or(flag(p, "status", &[1, -1])?);
    let tpl_id = p.id("tpl_id")?;
    let list_id = p.id("maillist_id")?;
    let send_qty = count(p, "send_qty")?;
    let start = count(p, "send_qty_start")?;
    if start == Some(0) {
        return Err(ApiError::invalid("send_qty_start"));
    }
    let time = match p.get_any(&["send_time", "time"])? {
        Some(t) => Some(send_time(&c, "send_time", t)?),
        None => None,
    };
    let subs_link = flag(p, "subs_link", &[0, 1])?;
    let track_status = flag(p, "track_status", &[0, 1, 2])?;
    let track_domain = track_domain(p)?;
    let replyto = replyto(p)?;
    let sender_name = p.raw("send_fullname")?.map(|s| s.trim().to_string());

    let current = c
        .app
        .store
        .task(c.account_id, id)
        .await?
        .ok_or(ApiError::new(Code::NotFound))?;
    if let Some(t) = tpl_id {
        c.app
            .store
            .template(c.account_id, t)
            .await?
            .ok_or(ApiError::new(Code::NotFound))?;
    }
    let list_count = usable_list(&c, list_id.unwrap_or(current.list_id)).await?;
    if !matches!(current.status, SendStatus::Hold | SendStatus::Waiting) {
        return Err(ApiError::new(Code::StateError));
    }
    let domain_given = p.get_any(&["send_domain", "Send_domain"])?;
    let account_given = p.get("send_account")?;
    let selection = if domain_given.is_some() || account_given.is_some() {
        // F.3: a missing partner comes from the current selection.
        let (d, a) = match (&current.sender, domain_given, account_given) {
            (_, Some(d), Some(a)) => (Some(d.to_string()), a.to_string()),
            (SenderSelection::All, Some(d), None) => (Some(d.to_string()), "all".to_string()),
            (SenderSelection::Domain(_), Some(d), None) => (Some(d.to_string()), "all".to_string()),
            (SenderSelection::Address(a), Some(d), None) => (Some(d.to_string()), a.clone()),
            (SenderSelection::All, None, Some(a)) => (Some("all".to_string()), a.to_string()),
            (SenderSelection::Domain(x), None, Some(a)) => (Some(x.clone()), a.to_string()),
            (SenderSelection::Address(_), None, Some(a)) => (None, a.to_string()),
            (_, None, None) => unreachable!("one of them was given"),
        };
        Some(sender(&c, d.as_deref(), &a).await?)
    } else {
        None
    };

    let service = c.app.store.service(c.account_id).await?;
    let today = c.app.clock.today();
    let next_status = match status {
        Some(1) => SendStatus::Waiting,
        Some(_) => SendStatus::Hold,
        None => current.status,
    };
    if status == Some(1) && !service.is_usable(today) {
        return Err(ApiError::new(Code::ServiceDisabled));
    }
    let all_type = service.service_type == ServiceType::All;
    let updated = c
        .app
        .store
        .change_task(c.account_id, id, c.app.clock.now(), |t: &Task| {
            if !matches!(t.status, SendStatus::Hold | SendStatus::Waiting) {
                return Err(TaskRefusal::State);
            }
            let mut n = t.clone();
            n.tpl_id = tpl_id.unwrap_or(t.tpl_id);
            n.list_id = list_id.unwrap_or(t.list_id);
            if let Some(s) = &selection {
                n.sender = s.clone();
            }
            if let Some(v) = &sender_name {
                n.sender_name = v.clone();
            }
            n.send_qty = send_qty.unwrap_or(t.send_qty);
            n.send_qty_start = start.unwrap_or(t.send_qty_start);
            if list_id.is_some() || send_qty.is_some() || start.is_some() {
                n.send_qty_remak = effective_quantity(n.send_qty, n.send_qty_start, list_count);
            }
            n.send_time = time.unwrap_or(t.send_time);
            n.status = next_status;
            n.subs_link = subs_link.map_or(t.subs_link, |v| v == 1);
            n.track_status = track_status.unwrap_or(t.track_status);
            if let Some(d) = &track_domain {
                n.track_domain = d.clone();
            }
            if let Some(r) = &replyto {
                n.replyto = r.clone();
            }
            n.reserved = if all_type && n.status == SendStatus::Waiting {
                n.send_qty_remak
            } else {
                0
            };
            Ok(n)
        })
        .await
        .map_err(refusal)?;
    if updated.status == SendStatus::Waiting {
        c.app.engine_wakeup.notify_one();
    }
    Ok(Success::message("修改群发任务成功").into_response())
}

async fn del_task(c: Call<'_>) -> ApiResult {
    let id = c.params.require_id("id")?;
    c.app
        .store
        .delete_task(c.account_id, id, c.app.clock.now())
        .await
        .map_err(refusal)?;
    Ok(Success::message("删除群发任务成功").into_response())
}

/// The tasks whose send time falls on a local date.
fn statuses(p: &Params, name: &str) -> Result<Option<Vec<SendStatus>>, ApiError> {
    match p.get(name)? {
        None | Some("all") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .and_then(SendStatus::from_code)
            .map(|s| Some(vec![s]))
            .ok_or_else(|| ApiError::invalid(name)),
    }
}

async fn task_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.id("id")?;
    let mut filter = TaskFilter {
        id,
        statuses: statuses(p, "send_status")?,
        ..Default::default()
    };
    if let Some(date) = p.get("date")? {
        filter.send_between = Some(super::stats::day_of(&c, "date", date)?.1);
    }
    if p.get("page")?.is_some() || p.get("limit")?.is_some() {
        let (page, limit) = p.paging(30)?;
        let page = page.unwrap_or(1);
        filter.page = Some((limit, (page - 1).saturating_mul(limit)));
    }
    let rows = c.app.store.tasks(c.account_id, &filter).await?;
    if id.is_some() && rows.is_empty() {
        return Err(ApiError::new(Code::NotFound));
    }
    let mut x = Xml::new();
    x.open("task_list");
    for t in &rows {
        x.open("task")
            .num("id", t.id)
            .text("sn", &t.ident)
            .text("acct_type", t.sender.acct_type());
        match &t.sender {
            SenderSelection::Domain(d) => {
                x.text("acct_domain", d);
            }
            SenderSelection::Address(a) => {
                x.text("acct_address", a);
            }
            SenderSelection::All => {}
        }
        x.text("sender", t.sender.address())
            .text("replyto", &t.replyto)
            .text("sender_name", &t.sender_name);
        common_tail(&c, &mut x, t);
        x.close("task");
    }
    x.close("task_list");
    Ok(xml_response(x.finish()))
}

/// The elements 2.1 and 6.1 share, from `tpl_id` on.
fn common_tail(c: &Call<'_>, x: &mut Xml, t: &Task) {
    let clock = &c.app.clock;
    x.num("tpl_id", t.tpl_id)
        .text("tpl_name", &t.tpl_name)
        .num("addr_type", t.addr_type)
        .num("list_id", t.list_id)
        .text("list_name", &t.list_name)
        .num("send_qty", t.send_qty)
        .num("send_qty_remak", t.send_qty_remak)
        .text("send_time", &clock.format_datetime(t.send_time))
        .text("time_start", &clock.format_opt_datetime(t.time_start))
        .text("time_end", &clock.format_opt_datetime(t.time_end))
        .num("send_count", t.sent_count)
        .num("error_count", t.error_count)
        .num("send_status", t.status.code())
        .num("track_status", t.track_status);
}

async fn list_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.id("id")?;
    let ident = p.get("ident")?.map(str::to_string);
    let date = p.get("date")?;
    if date.is_none() && id.is_none() && ident.is_none() {
        return Err(ApiError::missing("date"));
    }
    let mut filter = TaskFilter {
        id,
        ident,
        statuses: statuses(p, "state")?,
        ..Default::default()
    };
    if let Some(date) = date {
        filter.send_between = Some(super::stats::day_of(&c, "date", date)?.1);
    }
    let rows = c.app.store.tasks(c.account_id, &filter).await?;
    let mut x = Xml::new();
    x.open("task_list");
    for t in &rows {
        x.open("task")
            .num("id", t.id)
            .text("sn", &t.ident)
            .text("sender", t.sender.address())
            .text("sender_name", &t.sender_name)
            .text("replyto", &t.replyto);
        common_tail(&c, &mut x, t);
        x.close("task");
    }
    x.close("task_list");
    Ok(xml_response(x.finish()))
}
