//! The web console under `/sendstat/`: the 8.1 login (D-10, H-12),
//! sessions, and server-rendered pages (minijinja) in Chinese and English,
//! with charts drawn as inline SVG. Every page works without JavaScript;
//! one small script adds live progress and the template editor's live
//! preview.
//!
//! The console is an adapter like the vendor API: each form is read into
//! the typed input of a domain use-case, and each refusal is worded in the
//! console's language (`http::explain`), next to the field it concerns.
//!
//! A customer's pages live under `/sendstat/…`; an agent or a manager opens
//! the same pages for one of the customers it may see under
//! `/sendstat/c/{customer}/…`. A customer it may not see answers exactly like
//! one that does not exist.

// A handler's early exit is the response itself (a redirect, a 403).
#![allow(clippy::result_large_err)]

mod account;
mod chart;
mod i18n;
mod lists;
mod pages;
mod senders;
mod suppressions;
mod tasks;
mod templates;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use minijinja::{Environment, Value};

use self::i18n::Lang;
use crate::app::App;
use crate::domain::accounts::{self, Principal, Role, SESSION_SECS, Secret};
use crate::domain::ids::CustomerId;
use crate::http::explain::Explained;
use crate::http::params::{FORM_LIMIT, Limits, ParamError, Params};

const SESSION_COOKIE: &str = "qunfa_session";
const LANG_COOKIE: &str = "qunfa_lang";

/// Rows on one page of a listing.
pub const PAGE: i64 = 50;

/// `302 Found` to `to` (8.1 names 302; axum's `Redirect::to` is a 303).
pub fn found(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

pub fn router() -> Router<App> {
    let mut r = Router::new()
        .route("/sendstat", get(|| async { Redirect::permanent("/sendstat/") }))
        .route("/sendstat/", get(index).post(login))
        .route("/sendstat/logout", post(logout))
        .route("/sendstat/static/{file}", get(static_file))
        .route("/sendstat/c/{cid}/", get(pages::dashboard_page))
        .route(
            "/sendstat/c/{cid}",
            get(|Path(cid): Path<i64>| async move { found(&format!("/sendstat/c/{cid}/")) }),
        );
    for (path, route) in pages::routes()
        .into_iter()
        .chain(tasks::routes())
        .chain(lists::routes())
        .chain(templates::routes())
        .chain(suppressions::routes())
        .chain(senders::routes())
        .chain(account::routes())
    {
        r = r
            .route(&format!("/sendstat{path}"), route.clone())
            .route(&format!("/sendstat/c/{{cid}}{path}"), route);
    }
    r
}

/// A customer page's path (after `/sendstat` or `/sendstat/c/{id}`) and
/// its handlers.
pub type Routes = Vec<(&'static str, MethodRouter<App>)>;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("macros.html", include_str!("templates/macros.html")),
        ("login.html", include_str!("templates/login.html")),
        ("dashboard.html", include_str!("templates/dashboard.html")),
        ("tasks.html", include_str!("templates/tasks.html")),
        ("task.html", include_str!("templates/task.html")),
        ("task_edit.html", include_str!("templates/task_edit.html")),
        ("lists.html", include_str!("templates/lists.html")),
        ("list.html", include_str!("templates/list.html")),
        ("address.html", include_str!("templates/address.html")),
        ("templates.html", include_str!("templates/templates.html")),
        ("template.html", include_str!("templates/template.html")),
        ("suppressions.html", include_str!("templates/suppressions.html")),
        ("domains.html", include_str!("templates/domains.html")),
        ("account.html", include_str!("templates/account.html")),
        ("customers.html", include_str!("templates/customers.html")),
    ] {
        env.add_template(name, source).expect("console templates parse");
    }
    env
});

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (include_str!("static/console.css"), "text/css; charset=utf-8"),
        "console.js" => (
            include_str!("static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// One query parameter, decoded.
pub fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// `s` for a URL's query.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Who is asking, in which language, for which customer: every console
/// handler starts here.
pub struct Ctx {
    pub app: App,
    pub lang: Lang,
    /// A `?lang=` switch to remember in a cookie.
    set_lang: bool,
    pub me: Option<Me>,
    /// The customer whose pages these are, when there is one.
    acting: Option<Acting>,
}

/// The logged-in account.
pub struct Me {
    pub principal: Principal,
    pub username: String,
    pub csrf: String,
}

/// The customer a page is about: the customer logged in, or the one an
/// agent or a manager opened.
#[derive(Clone, Debug)]
pub struct Acting {
    pub id: CustomerId,
    pub username: String,
    /// Where its pages are: `/sendstat` or `/sendstat/c/{id}`.
    pub base: String,
}

/// The customer a `/sendstat/c/{id}/…` path names.
fn path_customer(path: &str) -> Option<Option<i64>> {
    let rest = path.strip_prefix("/sendstat/c/")?;
    let id = rest.split('/').next().unwrap_or("");
    Some(id.parse().ok())
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Ctx, Response> {
        let chosen = query_param(&parts.uri, "lang").as_deref().and_then(Lang::parse);
        let lang = chosen
            .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
            .unwrap_or_else(|| {
                Lang::from_accept(
                    parts
                        .headers
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    Lang::Zh,
                )
            });
        let mut me = None;
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let found = accounts::find_session(&app.store, token, app.clock.now())
                .await
                .map_err(|e| server_error(&e))?;
            me = found.map(|a| Me {
                principal: a.session.principal,
                username: a.username,
                csrf: a.session.csrf,
            });
        }
        let acting = match (&me, path_customer(parts.uri.path())) {
            (None, _) => None,
            (Some(m), None) => match m.principal {
                Principal::Customer(id) => Some(Acting {
                    id,
                    username: m.username.clone(),
                    base: "/sendstat".into(),
                }),
                Principal::Agent(_) | Principal::Manager(_) => None,
            },
            (Some(_), Some(None)) => return Err(StatusCode::NOT_FOUND.into_response()),
            (Some(m), Some(Some(id))) => {
                // A customer keeps to its own paths; an operator sees only
                // the customers it may, and any other is not there.
                if m.principal.role() == Role::Customer {
                    return Err(StatusCode::NOT_FOUND.into_response());
                }
                let c = accounts::visible_customer(&app.store, m.principal, CustomerId(id))
                    .await
                    .map_err(|e| server_error(&e))?
                    .ok_or_else(|| StatusCode::NOT_FOUND.into_response())?;
                Some(Acting {
                    id: c.id,
                    username: c.username,
                    base: format!("/sendstat/c/{}", c.id),
                })
            }
        };
        Ok(Ctx {
            app: app.clone(),
            lang,
            set_lang: chosen.is_some(),
            me,
            acting,
        })
    }
}

pub fn server_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

/// The strings of `lang` as the templates' `tr` map (`tr.login`). A map
/// object, not `Value::from_iter`, which makes a list of pairs in which
/// every `tr.key` is undefined and renders as nothing.
fn translations(lang: Lang) -> Value {
    Value::from(lang.strings())
}

/// A refusal shown on a page: next to its field when it names one, and
/// at the top of the page.
#[derive(Clone, Debug, Default)]
pub struct Problem {
    /// The form field at fault, if any.
    pub field: Option<String>,
    pub message: String,
}

impl From<Explained> for Problem {
    fn from(e: Explained) -> Problem {
        Problem {
            field: e.field.map(str::to_string),
            message: e.message,
        }
    }
}

impl Problem {
    /// A refusal of a form's input, beside its field and named by the
    /// field's label on the page; a body that could not be read as
    /// `http::explain` words it.
    pub fn of_param(e: &ParamError, lang: Lang) -> Problem {
        use crate::http::explain::Explain;
        let (name, missing) = match e {
            ParamError::Missing(name) => (name, true),
            ParamError::Invalid(name) => (name, false),
            other => return Problem::from(other.explain(lang)),
        };
        let strings = lang.strings();
        let label = strings.get(label_key(name)).copied().unwrap_or(name.as_str());
        let message = match (lang, missing) {
            (Lang::Zh, true) => format!("请填写“{label}”"),
            (Lang::Zh, false) => format!("“{label}”格式不正确"),
            (Lang::En, true) => format!("{label}: this is required."),
            (Lang::En, false) => format!("{label}: this is not valid."),
        };
        Problem {
            field: Some(name.clone()),
            message,
        }
    }

    pub fn on(mut self, field: &str) -> Problem {
        self.field = Some(field.to_string());
        self
    }
}

/// The string key of a form field's label.
fn label_key(field: &str) -> &str {
    match field {
        "email" => "address",
        "text" => "text_part",
        "to" => "test_to",
        "files" => "attachments",
        "current" => "current_password",
        "new" => "new_password",
        "repeated" => "repeat_password",
        "password" => "mailbox_password",
        "emails" => "one_per_line",
        "ids" => "with_selected",
        "target" => "target_list",
        other => other,
    }
}

/// What a page says after a form: a notice that it worked, or a problem.
#[derive(Clone, Debug, Default)]
pub struct Notice {
    pub ok: Option<String>,
    pub problem: Option<Problem>,
}

impl Notice {
    pub fn problem(p: impl Into<Problem>) -> Notice {
        Notice {
            ok: None,
            problem: Some(p.into()),
        }
    }
}

impl Ctx {
    /// Renders a page with the layout's common values (`tr`, `lang`, `me`,
    /// `base`, the notice).
    pub fn render(&self, template: &str, values: Value) -> Response {
        self.render_with(StatusCode::OK, template, values, &Notice::default())
    }

    /// Renders a page with what a form did: a notice, or a problem at the
    /// top of the page and next to its field.
    pub fn render_notice(&self, template: &str, values: Value, notice: &Notice) -> Response {
        self.render_with(StatusCode::OK, template, values, notice)
    }

    pub fn render_with(
        &self,
        status: StatusCode,
        template: &str,
        values: Value,
        notice: &Notice,
    ) -> Response {
        let me = self.me.as_ref().map(|m| {
            minijinja::context! {
                role => m.principal.role().as_str(),
                username => m.username.clone(),
                csrf => m.csrf.clone(),
            }
        });
        let acting = self.acting.as_ref().map(|a| {
            minijinja::context! {
                id => a.id.get(),
                username => a.username.clone(),
                // An operator's view of a customer, not the customer's own.
                opened => a.base != "/sendstat",
            }
        });
        let mut errors = BTreeMap::new();
        if let Some(Problem {
            field: Some(f),
            message,
        }) = &notice.problem
        {
            errors.insert(f.clone(), message.clone());
        }
        let common = minijinja::context! {
            tr => translations(self.lang),
            lang => self.lang.code(),
            me => me,
            acting => acting,
            // Made of a number: nothing in it needs escaping.
            base => Value::from_safe_string(self.acting.as_ref().map_or("/sendstat", |a| a.base.as_str()).to_string()),
            flash => notice.problem.as_ref().map(|p| p.message.clone()).or_else(|| notice.ok.clone()),
            flash_kind => if notice.problem.is_some() { "error" } else { "ok" },
            flash_field => notice.problem.as_ref().and_then(|p| p.field.clone()),
            errors => errors,
        };
        let ctx = minijinja::context! { ..values, ..common };
        let html = match TEMPLATES.get_template(template).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(e) => return server_error(&e),
        };
        let mut r = (status, axum::response::Html(html)).into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        // Scripts and styles come from the console itself; a template's own
        // markup is shown only inside the preview's sandboxed frame.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: http: https:; style-src 'self' 'unsafe-inline'; \
                 frame-src 'self' about: data:; frame-ancestors 'none'; form-action 'self' http: https:",
            ),
        );
        if self.set_lang
            && let Ok(v) = HeaderValue::from_str(&format!(
                "{LANG_COOKIE}={}; Path=/sendstat/; Max-Age=31536000; SameSite=Lax",
                self.lang.code()
            ))
        {
            h.append(header::SET_COOKIE, v);
        }
        r
    }

    /// The customer whose pages these are, or a redirect to the login page
    /// (no session) or a 403 (an operator that opened no customer).
    pub fn customer(&self) -> Result<&Acting, Response> {
        match (&self.me, &self.acting) {
            (_, Some(a)) => Ok(a),
            (None, None) => Err(found("/sendstat/")),
            (Some(_), None) => Err(StatusCode::FORBIDDEN.into_response()),
        }
    }

    /// The logged-in account, or a redirect to the login page.
    pub fn me(&self) -> Result<&Me, Response> {
        self.me.as_ref().ok_or_else(|| found("/sendstat/"))
    }

    /// A form's CSRF token must be the session's.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), Response> {
        match &self.me {
            Some(m) if given == Some(m.csrf.as_str()) => Ok(()),
            _ => Err((StatusCode::FORBIDDEN, "invalid form token\n").into_response()),
        }
    }

    /// A path of the acting customer's pages.
    pub fn link(&self, path: &str) -> String {
        let base = self.acting.as_ref().map_or("/sendstat", |a| a.base.as_str());
        format!("{base}{path}")
    }

    /// One of the console's strings in the page's language.
    pub fn tr(&self, key: &str) -> String {
        self.lang.strings().get(key).copied().unwrap_or(key).to_string()
    }
}

/// What a form may upload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Uploads {
    None,
    /// A template's attachments.
    Attachments,
    /// An address file to import.
    Import,
}

/// Reads a console form (url-encoded or multipart); the CSRF token must be
/// the session's. A body that broke a limit is in `body_error`.
pub async fn form(ctx: &Ctx, req: Request, uploads: Uploads) -> Result<Params, Response> {
    use crate::domain::templates::{ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX};
    let (parts, body) = req.into_parts();
    let tmp_dir = ctx.app.config.data_dir.join("tmp");
    let (file, files) = match uploads {
        Uploads::None => (0, 0),
        Uploads::Attachments => (ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX),
        Uploads::Import => (ctx.app.config.import_max, ctx.app.config.import_max),
    };
    let limits = Limits {
        form: FORM_LIMIT,
        file,
        files,
        tmp_dir: &tmp_dir,
    };
    let p = Params::read(None, &parts.headers, body, &limits).await;
    ctx.check_csrf(p.raw("csrf").ok().flatten())?;
    Ok(p)
}

/// A form field as typed, for showing it again after a refusal.
pub fn typed(p: &Params, name: &str) -> String {
    p.raw(name).ok().flatten().unwrap_or("").to_string()
}

/// `/sendstat/`: the home page of the logged-in role, else the login page
/// (also at `?module=base&action=login`).
async fn index(ctx: Ctx) -> Response {
    match ctx.me.as_ref().map(|m| m.principal.role()) {
        Some(Role::Customer) => pages::dashboard(&ctx).await,
        Some(Role::Agent | Role::Manager) => pages::customers(&ctx).await,
        None => login_page(&ctx, false, "", StatusCode::OK),
    }
}

fn login_page(ctx: &Ctx, error: bool, username: &str, status: StatusCode) -> Response {
    ctx.render_with(
        status,
        "login.html",
        minijinja::context! { error, username },
        &Notice::default(),
    )
}

/// The host (with any port) of an absolute http(s) URL, lower case.
fn url_host(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// D-10 / H-12: `errurl` is followed only to the posting page's host (its
/// `Origin`, else its `Referer`) or an allow-listed one.
fn allowed_errurl(app: &App, headers: &HeaderMap, errurl: &str) -> bool {
    let Some(host) = url_host(errurl) else {
        return false;
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "null")
        .or_else(|| headers.get(header::REFERER).and_then(|v| v.to_str().ok()))
        .and_then(url_host);
    origin.as_deref() == Some(host.as_str()) || app.config.errurl_hosts.contains(&host)
}

/// The login form's limits: a few small fields, no file.
fn login_limits(app: &App) -> (std::path::PathBuf, usize) {
    (app.config.data_dir.join("tmp"), 64 * 1024)
}

/// 8.1: `POST /sendstat/?module=base&action=login`, from our own login page
/// or a customer's page on its own site (no CSRF token can exist then).
async fn login(ctx: Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if query_param(&parts.uri, "action").as_deref() != Some("login") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (tmp_dir, form_limit) = login_limits(&ctx.app);
    let limits = Limits {
        form: form_limit,
        file: 0,
        files: 0,
        tmp_dir: &tmp_dir,
    };
    let p = Params::read(None, &parts.headers, body, &limits).await;
    let field = |name: &str| p.raw(name).ok().flatten().unwrap_or("").to_string();
    let (username, password, user_type, errurl) = (
        field("username"),
        field("password"),
        field("user_type"),
        field("errurl"),
    );
    let ip: IpAddr = peer.ip();
    let principal = match Role::from_login_user_type(user_type.trim()) {
        Some(role) if !username.trim().is_empty() && !password.is_empty() => {
            ctx.app
                .auth
                .check(
                    &ctx.app.store,
                    role,
                    username.trim(),
                    Secret::Plain(&password),
                    ip,
                )
                .await
        }
        _ => None,
    };
    let Some(principal) = principal else {
        if !errurl.is_empty() && allowed_errurl(&ctx.app, &parts.headers, &errurl) {
            return found(errurl.trim());
        }
        return login_page(&ctx, true, username.trim(), StatusCode::OK);
    };
    let opened = match accounts::open_session(&ctx.app.store, principal, ctx.app.clock.now()).await {
        Ok(o) => o,
        Err(e) => return server_error(&e),
    };
    let secure = if ctx.app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let mut r = found("/sendstat/");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path=/sendstat/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Lax{secure}",
        opened.token
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(ctx: Ctx, req: Request) -> Response {
    let headers = req.headers().clone();
    if let Err(r) = form(&ctx, req, Uploads::None).await {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = accounts::close_session(&ctx.app.store, token).await
    {
        return server_error(&e);
    }
    let mut r = found("/sendstat/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("qunfa_session=; Path=/sendstat/; Max-Age=0; HttpOnly; SameSite=Lax"),
    );
    r
}

/// A body that can't be read as a form, as a problem on the page.
pub fn body_problem(p: &Params, lang: Lang) -> Option<Problem> {
    p.body_error.as_ref().map(|e| Problem::of_param(e, lang))
}

/// The answer to a page or an action on an id the customer does not have.
pub fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// A flash key a redirect after a form may carry (`?ok=KEY`), as shown.
pub fn ok_flash(ctx: &Ctx, uri: &axum::http::Uri) -> Notice {
    const KEYS: &[&str] = &[
        "created",
        "done",
        "saved",
        "deleted",
        "moved",
        "copied",
        "sent_test",
        "lifted",
        "added",
        "password_changed",
        "imported",
        "duplicated",
    ];
    let ok = query_param(uri, "ok")
        .and_then(|k| KEYS.iter().find(|x| **x == k).copied())
        .map(|k| ctx.tr(&format!("ok_{k}")));
    Notice { ok, problem: None }
}

#[cfg(test)]
mod tests {
    use super::{Lang, TEMPLATES, path_customer, translations, url_host};

    #[test]
    fn every_template_parses() {
        assert!(TEMPLATES.templates().count() >= 16);
    }

    #[test]
    fn pages_show_their_labels_in_both_languages() {
        for (lang, label, switch) in [(Lang::En, "Log in", "中文"), (Lang::Zh, "登录", "English")] {
            let ctx = minijinja::context! { tr => translations(lang), lang => lang.code() };
            let html = TEMPLATES
                .get_template("login.html")
                .and_then(|t| t.render(ctx))
                .expect("login page renders");
            assert!(html.contains(&format!(">{label}</button>")), "{html}");
            assert!(html.contains(switch), "{html}");
        }
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("http://Shop.Example/login.html").as_deref(),
            Some("shop.example")
        );
        assert_eq!(url_host("https://a.cn:8443?x").as_deref(), Some("a.cn:8443"));
        assert_eq!(url_host("http://user@evil.cn/"), Some("evil.cn".into()));
        assert_eq!(url_host("javascript:alert(1)"), None);
        assert_eq!(url_host("//a.cn/x"), None);
    }

    /// Every `tr.key` a page names is a string of both languages.
    #[test]
    fn every_label_of_every_page_has_its_words() {
        let strings = Lang::En.strings();
        for (name, source) in TEMPLATES.templates() {
            let source = source.source();
            for (i, _) in source.match_indices("tr.") {
                let before = source[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let key: String = source[i + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(strings.contains_key(key.as_str()), "{name}: tr.{key}");
            }
        }
        for lang in [Lang::En, Lang::Zh] {
            assert!(lang.strings().values().all(|v| !v.trim().is_empty()));
        }
    }

    #[test]
    fn an_operators_pages_name_the_customer() {
        assert_eq!(path_customer("/sendstat/tasks"), None);
        assert_eq!(path_customer("/sendstat/c/12/tasks"), Some(Some(12)));
        assert_eq!(path_customer("/sendstat/c/12/"), Some(Some(12)));
        assert_eq!(path_customer("/sendstat/c/x/"), Some(None));
    }
}
