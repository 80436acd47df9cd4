//! Templates: the list; the editor (name, subject, HTML in a monospace
//! area, text) with a preview beside it in a sandboxed frame, rendered for
//! one of the customer's addresses; attachments; duplicate, delete, and a
//! test message to one address.

use axum::extract::{Path, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use serde::Deserialize;

use super::pages::{acting, read_form, tri};
use super::tasks::{Id, sender_addresses};
use super::{
    Acting, Ctx, Notice, Problem, Routes, Uploads, body_problem, found, not_found, ok_flash, server_error,
    typed,
};
use crate::domain::ids::{AttachmentId, CustomerId, TemplateId};
use crate::domain::lists::{self, Address, AddressFilter};
use crate::domain::tasks::{self, Holds};
use crate::domain::templates::{
    self, AttachmentUpload, Encoding, NewTemplate, Recipient, TemplateCaseError, TemplateChange,
    TemplateEntry,
};
use crate::http::explain::Explain;
use crate::http::params::{ParamError, Params};
use crate::mail::preview::Preview;

pub fn routes() -> Routes {
    vec![
        ("/templates", get(templates_page).post(create_template)),
        ("/templates/new", get(new_template)),
        ("/templates/preview", post(live_preview)),
        ("/templates/{id}", get(template_page).post(save_template)),
        ("/templates/{id}/attachments", post(add_attachments)),
        (
            "/templates/{id}/attachments/{aid}/delete",
            post(delete_attachment),
        ),
        ("/templates/{id}/duplicate", post(duplicate)),
        ("/templates/{id}/delete", post(delete)),
        ("/templates/{id}/test", post(send_test)),
    ]
}

async fn templates_page(ctx: Ctx, req: Request) -> Response {
    let notice = ok_flash(&ctx, req.uri());
    show_templates(&ctx, &notice).await
}

async fn show_templates(ctx: &Ctx, notice: &Notice) -> Response {
    let me = acting!(ctx);
    let templates: Vec<Value> = tri!(templates::list_templates(&ctx.app.store, me.id, None).await)
        .into_iter()
        .map(|t| {
            context! { id => t.template.id, name => t.template.name, subject => t.template.subject,
            attachments => t.attachments.len(),
            updated => ctx.app.clock.format_datetime(t.template.updated_at) }
        })
        .collect();
    ctx.render_notice("templates.html", context! { templates }, notice)
}

/// The customer's first address, whose name and variables a preview shows.
async fn sample_address(ctx: &Ctx, customer: CustomerId) -> Option<Address> {
    let app = &ctx.app;
    match lists::address_page(&app.store, &app.pages, customer, &AddressFilter::default(), 1, 1).await {
        Ok(rows) => rows.into_iter().next(),
        Err(e) => {
            tracing::warn!(error = %e, "the preview's sample address");
            None
        }
    }
}

fn recipient(a: &Option<Address>) -> Recipient<'_> {
    match a {
        Some(a) => Recipient {
            email: &a.address,
            fullname: &a.fullname,
            vars: std::array::from_fn(|i| a.vars[i].as_str()),
            unsubscribe_url: "#unsubscribe",
        },
        None => crate::mail::preview::SAMPLE,
    }
}

/// What the editor holds: as saved, or as typed.
#[derive(Default)]
struct Draft {
    name: String,
    subject: String,
    html: String,
    text: String,
    /// The address a test was to go to.
    test_to: String,
}

impl Draft {
    fn typed(p: &Params) -> Draft {
        Draft {
            name: typed(p, "name"),
            subject: typed(p, "subject"),
            html: typed(p, "html"),
            text: typed(p, "text"),
            test_to: String::new(),
        }
    }
}

/// The preview of a draft for a sample: its subject, HTML and text, or why
/// it does not render.
fn preview(d: &Draft, sample: &Recipient<'_>) -> Value {
    match templates::preview_draft(&d.subject, &d.html, &d.text, sample).map(Preview::of) {
        Ok(p) => {
            context! { subject => p.subject, html => p.html, text => p.text, text_derived => p.text_derived }
        }
        Err(e) => context! { error => e.to_string() },
    }
}

/// The editor's field of a part of a template.
fn editor_field(part: &str) -> &str {
    match part {
        "content" => "html",
        "text_content" => "text",
        other => other,
    }
}

/// A template refusal, next to the editor's field it concerns.
fn template_problem(e: &TemplateCaseError, ctx: &Ctx) -> Problem {
    let mut p = Problem::from(e.explain(ctx.lang));
    p.field = p.field.map(|f| editor_field(&f).to_string());
    p
}

async fn new_template(ctx: Ctx) -> Response {
    let me = acting!(ctx);
    editor(&ctx, &me, None, Draft::default(), &Notice::default()).await
}

/// The editor page, of a saved template (`entry`) or a new one.
async fn editor(
    ctx: &Ctx,
    me: &Acting,
    entry: Option<&TemplateEntry>,
    draft: Draft,
    notice: &Notice,
) -> Response {
    let known = sample_address(ctx, me.id).await;
    let sample = recipient(&known);
    let preview = preview(&draft, &sample);
    let mailboxes = match sender_addresses(ctx, me).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let template = entry.map(|e| {
        let attachments: Vec<Value> = e
            .attachments
            .iter()
            .map(|a| context! { id => a.id, name => a.file_name.clone(), size => a.size, kind => a.content_type.clone() })
            .collect();
        context! { id => e.template.id, name => e.template.name.clone(), attachments }
    });
    ctx.render_notice(
        "template.html",
        context! {
            template, draft => context! { name => draft.name.clone(), subject => draft.subject.clone(), html => draft.html.clone(), text => draft.text.clone(), test_to => draft.test_to.clone() }, preview,
            sample => context! { email => sample.email, fullname => sample.fullname },
            mailboxes,
            placeholders => templates::PLACEHOLDERS.to_vec(),
        },
        notice,
    )
}

/// Reads the editor's form into a new template's texts.
fn read_draft(p: &Params) -> Result<Draft, ParamError> {
    p.require("name")?;
    p.require("subject")?;
    p.raw("html")?
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| ParamError::Missing("html".into()))?;
    Ok(Draft::typed(p))
}

async fn create_template(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::Attachments);
    let draft = match read_draft(&p) {
        Ok(d) => d,
        Err(e) => {
            let problem = Problem::of_param(&e, ctx.lang);
            return editor(&ctx, &me, None, Draft::typed(&p), &Notice::problem(problem)).await;
        }
    };
    if p.get("do").ok().flatten() == Some("preview") {
        return editor(&ctx, &me, None, draft, &Notice::default()).await;
    }
    if let Some(problem) = body_problem(&p, ctx.lang) {
        return editor(&ctx, &me, None, draft, &Notice::problem(problem.on("files"))).await;
    }
    let uploads = uploads(&p);
    let t = NewTemplate {
        name: draft.name.trim(),
        subject: &draft.subject,
        content: &draft.html,
        text_content: &draft.text,
        encoding: Encoding::default(),
    };
    let app = &ctx.app;
    match templates::create_template(&app.store, &app.files, me.id, &t, &uploads, app.clock.now()).await {
        Ok(id) => found(&ctx.link(&format!("/templates/{id}?ok=created"))),
        Err(e) => {
            let problem = template_problem(&e, &ctx);
            editor(&ctx, &me, None, draft, &Notice::problem(problem)).await
        }
    }
}

/// The files a form uploaded as attachments.
fn uploads(p: &Params) -> Vec<AttachmentUpload<'_>> {
    p.uploads
        .iter()
        .filter(|u| u.field == "files" && !(u.size == 0 && u.file_name.is_empty()))
        .map(|u| AttachmentUpload {
            path: &u.path,
            file_name: &u.file_name,
            content_type: u.content_type.as_deref(),
            size: u.size,
        })
        .collect()
}

/// One of the customer's templates with its attachments, or the answer
/// that ends the handler.
async fn entry(ctx: &Ctx, me: &Acting, id: i64) -> Result<TemplateEntry, Response> {
    match templates::list_templates(&ctx.app.store, me.id, Some(TemplateId(id))).await {
        Ok(mut found) if !found.is_empty() => Ok(found.swap_remove(0)),
        Ok(_) | Err(TemplateCaseError::NotFound) => Err(not_found()),
        Err(e) => Err(server_error(&e)),
    }
}

macro_rules! entry {
    ($ctx:expr, $me:expr, $id:expr) => {
        match entry($ctx, $me, $id).await {
            Ok(e) => e,
            Err(r) => return r,
        }
    };
}

fn saved_draft(e: &TemplateEntry) -> Draft {
    Draft {
        name: e.template.name.clone(),
        subject: e.template.subject.clone(),
        html: e.template.content.clone(),
        text: e.template.text_content.clone(),
        test_to: String::new(),
    }
}

async fn template_page(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let e = entry!(&ctx, &me, id);
    let notice = ok_flash(&ctx, req.uri());
    editor(&ctx, &me, Some(&e), saved_draft(&e), &notice).await
}

/// Re-shows a saved template's editor with what was typed and a problem.
async fn refused(ctx: &Ctx, me: &Acting, id: i64, draft: Option<Draft>, problem: Problem) -> Response {
    refused_test(ctx, me, id, draft, "", problem).await
}

/// Re-shows the editor after a refusal, with the test's address as typed.
async fn refused_test(
    ctx: &Ctx,
    me: &Acting,
    id: i64,
    draft: Option<Draft>,
    test_to: &str,
    problem: Problem,
) -> Response {
    let e = entry!(ctx, me, id);
    let mut draft = draft.unwrap_or_else(|| saved_draft(&e));
    draft.test_to = test_to.to_string();
    editor(ctx, me, Some(&e), draft, &Notice::problem(problem)).await
}

async fn save_template(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let draft = match read_draft(&p) {
        Ok(d) => d,
        Err(e) => {
            return refused(
                &ctx,
                &me,
                id,
                Some(Draft::typed(&p)),
                Problem::of_param(&e, ctx.lang),
            )
            .await;
        }
    };
    if p.get("do").ok().flatten() == Some("preview") {
        let e = entry!(&ctx, &me, id);
        return editor(&ctx, &me, Some(&e), draft, &Notice::default()).await;
    }
    let change = TemplateChange {
        name: Some(draft.name.trim()),
        subject: Some(&draft.subject),
        content: Some(&draft.html),
        text_content: Some(&draft.text),
        encoding: None,
    };
    let app = &ctx.app;
    match templates::edit_template(&app.store, me.id, TemplateId(id), &change, app.clock.now()).await {
        Ok(()) => found(&ctx.link(&format!("/templates/{id}?ok=saved"))),
        Err(TemplateCaseError::NotFound) => not_found(),
        Err(e) => refused(&ctx, &me, id, Some(draft), template_problem(&e, &ctx)).await,
    }
}

/// The editor's live preview: the draft posted as it is typed, rendered
/// for the sample address; JSON for the page's script.
async fn live_preview(ctx: Ctx, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let known = sample_address(&ctx, me.id).await;
    let sample = recipient(&known);
    let draft = Draft::typed(&p);
    let body =
        match templates::preview_draft(&draft.subject, &draft.html, &draft.text, &sample).map(Preview::of) {
            Ok(p) => serde_json::json!({"subject": p.subject, "html": p.html, "text": p.text,
            "text_derived": p.text_derived}),
            Err(e) => {
                let field = editor_field(e.part.param());
                serde_json::json!({"error": e.to_string(), "field": field})
            }
        };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn add_attachments(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::Attachments);
    if let Some(problem) = body_problem(&p, ctx.lang) {
        return refused(&ctx, &me, id, None, problem.on("files")).await;
    }
    let uploads = uploads(&p);
    if uploads.is_empty() {
        let problem = Problem::of_param(&ParamError::Missing("files".into()), ctx.lang);
        return refused(&ctx, &me, id, None, problem).await;
    }
    let app = &ctx.app;
    match templates::add_attachments(
        &app.store,
        &app.files,
        me.id,
        TemplateId(id),
        &uploads,
        app.clock.now(),
    )
    .await
    {
        Ok(_) => found(&ctx.link(&format!("/templates/{id}?ok=added#attachments"))),
        Err(TemplateCaseError::NotFound) => not_found(),
        Err(e) => refused(&ctx, &me, id, None, template_problem(&e, &ctx).on("files")).await,
    }
}

#[derive(Deserialize)]
struct AttachmentPath {
    id: i64,
    aid: i64,
}

async fn delete_attachment(
    ctx: Ctx,
    Path(AttachmentPath { id, aid }): Path<AttachmentPath>,
    req: Request,
) -> Response {
    let me = acting!(ctx);
    read_form!(&ctx, req, Uploads::None);
    let app = &ctx.app;
    let only = Some(AttachmentId(aid));
    match templates::delete_attachments(
        &app.store,
        &app.files,
        me.id,
        TemplateId(id),
        only,
        app.clock.now(),
    )
    .await
    {
        Ok(_) => found(&ctx.link(&format!("/templates/{id}?ok=deleted#attachments"))),
        Err(TemplateCaseError::NotFound) => not_found(),
        Err(e) => refused(&ctx, &me, id, None, template_problem(&e, &ctx)).await,
    }
}

async fn duplicate(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    read_form!(&ctx, req, Uploads::None);
    let e = entry!(&ctx, &me, id);
    let name = format!("{} {}", e.template.name, ctx.tr("copy_suffix"));
    let app = &ctx.app;
    let scratch = app.config.data_dir.join("tmp");
    if let Err(e) = tokio::fs::create_dir_all(&scratch).await {
        return server_error(&e);
    }
    match templates::duplicate_template(
        &app.store,
        &app.files,
        me.id,
        TemplateId(id),
        &name,
        &scratch,
        app.clock.now(),
    )
    .await
    {
        Ok(copy) => found(&ctx.link(&format!("/templates/{copy}?ok=duplicated"))),
        Err(TemplateCaseError::NotFound) => not_found(),
        Err(e) => show_templates(&ctx, &Notice::problem(e.explain(ctx.lang))).await,
    }
}

async fn delete(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    read_form!(&ctx, req, Uploads::None);
    let app = &ctx.app;
    match templates::delete_template(&app.store, &app.files, me.id, TemplateId(id)).await {
        Ok(()) => found(&ctx.link("/templates?ok=deleted")),
        Err(TemplateCaseError::NotFound) => not_found(),
        Err(TemplateCaseError::InUse) => {
            // Say which tasks keep it.
            let users = tri!(tasks::tasks_holding(&app.store, me.id, Holds::Template(TemplateId(id))).await);
            let names: Vec<String> = users.iter().map(|t| format!("{} (#{})", t.ident, t.id)).collect();
            let mut problem = Problem::from(TemplateCaseError::InUse.explain(ctx.lang));
            problem.message = format!("{} {}: {}", problem.message, ctx.tr("used_by"), names.join(", "));
            show_templates(&ctx, &Notice::problem(problem)).await
        }
        Err(e) => show_templates(&ctx, &Notice::problem(e.explain(ctx.lang))).await,
    }
}

async fn send_test(ctx: Ctx, Path(Id { id }): Path<Id>, req: Request) -> Response {
    let me = acting!(ctx);
    let p = read_form!(&ctx, req, Uploads::None);
    let (to, sender) = match (p.require("to"), p.require("sender")) {
        (Ok(to), Ok(sender)) => (to.to_string(), sender.to_string()),
        (Err(e), _) | (_, Err(e)) => {
            return refused_test(
                &ctx,
                &me,
                id,
                None,
                &typed(&p, "to"),
                Problem::of_param(&e, ctx.lang),
            )
            .await;
        }
    };
    let outbox = match crate::engine::Outbox::new(&ctx.app) {
        Ok(o) => o,
        Err(e) => return server_error(&e),
    };
    let sent = templates::send_test(&ctx.app.store, &outbox, me.id, TemplateId(id), &sender, &to).await;
    match sent {
        Ok(_) => found(&ctx.link(&format!("/templates/{id}?ok=sent_test#test"))),
        Err(templates::TestSendError::NotFound) => not_found(),
        Err(e) => refused_test(&ctx, &me, id, None, &to, e.explain(ctx.lang).into()).await,
    }
}
