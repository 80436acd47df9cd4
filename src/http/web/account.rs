//! The account: the customer's service, its credit ledger (every movement
//! with the task it was for), and a change of the logged-in account's
//! password.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::{Value, context};

use super::pages::{read_form, tri};
use super::{Ctx, Notice, PAGE, Problem, Routes, Uploads, found, ok_flash, query_param, typed};
use crate::domain::accounts::{self, LedgerKind, PasswordChange};
use crate::http::explain::Explain;

pub fn routes() -> Routes {
    vec![
        ("/account", get(account_page)),
        ("/account/password", post(change_password)),
    ]
}

async fn account_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    let page = query_param(req.uri(), "page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    show(&ctx, page, &notice).await
}

/// A ledger movement's kind as the page names it.
fn kind_key(k: LedgerKind) -> &'static str {
    match k {
        LedgerKind::Buy => "ledger_buy",
        LedgerKind::Set => "ledger_set",
        LedgerKind::PreDeduct => "ledger_pre_deduct",
        LedgerKind::Charge => "ledger_charge",
        LedgerKind::Refund => "ledger_refund",
        LedgerKind::DayReset => "ledger_day_reset",
    }
}

async fn show(ctx: &Ctx, page: i64, notice: &Notice) -> Response {
    if let Err(r) = ctx.me() {
        return r;
    }
    let app = &ctx.app;
    // An operator without a customer open has only its password here.
    let (service, ledger, pages) = match ctx.customer() {
        Ok(me) => {
            let s = tri!(accounts::service(&app.store, me.id).await);
            let today = app.clock.today();
            let service = context! {
                status => s.status.as_str(), kind => s.service_type.as_str(), usable => s.is_usable(today),
                available => s.available(today), bought => s.qty_buytotal,
                begin => s.begin.map(crate::clock::format_date), end => s.end.map(crate::clock::format_date),
            };
            let entries = tri!(accounts::ledger(&app.store, me.id).await);
            let pages = ((entries.len() as i64 + PAGE - 1) / PAGE).max(1);
            let page = page.min(pages);
            // Newest first.
            let rows: Vec<Value> = entries
                .iter()
                .rev()
                .skip(((page - 1) * PAGE) as usize)
                .take(PAGE as usize)
                .map(|e| {
                    context! { at => app.clock.format_datetime(e.at), kind => kind_key(e.kind), amount => e.amount,
                    balance => e.balance, task => e.task_id.map(|t| t.get()), reason => e.reason.clone() }
                })
                .collect();
            (Some(service), rows, pages)
        }
        Err(_) => (None, Vec::new(), 1),
    };
    ctx.render_notice(
        "account.html",
        context! { service, ledger, page => page.min(pages), pages },
        notice,
    )
}

async fn change_password(ctx: Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let me = match ctx.me() {
        Ok(m) => (m.principal, m.username.clone()),
        Err(r) => return r,
    };
    let p = read_form!(&ctx, req, Uploads::None);
    let (current, new, repeated) = (typed(&p, "current"), typed(&p, "new"), typed(&p, "repeated"));
    let change = PasswordChange {
        current: &current,
        new: &new,
        repeated: &repeated,
    };
    let app = &ctx.app;
    match accounts::change_own_password(&app.store, &app.auth, me.0, &me.1, change, peer.ip()).await {
        Ok(()) => found(&ctx.link("/account?ok=password_changed")),
        Err(e) => show(&ctx, 1, &Notice::problem(Problem::from(e.explain(ctx.lang)))).await,
    }
}
