//! Building one message: rendering, MIME, link rewriting, signed tokens and
//! DKIM — everything between "this task, this recipient, this mailbox" and
//! the bytes handed to SMTP. No I/O: the engine passes in the template,
//! the attachments' bytes and the keys.
//!
//! - [`message`]: [`PreparedTask`] once per task, [`PreparedTask::build`] per recipient.
//! - [`tokens`]: the signed tokens of pixel, click and unsubscribe URLs and of
//!   VERP addresses, and their paths.
//! - [`links`]: click tracking's rewriting of a template's links.
//! - [`mime`]: transfer encodings, RFC 2047 and RFC 2231.
//! - [`dkim`]: keys, DNS records and signatures.
//! - [`footer`]: the language of the unsubscribe footer.
//! - [`preview`]: a template rendered for a sample recipient.
//! - [`text`]: the text/plain alternative derived from an HTML part.

pub mod dkim;
pub mod footer;
pub mod links;
pub mod message;
pub mod mime;
pub mod preview;
pub mod text;
pub mod tokens;

pub use links::link_base;
pub use message::{AttachmentFile, BuildError, PrepareError, PreparedTask, TaskMessage, Tracking};
pub use tokens::{Claim, LinkSigner};
