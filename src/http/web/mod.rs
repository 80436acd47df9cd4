//! The web console under `/sendstat/`: the 8.1 login (D-10, H-12),
//! sessions, and server-rendered pages (minijinja) in Chinese and English,
//! with charts drawn as inline SVG and one small script for live progress.
//! Forms that change data run the vendor API's own operations
//! ([`compat::console_call`]), so each rule has one implementation.

// A handler's early exit is the response itself (a redirect, a 403).
#![allow(clippy::result_large_err)]

mod chart;
mod i18n;
mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// `302 Found` to `to` (8.1 names 302; axum's `Redirect::to` is a 303).
pub fn found(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
use axum::routing::{get, post};
use minijinja::{Environment, Value};
use rand::RngExt;
use sha2::{Digest, Sha256};

use self::i18n::Lang;
use super::auth::Secret;
use super::compat;
use crate::app::App;
use crate::domain::accounts::Role;
use crate::store::Session;

const SESSION_COOKIE: &str = "qunfa_session";
const LANG_COOKIE: &str = "qunfa_lang";
/// A session lasts this long from login.
const SESSION_SECS: i64 = 12 * 3600;

pub fn router() -> Router<App> {
    Router::new()
        .route("/sendstat", get(|| async { Redirect::permanent("/sendstat/") }))
        .route("/sendstat/", get(index).post(login))
        .route("/sendstat/logout", post(logout))
        .route("/sendstat/static/{file}", get(static_file))
        .merge(pages::router())
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("login.html", include_str!("templates/login.html")),
        ("dashboard.html", include_str!("templates/dashboard.html")),
        ("tasks.html", include_str!("templates/tasks.html")),
        ("task.html", include_str!("templates/task.html")),
        ("lists.html", include_str!("templates/lists.html")),
        ("list.html", include_str!("templates/list.html")),
        ("templates.html", include_str!("templates/templates.html")),
        ("template.html", include_str!("templates/template.html")),
        ("domains.html", include_str!("templates/domains.html")),
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

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// One query parameter, decoded.
fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Who is asking, in which language: every console handler starts here.
pub struct Ctx {
    pub app: App,
    pub lang: Lang,
    /// A `?lang=` switch to remember in a cookie.
    set_lang: bool,
    pub me: Option<Me>,
}

pub struct Me {
    pub session: Session,
    pub username: String,
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
                )
            });
        let mut me = None;
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let found = app
                .store
                .session(&token_hash(token), app.clock.now())
                .await
                .map_err(|e| server_error(&e))?;
            if let Some(session) = found {
                let username = app
                    .store
                    .account_username(session.role, session.account_id)
                    .await
                    .map_err(|e| server_error(&e))?
                    .unwrap_or_default();
                me = Some(Me { session, username });
            }
        }
        Ok(Ctx {
            app: app.clone(),
            lang,
            set_lang: chosen.is_some(),
            me,
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

impl Ctx {
    /// Renders a page with the layout's common values (`tr`, `lang`, `me`).
    pub fn render(&self, template: &str, values: Value) -> Response {
        self.render_status(StatusCode::OK, template, values)
    }

    pub fn render_status(&self, status: StatusCode, template: &str, values: Value) -> Response {
        let me = self.me.as_ref().map(|m| {
            minijinja::context! {
                role => m.session.role.as_str(),
                username => m.username.clone(),
                csrf => m.session.csrf.clone(),
            }
        });
        let common = minijinja::context! {
            tr => translations(self.lang),
            lang => self.lang.code(),
            me => me,
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

    /// The session, or a redirect to the login page.
    pub fn require(&self, role: Role) -> Result<&Me, Response> {
        match &self.me {
            Some(m) if m.session.role == role => Ok(m),
            Some(_) => Err(StatusCode::FORBIDDEN.into_response()),
            None => Err(found("/sendstat/")),
        }
    }

    /// A form's CSRF token must be the session's.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), Response> {
        match &self.me {
            Some(m) if given == Some(m.session.csrf.as_str()) => Ok(()),
            _ => Err((StatusCode::FORBIDDEN, "invalid form token\n").into_response()),
        }
    }
}

/// `/sendstat/`: the home page of the logged-in role, else the login page
/// (also at `?module=base&action=login`).
async fn index(ctx: Ctx) -> Response {
    match ctx.me.as_ref().map(|m| m.session.role) {
        Some(Role::Customer) => pages::dashboard(&ctx).await,
        Some(Role::Agent | Role::Manager) => pages::customers(&ctx).await,
        None => login_page(&ctx, false, "", StatusCode::OK),
    }
}

fn login_page(ctx: &Ctx, error: bool, username: &str, status: StatusCode) -> Response {
    ctx.render_status(status, "login.html", minijinja::context! { error, username })
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

/// 8.1: `POST /sendstat/?module=base&action=login`, from our own login page
/// or a customer's page on its own site (no CSRF token can exist then).
async fn login(ctx: Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if query_param(&parts.uri, "action").as_deref() != Some("login") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let p = compat::read_params(&ctx.app, "account.php", None, &parts.headers, body).await;
    let field = |name: &str| p.raw(name).ok().flatten().unwrap_or("").to_string();
    let (username, password, user_type, errurl) = (
        field("username"),
        field("password"),
        field("user_type"),
        field("errurl"),
    );
    let ip: IpAddr = peer.ip();
    let account = match Role::from_login_user_type(user_type.trim()) {
        Some(role) if !username.trim().is_empty() && !password.is_empty() => ctx
            .app
            .auth
            .check(role, username.trim(), Secret::Plain(&password), ip)
            .await
            .map(|id| (role, id)),
        _ => None,
    };
    let Some((role, account_id)) = account else {
        if !errurl.is_empty() && allowed_errurl(&ctx.app, &parts.headers, &errurl) {
            return found(errurl.trim());
        }
        return login_page(&ctx, true, username.trim(), StatusCode::OK);
    };
    let token = random_token();
    let session = Session {
        role,
        account_id,
        csrf: random_token(),
    };
    let now = ctx.app.clock.now();
    if let Err(e) = ctx
        .app
        .store
        .create_session(&token_hash(&token), &session, now, now + SESSION_SECS)
        .await
    {
        return server_error(&e);
    }
    let secure = if ctx.app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let mut r = found("/sendstat/");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/sendstat/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Lax{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let p = compat::read_params(&ctx.app, "account.php", None, &headers, body).await;
    if let Err(r) = ctx.check_csrf(p.raw("csrf").ok().flatten()) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = ctx.app.store.delete_session(&token_hash(token)).await
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

#[cfg(test)]
mod tests {
    use super::{Lang, TEMPLATES, translations, url_host};

    #[test]
    fn every_template_parses() {
        assert!(TEMPLATES.templates().count() >= 11);
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
}
