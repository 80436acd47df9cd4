//! `template.php`: templates and their attachments (5.2–5.7). Every lookup is
//! scoped to the authenticated customer (D-5).

use super::Call;
use super::params::{Params, Upload};
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::app::App;
use crate::domain::templates::{
    ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX, CompiledTemplate, Encoding, Part, TemplateError, check_part,
};
use crate::store::{AttachOutcome, NewAttachment, NewTemplate, TemplateChange};

pub const OPERATIONS: &[&str] = &[
    "add-tpl",
    "list-tpl",
    "del-tpl",
    "edit-tpl",
    "tpl-attachment-add",
    "tpl-attachment-del",
];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "add-tpl" => add(c).await,
        "list-tpl" => list(c).await,
        "del-tpl" => delete(c).await,
        "edit-tpl" => edit(c).await,
        "tpl-attachment-add" => add_attachments(c).await,
        "tpl-attachment-del" => delete_attachments(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

fn refused(e: TemplateError) -> ApiError {
    ApiError::with(Code::InvalidParam, e.to_string())
}

fn encoding(p: &Params) -> Result<Option<Encoding>, ApiError> {
    p.get("encoding")?
        .map(|v| Encoding::parse(v).ok_or_else(|| ApiError::invalid("encoding")))
        .transpose()
}

fn is_attachment(u: &Upload) -> bool {
    u.field == "file" && !(u.file_name.is_empty() && u.size == 0)
}

/// The attachment parts of a request (`file` or `file[]`), checked against
/// D-17 before anything is stored. A part with no file name and no bytes is
/// a file input left empty in a browser form, not an attachment.
fn attachment_parts(p: &Params) -> Result<Vec<&Upload>, ApiError> {
    let parts: Vec<&Upload> = p.uploads.iter().filter(|u| is_attachment(u)).collect();
    let mut total = 0;
    for u in &parts {
        if u.size == 0 {
            return Err(ApiError::with(
                Code::FileError,
                format!("{}: empty file", u.file_name),
            ));
        }
        if u.size > ATTACHMENT_MAX {
            return Err(ApiError::with(
                Code::FileError,
                format!("{}: larger than {} MiB", u.file_name, ATTACHMENT_MAX >> 20),
            ));
        }
        total += u.size;
    }
    if total > ATTACHMENTS_PER_TEMPLATE_MAX {
        return Err(too_large());
    }
    Ok(parts)
}

fn too_large() -> ApiError {
    ApiError::with(
        Code::FileError,
        format!(
            "attachments larger than {} MiB together",
            ATTACHMENTS_PER_TEMPLATE_MAX >> 20
        ),
    )
}

/// The name a file is kept under: the multipart `filename` without any
/// path part (5.6).
fn base_name(file_name: &str) -> &str {
    file_name.rsplit(['/', '\\']).next().unwrap_or(file_name)
}

/// Stores the files of `parts`; if one fails, the ones already stored are
/// deleted again, so a failed upload leaves nothing behind.
async fn store_files(app: &App, customer_id: i64, parts: &[&Upload]) -> Result<Vec<NewAttachment>, ApiError> {
    let now = app.clock.now();
    let mut stored: Vec<NewAttachment> = Vec::with_capacity(parts.len());
    for u in parts {
        match app.files.save(customer_id, &u.path, now).await {
            Ok(file_id) => stored.push(NewAttachment {
                file_id,
                file_name: match base_name(&u.file_name) {
                    "" => "attachment".to_string(),
                    name => name.to_string(),
                },
                content_type: u
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_string()),
                size: u.size as i64,
            }),
            Err(e) => {
                discard_files(app, customer_id, &stored).await;
                return Err(ApiError::internal(e));
            }
        }
    }
    Ok(stored)
}

async fn discard_files(app: &App, customer_id: i64, stored: &[NewAttachment]) {
    let ids: Vec<i64> = stored.iter().map(|a| a.file_id).collect();
    delete_files(app, customer_id, &ids).await;
}

/// Deletes stored files whose rows are already gone from the templates. A
/// failure leaves an unreferenced file, which is logged, not reported: the
/// request itself succeeded.
async fn delete_files(app: &App, customer_id: i64, file_ids: &[i64]) {
    if let Err(e) = app.files.delete(customer_id, file_ids).await {
        tracing::error!(error = %e, ?file_ids, "stored files left behind");
    }
}

/// 5.2: a template with optional attachments, all or nothing.
async fn add(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let name = p.require("name")?;
    let subject = p.require("subject")?;
    let content = p
        .untrimmed("content")?
        .ok_or_else(|| ApiError::missing("content"))?;
    let text_content = p.raw("text_content")?.unwrap_or("");
    let encoding = encoding(p)?.unwrap_or_default();
    CompiledTemplate::compile(subject, content, text_content).map_err(refused)?;
    let parts = attachment_parts(p)?;

    let stored = store_files(c.app, c.account_id, &parts).await?;
    let template = NewTemplate {
        name,
        subject,
        content,
        text_content,
        encoding,
    };
    match c
        .app
        .store
        .create_template(c.account_id, &template, &stored, c.app.clock.now())
        .await
    {
        Ok(id) => Ok(Success::created(id).into_response()),
        Err(e) => {
            discard_files(c.app, c.account_id, &stored).await;
            Err(e.into())
        }
    }
}

/// 5.3: all templates, or the one `tpl_id` names.
async fn list(c: Call<'_>) -> ApiResult {
    let only = c.params.id("tpl_id")?;
    let store = &c.app.store;
    let templates = store.templates(c.account_id, only).await?;
    if only.is_some() && templates.is_empty() {
        return Err(ApiError::new(Code::NotFound));
    }
    let attachments = store.attachments(c.account_id, only).await?;
    let clock = &c.app.clock;
    let mut x = Xml::new();
    x.open("template_list");
    for t in &templates {
        x.open("template")
            .num("id", t.id)
            .num("user_id", t.customer_id)
            .cdata("name", &t.name)
            .cdata("subject", &t.subject)
            .cdata("content", &t.content)
            .text("content_type", &t.content_type)
            .open("attachments");
        for a in attachments.iter().filter(|a| a.template_id == t.id) {
            x.open("attachment")
                .num("atta_id", a.id)
                .text("atta_name", &a.file_name)
                .close("attachment");
        }
        x.close("attachments")
            .text("created", &clock.format_datetime(t.created_at))
            .text("updated", &clock.format_datetime(t.updated_at))
            .close("template");
    }
    x.close("template_list");
    Ok(xml_response(x.finish()))
}

/// 5.4: a template and its attachments, unless a pending task uses it.
async fn delete(c: Call<'_>) -> ApiResult {
    let id = c.params.require_id("tpl_id")?;
    let store = &c.app.store;
    if store.template(c.account_id, id).await?.is_none() {
        return Err(ApiError::new(Code::NotFound));
    }
    if store.template_in_use(c.account_id, id).await? {
        return Err(ApiError::new(Code::InUse));
    }
    let files = store
        .delete_template(c.account_id, id)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    delete_files(c.app, c.account_id, &files).await;
    Ok(Success::message("删除模板成功").into_response())
}

/// 5.5: any of name, subject, content, text content (empty clears it) and
/// encoding.
async fn edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    if p.get("tpl_id")?.is_none() {
        return Err(ApiError::missing("tpl_id"));
    }
    let change = TemplateChange {
        name: p.get("name")?,
        subject: p.get("subject")?,
        content: p.untrimmed("content")?,
        text_content: p.raw("text_content")?,
        encoding: None,
    };
    let encoding_given = p.get("encoding")?.is_some();
    if change.name.is_none()
        && change.subject.is_none()
        && change.content.is_none()
        && change.text_content.is_none()
        && !encoding_given
    {
        return Err(ApiError::missing("name, subject, content"));
    }
    let id = p.require_id("tpl_id")?;
    let change = TemplateChange {
        encoding: encoding(p)?,
        ..change
    };
    for (part, source) in [
        (Part::Subject, change.subject),
        (Part::Html, change.content),
        (Part::Text, change.text_content),
    ] {
        if let Some(source) = source {
            check_part(part, source).map_err(refused)?;
        }
    }
    if !c
        .app
        .store
        .edit_template(c.account_id, id, &change, c.app.clock.now())
        .await?
    {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("修改模板成功").into_response())
}

/// 5.6: more attachments for a template, all or nothing.
async fn add_attachments(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("tpl_id")?;
    if !p.uploads.iter().any(is_attachment) {
        return Err(ApiError::missing("file"));
    }
    let store = &c.app.store;
    if store.template(c.account_id, id).await?.is_none() {
        return Err(ApiError::new(Code::NotFound));
    }
    let parts = attachment_parts(p)?;
    let stored = store_files(c.app, c.account_id, &parts).await?;
    let outcome = store
        .add_attachments(
            c.account_id,
            id,
            &stored,
            ATTACHMENTS_PER_TEMPLATE_MAX,
            c.app.clock.now(),
        )
        .await;
    let ids = match outcome {
        Ok(AttachOutcome::Added(ids)) => ids,
        other => {
            discard_files(c.app, c.account_id, &stored).await;
            return Err(match other {
                Ok(AttachOutcome::NoTemplate) => ApiError::new(Code::NotFound),
                Ok(AttachOutcome::TooLarge(_)) => too_large(),
                Err(e) => e.into(),
                Ok(AttachOutcome::Added(_)) => ApiError::internal("attachments both added and not"),
            });
        }
    };
    let body = Success::message("上传附件成功").to_xml_with(|x| {
        x.open("attachments");
        for (id, a) in ids.iter().zip(&stored) {
            x.open("attachment")
                .num("atta_id", *id)
                .text("atta_name", &a.file_name)
                .close("attachment");
        }
        x.close("attachments");
    });
    Ok(xml_response(body))
}

/// 5.7: one attachment, or all of them (the default, C-5.7a).
async fn delete_attachments(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("tpl_id")?;
    let only = match p.get("attachment_id")? {
        None | Some("all") => None,
        Some(_) => p.id("attachment_id")?,
    };
    let files = c
        .app
        .store
        .delete_attachments(c.account_id, id, only, c.app.clock.now())
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    delete_files(c.app, c.account_id, &files).await;
    Ok(Success::counted(files.len() as u64, "删除附件成功").into_response())
}
