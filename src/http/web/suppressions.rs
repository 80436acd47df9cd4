//! Unsubscribes and suppressions: every address the customer's tasks skip,
//! with the reason (unsubscribed, complained, bounced with its class, or
//! suppressed by the customer) and the date; searched, exported, and lifted
//! with a note that is kept on record.

use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::{Value, context};

use super::pages::{acting, read_form, tri};
use super::{Ctx, Notice, PAGE, Problem, Routes, Uploads, enc, found, ok_flash, query_param, typed};
use crate::domain::email::EmailAddress;
use crate::domain::ids::CustomerId;
use crate::domain::lists::ListError;
use crate::domain::suppressions::{self, Suppression, SuppressionFilter, SuppressionReason};
use crate::http::explain::Explain;
use crate::http::stream::{Batch, STREAM_BATCH, text_export};

pub fn routes() -> Routes {
    vec![
        ("/suppressions", get(suppressions_page).post(suppress)),
        ("/suppressions/lift", post(lift)),
        ("/suppressions/export.txt", get(export)),
    ]
}

const REASONS: [SuppressionReason; 4] = [
    SuppressionReason::Unsubscribe,
    SuppressionReason::Complaint,
    SuppressionReason::Bounce,
    SuppressionReason::Manual,
];

/// What the page shows: a search, a reason, where the page starts.
struct View {
    q: String,
    reason: Option<SuppressionReason>,
    after: Option<String>,
    page: i64,
}

impl View {
    /// The first page of every suppression.
    fn first() -> View {
        View {
            q: String::new(),
            reason: None,
            after: None,
            page: 1,
        }
    }

    fn of(uri: &axum::http::Uri) -> View {
        View {
            q: query_param(uri, "q").unwrap_or_default().trim().to_string(),
            reason: query_param(uri, "reason")
                .as_deref()
                .and_then(SuppressionReason::parse),
            after: query_param(uri, "after").filter(|a| !a.is_empty()),
            page: query_param(uri, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    fn filter(&self) -> SuppressionFilter {
        SuppressionFilter {
            q: Some(self.q.clone()).filter(|q| !q.is_empty()),
            reason: self.reason,
        }
    }

    fn query(&self) -> String {
        let mut q = format!("q={}", enc(&self.q));
        if let Some(r) = self.reason {
            q.push_str("&reason=");
            q.push_str(r.as_str());
        }
        q
    }
}

async fn suppressions_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    let lift_email = query_param(req.uri(), "lift").unwrap_or_default();
    show(
        &ctx,
        &View::of(req.uri()),
        &notice,
        &context! { email => lift_email },
    )
    .await
}

/// A suppression's reason as a person reads it.
fn reason_text(ctx: &Ctx, s: &Suppression) -> String {
    let reason = ctx.tr(&format!("reason_{}", s.reason.as_str()));
    match (s.reason, s.detail.as_str()) {
        (SuppressionReason::Bounce, "") => reason,
        (SuppressionReason::Bounce, class) => format!("{reason}: {}", ctx.tr(class)),
        _ => reason,
    }
}

async fn show(ctx: &Ctx, view: &View, notice: &Notice, typed: &Value) -> Response {
    let me = acting!(ctx);
    let app = &ctx.app;
    let filter = view.filter();
    let total = tri!(suppressions::suppression_count(&app.store, me.id, &filter).await);
    let mut rows =
        tri!(suppressions::suppressions(&app.store, me.id, &filter, view.after.as_deref(), PAGE + 1).await);
    let next = (rows.len() as i64 > PAGE).then(|| rows[PAGE as usize - 1].email.clone());
    rows.truncate(PAGE as usize);
    let list: Vec<Value> = rows
        .iter()
        .map(|s| {
            context! { email => s.email.clone(), reason => s.reason.as_str(), reason_text => reason_text(ctx, s),
            at => app.clock.format_datetime(s.at), lift_enc => enc(&s.email) }
        })
        .collect();
    ctx.render_notice(
        "suppressions.html",
        context! {
            suppressions => list, total, pages => ((total + PAGE - 1) / PAGE).max(1), page => view.page,
            next => next.map(|n| enc(&n)),
            view => context! { q => view.q.clone(), reason => view.reason.map(SuppressionReason::as_str), query => view.query() },
            reasons => REASONS.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            typed,
        },
        notice,
    )
}

async fn lift(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let typed_values = context! { email => typed(&p, "email"), note => typed(&p, "note") };
    let refused = |problem: Problem| {
        let (ctx, typed_values) = (&ctx, &typed_values);
        async move { show(ctx, &View::first(), &Notice::problem(problem), typed_values).await }
    };
    let email = match p.require("email") {
        Ok(e) => e,
        Err(e) => return refused(Problem::of_param(&e, ctx.lang)).await,
    };
    let Some(email) = EmailAddress::parse(email) else {
        return refused(ListError::InvalidAddress.explain(ctx.lang).into()).await;
    };
    let note = typed(&p, "note");
    let app = &ctx.app;
    match suppressions::lift(&app.store, me.id, &email, &note, app.clock.now()).await {
        Ok(()) => found(&ctx.link("/suppressions?ok=lifted")),
        Err(e) => refused(e.explain(ctx.lang).into()).await,
    }
}

/// The customer suppresses addresses itself: one a line.
async fn suppress(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let text = typed(&p, "emails");
    let mut emails = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match EmailAddress::parse(line) {
            Some(e) => emails.push(e),
            None => {
                let mut problem = Problem::from(ListError::InvalidAddress.explain(ctx.lang)).on("emails");
                problem.message = format!("{} ({line})", problem.message);
                return show(
                    &ctx,
                    &View::first(),
                    &Notice::problem(problem),
                    &context! { emails => text },
                )
                .await;
            }
        }
    }
    if emails.is_empty() {
        let problem = Problem::from(ListError::NoRecords.explain(ctx.lang)).on("emails");
        return show(&ctx, &View::first(), &Notice::problem(problem), &context! {}).await;
    }
    match suppressions::suppress(&ctx.app.store, me.id, &emails, ctx.app.clock.now()).await {
        Ok(_) => found(&ctx.link("/suppressions?ok=added")),
        Err(e) => super::server_error(&e),
    }
}

/// The suppressions the page's search selects, one a line: the address,
/// the reason, the bounce class, the date.
async fn export(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let view = View::of(req.uri());
    let state = Export {
        app: ctx.app.clone(),
        customer: me.id,
        filter: view.filter(),
        after: None,
        done: false,
    };
    text_export("suppressions.txt".into(), state, export_lines)
}

struct Export {
    app: crate::app::App,
    customer: CustomerId,
    filter: SuppressionFilter,
    after: Option<String>,
    done: bool,
}

fn export_lines(mut w: Export) -> Batch<Export> {
    Box::pin(async move {
        if w.done {
            return Ok(None);
        }
        let rows = suppressions::suppressions(
            &w.app.store,
            w.customer,
            &w.filter,
            w.after.as_deref(),
            STREAM_BATCH,
        )
        .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        w.after = Some(last.email.clone());
        w.done = (rows.len() as i64) < STREAM_BATCH;
        let mut out = Vec::with_capacity(rows.len() * 64);
        for s in &rows {
            let line = format!(
                "{}\t{}\t{}\t{}\n",
                s.email,
                s.reason.as_str(),
                s.detail,
                w.app.clock.format_datetime(s.at)
            );
            out.extend_from_slice(line.as_bytes());
        }
        Ok(Some((out, w)))
    })
}
