//! A test message: one of a customer's templates sent now to one address,
//! from one of its mailboxes, built and signed as a task's message would be,
//! outside any task and without charging a credit.

use super::{Attachment, Recipient, Template};
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, CustomerId, TemplateId};
use crate::domain::lists::{AddressFilter, Start};
use crate::domain::senders::Mailbox;
use crate::domain::storage::{Storage, StoreError};
use crate::domain::tasks::{SelectionError, TaskError, resolve_sender, sender_mailboxes};

/// What a test message is made of.
pub struct TestMessage<'a> {
    pub template: &'a Template,
    pub attachments: &'a [Attachment],
    pub sender: &'a Mailbox,
    pub recipient: Recipient<'a>,
}

/// What the receiving server said to a test message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestDelivery {
    /// Accepted; the server's reply.
    Accepted(String),
    /// Refused, for now or for good; the server's reply or why.
    Refused(String),
}

/// What sends a message now: the engine's message building and SMTP.
pub trait Outbox: Sync {
    /// Builds the message for `customer` and hands it to SMTP; `Err` says
    /// why it could not be built or handed over.
    fn send_now(
        &self,
        customer: CustomerId,
        m: &TestMessage<'_>,
    ) -> impl Future<Output = Result<TestDelivery, String>> + Send;
}

/// Why a test message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum TestSendError {
    #[error("no such template")]
    NotFound,
    #[error("not an e-mail address")]
    InvalidAddress,
    #[error("{0}")]
    Sender(SelectionError),
    /// The receiving server refused it: its reply.
    #[error("refused: {0}")]
    Refused(String),
    /// It could not be built or handed to SMTP.
    #[error("not sent: {0}")]
    Unsent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TaskError> for TestSendError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Sender(s) => TestSendError::Sender(s),
            TaskError::Store(e) => TestSendError::Store(e),
            other => TestSendError::Unsent(other.to_string()),
        }
    }
}

/// Sends one of the customer's templates to `to` from its mailbox
/// `sender`, now. The recipient's name and variables are those of the
/// address in the customer's lists when it is there. Returns the receiving
/// server's reply.
pub async fn send_test(
    s: &impl Storage,
    out: &impl Outbox,
    customer: CustomerId,
    id: TemplateId,
    sender: &str,
    to: &str,
) -> Result<String, TestSendError> {
    let template = s.template(customer, id).await?.ok_or(TestSendError::NotFound)?;
    let to = EmailAddress::parse(to.trim()).ok_or(TestSendError::InvalidAddress)?;
    let selection = resolve_sender(s, customer, None, sender.trim()).await?;
    let mailboxes = sender_mailboxes(s, customer, &selection).await?;
    let mailbox = mailboxes
        .first()
        .ok_or(TestSendError::Sender(SelectionError::NoMailbox))?;
    let attachments = s.attachments(customer, Some(id)).await?;
    let known = known_address(s, customer, &to).await?;
    let vars: [&str; 10] = match &known {
        Some(a) => std::array::from_fn(|i| a.vars[i].as_str()),
        None => [""; 10],
    };
    let m = TestMessage {
        template: &template,
        attachments: &attachments,
        sender: mailbox,
        recipient: Recipient {
            email: to.as_str(),
            fullname: known.as_ref().map_or("", |a| a.fullname.as_str()),
            vars,
            unsubscribe_url: "",
        },
    };
    match out.send_now(customer, &m).await {
        Ok(TestDelivery::Accepted(reply)) => Ok(reply),
        Ok(TestDelivery::Refused(reply)) => Err(TestSendError::Refused(reply)),
        Err(why) => Err(TestSendError::Unsent(why)),
    }
}

/// The customer's first address that is `to`, in any list.
async fn known_address(
    s: &impl Storage,
    customer: CustomerId,
    to: &EmailAddress,
) -> Result<Option<crate::domain::lists::Address>, StoreError> {
    let filter = AddressFilter {
        keyword: Some(to.as_str().to_string()),
        ..Default::default()
    };
    let key = to.key();
    let found = s
        .addresses(customer, &filter, Start::AtId(AddressId(0)), 20)
        .await?
        .into_iter()
        .find(|a| EmailAddress::parse(&a.address).is_some_and(|e| e.key() == key));
    Ok(found)
}
