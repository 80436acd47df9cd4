//! What the vendor API answers: XML documents, text exports, and the one
//! error envelope (A.5.2, D-2, F.1), always with HTTP 200.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::xml::Xml;
use crate::http::params::ParamError;

/// The machine codes of F.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    AuthError,
    UnknownDo,
    MissingParam,
    InvalidParam,
    FormatError,
    NotFound,
    PermissionError,
    AlreadyExists,
    InUse,
    StateError,
    SenderError,
    ServiceDisabled,
    QuotaError,
    FileError,
    InternalError,
    // The original's own codes (4.3–4.5).
    AddMaillistError,
    UpdateMaillistError,
    DeleteMaillistError,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AuthError => "auth_error",
            Code::UnknownDo => "unknown_do",
            Code::MissingParam => "missing_param",
            Code::InvalidParam => "invalid_param",
            Code::FormatError => "format_error",
            Code::NotFound => "not_found",
            Code::PermissionError => "permission_error",
            Code::AlreadyExists => "already_exists",
            Code::InUse => "in_use",
            Code::StateError => "state_error",
            Code::SenderError => "sender_error",
            Code::ServiceDisabled => "service_disabled",
            Code::QuotaError => "quota_error",
            Code::FileError => "file_error",
            Code::InternalError => "internal_error",
            Code::AddMaillistError => "add_maillist_error",
            Code::UpdateMaillistError => "update_maillist_error",
            Code::DeleteMaillistError => "delete_maillist_error",
        }
    }

    /// The default (Chinese) message of F.1.
    fn message(self) -> &'static str {
        match self {
            Code::AuthError => "用户名或密码错误",
            Code::UnknownDo => "未知的操作类型",
            Code::MissingParam => "缺少参数",
            Code::InvalidParam => "参数错误",
            Code::FormatError => "邮件地址格式错误",
            Code::NotFound => "记录不存在",
            Code::PermissionError => "没有权限",
            Code::AlreadyExists => "记录已存在",
            Code::InUse => "正在被群发任务使用",
            Code::StateError => "当前状态不允许此操作",
            Code::SenderError => "发件人设置错误",
            Code::ServiceDisabled => "群发服务不可用",
            Code::QuotaError => "剩余群发量不足",
            Code::FileError => "文件上传错误",
            Code::InternalError => "系统错误",
            Code::AddMaillistError => "添加联系人分类时发生错误",
            Code::UpdateMaillistError => "修改联系人分类时发生错误",
            Code::DeleteMaillistError => "删除联系人分类出错",
        }
    }
}

/// A parameter the request got wrong, as the vendor API reports it.
impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> ApiError {
        match e {
            ParamError::Missing(name) => ApiError::missing(&name),
            ParamError::Invalid(name) => ApiError::invalid(&name),
            ParamError::BodyTooLarge => ApiError::with(Code::InvalidParam, "request body too large"),
            ParamError::File(what) => ApiError::with(Code::FileError, what),
            ParamError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// An answer other than success: a code and, where it helps, what it is about
/// (the parameter's name, a reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(code: Code) -> Self {
        ApiError { code, detail: None }
    }

    pub fn with(code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: Some(detail.into()),
        }
    }

    pub fn missing(param: &str) -> Self {
        Self::with(Code::MissingParam, param)
    }

    pub fn invalid(param: &str) -> Self {
        Self::with(Code::InvalidParam, param)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(Code::InternalError)
    }

    /// The human-readable `<data>`: `缺少参数: date`.
    pub fn message(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {d}", self.code.message()),
            None => self.code.message().to_string(),
        }
    }

    pub fn to_xml(&self) -> Vec<u8> {
        let mut x = Xml::new();
        x.open("result")
            .text("status", self.code.as_str())
            .cdata("data", &self.message())
            .close("result");
        x.finish()
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// A database that is away for now (full disk, restart) is said so: the
    /// same call can be made again later; any other failure is internal.
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_transient() {
            tracing::error!(error = %e, "storage unavailable");
            return ApiError::with(Code::InternalError, STORAGE_AWAY);
        }
        ApiError::internal(e)
    }
}

/// The detail of an internal error whose cause is the storage being away.
pub const STORAGE_AWAY: &str = "存储暂不可用（磁盘已满或数据库重启），请稍后重试";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        xml_response(self.to_xml())
    }
}

/// A successful write: `<result><status>success</status>[<id>][<count>]<data>`.
pub struct Success {
    pub id: Option<i64>,
    pub count: Option<i64>,
    /// A message (CDATA), or, with `id_in_data`, the id as plain text (H-1).
    pub message: String,
    pub id_in_data: bool,
}

impl Success {
    pub fn message(message: impl Into<String>) -> Self {
        Success {
            id: None,
            count: None,
            message: message.into(),
            id_in_data: false,
        }
    }

    /// A create that answers its new id in `<id>` and in `<data>` (H-1).
    pub fn created(id: i64) -> Self {
        Success {
            id: Some(id),
            count: None,
            message: String::new(),
            id_in_data: true,
        }
    }

    /// A batch that answers how many it did in `<count>`.
    pub fn counted(count: u64, message: impl Into<String>) -> Self {
        Success {
            id: None,
            count: Some(count as i64),
            message: message.into(),
            id_in_data: false,
        }
    }

    pub fn into_response(self) -> Response {
        xml_response(self.to_xml())
    }

    pub fn to_xml(&self) -> Vec<u8> {
        self.to_xml_with(|_| {})
    }

    /// With the caller's elements after `<id>`/`<count>`, before `<data>`
    /// (F.1: 5.6's `<attachments>`).
    pub fn to_xml_with(&self, extra: impl FnOnce(&mut Xml)) -> Vec<u8> {
        let mut x = Xml::new();
        x.open("result").text("status", "success");
        if let Some(id) = self.id {
            x.num("id", id);
        }
        if let Some(n) = self.count {
            x.num("count", n);
        }
        extra(&mut x);
        match (self.id_in_data, self.id) {
            (true, Some(id)) => x.num("data", id),
            _ => x.cdata("data", &self.message),
        };
        x.close("result");
        x.finish()
    }
}

pub fn xml_response(body: impl Into<axum::body::Body>) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=UTF-8"),
    );
    r
}

pub type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_names_the_parameter() {
        let xml = String::from_utf8(ApiError::missing("date").to_xml()).unwrap();
        assert!(xml.contains("<status>missing_param</status>"));
        assert!(xml.contains("<data><![CDATA[缺少参数: date]]></data>"));
    }

    #[test]
    fn ids_in_data_are_plain_text() {
        let s = Success {
            id: Some(1021544),
            count: None,
            message: String::new(),
            id_in_data: true,
        };
        let xml = String::from_utf8(s.to_xml()).unwrap();
        assert!(xml.contains("<id>1021544</id>\n  <data>1021544</data>"), "{xml}");
    }
}
