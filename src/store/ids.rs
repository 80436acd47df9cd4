//! The domain's ids bind and decode as the `BIGINT`s they are stored as.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::domain::ids::{
    AddressId, AttachmentId, ClickId, CustomerId, DeliveryId, DomainId, FileId, ImportId, LinkId, ListId,
    MailboxId, OperatorId, TaskId, TemplateId, TrackedRecipientId, WebhookEventId, WebhookId,
};

macro_rules! bigint_id {
    ($($id:ident),*) => {$(
        impl<DB: Database> Type<DB> for $id
        where
            i64: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <i64 as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <i64 as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $id
        where
            i64: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $id
        where
            i64: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                <i64 as Decode<'r, DB>>::decode(value).map($id)
            }
        }
    )*};
}

bigint_id!(
    AddressId,
    AttachmentId,
    ClickId,
    CustomerId,
    DeliveryId,
    DomainId,
    FileId,
    ImportId,
    LinkId,
    ListId,
    MailboxId,
    OperatorId,
    TaskId,
    TemplateId,
    TrackedRecipientId,
    WebhookEventId,
    WebhookId
);
