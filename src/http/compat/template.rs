//! `template.php`: templates and their attachments (5.2–5.7). Each
//! operation reads its parameters, calls the template use-case and words
//! its refusal as the vendor does; every lookup is the authenticated
//! customer's (D-5).

use super::Call;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::domain::ids::{AttachmentId, TemplateId};
use crate::domain::templates::{
    self, AttachmentUpload, Encoding, NewTemplate, TemplateCaseError, TemplateChange,
};
use crate::http::params::{Params, Upload};
use crate::mail::preview::{Preview, SAMPLE};

pub const OPERATIONS: &[&str] = &[
    "add-tpl",
    "list-tpl",
    "del-tpl",
    "edit-tpl",
    "tpl-attachment-add",
    "tpl-attachment-del",
    "preview-tpl",
];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "add-tpl" => add(c).await,
        "list-tpl" => list(c).await,
        "del-tpl" => delete(c).await,
        "edit-tpl" => edit(c).await,
        "tpl-attachment-add" => add_attachments(c).await,
        "tpl-attachment-del" => delete_attachments(c).await,
        "preview-tpl" => preview(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

/// A template use-case's refusal as the vendor's code.
fn refused(e: TemplateCaseError) -> ApiError {
    match e {
        TemplateCaseError::NotFound => ApiError::new(Code::NotFound),
        TemplateCaseError::Invalid(e) => ApiError::with(Code::InvalidParam, e.to_string()),
        TemplateCaseError::InUse => ApiError::new(Code::InUse),
        TemplateCaseError::EmptyFile { name } => {
            ApiError::with(Code::FileError, format!("{name}: empty file"))
        }
        TemplateCaseError::FileTooLarge { name, max } => {
            ApiError::with(Code::FileError, format!("{name}: larger than {} MiB", max >> 20))
        }
        TemplateCaseError::TooLarge { max } => ApiError::with(
            Code::FileError,
            format!("attachments larger than {} MiB together", max >> 20),
        ),
        TemplateCaseError::Files(e) => ApiError::internal(e),
        TemplateCaseError::Store(e) => e.into(),
    }
}

fn encoding(p: &Params) -> Result<Option<Encoding>, ApiError> {
    p.get("encoding")?
        .map(|v| Encoding::parse(v).ok_or_else(|| ApiError::invalid("encoding")))
        .transpose()
}

/// A part with no file name and no bytes is a file input left empty in a
/// browser form, not an attachment.
fn is_attachment(u: &Upload) -> bool {
    u.field == "file" && !(u.file_name.is_empty() && u.size == 0)
}

/// The attachments of a request (`file` or `file[]`).
fn attachments(p: &Params) -> Vec<AttachmentUpload<'_>> {
    p.uploads
        .iter()
        .filter(|u| is_attachment(u))
        .map(|u| AttachmentUpload {
            path: &u.path,
            file_name: &u.file_name,
            content_type: u.content_type.as_deref(),
            size: u.size,
        })
        .collect()
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
    let template = NewTemplate {
        name,
        subject,
        content,
        text_content,
        encoding,
    };
    let id = templates::create_template(
        &c.app.store,
        &c.app.files,
        c.customer(),
        &template,
        &attachments(p),
        c.app.clock.now(),
    )
    .await
    .map_err(refused)?;
    Ok(Success::created(id.get()).into_response())
}

/// 5.3: all templates, or the one `tpl_id` names.
async fn list(c: Call<'_>) -> ApiResult {
    let only = c.params.id("tpl_id")?.map(TemplateId);
    let listed = templates::list_templates(&c.app.store, c.customer(), only)
        .await
        .map_err(refused)?;
    let clock = &c.app.clock;
    let mut x = Xml::new();
    x.open("template_list");
    for entry in &listed {
        let t = &entry.template;
        x.open("template")
            .num("id", t.id)
            .num("user_id", t.customer_id)
            .cdata("name", &t.name)
            .cdata("subject", &t.subject)
            .cdata("content", &t.content)
            .text("content_type", &t.content_type)
            .open("attachments");
        for a in &entry.attachments {
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

/// A qunfa extension of chapter 5: a template rendered for a sample
/// recipient (`tpl_id`), with the text part its messages carry — its own,
/// or the one derived from its HTML (`text_derived` 1).
async fn preview(c: Call<'_>) -> ApiResult {
    let id = TemplateId(c.params.require_id("tpl_id")?);
    let shown = templates::preview(&c.app.store, c.customer(), id, &SAMPLE)
        .await
        .map_err(refused)?;
    let p = Preview::of(
        shown
            .rendered
            .map_err(|e| refused(TemplateCaseError::Invalid(e)))?,
    );
    let mut x = Xml::new();
    x.open("template_preview")
        .num("id", shown.template.id)
        .text("sample", SAMPLE.email)
        .cdata("subject", &p.subject)
        .cdata("content", &p.html)
        .cdata("text_content", &p.text)
        .num("text_derived", i64::from(p.text_derived))
        .close("template_preview");
    Ok(xml_response(x.finish()))
}

/// 5.4: a template and its attachments, unless a pending task uses it.
async fn delete(c: Call<'_>) -> ApiResult {
    let id = TemplateId(c.params.require_id("tpl_id")?);
    templates::delete_template(&c.app.store, &c.app.files, c.customer(), id)
        .await
        .map_err(refused)?;
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
    let id = TemplateId(p.require_id("tpl_id")?);
    let change = TemplateChange {
        encoding: encoding(p)?,
        ..change
    };
    templates::edit_template(&c.app.store, c.customer(), id, &change, c.app.clock.now())
        .await
        .map_err(refused)?;
    Ok(Success::message("修改模板成功").into_response())
}

/// 5.6: more attachments for a template, all or nothing.
async fn add_attachments(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = TemplateId(p.require_id("tpl_id")?);
    let uploads = attachments(p);
    if uploads.is_empty() {
        return Err(ApiError::missing("file"));
    }
    let added = templates::add_attachments(
        &c.app.store,
        &c.app.files,
        c.customer(),
        id,
        &uploads,
        c.app.clock.now(),
    )
    .await
    .map_err(refused)?;
    let body = Success::message("上传附件成功").to_xml_with(|x| {
        x.open("attachments");
        for a in &added {
            x.open("attachment")
                .num("atta_id", a.id.get())
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
    let id = TemplateId(p.require_id("tpl_id")?);
    let only = match p.get("attachment_id")? {
        None | Some("all") => None,
        Some(_) => p.id("attachment_id")?.map(AttachmentId),
    };
    let n = templates::delete_attachments(
        &c.app.store,
        &c.app.files,
        c.customer(),
        id,
        only,
        c.app.clock.now(),
    )
    .await
    .map_err(refused)?;
    Ok(Success::counted(n as u64, "删除附件成功").into_response())
}
