//! The use-cases of bulk-send tasks: create, change, delete, list, and
//! pause, resume or cancel one; and the sender selection they send from.

use std::fmt;

use jiff::civil::Date;

use super::{
    GuardFigures, GuardPause, Guards, Intervention, SendStatus, SenderSelection, Task, TaskFilter,
    effective_quantity, new_ident,
};
use crate::clock::Clock;
use crate::domain::accounts::ServiceType;
use crate::domain::ids::{CustomerId, ListId, TaskId, TemplateId};
use crate::domain::lists::ListStatus;
use crate::domain::senders::{DomainName, Mailbox, MailboxAddress, MailboxScope, Owner};
use crate::domain::storage::{Refusal, Storage, StoreError, StoreResult};
use crate::domain::templates::FooterLanguage;

/// What the task use-cases need of storage.
pub trait TaskStorage: Sync {
    /// Creates a task and takes its reservation (`task.reserved` credits)
    /// in one transaction; `Refused(NotEnoughCredits)` when the service
    /// can't give them, and nothing is written.
    fn create_task(&self, task: &Task, now: i64) -> impl Future<Output = StoreResult<TaskId>> + Send;

    /// One of the customer's tasks (not deleted).
    fn task(
        &self,
        customer: CustomerId,
        id: TaskId,
    ) -> impl Future<Output = StoreResult<Option<Task>>> + Send;

    /// A customer's tasks, ascending id.
    fn tasks(
        &self,
        customer: CustomerId,
        f: &TaskFilter,
    ) -> impl Future<Output = StoreResult<Vec<Task>>> + Send;

    /// Applies `change` to a task in one transaction: `change` sees the
    /// task as it is, locked, and returns it as it must become, or refuses
    /// (and nothing is written); the difference in `reserved` is taken from
    /// or given back to the service (`Refused(NotEnoughCredits)`).
    /// `NotFound("task")` when the customer has no such task.
    fn change_task<E: Send>(
        &self,
        customer: CustomerId,
        id: TaskId,
        now: i64,
        change: impl FnOnce(&Task) -> Result<Task, E> + Send,
    ) -> impl Future<Output = StoreResult<Result<Task, E>>> + Send;

    /// Deletes a task that is not sending: cancels what it had not sent
    /// and gives back its reservation but for the messages still in
    /// flight, which settle as their outcomes land (H-2).
    /// `NotFound("task")`, or `Refused(State)` while it sends.
    fn delete_task(
        &self,
        customer: CustomerId,
        id: TaskId,
        now: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Pauses (2 → -2), resumes (-2 → 2) or cancels (any unfinished state
    /// → -3) a task in one transaction; cancelling stops its deliveries and
    /// refunds the unsent part. A resume clears a guard's pause and starts
    /// the guards' counts again from the task's counts now.
    /// `Refused(State)` when its state does not allow it, and nothing changes.
    fn intervene(
        &self,
        customer: CustomerId,
        id: TaskId,
        what: Intervention,
        now: i64,
    ) -> impl Future<Output = StoreResult<Task>> + Send;

    /// What the reputation guards count of a sending task since its last
    /// resume; `None` when it does not send (any more).
    fn guard_figures(&self, id: TaskId) -> impl Future<Output = StoreResult<Option<GuardFigures>>> + Send;

    /// Pauses a sending task (2 → -2) for a guard, keeping why with it;
    /// false when it no longer sends.
    fn guard_pause(&self, id: TaskId, pause: &GuardPause) -> impl Future<Output = StoreResult<bool>> + Send;

    /// A task's deliveries waiting for another day under a daily cap.
    fn waiting_for_cap(&self, id: TaskId) -> impl Future<Output = StoreResult<i64>> + Send;
}

/// The sender a request names, before it is checked (F.3): a domain (or
/// "all") and a mailbox address (or "all").
#[derive(Clone, Debug, Default)]
pub struct SenderRequest {
    pub domain: Option<String>,
    pub account: String,
}

/// A task to create.
#[derive(Clone, Debug)]
pub struct NewTask {
    pub template: TemplateId,
    pub list: ListId,
    pub sender: SenderRequest,
    pub sender_name: String,
    /// An address, or empty for none.
    pub replyto: String,
    /// 0: every address from `start` on.
    pub send_qty: i64,
    /// The list position to start at, from 1.
    pub start: i64,
    /// `None`: now (the scheduler starts a released task at once).
    pub send_time: Option<i64>,
    /// Held until someone releases it (-1), else waiting for its time (1).
    pub hold: bool,
    pub track_status: i64,
    pub subs_link: bool,
    /// A host name, or empty for the platform's.
    pub track_domain: String,
    /// The unsubscribe footer's language; `Auto`: the customer's setting.
    pub footer_language: FooterLanguage,
}

/// A change to a task that has not started; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct TaskEdit {
    /// Hold (false) or release (true) it.
    pub release: Option<bool>,
    pub template: Option<TemplateId>,
    pub list: Option<ListId>,
    pub send_domain: Option<String>,
    pub send_account: Option<String>,
    pub sender_name: Option<String>,
    pub send_qty: Option<i64>,
    pub start: Option<i64>,
    pub send_time: Option<i64>,
    pub subs_link: Option<bool>,
    pub track_status: Option<i64>,
    pub track_domain: Option<String>,
    pub replyto: Option<String>,
    pub footer_language: Option<FooterLanguage>,
}

/// What a task operation acted on when its state refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAction {
    Edit,
    Delete,
    Intervene(Intervention),
}

impl TaskAction {
    /// The rule a refused request broke.
    pub fn rule(self) -> &'static str {
        match self {
            TaskAction::Edit => "only a task on hold (-1) or waiting (1) can be changed",
            TaskAction::Delete => "a sending task (2) can't be deleted; pause or cancel it first",
            TaskAction::Intervene(i) => i.rule(),
        }
    }
}

/// Why a sender selection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionError {
    DomainNotADomain,
    DomainNotOwned,
    AccountNotAnAddress,
    AccountNotInDomain,
    AccountNotOwned,
    NoMailbox,
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectionError::DomainNotADomain => "send_domain is not a domain name",
            SelectionError::DomainNotOwned => "send_domain is not one of the customer's domains",
            SelectionError::AccountNotAnAddress => "send_account is not an address",
            SelectionError::AccountNotInDomain => "send_account is not in send_domain",
            SelectionError::AccountNotOwned => "send_account is not one of the customer's mailboxes",
            SelectionError::NoMailbox => "the sender selection has no mailbox",
        })
    }
}

/// Why a task operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no such task")]
    NotFound,
    #[error("no such template")]
    TemplateNotFound,
    #[error("no such list")]
    ListNotFound,
    #[error("the list is disabled")]
    ListDisabled,
    #[error("{0}")]
    Sender(SelectionError),
    #[error("the bulk-send service is disabled or outside its dates")]
    ServiceUnusable,
    #[error("{needed} credits are needed and {available} are available")]
    NotEnoughCredits { needed: i64, available: i64 },
    #[error("the task is {} ({}): {}", .status.name(), .status.code(), .action.rule())]
    State { status: SendStatus, action: TaskAction },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("task") => TaskError::NotFound,
            StoreError::Refused(Refusal::NotEnoughCredits { needed, available }) => {
                TaskError::NotEnoughCredits { needed, available }
            }
            e => TaskError::Store(e),
        }
    }
}

/// The list a task sends to: the customer's, enabled; its address count.
async fn usable_list(s: &impl Storage, customer: CustomerId, id: ListId) -> Result<i64, TaskError> {
    let list = s.list(customer, id).await?.ok_or(TaskError::ListNotFound)?;
    if list.status == ListStatus::Disabled {
        return Err(TaskError::ListDisabled);
    }
    Ok(list.count)
}

/// Creates a task (5.1): the template and the list must be the customer's
/// (the list enabled), the sender one it may use; a task released to send
/// needs a usable service and, on an `all` service, reserves its credits.
pub async fn create_task(
    s: &impl Storage,
    clock: &Clock,
    customer: CustomerId,
    t: NewTask,
) -> Result<Task, TaskError> {
    let now = clock.now();
    let send_time = t.send_time.unwrap_or(now);
    s.template(customer, t.template)
        .await?
        .ok_or(TaskError::TemplateNotFound)?;
    let list_count = usable_list(s, customer, t.list).await?;
    let sender = resolve_sender(s, customer, t.sender.domain.as_deref(), &t.sender.account).await?;
    let service = s.service(customer).await?;
    let today = clock.today();
    let releases = !t.hold;
    if releases && !service.is_usable(today) {
        return Err(TaskError::ServiceUnusable);
    }
    let remak = effective_quantity(t.send_qty, t.start, list_count);
    let reserve = if releases && service.service_type == ServiceType::All {
        remak
    } else {
        0
    };
    let available = service.available(today);
    if reserve > available {
        return Err(TaskError::NotEnoughCredits {
            needed: reserve,
            available,
        });
    }
    let mut task = Task {
        id: TaskId(0),
        customer_id: customer,
        ident: new_ident(clock.date_of(send_time), customer),
        tpl_id: t.template,
        tpl_name: String::new(),
        list_id: t.list,
        list_name: String::new(),
        sender,
        sender_name: t.sender_name,
        replyto: t.replyto,
        send_qty: t.send_qty,
        send_qty_start: t.start,
        send_qty_remak: remak,
        send_time,
        time_start: None,
        time_end: None,
        status: if releases {
            SendStatus::Waiting
        } else {
            SendStatus::Hold
        },
        track_status: t.track_status,
        subs_link: t.subs_link,
        track_domain: t.track_domain,
        addr_type: 0,
        reserved: reserve,
        service_paused: false,
        recipients: 0,
        sent_count: 0,
        error_count: 0,
        skipped_count: 0,
        guard_pause: None,
        footer_language: t.footer_language,
    };
    // The ident's random part has 2^24 values per customer and day: a
    // customer making thousands of tasks a day meets a taken one now and
    // then, and a clash (which stored nothing) draws again.
    let mut draws = 1;
    loop {
        match s.create_task(&task, now).await {
            Err(StoreError::Duplicate(_)) if draws < 4 => {
                draws += 1;
                task.ident = new_ident(clock.date_of(send_time), customer);
            }
            created => {
                task.id = created?;
                return Ok(task);
            }
        }
    }
}

/// Changes a task on hold or waiting (6.3). A sender given by half takes
/// its other half from the task's selection (F.3); a release needs a usable
/// service; an `all` service's reservation follows the new quantity.
pub async fn edit_task(
    s: &impl Storage,
    clock: &Clock,
    customer: CustomerId,
    id: TaskId,
    e: TaskEdit,
) -> Result<Task, TaskError> {
    let current = s.task(customer, id).await?.ok_or(TaskError::NotFound)?;
    if let Some(t) = e.template {
        s.template(customer, t)
            .await?
            .ok_or(TaskError::TemplateNotFound)?;
    }
    let list_count = usable_list(s, customer, e.list.unwrap_or(current.list_id)).await?;
    let editable = |status: SendStatus| matches!(status, SendStatus::Hold | SendStatus::Waiting);
    if !editable(current.status) {
        return Err(TaskError::State {
            status: current.status,
            action: TaskAction::Edit,
        });
    }
    let selection = match (&e.send_domain, &e.send_account) {
        (None, None) => None,
        (domain, account) => {
            let (d, a) = sender_halves(&current.sender, domain.as_deref(), account.as_deref());
            Some(resolve_sender(s, customer, d.as_deref(), &a).await?)
        }
    };
    let service = s.service(customer).await?;
    let today = clock.today();
    let next_status = match e.release {
        Some(true) => SendStatus::Waiting,
        Some(false) => SendStatus::Hold,
        None => current.status,
    };
    if e.release == Some(true) && !service.is_usable(today) {
        return Err(TaskError::ServiceUnusable);
    }
    let all_type = service.service_type == ServiceType::All;
    s.change_task(customer, id, clock.now(), |t: &Task| {
        if !editable(t.status) {
            return Err(TaskError::State {
                status: t.status,
                action: TaskAction::Edit,
            });
        }
        let mut n = t.clone();
        n.tpl_id = e.template.unwrap_or(t.tpl_id);
        n.list_id = e.list.unwrap_or(t.list_id);
        if let Some(sel) = selection {
            n.sender = sel;
        }
        if let Some(v) = e.sender_name {
            n.sender_name = v;
        }
        n.send_qty = e.send_qty.unwrap_or(t.send_qty);
        n.send_qty_start = e.start.unwrap_or(t.send_qty_start);
        if e.list.is_some() || e.send_qty.is_some() || e.start.is_some() {
            n.send_qty_remak = effective_quantity(n.send_qty, n.send_qty_start, list_count);
        }
        n.send_time = e.send_time.unwrap_or(t.send_time);
        n.status = next_status;
        n.subs_link = e.subs_link.unwrap_or(t.subs_link);
        n.track_status = e.track_status.unwrap_or(t.track_status);
        if let Some(d) = e.track_domain {
            n.track_domain = d;
        }
        if let Some(r) = e.replyto {
            n.replyto = r;
        }
        n.footer_language = e.footer_language.unwrap_or(t.footer_language);
        n.reserved = if all_type && n.status == SendStatus::Waiting {
            n.send_qty_remak
        } else {
            0
        };
        Ok(n)
    })
    .await?
}

/// F.3: a sender change naming only the domain or only the mailbox takes
/// the missing half from the task's selection.
fn sender_halves(
    current: &SenderSelection,
    domain: Option<&str>,
    account: Option<&str>,
) -> (Option<String>, String) {
    match (current, domain, account) {
        (_, Some(d), Some(a)) => (Some(d.to_string()), a.to_string()),
        (SenderSelection::All | SenderSelection::Domain(_), Some(d), None) => {
            (Some(d.to_string()), "all".to_string())
        }
        (SenderSelection::Address(a), Some(d), None) => (Some(d.to_string()), a.clone()),
        (SenderSelection::All, None, Some(a)) => (Some("all".to_string()), a.to_string()),
        (SenderSelection::Domain(x), None, Some(a)) => (Some(x.clone()), a.to_string()),
        (SenderSelection::Address(_), None, Some(a)) => (None, a.to_string()),
        (_, None, None) => (None, "all".to_string()),
    }
}

/// Deletes a task (6.4): not while it is sending.
pub async fn delete_task(
    s: &impl Storage,
    customer: CustomerId,
    id: TaskId,
    now: i64,
) -> Result<(), TaskError> {
    match s.delete_task(customer, id, now).await {
        Ok(()) => Ok(()),
        Err(StoreError::Refused(Refusal::State)) => Err(TaskError::State {
            status: SendStatus::Sending,
            action: TaskAction::Delete,
        }),
        Err(e) => Err(e.into()),
    }
}

/// One of the customer's tasks.
pub async fn task(s: &impl Storage, customer: CustomerId, id: TaskId) -> Result<Task, TaskError> {
    s.task(customer, id).await?.ok_or(TaskError::NotFound)
}

/// The customer's tasks a filter selects, ascending id.
pub async fn tasks(s: &impl Storage, customer: CustomerId, f: &TaskFilter) -> StoreResult<Vec<Task>> {
    s.tasks(customer, f).await
}

/// Pauses, resumes or cancels one of the customer's tasks (D-20, H-2,
/// H-3). A paused task's deliveries are not claimed (messages already in
/// SMTP finish); a cancelled one's queued deliveries are cancelled and its
/// unsent part refunded. A resume needs a usable service.
pub async fn intervene(
    s: &impl Storage,
    customer: CustomerId,
    id: TaskId,
    what: Intervention,
    now: i64,
    today: Date,
) -> Result<Task, TaskError> {
    if what == Intervention::Resume && !s.service(customer).await?.is_usable(today) {
        return Err(TaskError::ServiceUnusable);
    }
    match s.intervene(customer, id, what, now).await {
        Ok(task) => Ok(task),
        // Refused in the transaction: tell which state refused it.
        Err(StoreError::Refused(Refusal::State)) => {
            let status = s.task(customer, id).await?.ok_or(TaskError::NotFound)?.status;
            Err(TaskError::State {
                status,
                action: TaskAction::Intervene(what),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The reputation guards, when outcomes of a sending task have landed:
/// pauses the task (-2) when more than a guard's rate of its recipients
/// with an outcome since its last resume (at least the guard's minimum)
/// are hard failures or complaints. The pause, when it paused the task now.
pub async fn watch_reputation(
    s: &impl TaskStorage,
    id: TaskId,
    guards: &Guards,
    now: i64,
) -> StoreResult<Option<GuardPause>> {
    if guards.bounces.is_none() && guards.complaints.is_none() {
        return Ok(None);
    }
    let Some(figures) = s.guard_figures(id).await? else {
        return Ok(None);
    };
    let Some(pause) = guards.verdict(&figures, now) else {
        return Ok(None);
    };
    Ok(s.guard_pause(id, &pause).await?.then_some(pause))
}

/// A task's deliveries waiting for another day under a daily cap.
pub async fn waiting_for_cap(s: &impl TaskStorage, id: TaskId) -> StoreResult<i64> {
    s.waiting_for_cap(id).await
}

/// F.3: the selection `domain`/`account` name, checked against what the
/// customer may use, with at least one mailbox in it.
pub async fn resolve_sender(
    s: &impl Storage,
    customer: CustomerId,
    domain: Option<&str>,
    account: &str,
) -> Result<SenderSelection, TaskError> {
    let usable = |owner: Owner| owner == Owner::System || owner == Owner::Customer(customer);
    let refuse = |why: SelectionError| Err(TaskError::Sender(why));
    let domain = domain.filter(|d| !d.eq_ignore_ascii_case("all"));
    let selection = if account.eq_ignore_ascii_case("all") {
        match domain {
            None => SenderSelection::All,
            Some(d) => {
                let Some(name) = DomainName::parse(d) else {
                    return refuse(SelectionError::DomainNotADomain);
                };
                match s.domain(&name).await? {
                    Some(found) if usable(found.owner) => SenderSelection::Domain(found.domain),
                    _ => return refuse(SelectionError::DomainNotOwned),
                }
            }
        }
    } else {
        let Some(address) = MailboxAddress::parse(account) else {
            return refuse(SelectionError::AccountNotAnAddress);
        };
        if let Some(d) = domain
            && DomainName::parse(d).map(|n| n.as_str().to_string())
                != Some(address.domain.as_str().to_string())
        {
            return refuse(SelectionError::AccountNotInDomain);
        }
        match s.mailbox(&address).await? {
            Some(m) if usable(m.owner) => SenderSelection::Address(m.address),
            _ => return refuse(SelectionError::AccountNotOwned),
        }
    };
    if sender_mailboxes(s, customer, &selection).await?.is_empty() {
        return refuse(SelectionError::NoMailbox);
    }
    Ok(selection)
}

/// The mailboxes a selection rotates over, in a stable order.
pub async fn sender_mailboxes(
    s: &impl Storage,
    customer: CustomerId,
    selection: &SenderSelection,
) -> StoreResult<Vec<Mailbox>> {
    let scope = MailboxScope::AvailableTo(customer);
    let usable = |owner: Owner| owner == Owner::System || owner == Owner::Customer(customer);
    Ok(match selection {
        SenderSelection::Address(a) => match MailboxAddress::parse(a) {
            Some(addr) => s
                .mailbox(&addr)
                .await?
                .filter(|m| usable(m.owner))
                .into_iter()
                .collect(),
            None => Vec::new(),
        },
        SenderSelection::Domain(d) => {
            let found = match DomainName::parse(d) {
                Some(name) => s.domain(&name).await?.filter(|x| usable(x.owner)),
                None => None,
            };
            match found {
                Some(found) => s.mailboxes(found.id, scope, None).await?,
                None => Vec::new(),
            }
        }
        SenderSelection::All => {
            let mut all = Vec::new();
            for d in s.domains(Some(Owner::Customer(customer))).await? {
                all.extend(s.mailboxes(d.id, scope, None).await?);
            }
            all
        }
    })
}

/// What a task holds on to while it has not ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    Template(TemplateId),
    List(ListId),
}

/// The customer's tasks that have not ended (on hold, waiting, sending or
/// paused) and use a template or send to a list: which ones keep it from
/// being deleted.
pub async fn tasks_holding(s: &impl Storage, customer: CustomerId, what: Holds) -> StoreResult<Vec<Task>> {
    let filter = TaskFilter {
        statuses: Some(SendStatus::holding()),
        ..Default::default()
    };
    let mut found = s.tasks(customer, &filter).await?;
    found.retain(|t| match what {
        Holds::Template(id) => t.tpl_id == id,
        Holds::List(id) => t.list_id == id,
    });
    Ok(found)
}
