//! Templates and their attachments. Every query is scoped by the owning
//! customer; an attachment's bytes are a stored file ([`super::Files`]).

use sqlx::FromRow;

use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool};
use crate::domain::templates::Encoding;

#[derive(Clone, Debug)]
pub struct Template {
    pub id: i64,
    pub customer_id: i64,
    pub name: String,
    pub subject: String,
    pub content: String,
    pub text_content: String,
    pub encoding: Encoding,
    pub content_type: String,
    pub created_at: i64,
    pub updated_at: i64,
}

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
                .ok_or_else(|| StoreError::Other(format!("template {}: unknown encoding", r.id)))?,
            id: r.id,
            customer_id: r.customer_id,
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

#[derive(Clone, Debug, FromRow)]
pub struct Attachment {
    pub id: i64,
    pub template_id: i64,
    pub file_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

/// `SELECT` of the attachments of a customer's templates, as a literal for `concat!`.
macro_rules! select_attachment {
    () => {
        "SELECT a.id, a.template_id, a.file_id, a.file_name, a.content_type, a.size \
         FROM template_attachments a JOIN templates t ON t.id = a.template_id WHERE t.customer_id = $1 "
    };
}

pub struct NewTemplate<'a> {
    pub name: &'a str,
    pub subject: &'a str,
    pub content: &'a str,
    pub text_content: &'a str,
    pub encoding: Encoding,
}

/// An attachment whose file is already stored.
pub struct NewAttachment {
    pub file_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

/// What 5.5 changes; `None` leaves a field alone.
#[derive(Default)]
pub struct TemplateChange<'a> {
    pub name: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub content: Option<&'a str>,
    pub text_content: Option<&'a str>,
    pub encoding: Option<Encoding>,
}

/// The outcome of adding attachments to a template.
pub enum AttachOutcome {
    Added(Vec<i64>),
    NoTemplate,
    /// The template's attachments would exceed this many bytes together.
    TooLarge(u64),
}

/// Inserts attachment rows inside the caller's transaction.
macro_rules! insert_attachments {
    ($tx:expr, $template_id:expr, $attachments:expr, $now:expr) => {{
        let mut ids = Vec::with_capacity($attachments.len());
        for a in $attachments {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO template_attachments (template_id, file_id, file_name, content_type, size, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind($template_id)
            .bind(a.file_id)
            .bind(&a.file_name)
            .bind(&a.content_type)
            .bind(a.size)
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
            ids.push(id);
        }
        ids
    }};
}

/// Sets a customer's template's `updated` inside the caller's transaction,
/// which also locks its row; false if the customer has no such template.
macro_rules! touch_template {
    ($tx:expr, $customer_id:expr, $template_id:expr, $now:expr) => {
        sqlx::query("UPDATE templates SET updated_at = $1 WHERE id = $2 AND customer_id = $3")
            .bind($now)
            .bind($template_id)
            .bind($customer_id)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1
    };
}

impl Store {
    /// Creates a template with its (already stored) attachments in one
    /// transaction; returns its id.
    pub async fn create_template(
        &self,
        customer_id: i64,
        t: &NewTemplate<'_>,
        attachments: &[NewAttachment],
        now: i64,
    ) -> StoreResult<i64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO templates (customer_id, name, subject, content, text_content, encoding, \
                 content_type, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'html', $7, $7) \
                 RETURNING id",
            )
            .bind(customer_id)
            .bind(t.name)
            .bind(t.subject)
            .bind(t.content)
            .bind(t.text_content)
            .bind(t.encoding.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            insert_attachments!(tx, id, attachments, now);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A customer's templates by ascending id, or just `only`.
    pub async fn templates(&self, customer_id: i64, only: Option<i64>) -> StoreResult<Vec<Template>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, TemplateRow>(
            concat!(select_template!(), "AND ($2 IS NULL OR id = $2) ORDER BY id"),
        )
        .bind(customer_id)
        .bind(only)
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Template::try_from).collect()
    }

    pub async fn template(&self, customer_id: i64, id: i64) -> StoreResult<Option<Template>> {
        Ok(self.templates(customer_id, Some(id)).await?.into_iter().next())
    }

    /// The attachments of a customer's templates (all, or of one), by
    /// template and ascending id.
    pub async fn attachments(
        &self,
        customer_id: i64,
        template_id: Option<i64>,
    ) -> StoreResult<Vec<Attachment>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, Attachment>(
            concat!(select_attachment!(), "AND ($2 IS NULL OR a.template_id = $2) ORDER BY a.template_id, a.id"),
        )
        .bind(customer_id)
        .bind(template_id)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Applies a 5.5 edit; false if the customer has no such template.
    pub async fn edit_template(
        &self,
        customer_id: i64,
        id: i64,
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
                    Arg::Int(id),
                    Arg::Int(customer_id),
                ],
            )
            .await?;
        Ok(done == 1)
    }

    /// Deletes a template and its attachment rows; returns the stored files
    /// the caller must delete next, or `None` if there is no such template.
    pub async fn delete_template(&self, customer_id: i64, id: i64) -> StoreResult<Option<Vec<i64>>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let files: Vec<i64> = sqlx::query_scalar(
                "SELECT a.file_id FROM template_attachments a JOIN templates t ON t.id = a.template_id \
                 WHERE t.customer_id = $1 AND t.id = $2 ORDER BY a.id",
            )
            .bind(customer_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let gone = sqlx::query("DELETE FROM templates WHERE id = $1 AND customer_id = $2")
                .bind(id)
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok((gone == 1).then_some(files))
        })
    }

    /// Adds (already stored) attachments to a customer's template (setting
    /// its `updated`), unless the
    /// template's attachments would then exceed `max_total` bytes; checked and
    /// written in one transaction, so concurrent uploads can't both slip in.
    pub async fn add_attachments(
        &self,
        customer_id: i64,
        template_id: i64,
        attachments: &[NewAttachment],
        max_total: u64,
        now: i64,
    ) -> StoreResult<AttachOutcome> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if !touch_template!(tx, customer_id, template_id, now) {
                return Ok(AttachOutcome::NoTemplate);
            }
            let sizes: Vec<i64> = sqlx::query_scalar("SELECT size FROM template_attachments WHERE template_id = $1")
                .bind(template_id)
                .fetch_all(&mut *tx)
                .await?;
            let total: u64 = sizes.iter().chain(attachments.iter().map(|a| &a.size)).map(|s| *s as u64).sum();
            if total > max_total {
                return Ok(AttachOutcome::TooLarge(max_total));
            }
            let ids = insert_attachments!(tx, template_id, attachments, now);
            tx.commit().await?;
            Ok(AttachOutcome::Added(ids))
        })
    }

    /// Deletes one attachment of a customer's template, or all of them
    /// (`None`), and sets its `updated`; returns the stored files the caller must delete next, or
    /// `None` if the template, or the one attachment, is not there.
    pub async fn delete_attachments(
        &self,
        customer_id: i64,
        template_id: i64,
        only: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<Vec<i64>>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if !touch_template!(tx, customer_id, template_id, now) {
                return Ok(None);
            }
            let files: Vec<i64> = match only {
                None => sqlx::query_scalar(
                    "DELETE FROM template_attachments WHERE template_id = $1 RETURNING file_id",
                )
                .bind(template_id)
                .fetch_all(&mut *tx)
                .await?,
                Some(a) => sqlx::query_scalar(
                    "DELETE FROM template_attachments WHERE template_id = $1 AND id = $2 RETURNING file_id",
                )
                .bind(template_id)
                .bind(a)
                .fetch_all(&mut *tx)
                .await?,
            };
            if only.is_some() && files.is_empty() {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(files))
        })
    }

    /// Whether a task waiting, on hold, sending or paused (send_status -1, 1,
    /// 2, -2) uses the template (5.4 `in_use`).
    pub async fn template_in_use(&self, customer_id: i64, template_id: i64) -> StoreResult<bool> {
        self.held_by_task("tpl_id = $2", customer_id, &Arg::Int(template_id))
            .await
    }
}
