//! Messages sent now, outside the delivery queue: a template's test
//! message, built by the same message building as a task's (the template,
//! its attachments, the sender's DKIM signature, the unsubscribe link) and
//! handed to SMTP by the same mailer and routes. It is no delivery of a
//! task: nothing is counted or charged, and it is not tracked.

use std::sync::Arc;

use crate::app::App;
use crate::delivery::{Attempt, Mailer};
use crate::domain::accounts;
use crate::domain::ids::CustomerId;
use crate::domain::senders::{self, DomainName};
use crate::domain::storage::FileStorage;
use crate::domain::templates::{TestDelivery, TestMessage};
use crate::mail::{AttachmentFile, PreparedTask, TaskMessage, Tracking, link_base};

/// The engine's side of [`crate::domain::templates::Outbox`].
pub struct Outbox {
    app: App,
    mailer: Arc<Mailer>,
}

impl Outbox {
    /// An outbox with an SMTP client of its own, closed when it is dropped.
    pub fn new(app: &App) -> anyhow::Result<Outbox> {
        Ok(Outbox {
            app: app.clone(),
            mailer: super::mailer(app)?,
        })
    }

    async fn send(&self, customer: CustomerId, m: &TestMessage<'_>) -> anyhow::Result<Attempt> {
        let app = &self.app;
        let mut contents = Vec::with_capacity(m.attachments.len());
        for a in m.attachments {
            contents.push(app.files.read(customer, a.file_id).await?);
        }
        let files: Vec<AttachmentFile<'_>> = m
            .attachments
            .iter()
            .zip(&contents)
            .map(|(a, c)| AttachmentFile {
                file_name: &a.file_name,
                content_type: &a.content_type,
                content: c,
            })
            .collect();
        let base = link_base(&app.config.public_url, None);
        // The footer in the customer's language, as its tasks' default.
        let footer_language = accounts::footer_language(&app.store, customer).await?;
        let t = m.template;
        let message = TaskMessage {
            subject: &t.subject,
            html: &t.content,
            text: &t.text_content,
            encoding: t.encoding,
            attachments: &files,
            sender_name: "",
            reply_to: None,
            unsubscribe_link: true,
            footer_language,
            tracking: Tracking::Off,
            link_base: &base,
            helo_name: &app.config.helo_name,
            bounce_domain: &app.config.bounce_domain,
        };
        let prepared = PreparedTask::new(&message, &app.link_secret)?;
        let name = DomainName::parse(&m.sender.domain)
            .ok_or_else(|| anyhow::anyhow!("the domain of {} is not a domain name", m.sender.address))?;
        let domain = senders::domain(&app.store, &name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the domain of {} is gone", m.sender.address))?;
        let signer =
            super::sending::domain_signer(&app.store, &app.secret_box, app.config.dkim_algorithms(), &domain)
                .await?;
        let send_type = accounts::service(&app.store, customer).await?.send_type;
        let route = super::sending::route_for(app, m.sender, send_type, &domain).await?;
        // No delivery row: the message's links and envelope name none (0).
        let now = jiff::Timestamp::now().to_zoned_datetime(app.config.timezone.clone());
        let bytes = prepared.build(&m.sender.address, &signer, &m.recipient, 0, &now)?;
        let to = crate::domain::email::EmailAddress::parse(m.recipient.email)
            .ok_or_else(|| anyhow::anyhow!("'{}' is not an e-mail address", m.recipient.email))?;
        let attempt = self
            .mailer
            .send(&route, &prepared.envelope_sender(0), to.ascii(), &bytes)
            .await;
        self.mailer.close().await;
        Ok(attempt)
    }
}

impl crate::domain::templates::Outbox for Outbox {
    async fn send_now(&self, customer: CustomerId, m: &TestMessage<'_>) -> Result<TestDelivery, String> {
        match self.send(customer, m).await {
            Ok(a @ Attempt::Sent { .. }) => Ok(TestDelivery::Accepted(a.describe())),
            Ok(a) => Ok(TestDelivery::Refused(a.describe())),
            Err(e) => {
                tracing::warn!(error = %e, "a test message was not sent");
                Err(e.to_string())
            }
        }
    }
}
