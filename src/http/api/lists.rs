//! `/lists`: the customer's contact lists.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult, path_id};
use crate::app::App;
use crate::domain::ids::ListId;
use crate::domain::lists::{self, ContactList, ListChange, ListDescription, ListName, ListStatus, NewList};
use crate::http::explain::Explain;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/lists", get(all).post(create))
        .route("/lists/{id}", get(one).patch(edit).delete(remove))
}

#[derive(Serialize)]
pub(crate) struct ListView {
    id: i64,
    name: String,
    description: String,
    contacts: i64,
}

impl From<ContactList> for ListView {
    fn from(l: ContactList) -> ListView {
        ListView {
            id: l.id.get(),
            name: l.subject,
            description: l.description,
            contacts: l.count,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ListInput {
    name: Option<String>,
    description: Option<String>,
}

fn explained(e: impl Explain, me: ApiCustomer) -> ApiError {
    ApiError::explained(&e, me.lang)
}

async fn all(
    State(app): State<App>,
    me: ApiCustomer,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ListView>>> {
    let page = q.checked(me.lang)?;
    let all = lists::lists(&app.store, me.id)
        .await
        .map_err(|e| explained(e, me))?;
    let p = page.of(all, |l| l.id.get());
    Ok(Json(Page {
        items: p.items.into_iter().map(ListView::from).collect(),
        next_cursor: p.next_cursor,
    }))
}

async fn create(
    State(app): State<App>,
    me: ApiCustomer,
    ApiJson(input): ApiJson<ListInput>,
) -> ApiResult<(StatusCode, Json<ListView>)> {
    let name = ListName::parse(input.name.as_deref().unwrap_or("")).map_err(|e| explained(e, me))?;
    let description =
        ListDescription::parse(input.description.as_deref().unwrap_or("")).map_err(|e| explained(e, me))?;
    let new = NewList {
        name,
        description,
        status: ListStatus::Enabled,
    };
    let id = lists::create_list(&app.store, me.id, &new, app.clock.now())
        .await
        .map_err(|e| explained(e, me))?;
    let l = lists::list(&app.store, me.id, id)
        .await
        .map_err(|e| explained(e, me))?;
    Ok((StatusCode::CREATED, Json(l.into())))
}

async fn one(State(app): State<App>, me: ApiCustomer, Path(id): Path<String>) -> ApiResult<Json<ListView>> {
    let id = path_id(&id, me, ListId)?;
    let l = lists::list(&app.store, me.id, id)
        .await
        .map_err(|e| explained(e, me))?;
    Ok(Json(l.into()))
}

async fn edit(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ListInput>,
) -> ApiResult<Json<ListView>> {
    let id = path_id(&id, me, ListId)?;
    let change = ListChange {
        name: input
            .name
            .as_deref()
            .map(ListName::parse)
            .transpose()
            .map_err(|e| explained(e, me))?,
        description: input
            .description
            .as_deref()
            .map(ListDescription::parse)
            .transpose()
            .map_err(|e| explained(e, me))?,
        status: None,
    };
    lists::edit_list(&app.store, me.id, id, &change)
        .await
        .map_err(|e| explained(e, me))?;
    let l = lists::list(&app.store, me.id, id)
        .await
        .map_err(|e| explained(e, me))?;
    Ok(Json(l.into()))
}

async fn remove(State(app): State<App>, me: ApiCustomer, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = path_id(&id, me, ListId)?;
    lists::delete_list(&app.store, me.id, id)
        .await
        .map_err(|e| explained(e, me))?;
    Ok(StatusCode::NO_CONTENT)
}
