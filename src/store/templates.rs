//! Templates and their attachments. Every query is scoped by the owning
//! customer; an attachment's bytes are a stored file ([`super::Files`]).

use sqlx::FromRow;

use super::conn::Conn;
use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool};
use crate::domain::ids::{AttachmentId, CustomerId, FileId, TemplateId};
use crate::domain::tasks::SendStatus;
use crate::domain::templates::{
    AttachOutcome, Attachment, Encoding, NewAttachment, NewTemplate, Template, TemplateChange,
    TemplateStorage,
};

#[derive(FromRow)]
struct TemplateRow {
    id: i64,
    customer_id: i64,
    name: String,
    subject: String,
    content: String,
    text_content: String,
    encoding: String,
    content_type: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TemplateRow> for Template {
    type Error = StoreError;
    fn try_from(r: TemplateRow) -> StoreResult<Template> {
        Ok(Template {
            encoding: Encoding::parse(&r.encoding)
                .ok_or_else(|| StoreError::Failed(format!("template {}: unknown encoding", r.id)))?,
            id: TemplateId(r.id),
            customer_id: CustomerId(r.customer_id),
            name: r.name,
            subject: r.subject,
            content: r.content,
            text_content: r.text_content,
            content_type: r.content_type,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// `SELECT` of a customer's templates, as a literal for `concat!`.
macro_rules! select_template {
    () => {
        "SELECT id, customer_id, name, subject, content, text_content, encoding, content_type, \
         created_at, updated_at FROM templates WHERE customer_id = $1 "
    };
}

#[derive(FromRow)]
struct AttachmentRow {
    id: i64,
    template_id: i64,
    file_id: i64,
    file_name: String,
    content_type: String,
    size: i64,
}

impl From<AttachmentRow> for Attachment {
    fn from(r: AttachmentRow) -> Attachment {
        Attachment {
            id: AttachmentId(r.id),
            template_id: TemplateId(r.template_id),
            file_id: FileId(r.file_id),
            file_name: r.file_name,
            content_type: r.content_type,
            size: r.size,
        }
    }
}

/// `SELECT` of the attachments of a customer's templates, as a literal for `concat!`.
macro_rules! select_attachment {
    () => {
        "SELECT a.id, a.template_id, a.file_id, a.file_name, a.content_type, a.size \
         FROM template_attachments a JOIN templates t ON t.id = a.template_id WHERE t.customer_id = $1 "
    };
}

/// Inserts attachment rows on the caller's transaction; their ids.
async fn insert_attachments(
    c: &mut impl Conn,
    template: TemplateId,
    attachments: &[NewAttachment],
    now: i64,
) -> StoreResult<Vec<AttachmentId>> {
    let mut ids = Vec::with_capacity(attachments.len());
    for a in attachments {
        let id = c
            .fetch_i64(
                "INSERT INTO template_attachments (template_id, file_id, file_name, content_type, size, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    Arg::Int(template.get()),
                    Arg::Int(a.file_id.get()),
                    Arg::Text(&a.file_name),
                    Arg::Text(&a.content_type),
                    Arg::Int(a.size),
                    Arg::Int(now),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound("attachment"))?;
        ids.push(AttachmentId(id));
    }
    Ok(ids)
}

/// Sets a customer's template's `updated` on the caller's transaction,
/// which also locks its row; false if the customer has no such template.
async fn touch_template(
    c: &mut impl Conn,
    customer: CustomerId,
    template: TemplateId,
    now: i64,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE templates SET updated_at = $1 WHERE id = $2 AND customer_id = $3",
            &[Arg::Int(now), Arg::Int(template.get()), Arg::Int(customer.get())],
        )
        .await?;
    Ok(n == 1)
}

impl TemplateStorage for Store {
    /// Creates a template with its (already stored) attachments in one
    /// transaction; returns its id.
    async fn create_template(
        &self,
        customer: CustomerId,
        t: &NewTemplate<'_>,
        attachments: &[NewAttachment],
        now: i64,
    ) -> StoreResult<TemplateId> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO templates (customer_id, name, subject, content, text_content, encoding, \
                 content_type, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'html', $7, $7) \
                 RETURNING id",
            )
            .bind(customer.get())
            .bind(t.name)
            .bind(t.subject)
            .bind(t.content)
            .bind(t.text_content)
            .bind(t.encoding.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let id = TemplateId(id);
            insert_attachments(&mut *tx, id, attachments, now).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A customer's templates by ascending id, or just `only`.
    async fn templates(&self, customer: CustomerId, only: Option<TemplateId>) -> StoreResult<Vec<Template>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, TemplateRow>(
            concat!(select_template!(), "AND ($2 IS NULL OR id = $2) ORDER BY id"),
        )
        .bind(customer.get())
        .bind(only.map(TemplateId::get))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Template::try_from).collect()
    }

    async fn template(&self, customer: CustomerId, id: TemplateId) -> StoreResult<Option<Template>> {
        Ok(self.templates(customer, Some(id)).await?.into_iter().next())
    }

    /// The attachments of a customer's templates (all, or of one), by
    /// template and ascending id.
    async fn attachments(
        &self,
        customer: CustomerId,
        template: Option<TemplateId>,
    ) -> StoreResult<Vec<Attachment>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, AttachmentRow>(
            concat!(select_attachment!(), "AND ($2 IS NULL OR a.template_id = $2) ORDER BY a.template_id, a.id"),
        )
        .bind(customer.get())
        .bind(template.map(TemplateId::get))
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Attachment::from).collect())
    }

    /// Applies a 5.5 edit; false if the customer has no such template.
    async fn edit_template(
        &self,
        customer: CustomerId,
        id: TemplateId,
        c: &TemplateChange<'_>,
        now: i64,
    ) -> StoreResult<bool> {
        let done = self
            .write(
                "UPDATE templates SET name = COALESCE($1, name), subject = COALESCE($2, subject), \
                 content = COALESCE($3, content), text_content = COALESCE($4, text_content), \
                 encoding = COALESCE($5, encoding), updated_at = $6 WHERE id = $7 AND customer_id = $8",
                &[
                    Arg::OptText(c.name),
                    Arg::OptText(c.subject),
                    Arg::OptText(c.content),
                    Arg::OptText(c.text_content),
                    Arg::OptText(c.encoding.map(Encoding::as_str)),
                    Arg::Int(now),
                    Arg::Int(id.get()),
                    Arg::Int(customer.get()),
                ],
            )
            .await?;
        Ok(done == 1)
    }

    /// Deletes a template and its attachment rows; returns the stored files
    /// the caller must delete next, or `None` if there is no such template.
    async fn delete_template(
        &self,
        customer: CustomerId,
        id: TemplateId,
    ) -> StoreResult<Option<Vec<FileId>>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let files: Vec<i64> = sqlx::query_scalar(
                "SELECT a.file_id FROM template_attachments a JOIN templates t ON t.id = a.template_id \
                 WHERE t.customer_id = $1 AND t.id = $2 ORDER BY a.id",
            )
            .bind(customer.get())
            .bind(id.get())
            .fetch_all(&mut *tx)
            .await?;
            let gone = sqlx::query("DELETE FROM templates WHERE id = $1 AND customer_id = $2")
                .bind(id.get())
                .bind(customer.get())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok((gone == 1).then(|| files.into_iter().map(FileId).collect()))
        })
    }

    /// Adds (already stored) attachments to a customer's template (setting
    /// its `updated`), unless the
    /// template's attachments would then exceed `max_total` bytes; checked and
    /// written in one transaction, so concurrent uploads can't both slip in.
    async fn add_attachments(
        &self,
        customer: CustomerId,
        template: TemplateId,
        attachments: &[NewAttachment],
        max_total: u64,
        now: i64,
    ) -> StoreResult<AttachOutcome> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if !touch_template(&mut *tx, customer, template, now).await? {
                return Ok(AttachOutcome::NoTemplate);
            }
            let sizes: Vec<i64> = sqlx::query_scalar("SELECT size FROM template_attachments WHERE template_id = $1")
                .bind(template.get())
                .fetch_all(&mut *tx)
                .await?;
            let total: u64 = sizes.iter().chain(attachments.iter().map(|a| &a.size)).map(|s| *s as u64).sum();
            if total > max_total {
                return Ok(AttachOutcome::TooLarge(max_total));
            }
            let ids = insert_attachments(&mut *tx, template, attachments, now).await?;
            tx.commit().await?;
            Ok(AttachOutcome::Added(ids))
        })
    }

    /// Deletes one attachment of a customer's template, or all of them
    /// (`None`), and sets its `updated`; returns the stored files the caller must delete next, or
    /// `None` if the template, or the one attachment, is not there.
    async fn delete_attachments(
        &self,
        customer: CustomerId,
        template: TemplateId,
        only: Option<AttachmentId>,
        now: i64,
    ) -> StoreResult<Option<Vec<FileId>>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if !touch_template(&mut *tx, customer, template, now).await? {
                return Ok(None);
            }
            let files: Vec<i64> = match only {
                None => sqlx::query_scalar(
                    "DELETE FROM template_attachments WHERE template_id = $1 RETURNING file_id",
                )
                .bind(template.get())
                .fetch_all(&mut *tx)
                .await?,
                Some(a) => sqlx::query_scalar(
                    "DELETE FROM template_attachments WHERE template_id = $1 AND id = $2 RETURNING file_id",
                )
                .bind(template.get())
                .bind(a.get())
                .fetch_all(&mut *tx)
                .await?,
            };
            if only.is_some() && files.is_empty() {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(files.into_iter().map(FileId).collect()))
        })
    }

    /// Whether a task (not deleted) in one of `statuses` uses the template.
    async fn template_used_by(
        &self,
        customer: CustomerId,
        template: TemplateId,
        statuses: &[SendStatus],
    ) -> StoreResult<bool> {
        self.task_in("tpl_id = $2", customer.get(), &Arg::Int(template.get()), statuses)
            .await
    }
}
