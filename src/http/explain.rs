//! How qunfa's own interfaces (the console, the JSON API) word a refusal: a
//! stable code, the HTTP status, the input at fault, and a message in the
//! reader's language. One place for every use-case error, so that the
//! console and the API say the same thing; the vendor API keeps its own
//! codes and Chinese messages (`compat::reply`).

use axum::http::StatusCode;

use super::lang::Lang;
use super::params::ParamError;
use crate::domain::accounts::AccountError;
use crate::domain::lists::ListError;
use crate::domain::reports::ReportError;
use crate::domain::senders::SenderError;
use crate::domain::storage::StoreError;
use crate::domain::suppressions::SuppressionError;
use crate::domain::tasks::{SelectionError, TaskAction, TaskError};
use crate::domain::templates::TemplateCaseError;
use crate::domain::webhooks::WebhookError;

/// A refusal as a person or a program reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    /// Stable, machine-readable: `not_found`, `not_enough_credits` …
    pub code: &'static str,
    pub status: StatusCode,
    /// The input at fault, when there is one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl Explained {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Explained {
        Explained {
            code,
            status,
            field: None,
            message: message.into(),
        }
    }

    fn on(mut self, field: &'static str) -> Explained {
        self.field = Some(field);
        self
    }
}

/// An error that can be worded for a reader.
pub trait Explain {
    fn explain(&self, lang: Lang) -> Explained;
}

fn bad_request(lang: Lang, zh: &str, en: &str) -> Explained {
    Explained::new("invalid", StatusCode::BAD_REQUEST, lang.pick(zh, en))
}

fn not_found(lang: Lang, zh: &str, en: &str) -> Explained {
    Explained::new("not_found", StatusCode::NOT_FOUND, lang.pick(zh, en))
}

fn conflict(code: &'static str, lang: Lang, zh: &str, en: &str) -> Explained {
    Explained::new(code, StatusCode::CONFLICT, lang.pick(zh, en))
}

impl Explain for StoreError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            StoreError::Duplicate(_) => conflict("exists", lang, "记录已存在", "It exists already."),
            StoreError::NotFound(_) => not_found(lang, "记录不存在", "Not found."),
            StoreError::Refused(_) => conflict(
                "state",
                lang,
                "当前状态不允许此操作",
                "Its state does not allow this.",
            ),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "storage unavailable");
                Explained::new(
                    "unavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang.pick(
                        "存储暂不可用，请稍后重试",
                        "Storage is unavailable for a moment; try again shortly.",
                    ),
                )
            }
            StoreError::Failed(e) => {
                tracing::error!(error = %e, "storage failed");
                Explained::new(
                    "internal",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    lang.pick("系统错误", "Something went wrong on our side."),
                )
            }
        }
    }
}

impl Explain for ParamError {
    fn explain(&self, lang: Lang) -> Explained {
        let named = |name: &str| -> Option<&'static str> {
            // Only names an interface declares are reported back as fields.
            const KNOWN: &[&str] = &[
                "name",
                "subject",
                "description",
                "status",
                "email",
                "file",
                "template",
                "list",
                "send_time",
                "sender",
                "username",
                "password",
            ];
            KNOWN.iter().find(|k| **k == name).copied()
        };
        match self {
            ParamError::Missing(name) => {
                let e = bad_request(
                    lang,
                    &format!("缺少参数: {name}"),
                    &format!("{name} is required."),
                );
                Explained {
                    code: "missing",
                    field: named(name),
                    ..e
                }
            }
            ParamError::Invalid(name) => Explained {
                field: named(name),
                ..bad_request(
                    lang,
                    &format!("参数错误: {name}"),
                    &format!("{name} is not valid."),
                )
            },
            ParamError::BodyTooLarge => Explained::new(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                lang.pick("请求过大", "The request is too large."),
            ),
            ParamError::File(what) => Explained::new(
                "file",
                StatusCode::BAD_REQUEST,
                format!("{}: {what}", lang.pick("文件上传错误", "The upload failed")),
            )
            .on("file"),
            ParamError::Internal(e) => StoreError::Failed(e.clone()).explain(lang),
        }
    }
}

impl Explain for AccountError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            AccountError::NotFound(..) => not_found(lang, "账号不存在", "No such account."),
            AccountError::Exists(..) => {
                conflict("exists", lang, "用户名已被使用", "This user name is taken.").on("username")
            }
            AccountError::EmptyPassword => {
                bad_request(lang, "密码不能为空", "The password can't be empty.").on("password")
            }
            AccountError::InvalidChange(e) => {
                bad_request(lang, &format!("服务设置错误: {e}"), &e.to_string())
            }
            AccountError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for SelectionError {
    fn explain(&self, lang: Lang) -> Explained {
        let (zh, en) = match self {
            SelectionError::DomainNotADomain => {
                ("发件域名格式错误", "The sending domain is not a domain name.")
            }
            SelectionError::DomainNotOwned => ("不是您可用的发件域名", "You can't send from this domain."),
            SelectionError::AccountNotAnAddress => {
                ("发件人不是邮件地址", "The sender is not an e-mail address.")
            }
            SelectionError::AccountNotInDomain => {
                ("发件人不在所选域名下", "The sender is not in the chosen domain.")
            }
            SelectionError::AccountNotOwned => ("不是您可用的发件人", "You can't send from this mailbox."),
            SelectionError::NoMailbox => ("所选发件人下没有邮箱", "There is no mailbox to send from."),
        };
        Explained {
            code: "sender",
            ..bad_request(lang, zh, en).on("sender")
        }
    }
}

impl Explain for TaskError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            TaskError::NotFound => not_found(lang, "任务不存在", "No such task."),
            TaskError::TemplateNotFound => not_found(lang, "模板不存在", "No such template.").on("template"),
            TaskError::ListNotFound => not_found(lang, "联系人分类不存在", "No such list.").on("list"),
            TaskError::ListDisabled => {
                conflict("state", lang, "该联系人分类已停用", "This list is disabled.").on("list")
            }
            TaskError::Sender(e) => e.explain(lang),
            TaskError::ServiceUnusable => Explained::new(
                "service_disabled",
                StatusCode::FORBIDDEN,
                lang.pick(
                    "群发服务不可用（已停用或不在服务期内）",
                    "Your sending service is disabled or outside its dates.",
                ),
            ),
            TaskError::NotEnoughCredits { needed, available } => Explained::new(
                "not_enough_credits",
                StatusCode::FORBIDDEN,
                match lang {
                    Lang::Zh => format!("剩余群发量不足：需要 {needed}，可用 {available}"),
                    Lang::En => {
                        format!("Not enough credits: this needs {needed} and {available} are available.")
                    }
                },
            ),
            TaskError::State { status, action } => {
                let zh = match action {
                    TaskAction::Edit => "只有暂停或等待中的任务可以修改",
                    TaskAction::Delete => "正在发送的任务不能删除，请先暂停或取消",
                    TaskAction::Intervene(i) => match i {
                        crate::domain::tasks::Intervention::Pause => "只有正在发送的任务可以暂停",
                        crate::domain::tasks::Intervention::Resume => "只有已暂停的任务可以继续",
                        crate::domain::tasks::Intervention::Cancel => "已完成或已取消的任务不能取消",
                    },
                };
                let en = format!("The task is {}: {}.", status.name(), action.rule());
                conflict("state", lang, zh, &en)
            }
            TaskError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for SenderError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            SenderError::DomainExists => {
                conflict("exists", lang, "域名已存在", "This domain exists already.").on("domain")
            }
            SenderError::DomainNotFound => not_found(lang, "域名不存在", "No such domain.").on("domain"),
            SenderError::MailboxExists => {
                conflict("exists", lang, "邮箱已存在", "This mailbox exists already.").on("mailbox")
            }
            SenderError::MailboxNotFound => not_found(lang, "邮箱不存在", "No such mailbox.").on("mailbox"),
            SenderError::InUse => conflict(
                "in_use",
                lang,
                "正在被群发任务使用",
                "A task that has not ended sends from it.",
            ),
            SenderError::Key(e) => StoreError::Failed(e.to_string()).explain(lang),
            SenderError::Store(e) => e.explain(lang),
        }
    }
}

fn file_error(message: String) -> Explained {
    Explained::new("file", StatusCode::BAD_REQUEST, message).on("file")
}

impl Explain for ListError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            ListError::NotFound => not_found(lang, "联系人分类不存在", "No such list.").on("list"),
            ListError::AddressNotFound => not_found(lang, "地址不存在", "No such address.").on("email"),
            ListError::NameRequired => Explained {
                code: "missing",
                ..bad_request(lang, "分类名称不能为空", "The list needs a name.").on("name")
            },
            ListError::NameTooLong { max } => bad_request(
                lang,
                &format!("分类名称最多 {max} 个字符"),
                &format!("A list's name is at most {max} characters."),
            )
            .on("name"),
            ListError::DescriptionTooLong { max } => bad_request(
                lang,
                &format!("分类描述最多 {max} 个字符"),
                &format!("A list's description is at most {max} characters."),
            )
            .on("description"),
            ListError::InUse => conflict(
                "in_use",
                lang,
                "正在被群发任务使用",
                "A task that has not ended sends to this list.",
            ),
            ListError::InvalidAddress => {
                bad_request(lang, "邮件地址格式错误", "This is not an e-mail address.").on("email")
            }
            ListError::Duplicate => conflict(
                "exists",
                lang,
                "该地址已在分类中",
                "The list has this address already.",
            )
            .on("email"),
            ListError::NoRecords => Explained {
                code: "missing",
                ..bad_request(lang, "没有地址", "No address was given.")
            },
            ListError::TooManyRecords { max } => Explained {
                code: "too_many",
                ..bad_request(
                    lang,
                    &format!("一次最多 {max} 条地址"),
                    &format!("At most {max} addresses at a time."),
                )
            },
            ListError::EmptyFile => file_error(lang.pick("文件为空", "The file is empty.").to_string()),
            ListError::NotText => file_error(
                lang.pick(
                    "文件不是 UTF-8 或 GBK/GB18030 文本",
                    "The file is neither UTF-8 nor GBK/GB18030 text.",
                )
                .to_string(),
            ),
            ListError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for TemplateCaseError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            TemplateCaseError::NotFound => not_found(lang, "模板不存在", "No such template.").on("template"),
            TemplateCaseError::Invalid(e) => Explained {
                code: "invalid_template",
                ..bad_request(
                    lang,
                    &format!("模板错误: {e}"),
                    &format!("The template is refused: {e}."),
                )
                .on(e.part.param())
            },
            TemplateCaseError::InUse => conflict(
                "in_use",
                lang,
                "正在被群发任务使用",
                "A task that has not ended uses this template.",
            ),
            TemplateCaseError::EmptyFile { name } => file_error(match lang {
                Lang::Zh => format!("{name}: 文件为空"),
                Lang::En => format!("{name} is empty."),
            }),
            TemplateCaseError::FileTooLarge { name, max } => file_error(match lang {
                Lang::Zh => format!("{name}: 超过 {} MiB", max >> 20),
                Lang::En => format!("{name} is larger than {} MiB.", max >> 20),
            }),
            TemplateCaseError::TooLarge { max } => file_error(match lang {
                Lang::Zh => format!("附件合计超过 {} MiB", max >> 20),
                Lang::En => format!("A template's attachments are at most {} MiB together.", max >> 20),
            }),
            TemplateCaseError::Files(e) | TemplateCaseError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for ReportError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            ReportError::NotFound => not_found(lang, "任务不存在", "No such task."),
            ReportError::NotTracked => {
                conflict("not_tracked", lang, "该任务未跟踪", "The task is not tracked.")
            }
            ReportError::LinkNotFound => {
                not_found(lang, "链接不存在", "No such link in the task.").on("link")
            }
            ReportError::RecipientNotFound => {
                not_found(lang, "收件人不存在", "No such recipient in the task.").on("email")
            }
            ReportError::Days(e) => bad_request(lang, &format!("日期范围无效: {e}"), &format!("{e}.")),
            ReportError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for WebhookError {
    fn explain(&self, lang: Lang) -> Explained {
        let bad = |zh: &str, en: &str| Explained {
            field: self.field(),
            ..bad_request(lang, zh, en)
        };
        match self {
            WebhookError::BadUrl => bad("URL 须为 http 或 https 地址", "url must be an http or https URL."),
            WebhookError::PrivateAddress => bad(
                "URL 指向本机、内网或其他非公网地址",
                "url points at a loopback, private or otherwise non-public address.",
            ),
            WebhookError::Unresolvable => bad("URL 的主机名无法解析", "url's host name does not resolve."),
            WebhookError::BadEvent(e) => bad(
                &format!("未知事件类型: {e}"),
                &format!("Unknown event type '{e}'."),
            ),
            WebhookError::NoEvents => bad("至少须订阅一种事件", "events must name at least one event type."),
            WebhookError::NotFound => not_found(lang, "webhook 不存在", "No such webhook."),
            WebhookError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for SuppressionError {
    fn explain(&self, lang: Lang) -> Explained {
        match self {
            SuppressionError::NotFound => {
                not_found(lang, "该地址未被屏蔽", "This address is not suppressed.").on("email")
            }
            SuppressionError::NoteTooLong => bad_request(
                lang,
                "说明不能超过 500 个字符",
                "The note is longer than 500 characters.",
            )
            .on("note"),
            SuppressionError::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for crate::domain::templates::TestSendError {
    fn explain(&self, lang: Lang) -> Explained {
        use crate::domain::templates::TestSendError as E;
        match self {
            E::NotFound => not_found(lang, "模板不存在", "No such template.").on("template"),
            E::InvalidAddress => {
                bad_request(lang, "邮件地址格式错误", "This is not an e-mail address.").on("to")
            }
            E::Sender(e) => e.explain(lang),
            E::Refused(reply) => Explained::new(
                "refused",
                StatusCode::BAD_GATEWAY,
                match lang {
                    Lang::Zh => format!("收件服务器拒收了测试邮件：{reply}"),
                    Lang::En => format!("The receiving server refused the test message: {reply}"),
                },
            )
            .on("to"),
            E::Unsent(why) => Explained::new(
                "unsent",
                StatusCode::BAD_GATEWAY,
                match lang {
                    Lang::Zh => format!("测试邮件未能发出：{why}"),
                    Lang::En => format!("The test message could not be sent: {why}"),
                },
            ),
            E::Store(e) => e.explain(lang),
        }
    }
}

impl Explain for crate::domain::accounts::PasswordChangeError {
    fn explain(&self, lang: Lang) -> Explained {
        use crate::domain::accounts::PasswordChangeError as E;
        match self {
            E::WrongPassword => Explained::new(
                "wrong_password",
                StatusCode::FORBIDDEN,
                lang.pick("当前密码不正确", "The current password is not right."),
            )
            .on("current"),
            E::TooShort { min } => bad_request(
                lang,
                &format!("新密码至少 {min} 个字符"),
                &format!("The new password needs at least {min} characters."),
            )
            .on("new"),
            E::Mismatch => bad_request(
                lang,
                "两次输入的新密码不一致",
                "The two new passwords are not the same.",
            )
            .on("repeated"),
            E::Account(e) => e.explain(lang),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_without_enough_credits_is_refused_in_both_languages() {
        let e = TaskError::NotEnoughCredits {
            needed: 12,
            available: 5,
        };
        let en = e.explain(Lang::En);
        assert_eq!(
            (en.code, en.status),
            ("not_enough_credits", StatusCode::FORBIDDEN)
        );
        assert_eq!(
            en.message,
            "Not enough credits: this needs 12 and 5 are available."
        );
        assert_eq!(e.explain(Lang::Zh).message, "剩余群发量不足：需要 12，可用 5");
    }

    #[test]
    fn a_list_in_use_and_a_refused_template_are_worded() {
        let e = ListError::InUse.explain(Lang::En);
        assert_eq!((e.code, e.status), ("in_use", StatusCode::CONFLICT));
        let refused =
            crate::domain::templates::check_part(crate::domain::templates::Part::Html, "{{ nope }}")
                .unwrap_err();
        let e = TemplateCaseError::Invalid(refused).explain(Lang::Zh);
        assert_eq!(
            (e.code, e.field, e.status),
            ("invalid_template", Some("content"), StatusCode::BAD_REQUEST)
        );
        assert!(
            e.message.contains("content: line 1: unknown placeholder 'nope'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_missing_input_names_its_field() {
        let e = ParamError::Missing("name".into()).explain(Lang::En);
        assert_eq!(
            (e.code, e.field, e.status),
            ("missing", Some("name"), StatusCode::BAD_REQUEST)
        );
        assert_eq!(e.message, "name is required.");
    }
}
