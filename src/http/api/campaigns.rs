//! `/campaigns`: a customer's bulk-send tasks as campaigns, made, watched,
//! paused, resumed and cancelled through the same use-cases as the vendor
//! API's `task.php` and the console.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::paging::{Page, PageQuery};
use super::{ApiCustomer, ApiError, ApiJson, ApiResult, path_id};
use crate::app::App;
use crate::clock::parse_rfc3339;
use crate::domain::ids::{DeliveryId, ListId, TaskId, TemplateId};
use crate::domain::reports::{self, Campaign, RecipientActivity, RecipientStatus};
use crate::domain::tasks::{self, Intervention, NewTask, SendStatus, SenderRequest, Task, TaskFilter};
use crate::domain::templates::FooterLanguage;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/campaigns", get(all).post(create))
        .route("/campaigns/{id}", get(one))
        .route("/campaigns/{id}/pause", post(pause))
        .route("/campaigns/{id}/resume", post(resume))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/recipients", get(recipients))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignInput {
    template_id: i64,
    list_ids: Vec<i64>,
    from: From,
    send_at: Option<String>,
    #[serde(default)]
    track: Track,
    #[serde(default)]
    unsubscribe_link: bool,
    #[serde(default)]
    hold: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct From {
    email: String,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Track {
    #[serde(default)]
    opens: bool,
    #[serde(default)]
    clicks: bool,
}

#[derive(Serialize)]
pub(crate) struct CampaignView {
    id: i64,
    ident: String,
    state: &'static str,
    send_at: String,
    template_id: i64,
    list_ids: [i64; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits: Option<Credits>,
}

#[derive(Serialize)]
struct Counts {
    recipients: i64,
    sent: i64,
    delivered: i64,
    failed: i64,
    deferred: i64,
    opened: i64,
    clicked: i64,
    unsubscribed: i64,
    complained: i64,
}

#[derive(Serialize)]
struct Credits {
    held: i64,
    charged: i64,
}

/// A task's state in the API's words.
fn state(t: &Task) -> &'static str {
    match t.status {
        SendStatus::Hold => "held",
        SendStatus::Waiting => "scheduled",
        SendStatus::Sending => "sending",
        SendStatus::Paused => "paused",
        SendStatus::Done => "done",
        SendStatus::Cancelled => "cancelled",
    }
}

fn view(app: &App, t: &Task, figures: Option<&Campaign>) -> CampaignView {
    CampaignView {
        id: t.id.get(),
        ident: t.ident.clone(),
        state: state(t),
        send_at: app.clock.format_rfc3339(t.send_time),
        template_id: t.tpl_id.get(),
        list_ids: [t.list_id.get()],
        counts: figures.map(|c| {
            let n = c.counts;
            Counts {
                recipients: n.recipients,
                sent: n.sent,
                delivered: n.delivered,
                failed: n.failed,
                deferred: n.deferred,
                opened: n.opened,
                clicked: n.clicked,
                unsubscribed: n.unsubscribed,
                complained: n.complained,
            }
        }),
        credits: figures.map(|c| Credits {
            held: c.credits.held,
            charged: c.credits.charged,
        }),
    }
}

fn invalid(me: ApiCustomer, field: &str, zh: &str, en: &str) -> ApiError {
    ApiError::invalid(me.lang, field, zh, en)
}

/// The campaign input as the use-case's new task.
fn new_task(input: CampaignInput, me: ApiCustomer) -> ApiResult<NewTask> {
    let [list] = input.list_ids[..] else {
        return Err(invalid(
            me,
            "list_ids",
            "list_ids 须恰好包含一个联系人分类",
            "list_ids must name exactly one list: a campaign sends to one list.",
        ));
    };
    let send_time = match input.send_at.as_deref() {
        None => None,
        Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
            invalid(
                me,
                "send_at",
                "send_at 须为带时区的 RFC 3339 时间",
                "send_at must be an RFC 3339 time with its offset.",
            )
        })?),
    };
    Ok(NewTask {
        template: TemplateId(input.template_id),
        list: ListId(list),
        sender: SenderRequest {
            domain: None,
            account: input.from.email,
        },
        sender_name: input.from.name.unwrap_or_default(),
        replyto: String::new(),
        send_qty: 0,
        start: 1,
        send_time,
        hold: input.hold,
        // A.6: 0 none, 1 opens, 2 opens and clicks (a click is also an open).
        track_status: match (input.track.opens, input.track.clicks) {
            (_, true) => 2,
            (true, false) => 1,
            (false, false) => 0,
        },
        subs_link: input.unsubscribe_link,
        track_domain: String::new(),
        footer_language: FooterLanguage::Auto,
    })
}

/// The domain names its inputs `template`, `list`, `sender`; the API's
/// body names them otherwise.
fn api_field(mut e: ApiError) -> ApiError {
    e.field = e.field.map(|f| {
        match f.as_str() {
            "template" => "template_id",
            "list" => "list_ids",
            "sender" | "send_account" | "send_domain" => "from.email",
            other => other,
        }
        .to_string()
    });
    e
}

async fn create(
    State(app): State<App>,
    me: ApiCustomer,
    ApiJson(input): ApiJson<CampaignInput>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let new = new_task(input, me)?;
    let task = tasks::create_task(&app.store, &app.clock, me.id, new)
        .await
        .map_err(|e| api_field(ApiError::explained(&e, me.lang)))?;
    app.engine_wakeup.notify_waiters();
    Ok((StatusCode::CREATED, Json(view(&app, &task, None))))
}

async fn all(
    State(app): State<App>,
    me: ApiCustomer,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<CampaignView>>> {
    let page = q.checked(me.lang)?;
    let all = tasks::tasks(&app.store, me.id, &TaskFilter::default())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    let p = page.of(all, |t| t.id.get());
    Ok(Json(Page {
        items: p.items.iter().map(|t| view(&app, t, None)).collect(),
        next_cursor: p.next_cursor,
    }))
}

async fn one(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let id = path_id(&id, me, TaskId)?;
    figures(&app, me, id).await
}

async fn figures(app: &App, me: ApiCustomer, id: TaskId) -> ApiResult<Json<CampaignView>> {
    let c = reports::campaign(&app.store, me.id, id)
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    Ok(Json(view(app, &c.task, Some(&c))))
}

async fn intervene(
    app: &App,
    me: ApiCustomer,
    id: &str,
    what: Intervention,
) -> ApiResult<Json<CampaignView>> {
    let id = path_id(id, me, TaskId)?;
    tasks::intervene(&app.store, me.id, id, what, app.clock.now(), app.clock.today())
        .await
        .map_err(|e| ApiError::explained(&e, me.lang))?;
    app.engine_wakeup.notify_waiters();
    figures(app, me, id).await
}

async fn pause(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    intervene(&app, me, &id, Intervention::Pause).await
}

async fn resume(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    intervene(&app, me, &id, Intervention::Resume).await
}

async fn cancel(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    intervene(&app, me, &id, Intervention::Cancel).await
}

#[derive(Deserialize)]
pub(crate) struct RecipientQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize)]
pub(crate) struct RecipientView {
    email: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    smtp_status: String,
    attempts: i64,
    sent_at: Option<String>,
    finished_at: Option<String>,
    opens: i64,
    first_open_at: Option<String>,
    clicks: i64,
    complained: bool,
}

fn recipient(app: &App, r: RecipientActivity) -> RecipientView {
    let at = |t: Option<i64>| t.map(|t| app.clock.format_rfc3339(t));
    RecipientView {
        email: r.address,
        status: match r.state.as_str() {
            "sent" => "delivered",
            other => other,
        },
        class: r.class.map(|c| c.as_str()),
        smtp_status: r.smtp_status,
        attempts: r.attempts,
        sent_at: at(r.sent_at),
        finished_at: at(r.finished_at),
        opens: r.opens,
        first_open_at: at(r.open_first),
        clicks: r.clicks,
        complained: r.complained,
    }
}

async fn recipients(
    State(app): State<App>,
    me: ApiCustomer,
    Path(id): Path<String>,
    Query(q): Query<RecipientQuery>,
) -> ApiResult<Json<Page<RecipientView>>> {
    let id = path_id(&id, me, TaskId)?;
    let page = q.page.checked(me.lang)?;
    let status = match q.status.as_deref().unwrap_or("delivered") {
        "delivered" => RecipientStatus::Delivered,
        "failed" => RecipientStatus::Failed,
        "opened" => RecipientStatus::Opened,
        "clicked" => RecipientStatus::Clicked,
        _ => {
            return Err(invalid(
                me,
                "status",
                "status 须为 delivered、failed、opened 或 clicked",
                "status must be delivered, failed, opened or clicked.",
            ));
        }
    };
    let limit = page.limit as i64;
    let mut rows = reports::campaign_recipients(
        &app.store,
        me.id,
        id,
        status,
        page.after.map(DeliveryId),
        limit + 1,
    )
    .await
    .map_err(|e| ApiError::explained(&e, me.lang))?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(page.limit);
        rows.last().map(|r| r.delivery.get().to_string())
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(|r| recipient(&app, r)).collect(),
        next_cursor,
    }))
}
