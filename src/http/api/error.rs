//! The JSON API's one error shape, its JSON body extractor, and how
//! use-case errors become it (worded by `http::explain`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::explain::{Explain, Explained};
use crate::http::lang::Lang;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// `{"error": {"code", "message", "field"?}}` with its status; 429 carries
/// `Retry-After`, 401 `WWW-Authenticate: Bearer`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

// Not every resource needs every kind of refusal yet.
#[allow(dead_code)]
impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the input at fault.
    pub fn on(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// A use-case's error as `http::explain` words it.
    pub fn explained(e: &impl Explain, lang: Lang) -> ApiError {
        let Explained {
            code,
            status,
            field,
            message,
        } = e.explain(lang);
        ApiError {
            status,
            code,
            message,
            field: field.map(str::to_string),
            retry_after: None,
        }
    }

    pub fn unauthorized(lang: Lang) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            lang.pick(
                "缺少 API 密钥，或密钥错误、已吊销",
                "A valid API key is required: the key is missing, wrong or revoked.",
            ),
        )
    }

    /// No such object: also the answer for another customer's.
    pub fn not_found(lang: Lang) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            lang.pick("记录不存在", "Not found."),
        )
    }

    /// Bad input; `field` names it.
    pub fn invalid(lang: Lang, field: impl Into<String>, zh: &str, en: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", lang.pick(zh, en)).on(field)
    }

    pub fn forbidden(lang: Lang, zh: &str, en: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", lang.pick(zh, en))
    }

    pub fn conflict(lang: Lang, code: &'static str, zh: &str, en: &str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, lang.pick(zh, en))
    }

    pub fn too_large(lang: Lang) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            lang.pick("请求过大", "The request is too large."),
        )
    }

    pub fn rate_limited(lang: Lang, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                lang.pick("请求过于频繁，请稍后重试", "Too many requests; retry later."),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body whose refusals are [`ApiError`]s.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<ApiJson<T>, ApiError> {
        let lang = super::lang_of_headers(req.headers());
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(r)) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large(lang))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                lang.pick(
                    "请求体须为 JSON (Content-Type: application/json)",
                    "The body must be JSON (Content-Type: application/json).",
                ),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!(
                    "{}: {}",
                    lang.pick("JSON 无法解析", "The JSON is not valid"),
                    e.body_text()
                ),
            )),
        }
    }
}
