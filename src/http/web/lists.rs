//! Contact lists and their addresses: the lists; one list's addresses by
//! page of 50, filtered by keyword and state, with a page count; one
//! address added, changed or deleted; selected addresses moved, copied or
//! deleted; imports with their progress; the export of the filtered view.

use axum::extract::{Path, Request};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::{Value, context};
use serde::Deserialize;

use super::pages::{acting, read_form, tri};
use super::tasks::Id;
use super::{
    Acting, Ctx, Notice, PAGE, Problem, Routes, Uploads, body_problem, enc, found, not_found, ok_flash,
    query_param, server_error, typed,
};
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, ListId};
use crate::domain::lists::{
    self, Address, AddressChange, AddressFilter, AddressState, AddressWalk, ContactList, ImportUpload,
    ListChange, ListDescription, ListError, ListName, ListStatus, NewAddress, NewList, Transfer,
};
use crate::domain::suppressions::{self, Suppression};
use crate::domain::tasks::{self, Holds};
use crate::http::explain::Explain;
use crate::http::params::{ParamError, Params};
use crate::http::stream::{Batch, STREAM_BATCH, text_export};

pub fn routes() -> Routes {
    vec![
        ("/lists", get(lists_page).post(create_list)),
        ("/lists/{id}", get(list_page).post(edit_list)),
        ("/lists/{id}/delete", post(delete_list)),
        ("/lists/{id}/addresses", post(add_address)),
        (
            "/lists/{id}/addresses/{aid}",
            get(address_page).post(save_address),
        ),
        ("/lists/{id}/addresses/{aid}/delete", post(delete_address)),
        ("/lists/{id}/selected", post(selected)),
        ("/lists/{id}/import", post(import_file)),
        ("/lists/{id}/export.txt", get(export_list)),
    ]
}

async fn lists_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    show_lists(&ctx, &notice, &context! {}).await
}

async fn show_lists(ctx: &Ctx, notice: &Notice, typed: &Value) -> Response {
    let me = acting!(ctx);
    let lists: Vec<Value> = tri!(lists::lists(&ctx.app.store, me.id).await)
        .into_iter()
        .map(|l| context! { id => l.id, name => l.subject, description => l.description, count => l.count })
        .collect();
    ctx.render_notice("lists.html", context! { lists, typed }, notice)
}

/// A list's name and description as the form gives them.
fn read_list(p: &Params, ctx: &Ctx) -> Result<(ListName, ListDescription), Problem> {
    let name = p.raw("name").map_err(|e| Problem::of_param(&e, ctx.lang))?;
    let name = ListName::parse(name.unwrap_or("")).map_err(|e| Problem::from(e.explain(ctx.lang)))?;
    let description = p
        .raw("description")
        .map_err(|e| Problem::of_param(&e, ctx.lang))?
        .unwrap_or("");
    let description = ListDescription::parse(description).map_err(|e| Problem::from(e.explain(ctx.lang)))?;
    Ok((name, description))
}

async fn create_list(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let typed = context! { name => typed(&p, "name"), description => typed(&p, "description") };
    let (name, description) = match read_list(&p, &ctx) {
        Ok(l) => l,
        Err(problem) => return show_lists(&ctx, &Notice::problem(problem), &typed).await,
    };
    let list = NewList {
        name,
        description,
        status: ListStatus::Enabled,
    };
    match lists::create_list(&ctx.app.store, me.id, &list, ctx.app.clock.now()).await {
        Ok(_) => found(&ctx.link("/lists?ok=created")),
        Err(e) => show_lists(&ctx, &Notice::problem(e.explain(ctx.lang)), &typed).await,
    }
}

/// What a list page shows: a keyword, a state, a page.
#[derive(Clone, Debug, Default)]
struct View {
    q: String,
    state: Option<AddressState>,
    page: i64,
}

impl View {
    fn of(uri: &axum::http::Uri) -> View {
        View {
            q: query_param(uri, "q").unwrap_or_default().trim().to_string(),
            state: query_param(uri, "state").as_deref().and_then(AddressState::parse),
            page: query_param(uri, "page")
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    fn filter(&self, list: ListId) -> AddressFilter {
        AddressFilter {
            list_id: Some(list),
            keyword: Some(self.q.clone()).filter(|k| !k.is_empty()),
            address_id: None,
            state: self.state,
        }
    }

    /// The view's query string, without the page.
    fn query(&self) -> String {
        let mut q = format!("q={}", enc(&self.q));
        if let Some(s) = self.state {
            q.push_str("&state=");
            q.push_str(s.as_str());
        }
        q
    }
}

async fn list_page(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    show_list(&ctx, id, &View::of(req.uri()), &notice, &context! {}).await
}

/// One of the customer's lists, or the answer that ends the handler.
async fn own_list(ctx: &Ctx, me: &Acting, id: i64) -> Result<ContactList, Response> {
    match lists::list(&ctx.app.store, me.id, ListId(id)).await {
        Ok(l) => Ok(l),
        Err(ListError::NotFound) => Err(not_found()),
        Err(e) => Err(server_error(&e)),
    }
}

macro_rules! own_list {
    ($ctx:expr, $me:expr, $id:expr) => {
        match own_list($ctx, $me, $id).await {
            Ok(l) => l,
            Err(r) => return r,
        }
    };
}

/// The state of each address, by its key's suppression.
fn state_of(
    a: &Address,
    found: &std::collections::HashMap<String, Suppression>,
) -> (AddressState, Option<String>) {
    let s = EmailAddress::parse(&a.address).and_then(|e| found.get(&e.key()));
    (
        AddressState::of(s.map(|s| s.reason)),
        s.map(|s| s.reason.as_str().to_string()),
    )
}

async fn show_list(ctx: &Ctx, list_id: i64, view: &View, notice: &Notice, typed: &Value) -> Response {
    let me = acting!(ctx);
    let (app, id) = (&ctx.app, me.id);
    let list = own_list!(ctx, &me, list_id);
    let filter = view.filter(list.id);
    let total = if filter.keyword.is_none() && filter.state.is_none() {
        list.count
    } else {
        tri!(lists::count_addresses(&app.store, id, &filter).await)
    };
    let pages = ((total + PAGE - 1) / PAGE).max(1);
    let page = view.page.clamp(1, pages);
    let rows = tri!(lists::address_page(&app.store, &app.pages, id, &filter, page, PAGE).await);
    let emails: Vec<&str> = rows.iter().map(|a| a.address.as_str()).collect();
    let found = tri!(suppressions::suppressions_of(&app.store, id, &emails).await);
    let addresses: Vec<Value> = rows
        .iter()
        .map(|a| {
            let (state, reason) = state_of(a, &found);
            context! { id => a.id, address => a.address.clone(), fullname => a.fullname.clone(), state => state.as_str(), reason,
            vars => a.vars.iter().filter(|v| !v.is_empty()).cloned().collect::<Vec<_>>() }
        })
        .collect();
    let others: Vec<Value> = tri!(lists::lists(&app.store, id).await)
        .into_iter()
        .filter(|l| l.id != list.id)
        .map(|l| context! { id => l.id, name => l.subject })
        .collect();
    let imports: Vec<Value> = tri!(lists::import_jobs(&app.store, Some(id)).await)
        .into_iter()
        .filter(|j| j.list_id == list.id)
        .map(|j| {
            context! { id => j.id, file_name => j.file_name, state => j.state.as_str(), size => j.size.max(1),
            offset_done => if j.state.as_str() == "done" { j.size.max(1) } else { j.offset_done },
            added => j.added, invalid => j.invalid, duplicate => j.duplicate }
        })
        .collect();
    ctx.render_notice(
        "list.html",
        context! {
            list => context! { id => list.id, name => list.subject, description => list.description, count => list.count },
            addresses, others, imports, typed,
            view => context! { q => view.q.clone(), state => view.state.map(AddressState::as_str), query => view.query() },
            states => AddressState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            page, pages, total,
        },
        notice,
    )
}

async fn edit_list(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let typed = context! { list_name => typed(&p, "name"), list_description => typed(&p, "description") };
    let refused = |problem: Problem| {
        let (ctx, typed) = (&ctx, &typed);
        async move { show_list(ctx, id, &View::default(), &Notice::problem(problem), typed).await }
    };
    let (name, description) = match read_list(&p, &ctx) {
        Ok(l) => l,
        Err(problem) => return refused(problem).await,
    };
    let change = ListChange {
        name: Some(name),
        description: Some(description),
        status: None,
    };
    match lists::edit_list(&ctx.app.store, me.id, ListId(id), &change).await {
        Ok(()) => found(&ctx.link(&format!("/lists/{id}?ok=saved"))),
        Err(ListError::NotFound) => not_found(),
        Err(e) => refused(e.explain(ctx.lang).into()).await,
    }
}

async fn delete_list(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    read_form!(&ctx, req, Uploads::None);
    let app = &ctx.app;
    match lists::delete_list(&app.store, me.id, ListId(id)).await {
        Ok(()) => found(&ctx.link("/lists?ok=deleted")),
        Err(ListError::NotFound) => not_found(),
        Err(ListError::InUse) => {
            let users = tri!(tasks::tasks_holding(&app.store, me.id, Holds::List(ListId(id))).await);
            let names: Vec<String> = users.iter().map(|t| format!("{} (#{})", t.ident, t.id)).collect();
            let mut problem = Problem::from(ListError::InUse.explain(ctx.lang));
            problem.message = format!("{} {}: {}", problem.message, ctx.tr("used_by"), names.join(", "));
            show_list(
                &ctx,
                id,
                &View::default(),
                &Notice::problem(problem),
                &context! {},
            )
            .await
        }
        Err(e) => {
            show_list(
                &ctx,
                id,
                &View::default(),
                &Notice::problem(e.explain(ctx.lang)),
                &context! {},
            )
            .await
        }
    }
}

/// An address's fields as the form gives them: the address, the name and
/// the ten variables.
struct AddressForm {
    email: Option<EmailAddress>,
    fullname: String,
    vars: [String; 10],
}

fn read_address(p: &Params, ctx: &Ctx) -> Result<AddressForm, Problem> {
    let email = p.require("email").map_err(|e| Problem::of_param(&e, ctx.lang))?;
    let email = EmailAddress::parse(email)
        .ok_or_else(|| Problem::from(ListError::InvalidAddress.explain(ctx.lang)))?;
    Ok(AddressForm {
        email: Some(email),
        fullname: typed(p, "fullname").trim().to_string(),
        vars: std::array::from_fn(|i| typed(p, &format!("var{}", i + 1))),
    })
}

fn typed_address(p: &Params) -> Value {
    let vars: Vec<String> = (1..=10).map(|i| typed(p, &format!("var{i}"))).collect();
    context! { email => typed(p, "email"), fullname => typed(p, "fullname"), vars }
}

async fn add_address(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let typed = context! { address => typed_address(&p) };
    let refused = |problem: Problem| {
        let (ctx, typed) = (&ctx, &typed);
        async move { show_list(ctx, id, &View::default(), &Notice::problem(problem), typed).await }
    };
    let f = match read_address(&p, &ctx) {
        Ok(f) => f,
        Err(problem) => return refused(problem).await,
    };
    let Some(email) = f.email else {
        return refused(Problem::of_param(&ParamError::Missing("email".into()), ctx.lang)).await;
    };
    let mut a = NewAddress::new(email, &f.fullname);
    a.vars = f.vars;
    let app = &ctx.app;
    match lists::add_address(&app.store, me.id, ListId(id), &a, app.clock.now()).await {
        Ok(_) => found(&ctx.link(&format!("/lists/{id}?ok=added"))),
        Err(ListError::NotFound) => not_found(),
        Err(e) => refused(e.explain(ctx.lang).into()).await,
    }
}

#[derive(Deserialize)]
struct AddressPath {
    id: i64,
    aid: i64,
}

/// One of the customer's addresses in the list, or the answer that ends
/// the handler.
async fn own_address(ctx: &Ctx, me: &Acting, list: i64, id: i64) -> Result<Address, Response> {
    match lists::address(&ctx.app.store, me.id, AddressId(id)).await {
        Ok(a) if a.list_id == ListId(list) => Ok(a),
        Ok(_) | Err(ListError::AddressNotFound) => Err(not_found()),
        Err(e) => Err(server_error(&e)),
    }
}

async fn address_page(ctx: Ctx, Path(AddressPath { id, aid }): Path<AddressPath>) -> Response {
    show_address(&ctx, id, aid, &Notice::default(), None).await
}

async fn show_address(ctx: &Ctx, list_id: i64, id: i64, notice: &Notice, typed: Option<Value>) -> Response {
    let me = acting!(ctx);
    let list = own_list!(ctx, &me, list_id);
    let a = match own_address(ctx, &me, list_id, id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let found = tri!(suppressions::suppressions_of(&ctx.app.store, me.id, &[a.address.as_str()]).await);
    let (state, reason) = state_of(&a, &found);
    let shown = typed.unwrap_or_else(|| {
        context! { email => a.address.clone(), fullname => a.fullname.clone(), vars => a.vars.to_vec() }
    });
    ctx.render_notice(
        "address.html",
        context! {
            list => context! { id => list.id, name => list.subject },
            address => context! { id => a.id, state => state.as_str(), reason,
                added => ctx.app.clock.format_datetime(a.created_at) },
            shown,
        },
        notice,
    )
}

async fn save_address(ctx: Ctx, Path(AddressPath { id, aid }): Path<AddressPath>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    if let Err(r) = own_address(&ctx, &me, id, aid).await {
        return r;
    }
    let f = match read_address(&p, &ctx) {
        Ok(f) => f,
        Err(problem) => {
            return show_address(&ctx, id, aid, &Notice::problem(problem), Some(typed_address(&p))).await;
        }
    };
    let change = AddressChange {
        email: f.email,
        fullname: Some(f.fullname),
        vars: f.vars.map(Some),
        ..Default::default()
    };
    match lists::edit_address(&ctx.app.store, me.id, AddressId(aid), &change).await {
        Ok(()) => found(&ctx.link(&format!("/lists/{id}?ok=saved"))),
        Err(ListError::AddressNotFound) => not_found(),
        Err(e) => {
            show_address(
                &ctx,
                id,
                aid,
                &Notice::problem(e.explain(ctx.lang)),
                Some(typed_address(&p)),
            )
            .await
        }
    }
}

async fn delete_address(
    ctx: Ctx,
    Path(AddressPath { id, aid }): Path<AddressPath>,
    req: Request,
) -> Response {
    let me = acting!(ctx);
    read_form!(&ctx, req, Uploads::None);
    if let Err(r) = own_address(&ctx, &me, id, aid).await {
        return r;
    }
    match lists::delete_address(&ctx.app.store, me.id, AddressId(aid)).await {
        Ok(()) => found(&ctx.link(&format!("/lists/{id}?ok=deleted"))),
        Err(ListError::AddressNotFound) => not_found(),
        Err(e) => server_error(&e),
    }
}

/// Selected addresses moved or copied to another list, or deleted.
async fn selected(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let list = own_list!(&ctx, &me, id);
    let refused = |problem: Problem| {
        let ctx = &ctx;
        async move { show_list(ctx, id, &View::default(), &Notice::problem(problem), &context! {}).await }
    };
    let ids: Result<Vec<AddressId>, ParamError> = p.array("ids").and_then(|v| {
        v.iter()
            .map(|s| {
                s.trim()
                    .parse::<i64>()
                    .map(AddressId)
                    .map_err(|_| ParamError::Invalid("ids".into()))
            })
            .collect()
    });
    // A page shows 50; a selection is never more than a few pages.
    const SELECTION_MAX: usize = 1_000;
    let ids = match ids {
        Ok(ids) if ids.len() > SELECTION_MAX => {
            let e = ListError::TooManyRecords { max: SELECTION_MAX };
            return refused(Problem::from(e.explain(ctx.lang)).on("ids")).await;
        }
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) => return refused(Problem::from(ListError::NoRecords.explain(ctx.lang)).on("ids")).await,
        Err(e) => return refused(Problem::of_param(&e, ctx.lang)).await,
    };
    // Only the addresses of this list are acted on.
    let mut mine = Vec::with_capacity(ids.len());
    for a in ids {
        match lists::address(&ctx.app.store, me.id, a).await {
            Ok(found) if found.list_id == list.id => mine.push(a),
            Ok(_) | Err(ListError::AddressNotFound) => {}
            Err(e) => return server_error(&e),
        }
    }
    let app = &ctx.app;
    let how = match p.get("action").ok().flatten() {
        Some("move") => Transfer::Move,
        Some("copy") => Transfer::Copy,
        Some("delete") => {
            return match lists::delete_addresses(&app.store, me.id, &mine).await {
                Ok(_) => found(&ctx.link(&format!("/lists/{id}?ok=deleted"))),
                Err(e) => refused(e.explain(ctx.lang).into()).await,
            };
        }
        _ => return refused(Problem::of_param(&ParamError::Invalid("action".into()), ctx.lang)).await,
    };
    let to = match p.require_id("target") {
        Ok(to) => ListId(to),
        Err(e) => return refused(Problem::of_param(&e, ctx.lang)).await,
    };
    match lists::transfer_addresses(&app.store, me.id, &mine, to, how, app.clock.now()).await {
        Ok(_) => {
            let ok = if how == Transfer::Move { "moved" } else { "copied" };
            found(&ctx.link(&format!("/lists/{id}?ok={ok}")))
        }
        Err(e) => refused(Problem::from(e.explain(ctx.lang)).on("target")).await,
    }
}

async fn import_file(ctx: Ctx, Path(Id { id: list_id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::Import);
    let refused = |problem: Problem| {
        let ctx = &ctx;
        async move {
            show_list(
                ctx,
                list_id,
                &View::default(),
                &Notice::problem(problem),
                &context! {},
            )
            .await
        }
    };
    if let Some(problem) = body_problem(&p, ctx.lang) {
        return refused(problem.on("file")).await;
    }
    let Some(file) = p.uploads.iter().find(|u| u.field == "file") else {
        return refused(Problem::of_param(&ParamError::Missing("file".into()), ctx.lang)).await;
    };
    let upload = ImportUpload {
        path: &file.path,
        file_name: &file.file_name,
        size: file.size,
    };
    let app = &ctx.app;
    match lists::queue_import(
        &app.store,
        &app.files,
        me.id,
        ListId(list_id),
        upload,
        app.clock.now(),
    )
    .await
    {
        Ok(_) => {
            app.import_wakeup.notify_waiters();
            found(&ctx.link(&format!("/lists/{list_id}?ok=imported#imports")))
        }
        Err(ListError::NotFound) => not_found(),
        Err(e) => refused(e.explain(ctx.lang).into()).await,
    }
}

/// The list's addresses as the page filters them, one a line.
async fn export_list(ctx: Ctx, Path(Id { id: list_id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let view = View::of(req.uri());
    let walk = match lists::walk_addresses(&ctx.app.store, me.id, view.filter(ListId(list_id))).await {
        Ok(w) => w,
        Err(ListError::NotFound) => return not_found(),
        Err(e) => return server_error(&e),
    };
    let state = Export {
        app: ctx.app.clone(),
        walk,
    };
    text_export(format!("list-{list_id}.txt"), state, export_lines)
}

struct Export {
    app: crate::app::App,
    walk: AddressWalk,
}

/// One address a line: the address and the name, TAB-separated.
fn export_lines(mut w: Export) -> Batch<Export> {
    Box::pin(async move {
        let rows = w.walk.next_batch(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() * 48);
        for a in &rows {
            lists::export_line(&mut out, a);
        }
        Ok(Some((out, w)))
    })
}
