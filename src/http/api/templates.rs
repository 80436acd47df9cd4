//! `/templates`: the customer's message templates (subject, HTML, text),
//! through the same use-cases as `template.php` and the console.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult, path_id};
use crate::app::App;
use crate::domain::ids::TemplateId;
use crate::domain::templates::{self, Encoding, NewTemplate, Template, TemplateChange};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/templates", get(all).post(create))
        .route("/templates/{id}", get(one).put(replace).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateInput {
    name: String,
    subject: String,
    html: String,
    #[serde(default)]
    text: String,
}

#[derive(Serialize)]
pub(crate) struct TemplateView {
    id: i64,
    name: String,
    subject: String,
    html: String,
    text: String,
    created_at: String,
    updated_at: String,
    attachments: Vec<AttachmentView>,
}

#[derive(Serialize)]
struct AttachmentView {
    id: i64,
    name: String,
    content_type: String,
    size: i64,
}

fn view(app: &App, t: Template, attachments: Vec<templates::Attachment>) -> TemplateView {
    TemplateView {
        id: t.id.get(),
        name: t.name,
        subject: t.subject,
        html: t.content,
        text: t.text_content,
        created_at: app.clock.format_rfc3339(t.created_at),
        updated_at: app.clock.format_rfc3339(t.updated_at),
        attachments: attachments
            .into_iter()
            .map(|a| AttachmentView {
                id: a.id.get(),
                name: a.file_name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    }
}

/// The template's parts, named as this API names them.
fn api_field(mut e: ApiError) -> ApiError {
    e.field = e.field.map(|f| {
        match f.as_str() {
            "content" => "html",
            "text_content" => "text",
            other => other,
        }
        .to_string()
    });
    e
}

fn named(input: &TemplateInput, me: ApiCustomer) -> ApiResult<()> {
    if input.name.trim().is_empty() {
        return Err(ApiError::invalid(
            me.lang,
            "name",
            "模板名称不能为空",
            "name must not be empty.",
        ));
    }
    Ok(())
}

async fn one_view(app: &App, me: ApiCustomer, id: TemplateId) -> ApiResult<TemplateView> {
    let entry = templates::list_templates(&app.store, me.id, Some(id))
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?
        .pop()
        .ok_or_else(|| ApiError::not_found(me.lang))?;
    Ok(view(app, entry.template, entry.attachments))
}

async fn create(
    State(app): State<App>,
    me: ApiCustomer,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    named(&input, me)?;
    let new = NewTemplate {
        name: input.name.trim(),
        subject: &input.subject,
        content: &input.html,
        text_content: &input.text,
        encoding: Encoding::default(),
    };
    let id = templates::create_template(&app.store, &app.files, me.id, &new, &[], app.clock.now())
        .await
        .map_err(|e| api_field(ApiError::explained(&e, me.lang)))?;
    Ok((StatusCode::CREATED, Json(one_view(&app, me, id).await?)))
}

async fn all(
    State(app): State<App>,
    me: ApiCustomer,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<TemplateView>>> {
    let page = q.checked(me.lang)?;
    let all = templates::list_templates(&app.store, me.id, None)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    let p = page.of(all, |e| e.template.id.get());
    Ok(Json(Page {
        items: p
            .items
            .into_iter()
            .map(|e| view(&app, e.template, e.attachments))
            .collect(),
        next_cursor: p.next_cursor,
    }))
}

async fn one(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateView>> {
    let id = path_id(&id, me, TemplateId)?;
    Ok(Json(one_view(&app, me, id).await?))
}

/// `PUT`: the template's name and parts become the body's (an absent
/// `text` removes the text part).
async fn replace(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<TemplateView>> {
    let id = path_id(&id, me, TemplateId)?;
    named(&input, me)?;
    let change = TemplateChange {
        name: Some(input.name.trim()),
        subject: Some(&input.subject),
        content: Some(&input.html),
        text_content: Some(&input.text),
        encoding: None,
    };
    templates::edit_template(&app.store, me.id, id, &change, app.clock.now())
        .await
        .map_err(|e| api_field(ApiError::explained(&e, me.lang)))?;
    Ok(Json(one_view(&app, me, id).await?))
}

async fn remove(State(app): State<App>, me: ApiCustomer, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = path_id(&id, me, TemplateId)?;
    templates::delete_template(&app.store, &app.files, me.id, id)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(StatusCode::NO_CONTENT)
}
