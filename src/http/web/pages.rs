//! The home pages: a customer's dashboard; an agent's or a manager's
//! customers; the live progress the pages' script polls.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::civil::Date;
use minijinja::{Value, context};

use super::chart::{self, Series};
use super::{Ctx, Routes};
use crate::app::App;
use crate::domain::accounts::{self, Principal};
use crate::domain::failure::FailureClass;
use crate::domain::lists;
use crate::domain::reports::{self, CustomersOf, DayFigures, FiguresOf};
use crate::domain::tasks::{self, SendStatus, TaskFilter};

pub fn routes() -> Routes {
    vec![("/progress.json", get(progress))]
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::http::web::server_error(&e),
        }
    };
}
pub(crate) use tri;

/// The customer whose page it is, or the answer that ends the handler.
macro_rules! acting {
    ($ctx:expr) => {
        match $ctx.customer() {
            Ok(a) => a.clone(),
            Err(r) => return r,
        }
    };
}
pub(crate) use acting;

/// A console form read, its token checked ([`super::form`]), or the
/// answer that ends the handler.
macro_rules! read_form {
    ($ctx:expr, $req:expr, $uploads:expr) => {
        match $crate::http::web::form($ctx, $req, $uploads).await {
            Ok(p) => p,
            Err(r) => return r,
        }
    };
}
pub(crate) use read_form;

/// The last `n` local days, oldest first.
pub fn last_days(app: &App, n: usize) -> Vec<Date> {
    let mut d = app.clock.today();
    let mut days = Vec::with_capacity(n);
    for _ in 0..n {
        days.push(d);
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
    days: &[Date],
    figures: &BTreeMap<Date, DayFigures>,
    f: impl Fn(&DayFigures) -> i64,
) -> Series<'a> {
    Series {
        label,
        color,
        values: days.iter().map(|d| figures.get(d).map_or(0, &f)).collect(),
    }
}

type Labels = BTreeMap<&'static str, &'static str>;

/// The days as a chart's axis shows them.
fn day_labels(days: &[Date]) -> Vec<String> {
    days.iter().map(|d| crate::clock::format_date(*d)).collect()
}

/// Deliveries and failures per day.
fn sends_chart(tr: &Labels, days: &[Date], figures: &BTreeMap<Date, DayFigures>) -> String {
    chart::lines(
        tr["sent"],
        &day_labels(days),
        &[
            series(tr["sent"], "#16a34a", days, figures, |d| d.sent),
            series(tr["failed"], "#dc2626", days, figures, |d| d.failed),
        ],
    )
}

/// Opens by people and by machines, and clicks by people, per day.
pub fn tracking_chart(
    title: &str,
    tr: &Labels,
    days: &[Date],
    figures: &BTreeMap<Date, DayFigures>,
) -> String {
    chart::lines(
        title,
        &day_labels(days),
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

/// The failure classes' colours, in the order of `FailureClass::ALL`.
const CLASS_COLORS: [&str; 5] = ["#dc2626", "#f59e0b", "#7c3aed", "#6b7280", "#0ea5e9"];

/// `/sendstat/c/{id}/`: the dashboard of a customer an operator opened.
pub async fn dashboard_page(ctx: Ctx) -> Response {
    dashboard(&ctx).await
}

/// A customer's home: figures, 30 days of charts, running tasks.
pub async fn dashboard(ctx: &Ctx) -> Response {
    let me = acting!(ctx);
    let (app, id) = (&ctx.app, me.id);
    let tr = ctx.lang.strings();
    let service = tri!(accounts::service(&app.store, id).await);
    let days = last_days(app, 30);
    let figures = tri!(reports::daily_figures(&app.store, FiguresOf::Customer(id), days[0]).await);
    let sum = |f: fn(&DayFigures) -> i64| figures.values().map(f).sum::<i64>();
    let sends = sends_chart(&tr, &days, &figures);
    let class_series: Vec<Series> = FailureClass::ALL
        .iter()
        .zip(CLASS_COLORS)
        .map(|(class, color)| {
            series(tr[class.as_str()], color, &days, &figures, |d| {
                d.classes.get(*class)
            })
        })
        .collect();
    let failures = chart::stacked_bars(tr["failures_by_class"], &day_labels(&days), &class_series);
    let tracking = tracking_chart(tr["opens"], &tr, &days, &figures);
    let filter = TaskFilter {
        statuses: Some(vec![SendStatus::Sending, SendStatus::Paused]),
        ..Default::default()
    };
    let running: Vec<Value> = tri!(tasks::tasks(&app.store, id, &filter).await)
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
    let me = match ctx.me() {
        Ok(m) => m,
        Err(r) => return r,
    };
    let app = &ctx.app;
    let of = match me.principal {
        Principal::Agent(id) => CustomersOf::Agent(id),
        Principal::Manager(_) => CustomersOf::Everyone,
        Principal::Customer(_) => return StatusCode::FORBIDDEN.into_response(),
    };
    let days = last_days(app, 30);
    let rows = tri!(reports::customer_activity(&app.store, of, days[0]).await);
    // The customers' sending, summed per day.
    let figures = tri!(reports::daily_figures(&app.store, FiguresOf::Customers(of), days[0]).await);
    let tr = ctx.lang.strings();
    let chart = sends_chart(&tr, &days, &figures);
    let customers: Vec<Value> = rows
        .into_iter()
        .map(|a| {
            let (c, s) = (a.customer, a.service);
            let status = if c.disabled { "disabled" } else { s.status.as_str() };
            context! { id => c.id, username => c.username, company => c.profile.company, agent => c.agent,
            service_status => status, service_type => s.service_type.as_str(),
            qty_available => s.qty_available, qty_buytotal => s.qty_buytotal,
            begin_date => s.begin.map(crate::clock::format_date), end_date => s.end.map(crate::clock::format_date),
            sent => a.sent, failed => a.failed }
        })
        .collect();
    ctx.render("customers.html", context! { customers, chart })
}

/// Live progress for the dashboard's, the task's and the list page's bars.
async fn progress(ctx: Ctx) -> Response {
    let me = acting!(ctx);
    let id = me.id;
    let filter = TaskFilter {
        statuses: Some(vec![
            SendStatus::Waiting,
            SendStatus::Sending,
            SendStatus::Paused,
            SendStatus::Done,
        ]),
        ..Default::default()
    };
    let tasks = tri!(tasks::tasks(&ctx.app.store, id, &filter).await);
    let tr = ctx.lang.strings();
    let tasks: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            let status = format!("st_{}", t.status.code());
            serde_json::json!({"id": t.id, "status": t.status.code(),
                "status_text": tr.get(status.as_str()).copied().unwrap_or(""),
                "recipients": t.recipients, "sent": t.sent_count, "failed": t.error_count,
                "done": t.sent_count + t.error_count + t.skipped_count})
        })
        .collect();
    let imports = tri!(lists::import_jobs(&ctx.app.store, Some(id)).await);
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
