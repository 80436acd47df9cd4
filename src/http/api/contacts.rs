//! `/lists/{id}/contacts`: adding a batch of contacts, each row answered;
//! a list's contacts paged by cursor; one contact removed by address.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult, path_id};
use crate::app::App;
use crate::clock::LastTime;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, ListId};
use crate::domain::lists::{self, Address, AddressFilter, BatchRow, LeftOutReason, NewAddress};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/lists/{id}/contacts", post(add).get(page))
        .route("/lists/{id}/contacts/{email}", delete(remove))
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
    let id = path_id(&id, me, ListId)?;
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

#[derive(Deserialize)]
pub(crate) struct ContactQuery {
    /// A part of the address or the name, case-insensitive.
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize)]
pub(crate) struct ContactView {
    id: i64,
    email: String,
    name: String,
    vars: Vars,
    created_at: String,
}

/// An address's variables as a JSON object of those that are set, `var1`
/// to `var10` in order, written straight from the address (a map built per
/// contact was a seventh of a page's time).
pub(crate) struct Vars([String; 10]);

impl Serialize for Vars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let set = self.0.iter().filter(|v| !v.is_empty()).count();
        let mut map = s.serialize_map(Some(set))?;
        for (name, v) in lists::VAR_NAMES.iter().zip(&self.0) {
            if !v.is_empty() {
                map.serialize_entry(name, v)?;
            }
        }
        map.end()
    }
}

fn view(a: Address, created_at: String) -> ContactView {
    ContactView {
        id: a.id.get(),
        email: a.address,
        name: a.fullname,
        vars: Vars(a.vars),
        created_at,
    }
}

async fn page(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    Query(q): Query<ContactQuery>,
) -> ApiResult<Json<Page<ContactView>>> {
    let list = path_id(&id, me, ListId)?;
    let page = q.page.checked(me.lang)?;
    let filter = AddressFilter {
        list_id: Some(list),
        keyword: q.q.filter(|k| !k.trim().is_empty()),
        ..Default::default()
    };
    let rows = lists::addresses_after(
        &app.store,
        me.id,
        &filter,
        AddressId(page.after.unwrap_or(0)),
        page.limit as i64 + 1,
    )
    .await
    .map_err(|e| ApiError::explained(&e, me.lang))?;
    let p = page.of(rows, |a| a.id.get());
    Ok(Json(Page {
        items: {
            let mut time = LastTime::default();
            p.items
                .into_iter()
                .map(|a| {
                    let created_at = time
                        .text(a.created_at, |t| app.clock.format_rfc3339(t))
                        .to_string();
                    view(a, created_at)
                })
                .collect()
        },
        next_cursor: p.next_cursor,
    }))
}

/// Removes the address from the list (no unsubscribe is logged: a later
/// import may add it again).
async fn remove(
    State(app): State<App>,
    me: ApiCustomer,
    Path((id, email)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let list = path_id(&id, me, ListId)?;
    let filter = AddressFilter {
        list_id: Some(list),
        keyword: Some(email.trim().to_string()),
        ..Default::default()
    };
    let mut after = AddressId(0);
    loop {
        let rows = lists::addresses_after(&app.store, me.id, &filter, after, 500)
            .await
            .map_err(|e| ApiError::explained(&e, me.lang))?;
        let Some(last) = rows.last() else {
            return Err(ApiError::not_found(me.lang));
        };
        after = last.id;
        if let Some(a) = rows.iter().find(|a| a.address.eq_ignore_ascii_case(email.trim())) {
            lists::delete_address(&app.store, me.id, a.id)
                .await
                .map_err(|e| ApiError::explained(&e, me.lang))?;
            return Ok(StatusCode::NO_CONTENT);
        }
    }
}
