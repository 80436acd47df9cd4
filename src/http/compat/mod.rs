//! The vendor-compatible API under `/mm-ms/api/` (credentials in the query)
//! and `/mm-ms/apinew/` (HTTP Basic). One handler reads the parameters,
//! authenticates, checks `do`, and hands a [`Call`] to the script's module;
//! every failure leaves as the XML envelope with HTTP 200 (D-2).

mod account;
mod bs;
mod mloperate;
pub mod reply;
mod stats;
mod task;
mod template;
mod track;
pub mod xml;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;

use self::reply::{ApiError, ApiResult, Code};
use super::RouteLabel;
use crate::app::App;
use crate::domain::accounts::Role;
use crate::domain::accounts::{Principal, Secret};
use crate::domain::ids::CustomerId;
use crate::http::params::{self, FORM_LIMIT, Limits, Params};

/// The two roots of A.1 and H-6.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Api,
    ApiNew,
}

impl Root {
    fn prefix(self) -> &'static str {
        match self {
            Root::Api => "/mm-ms/api/",
            Root::ApiNew => "/mm-ms/apinew/",
        }
    }
}

/// The scripts served; an unknown one is a 404.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Script {
    Account,
    Mloperate,
    Template,
    Bs,
    Task,
    Track,
    TrackExport,
    Statistic,
    FailExport,
    FailExportAll,
    Stask,
    Deduction,
}

impl Script {
    fn from_path(name: &str) -> Option<Script> {
        match name {
            "account.php" => Some(Script::Account),
            "mloperate.php" => Some(Script::Mloperate),
            "template.php" => Some(Script::Template),
            "bs.php" => Some(Script::Bs),
            "task.php" => Some(Script::Task),
            "track.php" => Some(Script::Track),
            "trackexport.php" => Some(Script::TrackExport),
            "statistic.php" => Some(Script::Statistic),
            "failexport.php" => Some(Script::FailExport),
            "failexportall.php" => Some(Script::FailExportAll),
            "stask.php" => Some(Script::Stask),
            "deduction.php" => Some(Script::Deduction),
            _ => None,
        }
    }

    /// The operations a multi-function script knows (D-3); `None` for the
    /// single-function scripts, which ignore `do`.
    fn operations(self) -> Option<&'static [&'static str]> {
        match self {
            Script::Account => Some(account::OPERATIONS),
            Script::Mloperate => Some(mloperate::OPERATIONS),
            Script::Template => Some(template::OPERATIONS),
            Script::Bs => Some(bs::OPERATIONS),
            Script::Task => Some(task::OPERATIONS),
            Script::Track => Some(track::OPERATIONS),
            Script::TrackExport
            | Script::Statistic
            | Script::FailExport
            | Script::FailExportAll
            | Script::Stask
            | Script::Deduction => None,
        }
    }

    /// Which kind of account a request must authenticate as.
    fn role(self, op: Option<&str>, params: &Params) -> Role {
        match self {
            Script::Bs => bs::role(op, params),
            _ => Role::Customer,
        }
    }

    /// The largest file part a request may upload, and the largest sum of
    /// them: attachments (D-17) are refused while they stream in, import
    /// files get QUNFA_IMPORT_MAX.
    fn upload_limits(self, app: &App) -> (u64, u64) {
        use crate::domain::templates::{ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX};
        match self {
            Script::Template => (ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX),
            _ => (app.config.import_max, app.config.import_max),
        }
    }
}

/// An authenticated request, ready for its operation.
pub struct Call<'a> {
    pub app: &'a App,
    /// The authenticated account's id: a customer's, or a manager's where
    /// the script lets one in (`bs.php`).
    pub account_id: i64,
    pub op: &'a str,
    pub params: &'a Params,
}

impl Call<'_> {
    /// The authenticated customer (for the scripts only customers call).
    pub fn customer(&self) -> CustomerId {
        CustomerId(self.account_id)
    }
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/mm-ms/api/{script}", any(api))
        .route("/mm-ms/apinew/{script}", any(apinew))
}

async fn api(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(script): Path<String>,
    req: Request,
) -> Response {
    handle(app, Root::Api, script, peer.ip(), req).await
}

async fn apinew(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(script): Path<String>,
    req: Request,
) -> Response {
    handle(app, Root::ApiNew, script, peer.ip(), req).await
}

async fn handle(app: App, root: Root, script_name: String, ip: IpAddr, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
        let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    }
    let Some(script) = Script::from_path(&script_name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let label = RouteLabel(format!("{}{script_name}", root.prefix()));
    let (parts, body) = req.into_parts();
    let params = read_params(&app, &script_name, parts.uri.query(), &parts.headers, body).await;
    let mut response = match run(&app, root, script, ip, &parts.headers, &params).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(label);
    response
}

/// Reads a request's parameters with the upload limits of `script`.
async fn read_params(
    app: &App,
    script: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Params {
    let tmp_dir = app.config.data_dir.join("tmp");
    let (file, files) = Script::from_path(script)
        .unwrap_or(Script::Mloperate)
        .upload_limits(app);
    let limits = Limits {
        form: FORM_LIMIT,
        file,
        files,
        tmp_dir: &tmp_dir,
    };
    Params::read(query, headers, body, &limits).await
}

async fn run(
    app: &App,
    root: Root,
    script: Script,
    ip: IpAddr,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult {
    let op = params.auth_field("do");
    let role = script.role(op, params);
    let account_id = authenticate(app, root, role, ip, headers, params)
        .await
        .ok_or(ApiError::new(Code::AuthError))?;
    let op = match script.operations() {
        Some(ops) => op
            .filter(|o| ops.contains(o))
            .ok_or(ApiError::new(Code::UnknownDo))?,
        None => "",
    };
    if let Some(e) = &params.body_error {
        return Err(e.clone().into());
    }
    let call = Call {
        app,
        account_id,
        op,
        params,
    };
    match script {
        Script::Account => account::call(call).await,
        Script::Mloperate => mloperate::call(call).await,
        Script::Template => template::call(call).await,
        Script::Bs => bs::call(call).await,
        Script::Task => task::call(call).await,
        Script::Track => track::call(call).await,
        Script::TrackExport => track::export(call).await,
        Script::Statistic => stats::statistic(call).await,
        Script::FailExport => stats::failexport(call, false).await,
        Script::FailExportAll => stats::failexport(call, true).await,
        Script::Stask => stats::stask(call).await,
        Script::Deduction => stats::deduction(call).await,
    }
}

/// `/api/`: `username` + md5 `password` from the query (or body). `/apinew/`:
/// the Basic header, else the same parameters (H-6).
async fn authenticate(
    app: &App,
    root: Root,
    role: Role,
    ip: IpAddr,
    headers: &HeaderMap,
    params: &Params,
) -> Option<i64> {
    if root == Root::ApiNew
        && let Some(value) = headers.get(header::AUTHORIZATION)
    {
        let (user, pass) = basic_credentials(value)?;
        return app
            .auth
            .check(&app.store, role, &user, Secret::DigestOrPlain(&pass), ip)
            .await
            .map(Principal::number);
    }
    let user = params.auth_field("username")?;
    let pass = params.auth_field("password")?;
    app.auth
        .check(&app.store, role, user, Secret::Digest(pass), ip)
        .await
        .map(Principal::number)
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let v = value.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}
