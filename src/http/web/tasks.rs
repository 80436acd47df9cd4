//! Tasks: the list and the new-task form, a task's report (with its failed
//! addresses by page), its controls, and the form of a task that has not
//! started.

use axum::extract::{Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::{Value, context};
use serde::Deserialize;

use super::pages::{acting, last_days, read_form, tracking_chart, tri};
use super::{
    Acting, Ctx, Notice, PAGE, Problem, Routes, Uploads, found, not_found, ok_flash, query_param,
    server_error, typed,
};
use crate::domain::failure::FailureClass;
use crate::domain::ids::{DeliveryId, ListId, TaskId, TemplateId};
use crate::domain::lists;
use crate::domain::reports::{
    self, DayRange, FailedOf, FailedQuery, FiguresOf, RecipientStatus, ReportError, TaskRef,
};
use crate::domain::senders::{self, MailboxScope, Owner};
use crate::domain::tasks::{
    self, Intervention, NewTask, SendStatus, SenderRequest, SenderSelection, Task, TaskEdit, TaskError,
    TaskFilter,
};
use crate::domain::templates::{self, FooterLanguage};
use crate::http::explain::Explain;
use crate::http::params::{ParamError, Params};
use crate::http::stream::{Batch, STREAM_BATCH, text_export};

pub fn routes() -> Routes {
    vec![
        ("/tasks", get(tasks_page).post(create_task)),
        ("/tasks/{id}", get(task_report).post(task_action)),
        ("/tasks/{id}/edit", get(edit_page).post(save_task)),
        ("/tasks/{id}/failures.txt", get(task_failures)),
    ]
}

/// A path's object id.
#[derive(Deserialize)]
pub struct Id {
    pub id: i64,
}

async fn tasks_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    show_tasks(&ctx, &notice).await
}

/// The mailboxes the customer may send from.
pub async fn sender_addresses(ctx: &Ctx, me: &Acting) -> Result<Vec<String>, Response> {
    let app = &ctx.app;
    let mut out = Vec::new();
    let domains = senders::domains(&app.store, Some(Owner::Customer(me.id)))
        .await
        .map_err(|e| server_error(&e))?;
    for d in domains {
        let boxes = senders::mailboxes(&app.store, d.id, MailboxScope::AvailableTo(me.id), None)
            .await
            .map_err(|e| server_error(&e))?;
        out.extend(boxes.into_iter().map(|m| m.address));
    }
    Ok(out)
}

async fn show_tasks(ctx: &Ctx, notice: &Notice) -> Response {
    let me = acting!(ctx);
    let (app, id) = (&ctx.app, me.id);
    let all = tri!(tasks::tasks(&app.store, id, &TaskFilter::default()).await);
    let tasks: Vec<Value> = all
        .into_iter()
        .rev()
        .map(|t| {
            context! { id => t.id, ident => t.ident, tpl_name => t.tpl_name, list_name => t.list_name,
            send_time => app.clock.format_datetime(t.send_time), status => t.status.code(),
            sent => t.sent_count, failed => t.error_count }
        })
        .collect();
    let templates: Vec<Value> = tri!(templates::list_templates(&app.store, id, None).await)
        .into_iter()
        .map(|t| context! { id => t.template.id, name => t.template.name })
        .collect();
    let lists: Vec<Value> = tri!(lists::lists(&app.store, id).await)
        .into_iter()
        .map(|l| context! { id => l.id, name => l.subject, count => l.count })
        .collect();
    let mailboxes = match sender_addresses(ctx, &me).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    ctx.render_notice(
        "tasks.html",
        context! { tasks, templates, lists, mailboxes },
        notice,
    )
}

async fn create_task(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let task = match new_task(&ctx, &p) {
        Ok(t) => t,
        Err(e) => return show_tasks(&ctx, &Notice::problem(Problem::of_param(&e, ctx.lang))).await,
    };
    let app = &ctx.app;
    match tasks::create_task(&app.store, &app.clock, me.id, task).await {
        Ok(_) => {
            app.engine_wakeup.notify_waiters();
            found(&ctx.link("/tasks?ok=created"))
        }
        Err(e) => show_tasks(&ctx, &Notice::problem(e.explain(ctx.lang))).await,
    }
}

/// When a task goes: now, at a time, or held until released.
fn when(p: &Params) -> Result<&str, ParamError> {
    match p.get("when")?.unwrap_or("now") {
        w @ ("now" | "at" | "hold") => Ok(w),
        _ => Err(ParamError::Invalid("when".into())),
    }
}

/// `tracking`: none, opens, or opens and clicks.
fn tracking(p: &Params) -> Result<i64, ParamError> {
    match p.get("tracking")? {
        None | Some("none") => Ok(0),
        Some("opens") => Ok(1),
        Some("all") => Ok(2),
        Some(_) => Err(ParamError::Invalid("tracking".into())),
    }
}

/// The new-task form: a template, a list, a mailbox of the customer's, when
/// to send (now, at a time, or held), tracking and the unsubscribe link.
fn new_task(ctx: &Ctx, p: &Params) -> Result<NewTask, ParamError> {
    let when = when(p)?;
    let send_time = match (when, p.get("send_time")?) {
        ("at", None) => return Err(ParamError::Missing("send_time".into())),
        (_, Some(t)) if when != "now" => Some(
            ctx.app
                .clock
                .parse_datetime(t)
                .map_err(|_| ParamError::Invalid("send_time".into()))?,
        ),
        _ => None,
    };
    Ok(NewTask {
        template: TemplateId(p.require_id("template")?),
        list: ListId(p.require_id("list")?),
        sender: SenderRequest {
            domain: None,
            account: p.require("sender")?.to_string(),
        },
        sender_name: p.get("sender_name")?.unwrap_or("").to_string(),
        replyto: String::new(),
        send_qty: 0,
        start: 1,
        send_time,
        hold: when == "hold",
        track_status: tracking(p)?,
        subs_link: p.get("unsubscribe_link")?.is_some(),
        track_domain: String::new(),
        // The customer's setting, else the template's language.
        footer_language: FooterLanguage::Auto,
    })
}

/// Hold, release, pause, resume or cancel (D-20: the console's own controls).
async fn task_action(ctx: Ctx, Path(Id { id: task_id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let app = &ctx.app;
    let what = match p.get("what").ok().flatten() {
        Some("pause") => Intervention::Pause,
        Some("resume") => Intervention::Resume,
        Some("cancel") => Intervention::Cancel,
        Some(w @ ("hold" | "release")) => {
            let edit = TaskEdit {
                release: Some(w == "release"),
                ..Default::default()
            };
            let done = tasks::edit_task(&app.store, &app.clock, me.id, TaskId(task_id), edit).await;
            return after_action(&ctx, task_id, done.map(drop)).await;
        }
        _ => return axum::http::StatusCode::BAD_REQUEST.into_response(),
    };
    let done = tasks::intervene(
        &app.store,
        me.id,
        TaskId(task_id),
        what,
        app.clock.now(),
        app.clock.today(),
    )
    .await;
    after_action(&ctx, task_id, done.map(drop)).await
}

/// Back to the report after a control, or the report with the refusal.
async fn after_action(ctx: &Ctx, task_id: i64, done: Result<(), TaskError>) -> Response {
    match done {
        Ok(()) => {
            ctx.app.engine_wakeup.notify_waiters();
            found(&ctx.link(&format!("/tasks/{task_id}?ok=done")))
        }
        Err(TaskError::NotFound) => not_found(),
        Err(e) => {
            show_task(
                ctx,
                task_id,
                &FailedPage::first(),
                &Notice::problem(e.explain(ctx.lang)),
            )
            .await
        }
    }
}

async fn task_report(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    show_task(&ctx, id, &FailedPage::of(req.uri()), &notice).await
}

/// Which page of a task's failed addresses its report shows: after a
/// delivery, and its number.
struct FailedPage {
    after: Option<DeliveryId>,
    page: i64,
}

impl FailedPage {
    fn first() -> FailedPage {
        FailedPage { after: None, page: 1 }
    }

    fn of(uri: &axum::http::Uri) -> FailedPage {
        FailedPage {
            after: query_param(uri, "failed_after")
                .and_then(|a| a.parse().ok())
                .map(DeliveryId),
            page: query_param(uri, "failed_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    }
}

async fn show_task(ctx: &Ctx, task_id: i64, failed_page: &FailedPage, notice: &Notice) -> Response {
    let me = acting!(ctx);
    let (app, id) = (&ctx.app, me.id);
    let c = match reports::campaign(&app.store, id, TaskId(task_id)).await {
        Ok(c) => c,
        Err(ReportError::NotFound) => return not_found(),
        Err(e) => return server_error(&e),
    };
    let (t, tracking) = (&c.task, &c.tracking);
    let links: Vec<Value> = c
        .links
        .iter()
        .map(|l| context! { url => l.url.as_str(), click_unique => l.click_unique, click_total => l.click_total })
        .collect();
    let failures: Vec<Value> = c
        .failures
        .iter()
        .map(|(class, count)| context! { name => class.as_str(), code => class.code(), count })
        .collect();
    let providers: Vec<Value> = tri!(reports::providers(&app.store, id, t.id).await)
        .into_iter()
        .map(|p| context! { provider => p.provider, recipients => p.recipients, sent => p.sent, failed => p.failed })
        .collect();
    let days = last_days(app, 30);
    let figures = tri!(reports::daily_figures(&app.store, FiguresOf::Task(id, t.id), days[0]).await);
    let tr = ctx.lang.strings();
    let chart = tracking_chart(tr["opens_over_time"], &tr, &days, &figures);
    let mut failed = tri!(
        reports::campaign_recipients(
            &app.store,
            id,
            t.id,
            RecipientStatus::Failed,
            failed_page.after,
            PAGE + 1
        )
        .await
    );
    let failed_next = (failed.len() as i64 > PAGE).then(|| failed[PAGE as usize - 1].delivery);
    failed.truncate(PAGE as usize);
    let failed: Vec<Value> = failed
        .iter()
        .map(|r| {
            context! { address => r.address.clone(), class => r.class.map(|c| c.as_str()), status => r.smtp_status.clone(),
            at => r.finished_at.map(|at| app.clock.format_datetime(at)) }
        })
        .collect();
    let editable = matches!(t.status, SendStatus::Hold | SendStatus::Waiting);
    // Why it waits: a reputation guard paused it, or a daily cap.
    let guard = t.guard_pause.as_ref().map(|p| {
        let percent = format!("{:.1}", 100.0 * p.count as f64 / p.outcomes.max(1) as f64);
        context! { kind => p.guard.as_str(), count => p.count, outcomes => p.outcomes, percent, limit => p.limit.clone(),
            at => app.clock.format_datetime(p.at) }
    });
    let capped = tri!(tasks::waiting_for_cap(&app.store, t.id).await);
    ctx.render_notice(
        "task.html",
        context! {
            task => context! { id => t.id, ident => t.ident.clone(), status => t.status.code(), recipients => t.recipients,
                sent => t.sent_count, failed => t.error_count, done => t.sent_count + t.error_count + t.skipped_count,
                send_time => app.clock.format_datetime(t.send_time), template => t.tpl_name.clone(), list => t.list_name.clone() },
            track => context! { open_unique => tracking.open_unique, open_machine => tracking.open_machine,
                open_ratio => reports::ratio(tracking.open_unique, t.sent_count),
                click_ratio => reports::ratio(tracking.click_unique, t.sent_count) },
            links, failures, providers, chart, editable, guard, capped,
            failed, failed_page => failed_page.page, failed_next => failed_next.map(|d| d.get()),
            failed_pages => ((t.error_count + PAGE - 1) / PAGE).max(1),
            actions => [("release", t.status == SendStatus::Hold), ("hold", t.status == SendStatus::Waiting),
                ("pause", t.status == SendStatus::Sending), ("resume", t.status == SendStatus::Paused),
                ("cancel", matches!(t.status, SendStatus::Hold | SendStatus::Waiting | SendStatus::Sending | SendStatus::Paused))]
                .into_iter().filter(|(_, ok)| *ok).map(|(a, _)| a).collect::<Vec<_>>(),
        },
        notice,
    )
}

/// The failed addresses of a task, of one class or of all, one a line,
/// streamed.
async fn task_failures(ctx: Ctx, Path(Id { id: task_id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let app = &ctx.app;
    let of = match query_param(req.uri(), "class").as_deref() {
        None | Some("") | Some("all") => FailedOf::Every,
        Some(c) => match c.parse::<u8>().ok().and_then(FailureClass::from_code) {
            Some(class) => FailedOf::Class(class),
            None => return axum::http::StatusCode::BAD_REQUEST.into_response(),
        },
    };
    let first = jiff::civil::date(2000, 1, 1);
    let days = tri!(DayRange::new(first, app.clock.today()));
    let q = FailedQuery {
        days,
        of,
        task: Some(TaskRef::Id(TaskId(task_id))),
    };
    let walk = match reports::failed_recipients(&app.store, &app.clock, me.id, &q).await {
        Ok(w) => w,
        Err(ReportError::NotFound) => return not_found(),
        Err(e) => return server_error(&e),
    };
    let state = Failed {
        app: app.clone(),
        walk,
    };
    text_export(format!("failed-{task_id}.txt"), state, failed_lines)
}

struct Failed {
    app: crate::app::App,
    walk: reports::FailedWalk,
}

fn failed_lines(mut w: Failed) -> Batch<Failed> {
    Box::pin(async move {
        let rows = w.walk.next(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() * 32);
        for r in &rows {
            out.extend_from_slice(lists::export_field(&r.address).as_bytes());
            out.push(b'\n');
        }
        Ok(Some((out, w)))
    })
}

/// The form's choices of templates, lists and mailboxes.
async fn choices(ctx: &Ctx, me: &Acting) -> Result<(Vec<Value>, Vec<Value>, Vec<String>), Response> {
    let app = &ctx.app;
    let templates: Vec<Value> = templates::list_templates(&app.store, me.id, None)
        .await
        .map_err(|e| server_error(&e))?
        .into_iter()
        .map(|t| context! { id => t.template.id, name => t.template.name })
        .collect();
    let lists: Vec<Value> = lists::lists(&app.store, me.id)
        .await
        .map_err(|e| server_error(&e))?
        .into_iter()
        .map(|l| context! { id => l.id, name => l.subject, count => l.count })
        .collect();
    let mailboxes = sender_addresses(ctx, me).await?;
    Ok((templates, lists, mailboxes))
}

async fn edit_page(ctx: Ctx, Path(Id { id }): Path<Id>) -> Response {
    show_edit(&ctx, id, &Notice::default(), None).await
}

/// The form of a task that has not started, as saved or as typed.
async fn show_edit(ctx: &Ctx, task_id: i64, notice: &Notice, typed: Option<Value>) -> Response {
    let me = acting!(ctx);
    let app = &ctx.app;
    let t: Task = match tasks::task(&app.store, me.id, TaskId(task_id)).await {
        Ok(t) => t,
        Err(TaskError::NotFound) => return not_found(),
        Err(e) => return server_error(&e),
    };
    let (templates, lists, mut mailboxes) = match choices(ctx, &me).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let sender = match &t.sender {
        SenderSelection::Address(a) => a.clone(),
        SenderSelection::Domain(_) | SenderSelection::All => String::new(),
    };
    if !sender.is_empty() && !mailboxes.contains(&sender) {
        mailboxes.insert(0, sender.clone());
    }
    let shown = typed.unwrap_or_else(|| {
        context! { template => t.tpl_id.get().to_string(), list => t.list_id.get().to_string(), sender,
        sender_name => t.sender_name.clone(), send_time => app.clock.format_datetime(t.send_time),
        tracking => match t.track_status { 1 => "opens", 2 => "all", _ => "none" },
        unsubscribe_link => t.subs_link }
    });
    ctx.render_notice(
        "task_edit.html",
        context! {
            task => context! { id => t.id, ident => t.ident, status => t.status.code(),
                editable => matches!(t.status, SendStatus::Hold | SendStatus::Waiting) },
            templates, lists, mailboxes, shown,
        },
        notice,
    )
}

fn typed_task(p: &Params) -> Value {
    context! { template => typed(p, "template"), list => typed(p, "list"), sender => typed(p, "sender"),
    sender_name => typed(p, "sender_name"), send_time => typed(p, "send_time"), tracking => typed(p, "tracking"),
    unsubscribe_link => p.is_present("unsubscribe_link") }
}

/// The edit form: what a task that has not started may change.
fn task_edit(ctx: &Ctx, p: &Params) -> Result<TaskEdit, ParamError> {
    let send_time = match p.get("send_time")? {
        Some(t) => Some(
            ctx.app
                .clock
                .parse_datetime(t)
                .map_err(|_| ParamError::Invalid("send_time".into()))?,
        ),
        None => None,
    };
    Ok(TaskEdit {
        template: Some(TemplateId(p.require_id("template")?)),
        list: Some(ListId(p.require_id("list")?)),
        send_account: Some(p.require("sender")?.to_string()),
        sender_name: Some(p.get("sender_name")?.unwrap_or("").to_string()),
        send_time,
        track_status: Some(tracking(p)?),
        subs_link: Some(p.get("unsubscribe_link")?.is_some()),
        ..Default::default()
    })
}

async fn save_task(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let edit = match task_edit(&ctx, &p) {
        Ok(e) => e,
        Err(e) => {
            let notice = Notice::problem(Problem::of_param(&e, ctx.lang));
            return show_edit(&ctx, id, &notice, Some(typed_task(&p))).await;
        }
    };
    let app = &ctx.app;
    match tasks::edit_task(&app.store, &app.clock, me.id, TaskId(id), edit).await {
        Ok(_) => {
            app.engine_wakeup.notify_waiters();
            found(&ctx.link(&format!("/tasks/{id}?ok=saved")))
        }
        Err(TaskError::NotFound) => not_found(),
        Err(e) => {
            show_edit(
                &ctx,
                id,
                &Notice::problem(e.explain(ctx.lang)),
                Some(typed_task(&p)),
            )
            .await
        }
    }
}
