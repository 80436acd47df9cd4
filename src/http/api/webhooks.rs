//! `/webhooks`: the customer's event endpoints (docs/webhooks.md): register
//! one (its signing secret shown this once), list, delete, and read the
//! attempts to deliver to it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Serialize;

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult, path_id};
use crate::app::App;
use crate::domain::ids::WebhookId;
use crate::domain::webhooks::{self, Attempt, Webhook, WebhookInput};
use crate::webhooks::SystemResolver;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks", get(all).post(create))
        .route("/webhooks/{id}", delete(remove))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

#[derive(Serialize)]
pub(crate) struct WebhookView {
    id: i64,
    url: String,
    events: Vec<&'static str>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn view(app: &App, w: Webhook, secret: Option<String>) -> WebhookView {
    WebhookView {
        id: w.id.get(),
        url: w.url,
        events: w.events.iter().map(|e| e.as_str()).collect(),
        created_at: app.clock.format_rfc3339(w.created_at),
        secret,
    }
}

async fn create(
    State(app): State<App>,
    me: ApiCustomer,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    let made = webhooks::create_webhook(
        &app.store,
        &app.secret_box,
        &SystemResolver,
        app.config.webhook_private,
        me.id,
        &input,
        app.clock.now(),
    )
    .await
    .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok((
        StatusCode::CREATED,
        Json(view(&app, made.webhook, Some(made.secret))),
    ))
}

async fn all(
    State(app): State<App>,
    me: ApiCustomer,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<WebhookView>>> {
    let page = q.checked(me.lang)?;
    let all = webhooks::list_webhooks(&app.store, me.id)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    let p = page.of(all, |w| w.id.get());
    Ok(Json(Page {
        items: p.items.into_iter().map(|w| view(&app, w, None)).collect(),
        next_cursor: p.next_cursor,
    }))
}

async fn remove(State(app): State<App>, me: ApiCustomer, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = path_id(&id, me, WebhookId)?;
    webhooks::delete_webhook(&app.store, me.id, id, app.clock.now())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(crate) struct AttemptView {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    at: String,
    status: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// The latest attempts, newest first (up to `limit`, 100 unless given).
async fn deliveries(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<AttemptView>>> {
    let id = path_id(&id, me, WebhookId)?;
    let page = q.checked(me.lang)?;
    let attempts = webhooks::webhook_deliveries(&app.store, me.id, id, page.limit as i64)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(Json(Page {
        items: attempts
            .into_iter()
            .map(|a: Attempt| AttemptView {
                event_id: webhooks::event_key(a.event),
                event_type: a.event_type,
                at: app.clock.format_rfc3339(a.at),
                status: a.status_code,
                error: a.error,
            })
            .collect(),
        next_cursor: None,
    }))
}
