//! `GET /account`: who the key acts as, its service and credits.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiCustomer, ApiError, ApiResult};
use crate::app::App;
use crate::clock::format_date;
use crate::domain::accounts;

pub(super) fn routes() -> Router<App> {
    Router::new().route("/account", get(account))
}

#[derive(Serialize)]
pub(crate) struct Account {
    username: String,
    company: String,
    service: ServiceView,
    credits: Credits,
}

#[derive(Serialize)]
struct ServiceView {
    status: &'static str,
    #[serde(rename = "type")]
    service_type: &'static str,
    send_type: &'static str,
    /// `YYYY-MM-DD`, or null when unbounded.
    begin: Option<String>,
    end: Option<String>,
}

#[derive(Serialize)]
struct Credits {
    available: i64,
    bought: i64,
}

async fn account(State(app): State<App>, me: ApiCustomer) -> ApiResult<Json<Account>> {
    let customer = accounts::customer_by_id(&app.store, me.id)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?
        .ok_or_else(|| ApiError::unauthorized(me.lang))?;
    let service = accounts::service(&app.store, me.id)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(Json(Account {
        username: customer.username,
        company: customer.profile.company,
        service: ServiceView {
            status: service.status.as_str(),
            service_type: service.service_type.as_str(),
            send_type: service.send_type.as_str(),
            begin: service.begin.map(format_date),
            end: service.end.map(format_date),
        },
        credits: Credits {
            available: service.available(app.clock.today()),
            bought: service.qty_buytotal,
        },
    }))
}
