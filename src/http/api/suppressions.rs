//! `/suppressions`: the addresses the customer never sends to again
//! (unsubscribed, complained, hard-bounced, or added by hand), through the
//! same use-cases as the console.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult};
use crate::app::App;
use crate::domain::email::EmailAddress;
use crate::domain::suppressions::{self, Suppression, SuppressionFilter};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/suppressions", get(all).post(add))
        .route("/suppressions/{email}", delete(lift))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SuppressionView {
    email: String,
    reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
    created_at: String,
}

fn view(app: &App, s: Suppression) -> SuppressionView {
    SuppressionView {
        email: s.email,
        reason: s.reason.as_str(),
        detail: s.detail,
        created_at: app.clock.format_rfc3339(s.at),
    }
}

/// Paged by address (the cursor is the last address given).
async fn all(
    State(app): State<App>,
    me: ApiCustomer,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<SuppressionView>>> {
    // The limit is checked as every listing's; the cursor here is an address.
    let limit = PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .checked(me.lang)?
    .limit;
    let filter = SuppressionFilter {
        q: q.q.filter(|s| !s.trim().is_empty()),
        reason: None,
    };
    let mut rows =
        suppressions::suppressions(&app.store, me.id, &filter, q.cursor.as_deref(), limit as i64 + 1)
            .await
            .map_err(|e| ApiError::explained(&e, me.lang))?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|s| s.email.clone())
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(|s| view(&app, s)).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddInput {
    emails: Vec<String>,
    /// Accepted for clients that send one; every address added here is
    /// recorded as a manual suppression.
    #[serde(default, rename = "reason")]
    _reason: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Invalid {
    index: usize,
    email: String,
    reason: &'static str,
}

#[derive(Serialize)]
pub(crate) struct AddAnswer {
    added: u64,
    invalid: Vec<Invalid>,
}

/// Adds addresses; the good ones are kept when others are bad.
async fn add(
    State(app): State<App>,
    me: ApiCustomer,
    ApiJson(input): ApiJson<AddInput>,
) -> ApiResult<Json<AddAnswer>> {
    if input.emails.len() > super::paging::MAX_LIMIT {
        return Err(ApiError::invalid(
            me.lang,
            "emails",
            "一次最多 1000 个地址",
            "At most 1000 addresses a request.",
        ));
    }
    let mut good = Vec::with_capacity(input.emails.len());
    let mut invalid = Vec::new();
    for (index, raw) in input.emails.into_iter().enumerate() {
        match EmailAddress::parse(raw.trim()) {
            Some(e) => good.push(e),
            None => invalid.push(Invalid {
                index,
                email: raw,
                reason: "invalid_email",
            }),
        }
    }
    let added = suppressions::suppress(&app.store, me.id, &good, app.clock.now())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(Json(AddAnswer { added, invalid }))
}

/// Lifts a suppression: the address may be sent to again.
async fn lift(State(app): State<App>, me: ApiCustomer, Path(email): Path<String>) -> ApiResult<StatusCode> {
    let Some(email) = EmailAddress::parse(email.trim()) else {
        return Err(ApiError::not_found(me.lang));
    };
    suppressions::lift(&app.store, me.id, &email, "", app.clock.now())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(StatusCode::NO_CONTENT)
}
