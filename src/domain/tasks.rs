//! Bulk-send tasks: their states (A.6, D-20), the sender selection (F.3),
//! the batch identifier (D-21) and the quantity rule (H-10).

use jiff::civil::Date;
use rand::RngExt;

/// `send_status` of A.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendStatus {
    Cancelled,
    Paused,
    Hold,
    Waiting,
    Sending,
    Done,
}

impl SendStatus {
    pub fn code(self) -> i64 {
        match self {
            SendStatus::Cancelled => -3,
            SendStatus::Paused => -2,
            SendStatus::Hold => -1,
            SendStatus::Waiting => 1,
            SendStatus::Sending => 2,
            SendStatus::Done => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<SendStatus> {
        Some(match code {
            -3 => SendStatus::Cancelled,
            -2 => SendStatus::Paused,
            -1 => SendStatus::Hold,
            1 => SendStatus::Waiting,
            2 => SendStatus::Sending,
            3 => SendStatus::Done,
            _ => return None,
        })
    }

    /// Not completed and not cancelled: what D-20 lets the console cancel.
    pub fn is_unfinished(self) -> bool {
        !matches!(self, SendStatus::Done | SendStatus::Cancelled)
    }

    /// The state in words, for people (CLI, console).
    pub fn name(self) -> &'static str {
        match self {
            SendStatus::Cancelled => "cancelled",
            SendStatus::Paused => "paused",
            SendStatus::Hold => "on hold",
            SendStatus::Waiting => "waiting",
            SendStatus::Sending => "sending",
            SendStatus::Done => "completed",
        }
    }

    /// Whether a task in this state holds its list, template and senders
    /// (4.5, 4.12, 5.4, 7.3, 7.6: `in_use`).
    pub fn holds_resources(self) -> bool {
        matches!(
            self,
            SendStatus::Hold | SendStatus::Waiting | SendStatus::Sending | SendStatus::Paused
        )
    }
}

/// What the platform or its console does to a task's course (D-20:
/// "2 ⇄ -2 (pause / resume), any unfinished state → -3 (cancel)"); the
/// vendor API has no call for these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intervention {
    Pause,
    Resume,
    Cancel,
}

impl Intervention {
    /// Whether a task in `status` can take it. `service_paused`: the task
    /// was paused because its service became unusable (H-3); pausing it
    /// again makes it the user's pause, which the service coming back does
    /// not lift.
    pub fn allowed(self, status: SendStatus, service_paused: bool) -> bool {
        match self {
            Intervention::Pause => {
                status == SendStatus::Sending || (status == SendStatus::Paused && service_paused)
            }
            Intervention::Resume => status == SendStatus::Paused,
            Intervention::Cancel => status.is_unfinished(),
        }
    }

    /// The state it leads to.
    pub fn target(self) -> SendStatus {
        match self {
            Intervention::Pause => SendStatus::Paused,
            Intervention::Resume => SendStatus::Sending,
            Intervention::Cancel => SendStatus::Cancelled,
        }
    }

    /// The rule a refused request broke, for its one-line error.
    pub fn rule(self) -> &'static str {
        match self {
            Intervention::Pause => "only a sending task (2) can be paused",
            Intervention::Resume => "only a paused task (-2) can be resumed",
            Intervention::Cancel => "a completed or cancelled task can't be cancelled",
        }
    }
}

/// Why an intervention was refused.
#[derive(Debug)]
pub enum InterventionError {
    NotFound,
    /// The task is in a state the intervention does not leave from.
    State(Intervention, SendStatus),
    /// Resuming while the service is disabled or outside its dates (H-3).
    ServiceUnusable,
    Store(crate::store::StoreError),
}

impl std::fmt::Display for InterventionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterventionError::NotFound => write!(f, "no such task"),
            InterventionError::State(what, status) => write!(
                f,
                "the task is {} ({}): {}",
                status.name(),
                status.code(),
                what.rule()
            ),
            InterventionError::ServiceUnusable => write!(
                f,
                "the bulk-send service is disabled or outside its dates: the task stays paused"
            ),
            InterventionError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InterventionError {}

/// Pauses, resumes or cancels one of the customer's tasks (D-20, H-2, H-3):
/// what the console and `qunfa admin task` call. A paused task's deliveries
/// are not claimed (messages already in SMTP finish); a cancelled one's
/// queued deliveries are cancelled and its unsent part refunded.
pub async fn intervene(
    store: &crate::store::Store,
    customer: i64,
    id: i64,
    what: Intervention,
    now: i64,
    today: Date,
) -> Result<crate::store::Task, InterventionError> {
    use crate::store::StoreError;
    if what == Intervention::Resume {
        let service = store.service(customer).await.map_err(InterventionError::Store)?;
        if !service.is_usable(today) {
            return Err(InterventionError::ServiceUnusable);
        }
    }
    match store.intervene(customer, id, what, now).await {
        Ok(task) => Ok(task),
        Err(StoreError::NotFound(_)) => Err(InterventionError::NotFound),
        Err(StoreError::Other(s)) if s == "state" => {
            // Refused in the transaction: tell which state refused it.
            match store.task(customer, id).await {
                Ok(Some(t)) => Err(InterventionError::State(what, t.status)),
                Ok(None) => Err(InterventionError::NotFound),
                Err(e) => Err(InterventionError::Store(e)),
            }
        }
        Err(e) => Err(InterventionError::Store(e)),
    }
}

/// Which mailboxes a task sends from, rotating over them (F.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderSelection {
    /// Every mailbox available to the customer.
    All,
    /// Every available mailbox of one domain (A-labels).
    Domain(String),
    /// One mailbox.
    Address(String),
}

impl SenderSelection {
    pub fn acct_type(&self) -> &'static str {
        match self {
            SenderSelection::All => "all",
            SenderSelection::Domain(_) => "domain",
            SenderSelection::Address(_) => "address",
        }
    }

    pub fn domain(&self) -> &str {
        match self {
            SenderSelection::Domain(d) => d,
            _ => "",
        }
    }

    pub fn address(&self) -> &str {
        match self {
            SenderSelection::Address(a) => a,
            _ => "",
        }
    }

    pub fn from_stored(acct_type: &str, domain: &str, address: &str) -> SenderSelection {
        match acct_type {
            "domain" => SenderSelection::Domain(domain.to_string()),
            "address" => SenderSelection::Address(address.to_string()),
            _ => SenderSelection::All,
        }
    }
}

/// D-21: `YYYYMMDD-{customer id}-{6 upper-case hex}`, the date of the
/// initial send time.
pub fn new_ident(send_date: Date, customer_id: i64) -> String {
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{}-{customer_id}-{suffix:06X}", send_date.strftime("%Y%m%d"))
}

/// H-10: `send_qty_remak = min(send_qty or ∞, count − start + 1)`, never
/// below zero; `send_qty` 0 means all.
pub fn effective_quantity(send_qty: i64, start: i64, list_count: i64) -> i64 {
    let available = (list_count - start + 1).max(0);
    if send_qty > 0 {
        send_qty.min(available)
    } else {
        available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_look_like_the_vendors() {
        let id = new_ident(Date::constant(2012, 3, 2), 362);
        assert!(id.starts_with("20120302-362-"), "{id}");
        let hex = id.rsplit('-').next().unwrap();
        assert_eq!(hex.len(), 6);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(effective_quantity(0, 1, 100), 100);
        assert_eq!(effective_quantity(30, 1, 100), 30);
        assert_eq!(effective_quantity(30, 90, 100), 11);
        assert_eq!(effective_quantity(0, 101, 100), 0);
        assert_eq!(effective_quantity(0, 500, 100), 0);
    }

    #[test]
    fn interventions_follow_d20() {
        use Intervention::*;
        use SendStatus::*;
        let all = [Cancelled, Paused, Hold, Waiting, Sending, Done];
        let from = |what: Intervention, service_paused: bool| -> Vec<SendStatus> {
            all.into_iter()
                .filter(|s| what.allowed(*s, service_paused))
                .collect()
        };
        assert_eq!(from(Pause, false), [Sending]);
        assert_eq!(
            from(Pause, true),
            [Paused, Sending],
            "a service pause becomes the user's"
        );
        assert_eq!(from(Resume, false), [Paused]);
        assert_eq!(from(Cancel, false), [Paused, Hold, Waiting, Sending]);
        assert_eq!(Pause.target(), Paused);
        assert_eq!(Resume.target(), Sending);
        assert_eq!(Cancel.target(), Cancelled);
        let e = InterventionError::State(Pause, Waiting).to_string();
        assert_eq!(
            e,
            "the task is waiting (1): only a sending task (2) can be paused"
        );
    }

    #[test]
    fn status_codes_round_trip() {
        for code in [-3, -2, -1, 1, 2, 3] {
            assert_eq!(SendStatus::from_code(code).unwrap().code(), code);
        }
        assert!(SendStatus::from_code(0).is_none());
    }
}

/// Why a sender selection was refused (`sender_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderError(pub String);

/// F.3: the selection `send_domain`/`send_account` name, checked against
/// what the customer may use, with at least one mailbox in it.
pub async fn resolve_sender(
    store: &crate::store::Store,
    customer: i64,
    domain: Option<&str>,
    account: &str,
) -> Result<SenderSelection, SenderErrorOr> {
    use super::senders::{DomainName, MailboxAddress, Owner};
    let usable = |owner: Owner| owner == Owner::System || owner == Owner::Customer(customer);
    let refuse = |why: &str| Err(SenderErrorOr::Sender(SenderError(why.to_string())));
    let domain = domain.filter(|d| !d.eq_ignore_ascii_case("all"));
    let selection = if account.eq_ignore_ascii_case("all") {
        match domain {
            None => SenderSelection::All,
            Some(d) => {
                let Some(name) = DomainName::parse(d) else {
                    return refuse("send_domain is not a domain name");
                };
                match store.domain(&name).await? {
                    Some(found) if usable(found.owner) => SenderSelection::Domain(found.domain),
                    _ => return refuse("send_domain is not one of the customer's domains"),
                }
            }
        }
    } else {
        let Some(address) = MailboxAddress::parse(account) else {
            return refuse("send_account is not an address");
        };
        if let Some(d) = domain
            && DomainName::parse(d).map(|n| n.as_str().to_string())
                != Some(address.domain.as_str().to_string())
        {
            return refuse("send_account is not in send_domain");
        }
        match store.mailbox(&address).await? {
            Some(m) if usable(m.owner) => SenderSelection::Address(m.address),
            _ => return refuse("send_account is not one of the customer's mailboxes"),
        }
    };
    if sender_mailboxes(store, customer, &selection).await?.is_empty() {
        return refuse("the sender selection has no mailbox");
    }
    Ok(selection)
}

/// A sender refusal, or the store failing.
#[derive(Debug)]
pub enum SenderErrorOr {
    Sender(SenderError),
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for SenderErrorOr {
    fn from(e: crate::store::StoreError) -> Self {
        SenderErrorOr::Store(e)
    }
}

/// The mailboxes a selection rotates over, in a stable order.
pub async fn sender_mailboxes(
    store: &crate::store::Store,
    customer: i64,
    selection: &SenderSelection,
) -> Result<Vec<crate::store::Mailbox>, crate::store::StoreError> {
    use super::senders::{MailboxAddress, Owner};
    use crate::store::MailboxScope;
    let scope = MailboxScope::AvailableTo(customer);
    let usable = |owner: Owner| owner == Owner::System || owner == Owner::Customer(customer);
    Ok(match selection {
        SenderSelection::Address(a) => match MailboxAddress::parse(a) {
            Some(addr) => store
                .mailbox(&addr)
                .await?
                .filter(|m| usable(m.owner))
                .into_iter()
                .collect(),
            None => Vec::new(),
        },
        SenderSelection::Domain(d) => {
            let found = match super::senders::DomainName::parse(d) {
                Some(name) => store.domain(&name).await?.filter(|x| usable(x.owner)),
                None => None,
            };
            match found {
                Some(found) => store.mailboxes(found.id, scope, None).await?,
                None => Vec::new(),
            }
        }
        SenderSelection::All => {
            let mut all = Vec::new();
            for d in store.domains(Some(Owner::Customer(customer))).await? {
                all.extend(store.mailboxes(d.id, scope, None).await?);
            }
            all
        }
    })
}
