//! The console's pages: a customer's dashboard, tasks, lists, templates
//! and domains; an agent's or a manager's customers; a manager's domains.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};

use super::chart::{self, Series};
use super::{Ctx, query_param, server_error};
use crate::app::App;
use crate::domain::accounts::Role;
use crate::domain::senders::Owner;
use crate::domain::tasks::{Intervention, SendStatus};
use crate::domain::templates::{CompiledTemplate, Recipient};
use crate::http::compat::{self, params::Params};
use crate::store::{AddressFilter, DayFigures, MailboxScope, Start, TaskFilter};

const PAGE: i64 = 50;

pub fn router() -> Router<App> {
    Router::new()
        .route("/sendstat/progress.json", get(progress))
        .route("/sendstat/tasks", get(tasks).post(create_task))
        .route("/sendstat/tasks/{id}", get(task_report).post(task_action))
        .route("/sendstat/tasks/{id}/failures.txt", get(task_failures))
        .route("/sendstat/lists", get(lists).post(create_list))
        .route("/sendstat/lists/{id}", get(list_page))
        .route("/sendstat/lists/{id}/import", post(import_file))
        .route("/sendstat/lists/{id}/export.txt", get(export_list))
        .route("/sendstat/templates", get(templates))
        .route("/sendstat/templates/{id}", get(template_preview))
        .route("/sendstat/domains", get(domains))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return server_error(&e),
        }
    };
}

macro_rules! me {
    ($ctx:expr, $role:expr) => {
        match $ctx.require($role) {
            Ok(m) => m,
            Err(r) => return r,
        }
    };
}

/// The last `n` local days, oldest first.
fn last_days(app: &App, n: usize) -> Vec<String> {
    let mut d = app.clock.today();
    let mut days = Vec::with_capacity(n);
    for _ in 0..n {
        days.push(crate::clock::format_date(d));
        match d.yesterday() {
            Ok(y) => d = y,
            Err(_) => break,
        }
    }
    days.reverse();
    days
}

fn series<'a>(
    label: &'a str,
    color: &'a str,
    days: &[String],
    figures: &BTreeMap<String, DayFigures>,
    f: impl Fn(&DayFigures) -> i64,
) -> Series<'a> {
    Series {
        label,
        color,
        values: days.iter().map(|d| figures.get(d).map_or(0, &f)).collect(),
    }
}

type Labels = BTreeMap<&'static str, &'static str>;

/// Deliveries and failures per day.
fn sends_chart(tr: &Labels, days: &[String], figures: &BTreeMap<String, DayFigures>) -> String {
    chart::lines(
        tr["sent"],
        days,
        &[
            series(tr["sent"], "#16a34a", days, figures, |d| d.sent),
            series(tr["failed"], "#dc2626", days, figures, |d| d.failed),
        ],
    )
}

/// Opens by people and by machines, and clicks by people, per day.
fn tracking_chart(
    title: &str,
    tr: &Labels,
    days: &[String],
    figures: &BTreeMap<String, DayFigures>,
) -> String {
    chart::lines(
        title,
        days,
        &[
            series(tr["opens_human"], "#2563eb", days, figures, |d| {
                d.opens - d.opens_machine
            }),
            series(tr["opens_machine"], "#93c5fd", days, figures, |d| d.opens_machine),
            series(tr["clicks"], "#ea580c", days, figures, |d| {
                d.clicks - d.clicks_machine
            }),
        ],
    )
}

const CLASSES: [(&str, i64, &str); 5] = [
    ("not_exist", 1, "#dc2626"),
    ("over_quota", 2, "#f59e0b"),
    ("user_reject", 3, "#7c3aed"),
    ("invalid_addr", 8, "#6b7280"),
    ("format_error", 9, "#0ea5e9"),
];

/// A customer's home: figures, 30 days of charts, running tasks.
pub async fn dashboard(ctx: &Ctx) -> Response {
    let me = me!(ctx, Role::Customer);
    let (app, id) = (&ctx.app, me.session.account_id);
    let tr = ctx.lang.strings();
    let service = tri!(app.store.service(id).await);
    let days = last_days(app, 30);
    let figures = tri!(app.store.day_figures(id, None, &days[0]).await);
    let sum = |f: fn(&DayFigures) -> i64| figures.values().map(f).sum::<i64>();
    let sends = sends_chart(&tr, &days, &figures);
    let class_series: Vec<Series> = CLASSES
        .iter()
        .enumerate()
        .map(|(i, (name, _, color))| series(tr[name], color, &days, &figures, move |d| d.classes[i]))
        .collect();
    let failures = chart::stacked_bars(tr["failures_by_class"], &days, &class_series);
    let tracking = tracking_chart(tr["opens"], &tr, &days, &figures);
    let running = tri!(
        app.store
            .tasks(
                id,
                &TaskFilter {
                    statuses: Some(vec![SendStatus::Sending, SendStatus::Paused]),
                    ..Default::default()
                },
            )
            .await
    );
    let running: Vec<Value> = running
        .into_iter()
        .map(|t| {
            context! { id => t.id, ident => t.ident, recipients => t.recipients,
            done => t.sent_count + t.error_count + t.skipped_count }
        })
        .collect();
    ctx.render(
        "dashboard.html",
        context! {
            credits => service.available(app.clock.today()),
            sums => context! { sent => sum(|d| d.sent), failed => sum(|d| d.failed),
                opens => sum(|d| d.opens), clicks => sum(|d| d.clicks) },
            charts => context! { sends, failures, tracking },
            running,
        },
    )
}

/// An agent's customers, or every customer for a manager.
pub async fn customers(ctx: &Ctx) -> Response {
    let Some(me) = &ctx.me else {
        return super::found("/sendstat/");
    };
    let app = &ctx.app;
    let agent = (me.session.role == Role::Agent).then_some(me.session.account_id);
    let days = last_days(app, 30);
    let rows = tri!(app.store.customer_rows(agent, &days[0]).await);
    // The customers' sending, summed per day.
    let mut figures: BTreeMap<String, DayFigures> = BTreeMap::new();
    for c in &rows {
        for (day, f) in tri!(app.store.day_figures(c.id, None, &days[0]).await) {
            let d = figures.entry(day).or_default();
            d.sent += f.sent;
            d.failed += f.failed;
        }
    }
    let tr = ctx.lang.strings();
    let chart = sends_chart(&tr, &days, &figures);
    let customers: Vec<Value> = rows
        .into_iter()
        .map(|c| {
            context! { id => c.id, username => c.username, company => c.company, agent => c.agent,
            service_status => if c.disabled { "disabled".to_string() } else { c.service_status },
            service_type => c.service_type, qty_available => c.qty_available, qty_buytotal => c.qty_buytotal,
            begin_date => c.begin_date, end_date => c.end_date, sent => c.sent, failed => c.failed }
        })
        .collect();
    ctx.render("customers.html", context! { customers, chart })
}

/// Live progress for the dashboard's and the list page's bars.
async fn progress(ctx: Ctx) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let tasks = tri!(
        ctx.app
            .store
            .tasks(
                id,
                &TaskFilter {
                    statuses: Some(vec![
                        SendStatus::Waiting,
                        SendStatus::Sending,
                        SendStatus::Paused,
                        SendStatus::Done
                    ]),
                    ..Default::default()
                },
            )
            .await
    );
    let tasks: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            serde_json::json!({"id": t.id, "status": t.status.code(), "recipients": t.recipients,
                "done": t.sent_count + t.error_count + t.skipped_count})
        })
        .collect();
    let imports = tri!(ctx.app.store.import_jobs(Some(id)).await);
    let imports: Vec<serde_json::Value> = imports
        .iter()
        .map(|j| {
            serde_json::json!({"id": j.id, "list_id": j.list_id, "state": j.state.as_str(), "size": j.size,
                "offset_done": j.offset_done, "added": j.added, "invalid": j.invalid, "duplicate": j.duplicate})
        })
        .collect();
    (
        [(header::CACHE_CONTROL, "no-store")],
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"tasks": tasks, "imports": imports}).to_string(),
    )
        .into_response()
}

/// After a form that worked, the browser is sent back to the page (so a
/// reload sends nothing twice) with `?ok=KEY`, shown as a notice.
fn ok_flash(ctx: &Ctx, uri: &axum::http::Uri) -> Option<(String, &'static str)> {
    let key = query_param(uri, "ok")?;
    let key = ["created", "done"].into_iter().find(|k| *k == key)?;
    Some((ctx.lang.strings()[key].to_string(), "ok"))
}

async fn tasks(ctx: Ctx, req: Request) -> Response {
    let flash = ok_flash(&ctx, req.uri());
    tasks_page(&ctx, flash).await
}

async fn tasks_page(ctx: &Ctx, flash: Option<(String, &str)>) -> Response {
    let me = me!(ctx, Role::Customer);
    let (app, id) = (&ctx.app, me.session.account_id);
    let all = tri!(app.store.tasks(id, &TaskFilter::default()).await);
    let tasks: Vec<Value> = all
        .into_iter()
        .rev()
        .map(|t| {
            context! { id => t.id, ident => t.ident, tpl_name => t.tpl_name, list_name => t.list_name,
            send_time => app.clock.format_datetime(t.send_time), status => t.status.code(),
            sent => t.sent_count, failed => t.error_count }
        })
        .collect();
    let templates: Vec<Value> = tri!(app.store.templates(id, None).await)
        .into_iter()
        .map(|t| context! { id => t.id, name => t.name })
        .collect();
    let lists: Vec<Value> = tri!(app.store.lists(id).await)
        .into_iter()
        .map(|l| context! { id => l.id, name => l.subject, count => l.count })
        .collect();
    let mut mailboxes = Vec::new();
    for d in tri!(app.store.domains(Some(Owner::Customer(id))).await) {
        for m in tri!(
            app.store
                .mailboxes(d.id, MailboxScope::AvailableTo(id), None)
                .await
        ) {
            mailboxes.push(m.address);
        }
    }
    let (flash, flash_kind) = flash.unzip();
    ctx.render(
        "tasks.html",
        context! { tasks, templates, lists, mailboxes, flash, flash_kind },
    )
}

/// Reads a console form (url-encoded or multipart) with the limits of the
/// API script it feeds; the CSRF token must match.
async fn form(ctx: &Ctx, script: &str, req: Request) -> Result<Params, Response> {
    let (parts, body) = req.into_parts();
    let p = compat::read_params(&ctx.app, script, None, &parts.headers, body).await;
    ctx.check_csrf(p.raw("csrf").ok().flatten())?;
    Ok(p)
}

/// Pairs of a form, as the API operation reads them.
fn pairs(p: &Params, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| p.raw(n).ok().flatten().map(|v| (n.to_string(), v.to_string())))
        .collect()
}

async fn create_task(ctx: Ctx, req: Request) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let p = match form(&ctx, "task.php", req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut fields = pairs(
        &p,
        &[
            "tpl_id",
            "maillist_id",
            "send_account",
            "send_fullname",
            "status",
            "time",
            "track_status",
        ],
    );
    fields.push((
        "subs_link".into(),
        if p.raw("subs_link").ok().flatten().is_some() {
            "1"
        } else {
            "0"
        }
        .into(),
    ));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let api = Params::from_pairs(&refs);
    let tr = ctx.lang.strings();
    match compat::console_call(&ctx.app, id, "task.php", "add-task", &api).await {
        Ok(_) => {
            ctx.app.engine_wakeup.notify_waiters();
            super::found("/sendstat/tasks?ok=created")
        }
        Err(e) => tasks_page(&ctx, Some((format!("{}: {}", tr["error"], e.message()), "error"))).await,
    }
}

/// Pause, resume or cancel (D-20: the console's own controls).
async fn task_action(ctx: Ctx, Path(task_id): Path<i64>, req: Request) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let p = match form(&ctx, "task.php", req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let what = match p.raw("what").ok().flatten() {
        Some("pause") => Intervention::Pause,
        Some("resume") => Intervention::Resume,
        Some("cancel") => Intervention::Cancel,
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let app = &ctx.app;
    let done =
        crate::domain::tasks::intervene(&app.store, id, task_id, what, app.clock.now(), app.clock.today())
            .await;
    let tr = ctx.lang.strings();
    let flash = match done {
        Ok(_) => {
            app.engine_wakeup.notify_waiters();
            return super::found(&format!("/sendstat/tasks/{task_id}?ok=done"));
        }
        Err(crate::domain::tasks::InterventionError::NotFound) => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(e) => (format!("{}: {e}", tr["error"]), "error"),
    };
    show_task(&ctx, task_id, Some(flash)).await
}

async fn task_report(ctx: Ctx, Path(task_id): Path<i64>, req: Request) -> Response {
    let flash = ok_flash(&ctx, req.uri());
    show_task(&ctx, task_id, flash).await
}

async fn show_task(ctx: &Ctx, task_id: i64, flash: Option<(String, &str)>) -> Response {
    let me = me!(ctx, Role::Customer);
    let (app, id) = (&ctx.app, me.session.account_id);
    let filter = TaskFilter {
        id: Some(task_id),
        ..Default::default()
    };
    let Some(t) = tri!(app.store.tasks(id, &filter).await).into_iter().next() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let tracking = tri!(app.store.task_tracking(t.id).await);
    let links: Vec<Value> = tri!(app.store.link_stats(t.id, None).await)
        .into_iter()
        .map(|l| context! { url => l.url, click_unique => l.click_unique, click_total => l.click_total })
        .collect();
    let mut by_class = [0i64; 5];
    for row in tri!(app.store.task_days(id, None, None, Some(t.id)).await) {
        for (i, n) in [
            row.not_exist,
            row.over_quota,
            row.user_reject,
            row.invalid_addr,
            row.format_error,
        ]
        .into_iter()
        .enumerate()
        {
            by_class[i] += n;
        }
    }
    let failures: Vec<Value> = CLASSES
        .iter()
        .zip(by_class)
        .map(|((name, code, _), count)| context! { name => *name, code => *code, count })
        .collect();
    let providers: Vec<Value> = tri!(app.store.provider_figures(t.id).await)
        .into_iter()
        .map(|p| context! { provider => p.provider, recipients => p.recipients, sent => p.sent, failed => p.failed })
        .collect();
    let days = last_days(app, 30);
    let figures = tri!(app.store.day_figures(id, Some(t.id), &days[0]).await);
    let tr = ctx.lang.strings();
    let chart = tracking_chart(tr["opens_over_time"], &tr, &days, &figures);
    ctx.render(
        "task.html",
        context! {
            task => context! { id => t.id, ident => t.ident.clone(), status => t.status.code(), recipients => t.recipients,
                sent => t.sent_count, failed => t.error_count },
            track => context! { open_unique => tracking.open_unique, open_machine => tracking.open_machine,
                open_ratio => crate::tracking::ratio(tracking.open_unique, t.sent_count),
                click_ratio => crate::tracking::ratio(tracking.click_unique, t.sent_count) },
            links, failures, providers, chart,
            actions => [("pause", t.status == SendStatus::Sending), ("resume", t.status == SendStatus::Paused),
                ("cancel", matches!(t.status, SendStatus::Hold | SendStatus::Waiting | SendStatus::Sending | SendStatus::Paused))]
                .into_iter().filter(|(_, ok)| *ok).map(|(a, _)| a).collect::<Vec<_>>(),
            flash => flash.as_ref().map(|f| f.0.clone()), flash_kind => flash.as_ref().map(|f| f.1),
        },
    )
}

/// The failed addresses of one class of a task (all classes without
/// `type`), one a line: 2.3's export over every date, streamed.
async fn task_failures(ctx: Ctx, Path(task_id): Path<i64>, req: Request) -> Response {
    let me = me!(ctx, Role::Customer);
    let class = query_param(req.uri(), "type").unwrap_or_else(|| "all".to_string());
    let today = ctx.app.clock.day_of(ctx.app.clock.now());
    let task = task_id.to_string();
    let api = Params::from_pairs(&[
        ("date", "2000-01-01"),
        ("date_end", &today),
        ("type", &class),
        ("task_id", &task),
    ]);
    match compat::console_call(&ctx.app, me.session.account_id, "failexport.php", "", &api).await {
        Ok(r) => r,
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn lists(ctx: Ctx, req: Request) -> Response {
    let flash = ok_flash(&ctx, req.uri());
    lists_page(&ctx, flash).await
}

async fn lists_page(ctx: &Ctx, flash: Option<(String, &str)>) -> Response {
    let me = me!(ctx, Role::Customer);
    let lists: Vec<Value> = tri!(ctx.app.store.lists(me.session.account_id).await)
        .into_iter()
        .map(|l| context! { id => l.id, name => l.subject, description => l.description, count => l.count })
        .collect();
    let (flash, flash_kind) = flash.unzip();
    ctx.render("lists.html", context! { lists, flash, flash_kind })
}

async fn create_list(ctx: Ctx, req: Request) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let p = match form(&ctx, "mloperate.php", req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut fields = pairs(&p, &["subject", "description"]);
    fields.push(("status".into(), "enabled".into()));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let tr = ctx.lang.strings();
    match compat::console_call(
        &ctx.app,
        id,
        "mloperate.php",
        "maillist-add",
        &Params::from_pairs(&refs),
    )
    .await
    {
        Ok(_) => super::found("/sendstat/lists?ok=created"),
        Err(e) => lists_page(&ctx, Some((format!("{}: {}", tr["error"], e.message()), "error"))).await,
    }
}

async fn list_page(ctx: Ctx, Path(list_id): Path<i64>, req: Request) -> Response {
    let q = query_param(req.uri(), "q").unwrap_or_default();
    let page = query_param(req.uri(), "page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let flash = ok_flash(&ctx, req.uri());
    show_list(&ctx, list_id, &q, page, flash).await
}

async fn show_list(ctx: &Ctx, list_id: i64, q: &str, page: i64, flash: Option<(String, &str)>) -> Response {
    let me = me!(ctx, Role::Customer);
    let (app, id) = (&ctx.app, me.session.account_id);
    let Some(list) = tri!(app.store.list(id, list_id).await) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let filter = AddressFilter {
        list_id: Some(list_id),
        keyword: Some(q.trim().to_string()).filter(|k| !k.is_empty()),
        address_id: None,
    };
    let mut rows = tri!(
        app.store
            .addresses(id, &filter, Start::Skip((page - 1) * PAGE), PAGE + 1)
            .await
    );
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let addresses: Vec<Value> = rows
        .into_iter()
        .map(|a| context! { id => a.id, address => a.address, fullname => a.fullname })
        .collect();
    let imports: Vec<Value> = tri!(app.store.import_jobs(Some(id)).await)
        .into_iter()
        .filter(|j| j.list_id == list_id)
        .map(|j| {
            context! { id => j.id, file_name => j.file_name, state => j.state.as_str(), size => j.size.max(1),
            offset_done => if j.state.as_str() == "done" { j.size.max(1) } else { j.offset_done },
            added => j.added, invalid => j.invalid, duplicate => j.duplicate }
        })
        .collect();
    let (flash, flash_kind) = flash.unzip();
    ctx.render(
        "list.html",
        context! {
            list => context! { id => list.id, name => list.subject, count => list.count },
            addresses, more, page, q, q_enc => percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).to_string(),
            imports, flash, flash_kind,
        },
    )
}

async fn import_file(ctx: Ctx, Path(list_id): Path<i64>, req: Request) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let (parts, body) = req.into_parts();
    // The list comes from the path; the file part streams to storage as in 4.9.3.
    let query = format!("list_id={list_id}");
    let p = compat::read_params(&ctx.app, "mloperate.php", Some(&query), &parts.headers, body).await;
    if let Err(r) = ctx.check_csrf(p.raw("csrf").ok().flatten()) {
        return r;
    }
    let tr = ctx.lang.strings();
    match compat::console_call(&ctx.app, id, "mloperate.php", "ml-addr-add-file", &p).await {
        Ok(_) => {
            ctx.app.import_wakeup.notify_waiters();
            super::found(&format!("/sendstat/lists/{list_id}?ok=created"))
        }
        Err(e) => {
            let flash = (format!("{}: {}", tr["error"], e.message()), "error");
            show_list(&ctx, list_id, "", 1, Some(flash)).await
        }
    }
}

async fn export_list(ctx: Ctx, Path(list_id): Path<i64>) -> Response {
    let me = me!(ctx, Role::Customer);
    let id = me.session.account_id;
    let api = Params::from_pairs(&[("id", &list_id.to_string())]);
    match compat::console_call(&ctx.app, id, "mloperate.php", "subscription-export", &api).await {
        Ok(r) => r,
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn templates(ctx: Ctx) -> Response {
    let me = me!(ctx, Role::Customer);
    let templates: Vec<Value> = tri!(ctx.app.store.templates(me.session.account_id, None).await)
        .into_iter()
        .map(|t| context! { id => t.id, name => t.name, subject => t.subject })
        .collect();
    ctx.render("templates.html", context! { templates })
}

/// A template rendered for a sample recipient, in a sandboxed frame.
async fn template_preview(ctx: Ctx, Path(tpl_id): Path<i64>) -> Response {
    let me = me!(ctx, Role::Customer);
    let Some(t) = tri!(ctx.app.store.template(me.session.account_id, tpl_id).await) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sample = Recipient {
        email: "zhang.san@example.com",
        fullname: "张三",
        vars: [
            "VAR1", "VAR2", "VAR3", "VAR4", "VAR5", "VAR6", "VAR7", "VAR8", "VAR9", "VAR10",
        ],
        unsubscribe_url: "#unsubscribe",
    };
    let rendered =
        CompiledTemplate::compile(&t.subject, &t.content, &t.text_content).and_then(|c| c.render(&sample));
    let values = match rendered {
        Ok(r) => {
            context! { name => t.name, subject => r.subject, html => r.html, text => r.text, sample => sample.email }
        }
        Err(e) => context! { name => t.name, error => e.to_string(), sample => sample.email },
    };
    ctx.render("template.html", values)
}

/// A customer's domains (its own and the platform's), or every domain for
/// a manager, with mailboxes and the DKIM records to publish.
async fn domains(ctx: Ctx) -> Response {
    let Some(me) = &ctx.me else {
        return super::found("/sendstat/");
    };
    let app = &ctx.app;
    let (visible, scope) = match me.session.role {
        Role::Customer => {
            let id = me.session.account_id;
            (Some(Owner::Customer(id)), MailboxScope::AvailableTo(id))
        }
        Role::Manager => (None, MailboxScope::All),
        Role::Agent => return StatusCode::FORBIDDEN.into_response(),
    };
    let mut out = Vec::new();
    for d in tri!(app.store.domains(visible).await) {
        let mailboxes: Vec<String> = tri!(app.store.mailboxes(d.id, scope, None).await)
            .into_iter()
            .map(|m| m.address)
            .collect();
        let records: Vec<String> = tri!(app.store.dkim_keys(d.id).await)
            .iter()
            .map(|k| crate::mail::dkim::zone_line(&k.selector, k.algorithm, &k.public_base64, &d.domain))
            .collect();
        out.push(context! { domain => d.domain, system => d.owner == Owner::System, mailboxes, records });
    }
    ctx.render("domains.html", context! { domains => out })
}
