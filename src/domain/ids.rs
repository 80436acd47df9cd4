//! Ids of what qunfa keeps, one type each, so that a `TaskId` can never be
//! passed where a `ListId` is wanted, nor a customer's id where an object's
//! is. They are parsed from requests at the edge and trusted inside; every
//! query of an object takes the owner's `CustomerId` beside the object's id.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The number as stored and as the interfaces show it.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;
            fn from_str(s: &str) -> Result<Self, ParseIntError> {
                s.parse().map($name)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl From<$name> for minijinja::Value {
            fn from(id: $name) -> minijinja::Value {
                minijinja::Value::from(id.0)
            }
        }
    )*};
}

ids! {
    /// A customer: the account that owns lists, templates, tasks and credits.
    CustomerId;
    /// An agent or a manager.
    OperatorId;
    /// A contact list; 0 is the customer's "unclassified" addresses.
    ListId;
    /// One address in a list.
    AddressId;
    /// A template.
    TemplateId;
    /// An attachment of a template.
    AttachmentId;
    /// A stored file (attachment content, an import file).
    FileId;
    /// A bulk-send task.
    TaskId;
    /// One recipient of a task.
    DeliveryId;
    /// A sending domain.
    DomainId;
    /// A sender mailbox.
    MailboxId;
    /// An address-file import.
    ImportId;
    /// A tracked link of a task, numbered from 1 in document order.
    LinkId;
    /// A recipient of a task who opened or clicked (3.2 `email_id`).
    TrackedRecipientId;
    /// One recipient's clicks on one link (3.3 `click_id`).
    ClickId;
    /// A key of the JSON API.
    ApiKeyId;
    /// A customer's webhook endpoint.
    WebhookId;
    /// One event queued for one webhook; the same on every attempt.
    WebhookEventId;
}
