//! Domains and mailboxes: the customer's own domains and the platform's,
//! each with its mailboxes and the DNS records to publish; mailboxes added
//! (their password is sealed and never shown again) and removed; a domain's
//! DNS checked on demand, record by record. A manager sees every domain.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};

use super::pages::{acting, read_form, tri};
use super::{Ctx, Notice, Problem, Routes, Uploads, found, ok_flash, typed};
use crate::delivery::dns::Dns;
use crate::domain::accounts::Principal;
use crate::domain::senders::{
    self, CapTarget, DnsRecord, DomainName, MailboxAddress, MailboxPassword, MailboxScope, Owner,
    SenderDomain,
};
use crate::http::explain::Explain;
use crate::http::params::ParamError;

pub fn routes() -> Routes {
    vec![
        ("/domains", get(domains_page)),
        ("/domains/mailboxes", post(add_mailbox)),
        ("/domains/mailboxes/delete", post(delete_mailbox)),
    ]
}

async fn domains_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    let check = super::query_param(req.uri(), "check");
    show_checked(&ctx, check, &notice, &context! {}).await
}

async fn show(ctx: &Ctx, notice: &Notice, typed: &Value) -> Response {
    show_checked(ctx, None, notice, typed).await
}

/// The records a domain needs published, before its DNS is checked.
fn record_rows(records: Vec<DnsRecord>) -> Vec<Value> {
    records
        .into_iter()
        .map(|r| {
            context! { check => format!("dkim:{}", r.name.split('.').next().unwrap_or("")),
            state => "publish", found => "", publish => r.zone_line }
        })
        .collect()
}

/// What the DNS says of a domain, record by record: each with its state
/// (ok, missing, wrong), what was found and the record to publish.
async fn health(ctx: &Ctx, domain: &str) -> Result<Vec<Value>, Response> {
    let app = &ctx.app;
    let Some(name) = DomainName::parse(domain) else {
        return Err(super::not_found());
    };
    let dns = Dns::new(app.config.dns_server).map_err(|e| super::server_error(&e))?;
    let checks = senders::domain_health(&app.store, &dns, &app.dns_platform(), &name)
        .await
        .map_err(|e| super::server_error(&e))?;
    Ok(checks
        .into_iter()
        .map(|c| context! { check => c.check, state => c.status.as_str(), found => c.found, publish => c.publish })
        .collect())
}

/// A customer's domains (its own and the platform's), or every domain for
/// a manager, with their mailboxes and the records to publish; the one
/// named by `check` with what its DNS says.
async fn show_checked(ctx: &Ctx, check: Option<String>, notice: &Notice, typed: &Value) -> Response {
    let (visible, scope, own) = match (ctx.customer(), ctx.me.as_ref().map(|m| m.principal)) {
        (Ok(a), _) => (
            Some(Owner::Customer(a.id)),
            MailboxScope::AvailableTo(a.id),
            Some(Owner::Customer(a.id)),
        ),
        (Err(_), Some(Principal::Manager(_))) => (None, MailboxScope::All, None),
        (Err(r), None) => return r,
        (Err(_), Some(_)) => return StatusCode::FORBIDDEN.into_response(),
    };
    let app = &ctx.app;
    let mut out: Vec<Value> = Vec::new();
    let mut usable: Vec<String> = Vec::new();
    let domains: Vec<SenderDomain> = tri!(senders::domains(&app.store, visible).await);
    let caps = tri!(senders::caps_on(&app.store, app.clock.today()).await);
    for d in &domains {
        let mailboxes: Vec<Value> = tri!(senders::mailboxes(&app.store, d.id, scope, None).await)
            .into_iter()
            .map(|m| context! { address => m.address, own => own.is_some() && Some(m.owner) == own })
            .collect();
        let checked = check.as_deref() == Some(d.domain.as_str());
        let records = if checked {
            match health(ctx, &d.domain).await {
                Ok(rows) => rows,
                Err(r) => return r,
            }
        } else {
            record_rows(tri!(senders::records_to_publish(&app.store, d).await))
        };
        let cap = caps
            .get(&CapTarget::Domain(d.id))
            .and_then(|c| Some(context! { limit => c.limit?, sent => c.used }));
        usable.push(d.domain.clone());
        out.push(
            context! { domain => d.domain.clone(), system => d.owner == Owner::System, mailboxes, records,
            cap, checked, check_enc => super::enc(&d.domain) },
        );
    }
    ctx.render_notice(
        "domains.html",
        context! { domains => out, usable, can_add => own.is_some(), typed },
        notice,
    )
}

async fn add_mailbox(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let typed_values = context! { local_part => typed(&p, "local_part"), domain => typed(&p, "domain") };
    let refused = |problem: Problem| {
        let (ctx, typed_values) = (&ctx, &typed_values);
        async move { show(ctx, &Notice::problem(problem), typed_values).await }
    };
    let (local, domain) = match (p.require("local_part"), p.require("domain")) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(e), _) | (_, Err(e)) => return refused(Problem::of_param(&e, ctx.lang)).await,
    };
    let Some(address) = MailboxAddress::parse(&format!("{local}@{domain}")) else {
        return refused(Problem::of_param(
            &ParamError::Invalid("local_part".into()),
            ctx.lang,
        ))
        .await;
    };
    let password = match p.raw("password") {
        Ok(Some(pw)) if !pw.is_empty() => pw,
        Ok(_) => {
            return refused(Problem::of_param(
                &ParamError::Missing("password".into()),
                ctx.lang,
            ))
            .await;
        }
        Err(e) => return refused(Problem::of_param(&e, ctx.lang)).await,
    };
    let Some(password) = MailboxPassword::parse(password) else {
        return refused(Problem::of_param(
            &ParamError::Invalid("password".into()),
            ctx.lang,
        ))
        .await;
    };
    let app = &ctx.app;
    let owner = Owner::Customer(me.id);
    match senders::add_mailbox(
        &app.store,
        &app.secret_box,
        owner,
        &address,
        &password,
        app.clock.now(),
    )
    .await
    {
        Ok(_) => found(&ctx.link("/domains?ok=added")),
        Err(e) => {
            let mut problem = Problem::from(e.explain(ctx.lang));
            if problem.field.as_deref() == Some("mailbox") {
                problem.field = Some("local_part".into());
            }
            refused(problem).await
        }
    }
}

async fn delete_mailbox(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let Some(address) = p.get("mailbox").ok().flatten().and_then(MailboxAddress::parse) else {
        return super::not_found();
    };
    match senders::delete_own_mailbox(&ctx.app.store, Owner::Customer(me.id), &address).await {
        Ok(()) => found(&ctx.link("/domains?ok=deleted")),
        Err(senders::SenderError::MailboxNotFound) => super::not_found(),
        Err(e) => show(&ctx, &Notice::problem(e.explain(ctx.lang)), &context! {}).await,
    }
}
