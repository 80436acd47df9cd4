//! The use-cases of templates and their attachments: create, list,
//! change and delete them, attach and detach files, preview one for a
//! recipient. And what they need of storage.

use std::path::Path;

use super::{
    ATTACHMENT_MAX, ATTACHMENTS_PER_TEMPLATE_MAX, CompiledTemplate, Encoding, Part, Recipient, Rendered,
    TemplateError, check_part,
};
use crate::domain::ids::{AttachmentId, CustomerId, FileId, TemplateId};
use crate::domain::storage::{FileStorage, StoreError, StoreResult};
use crate::domain::tasks::SendStatus;

/// A customer's template.
#[derive(Clone, Debug)]
pub struct Template {
    pub id: TemplateId,
    pub customer_id: CustomerId,
    pub name: String,
    pub subject: String,
    pub content: String,
    pub text_content: String,
    pub encoding: Encoding,
    pub content_type: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A file attached to a template.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: AttachmentId,
    pub template_id: TemplateId,
    pub file_id: FileId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

/// A template to create.
#[derive(Clone, Copy, Debug)]
pub struct NewTemplate<'a> {
    pub name: &'a str,
    pub subject: &'a str,
    pub content: &'a str,
    pub text_content: &'a str,
    pub encoding: Encoding,
}

/// An attachment whose file is already stored.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub file_id: FileId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

/// A change to a template; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct TemplateChange<'a> {
    pub name: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub content: Option<&'a str>,
    pub text_content: Option<&'a str>,
    pub encoding: Option<Encoding>,
}

/// The outcome of adding attachments to a template.
pub enum AttachOutcome {
    Added(Vec<AttachmentId>),
    NoTemplate,
    /// The template's attachments would exceed this many bytes together.
    TooLarge(u64),
}

/// What the template use-cases need of storage.
pub trait TemplateStorage: Sync {
    /// Creates a template with its (already stored) attachments in one transaction.
    fn create_template(
        &self,
        customer: CustomerId,
        t: &NewTemplate<'_>,
        attachments: &[NewAttachment],
        now: i64,
    ) -> impl Future<Output = StoreResult<TemplateId>> + Send;

    /// A customer's templates by ascending id, or just `only`.
    fn templates(
        &self,
        customer: CustomerId,
        only: Option<TemplateId>,
    ) -> impl Future<Output = StoreResult<Vec<Template>>> + Send;

    fn template(
        &self,
        customer: CustomerId,
        id: TemplateId,
    ) -> impl Future<Output = StoreResult<Option<Template>>> + Send;

    /// The attachments of a customer's templates (all, or of one), by
    /// template and ascending id.
    fn attachments(
        &self,
        customer: CustomerId,
        template: Option<TemplateId>,
    ) -> impl Future<Output = StoreResult<Vec<Attachment>>> + Send;

    /// Changes a template; false if the customer has no such template.
    fn edit_template(
        &self,
        customer: CustomerId,
        id: TemplateId,
        c: &TemplateChange<'_>,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes a template and its attachment rows; returns the stored files
    /// the caller must delete next, or `None` if there is no such template.
    fn delete_template(
        &self,
        customer: CustomerId,
        id: TemplateId,
    ) -> impl Future<Output = StoreResult<Option<Vec<FileId>>>> + Send;

    /// Adds (already stored) attachments to a template unless its
    /// attachments would then exceed `max_total` bytes; checked and written
    /// in one transaction, so concurrent uploads can't both slip in.
    fn add_attachments(
        &self,
        customer: CustomerId,
        template: TemplateId,
        attachments: &[NewAttachment],
        max_total: u64,
        now: i64,
    ) -> impl Future<Output = StoreResult<AttachOutcome>> + Send;

    /// Deletes one attachment of a template, or all of them (`None`);
    /// returns the stored files the caller must delete next, or `None` if
    /// the template, or the one attachment, is not there.
    fn delete_attachments(
        &self,
        customer: CustomerId,
        template: TemplateId,
        only: Option<AttachmentId>,
        now: i64,
    ) -> impl Future<Output = StoreResult<Option<Vec<FileId>>>> + Send;

    /// Whether a task of the customer (not deleted) in one of `statuses`
    /// uses the template.
    fn template_used_by(
        &self,
        customer: CustomerId,
        template: TemplateId,
        statuses: &[SendStatus],
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// One of the customer's templates, if it exists.
pub async fn template(
    s: &impl TemplateStorage,
    customer: CustomerId,
    id: TemplateId,
) -> StoreResult<Option<Template>> {
    s.template(customer, id).await
}

/// The attachments of one of the customer's templates, by ascending id.
pub async fn attachments(
    s: &impl TemplateStorage,
    customer: CustomerId,
    id: TemplateId,
) -> StoreResult<Vec<Attachment>> {
    s.attachments(customer, Some(id)).await
}

/// Why a template operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateCaseError {
    #[error("no such template")]
    NotFound,
    /// A part does not parse, names an unknown placeholder or fails its
    /// trial render: which part, the line and why.
    #[error(transparent)]
    Invalid(TemplateError),
    #[error("a task that has not ended uses the template")]
    InUse,
    #[error("{name}: empty file")]
    EmptyFile { name: String },
    #[error("{name}: larger than {max} bytes")]
    FileTooLarge { name: String, max: u64 },
    #[error("a template's attachments are at most {max} bytes together")]
    TooLarge { max: u64 },
    /// The attachments' files could not be kept.
    #[error("the attachments could not be stored: {0}")]
    Files(StoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An uploaded attachment, still where the upload left it.
#[derive(Clone, Copy, Debug)]
pub struct AttachmentUpload<'a> {
    pub path: &'a Path,
    /// As the upload named it; a path in it is not kept.
    pub file_name: &'a str,
    pub content_type: Option<&'a str>,
    pub size: u64,
}

impl AttachmentUpload<'_> {
    /// The name the file is kept under: without any path part (5.6), or
    /// `attachment` when there is none.
    fn kept_name(&self) -> String {
        match self
            .file_name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(self.file_name)
        {
            "" => "attachment".to_string(),
            name => name.to_string(),
        }
    }
}

/// The limits of D-17: no empty file, none over [`ATTACHMENT_MAX`], all
/// of them together within `room` bytes.
fn check_uploads(uploads: &[AttachmentUpload<'_>], room: u64) -> Result<(), TemplateCaseError> {
    let mut total = 0u64;
    for u in uploads {
        if u.size == 0 {
            return Err(TemplateCaseError::EmptyFile {
                name: u.file_name.to_string(),
            });
        }
        if u.size > ATTACHMENT_MAX {
            return Err(TemplateCaseError::FileTooLarge {
                name: u.file_name.to_string(),
                max: ATTACHMENT_MAX,
            });
        }
        total = total.saturating_add(u.size);
    }
    if total > room {
        return Err(TemplateCaseError::TooLarge {
            max: ATTACHMENTS_PER_TEMPLATE_MAX,
        });
    }
    Ok(())
}

/// Keeps the files of `uploads`; if one fails, those already kept are
/// deleted again.
async fn store_files(
    files: &impl FileStorage,
    customer: CustomerId,
    uploads: &[AttachmentUpload<'_>],
    now: i64,
) -> Result<Vec<NewAttachment>, TemplateCaseError> {
    let mut stored: Vec<NewAttachment> = Vec::with_capacity(uploads.len());
    for u in uploads {
        match files.save(customer, u.path, now).await {
            Ok(file_id) => stored.push(NewAttachment {
                file_id,
                file_name: u.kept_name(),
                content_type: u.content_type.unwrap_or("application/octet-stream").to_string(),
                size: i64::try_from(u.size).unwrap_or(i64::MAX),
            }),
            Err(e) => {
                discard(files, customer, &stored).await;
                return Err(TemplateCaseError::Files(e));
            }
        }
    }
    Ok(stored)
}

/// Deletes the files of attachments that were not kept.
async fn discard(files: &impl FileStorage, customer: CustomerId, stored: &[NewAttachment]) {
    let ids: Vec<FileId> = stored.iter().map(|a| a.file_id).collect();
    delete_files(files, customer, &ids).await;
}

/// Deletes files whose rows are gone. A failure leaves a file nothing
/// refers to, which is logged, not reported: the operation succeeded.
async fn delete_files(files: &impl FileStorage, customer: CustomerId, ids: &[FileId]) {
    if ids.is_empty() {
        return;
    }
    if let Err(e) = files.delete(customer, ids).await {
        tracing::error!(error = %e, ?ids, "stored files left behind");
    }
}

/// Creates a template with its attachments, all or nothing (5.2): the
/// three parts must parse, name only known placeholders and render for a
/// sample recipient; the files are kept first, then the rows, and a
/// failure deletes the files again.
pub async fn create_template(
    s: &impl TemplateStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    t: &NewTemplate<'_>,
    attachments: &[AttachmentUpload<'_>],
    now: i64,
) -> Result<TemplateId, TemplateCaseError> {
    CompiledTemplate::compile(t.subject, t.content, t.text_content).map_err(TemplateCaseError::Invalid)?;
    check_uploads(attachments, ATTACHMENTS_PER_TEMPLATE_MAX)?;
    let stored = store_files(files, customer, attachments, now).await?;
    match s.create_template(customer, t, &stored, now).await {
        Ok(id) => Ok(id),
        Err(e) => {
            discard(files, customer, &stored).await;
            Err(e.into())
        }
    }
}

/// A template with its attachments.
#[derive(Clone, Debug)]
pub struct TemplateEntry {
    pub template: Template,
    /// By ascending id.
    pub attachments: Vec<Attachment>,
}

/// The customer's templates by ascending id with their attachments (5.3),
/// or only the one `only` names (`NotFound` if there is none).
pub async fn list_templates(
    s: &impl TemplateStorage,
    customer: CustomerId,
    only: Option<TemplateId>,
) -> Result<Vec<TemplateEntry>, TemplateCaseError> {
    let templates = s.templates(customer, only).await?;
    if only.is_some() && templates.is_empty() {
        return Err(TemplateCaseError::NotFound);
    }
    let mut attachments = s.attachments(customer, only).await?.into_iter().peekable();
    let mut out = Vec::with_capacity(templates.len());
    for template in templates {
        // Both come by template id: the attachments of this one are next.
        while attachments.next_if(|a| a.template_id < template.id).is_some() {}
        let mut own = Vec::new();
        while let Some(a) = attachments.next_if(|a| a.template_id == template.id) {
            own.push(a);
        }
        out.push(TemplateEntry {
            template,
            attachments: own,
        });
    }
    Ok(out)
}

/// Changes a template (5.5). Each part given must parse, name only known
/// placeholders and render for a sample recipient; an empty text part
/// removes it.
pub async fn edit_template(
    s: &impl TemplateStorage,
    customer: CustomerId,
    id: TemplateId,
    change: &TemplateChange<'_>,
    now: i64,
) -> Result<(), TemplateCaseError> {
    for (part, source) in [
        (Part::Subject, change.subject),
        (Part::Html, change.content),
        (Part::Text, change.text_content),
    ] {
        if let Some(source) = source {
            check_part(part, source).map_err(TemplateCaseError::Invalid)?;
        }
    }
    if s.edit_template(customer, id, change, now).await? {
        Ok(())
    } else {
        Err(TemplateCaseError::NotFound)
    }
}

/// Deletes a template with its attachments (5.4); refused while a task
/// that has not ended (on hold, waiting, sending or paused) uses it.
pub async fn delete_template(
    s: &impl TemplateStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    id: TemplateId,
) -> Result<(), TemplateCaseError> {
    if s.template(customer, id).await?.is_none() {
        return Err(TemplateCaseError::NotFound);
    }
    if s.template_used_by(customer, id, &SendStatus::holding()).await? {
        return Err(TemplateCaseError::InUse);
    }
    let gone = s
        .delete_template(customer, id)
        .await?
        .ok_or(TemplateCaseError::NotFound)?;
    delete_files(files, customer, &gone).await;
    Ok(())
}

/// An attachment just added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedAttachment {
    pub id: AttachmentId,
    /// The name it is kept under.
    pub file_name: String,
}

/// Attaches more files to a template, all or nothing (5.6), within the
/// limits of D-17 for each file and for all of the template's together.
pub async fn add_attachments(
    s: &impl TemplateStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    id: TemplateId,
    uploads: &[AttachmentUpload<'_>],
    now: i64,
) -> Result<Vec<AddedAttachment>, TemplateCaseError> {
    if s.template(customer, id).await?.is_none() {
        return Err(TemplateCaseError::NotFound);
    }
    check_uploads(uploads, ATTACHMENTS_PER_TEMPLATE_MAX)?;
    let stored = store_files(files, customer, uploads, now).await?;
    // The total with the attachments it has is checked where it is written,
    // so that two uploads at once can't both slip in.
    let refused = match s
        .add_attachments(customer, id, &stored, ATTACHMENTS_PER_TEMPLATE_MAX, now)
        .await
    {
        Ok(AttachOutcome::Added(ids)) => {
            return Ok(ids
                .into_iter()
                .zip(stored)
                .map(|(id, a)| AddedAttachment {
                    id,
                    file_name: a.file_name,
                })
                .collect());
        }
        Ok(AttachOutcome::NoTemplate) => TemplateCaseError::NotFound,
        Ok(AttachOutcome::TooLarge(max)) => TemplateCaseError::TooLarge { max },
        Err(e) => e.into(),
    };
    discard(files, customer, &stored).await;
    Err(refused)
}

/// Detaches one attachment of a template, or all of them (`None`) (5.7);
/// returns how many.
pub async fn delete_attachments(
    s: &impl TemplateStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    id: TemplateId,
    only: Option<AttachmentId>,
    now: i64,
) -> Result<usize, TemplateCaseError> {
    let gone = s
        .delete_attachments(customer, id, only, now)
        .await?
        .ok_or(TemplateCaseError::NotFound)?;
    delete_files(files, customer, &gone).await;
    Ok(gone.len())
}

/// A template rendered for a recipient.
#[derive(Clone, Debug)]
pub struct Preview {
    pub template: Template,
    /// The message's texts, or why the template does not render.
    pub rendered: Result<Rendered, TemplateError>,
}

/// One of the customer's templates as `sample` would receive it.
pub async fn preview(
    s: &impl TemplateStorage,
    customer: CustomerId,
    id: TemplateId,
    sample: &Recipient<'_>,
) -> Result<Preview, TemplateCaseError> {
    let template = s
        .template(customer, id)
        .await?
        .ok_or(TemplateCaseError::NotFound)?;
    let rendered = CompiledTemplate::compile(&template.subject, &template.content, &template.text_content)
        .and_then(|c| c.render(sample));
    Ok(Preview { template, rendered })
}

/// A template as it is being written, rendered for `sample`: what the
/// editor's preview shows before anything is saved.
pub fn preview_draft(
    subject: &str,
    html: &str,
    text: &str,
    sample: &Recipient<'_>,
) -> Result<Rendered, TemplateError> {
    CompiledTemplate::compile(subject, html, text).and_then(|c| c.render(sample))
}

/// Copies one of the customer's templates, with its attachments, under
/// `name`; the copy is a template of its own.
pub async fn duplicate_template(
    s: &impl TemplateStorage,
    files: &impl FileStorage,
    customer: CustomerId,
    id: TemplateId,
    name: &str,
    scratch: &Path,
    now: i64,
) -> Result<TemplateId, TemplateCaseError> {
    let t = s
        .template(customer, id)
        .await?
        .ok_or(TemplateCaseError::NotFound)?;
    let stored = s.attachments(customer, Some(id)).await?;
    // Each attachment's bytes go through a scratch file, which keeping a
    // file starts from; the scratch files go when this returns.
    let mut copies = Vec::with_capacity(stored.len());
    for a in &stored {
        let bytes = files
            .read(customer, a.file_id)
            .await
            .map_err(TemplateCaseError::Files)?;
        let scratch_file = tempfile::NamedTempFile::new_in(scratch)
            .and_then(|f| std::fs::write(f.path(), &bytes).map(|()| f))
            .map_err(|e| TemplateCaseError::Files(StoreError::Unavailable(format!("a scratch file: {e}"))))?;
        copies.push((scratch_file, bytes.len() as u64));
    }
    let uploads: Vec<AttachmentUpload<'_>> = stored
        .iter()
        .zip(&copies)
        .map(|(a, (f, size))| AttachmentUpload {
            path: f.path(),
            file_name: &a.file_name,
            content_type: Some(&a.content_type),
            size: *size,
        })
        .collect();
    let copy = NewTemplate {
        name,
        subject: &t.subject,
        content: &t.content,
        text_content: &t.text_content,
        encoding: t.encoding,
    };
    create_template(s, files, customer, &copy, &uploads, now).await
}
