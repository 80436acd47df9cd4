//! `/lists/{id}/contacts`: adding a batch of contacts, each row answered.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiCustomer, ApiError, ApiJson, ApiResult};
use crate::app::App;
use crate::domain::email::EmailAddress;
use crate::domain::lists::{self, BatchRow, LeftOutReason, NewAddress};

pub(super) fn routes() -> Router<App> {
    Router::new().route("/lists/{id}/contacts", post(add))
}

#[derive(Deserialize)]
pub(crate) struct ContactInput {
    email: String,
    name: Option<String>,
    /// `var1` … `var10`.
    vars: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
pub(crate) struct Batch {
    contacts: Vec<ContactInput>,
}

#[derive(Serialize)]
pub(crate) struct Invalid {
    index: usize,
    email: String,
    reason: &'static str,
}

#[derive(Serialize)]
pub(crate) struct BatchAnswer {
    added: u64,
    duplicates: usize,
    invalid: Vec<Invalid>,
    suppressed: usize,
}

fn row(c: ContactInput) -> BatchRow {
    let Some(email) = EmailAddress::parse(c.email.trim()) else {
        return BatchRow::Invalid(c.email);
    };
    let mut a = NewAddress::new(email, c.name.as_deref().unwrap_or(""));
    for (k, v) in c.vars.unwrap_or_default() {
        let slot = k
            .strip_prefix("var")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=10).contains(n));
        match slot {
            Some(n) => a.vars[n - 1] = v,
            None => return BatchRow::Invalid(c.email),
        }
    }
    BatchRow::Address(a)
}

async fn add(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    ApiJson(batch): ApiJson<Batch>,
) -> ApiResult<Json<BatchAnswer>> {
    let id = super::lists::list_id(&id, me)?;
    let rows: Vec<BatchRow> = batch.contacts.into_iter().map(row).collect();
    let out = lists::add_addresses(&app.store, me.id, id, rows, app.clock.now())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(Json(BatchAnswer {
        added: out.added,
        duplicates: out.duplicates(),
        suppressed: out.suppressed.len(),
        invalid: out
            .left_out
            .into_iter()
            .filter(|l| l.reason == LeftOutReason::Invalid)
            .map(|l| Invalid {
                index: l.index,
                email: l.email,
                reason: "invalid_email",
            })
            .collect(),
    }))
}
