//! The delivery workers: claim due deliveries under a lease, build each
//! message (`mail`), hand it to SMTP (`delivery`), and record its outcome at
//! once — so that after a crash only a message that was inside SMTP DATA can
//! go out twice (docs/architecture.md, invariant 1), and none is lost: an expired lease
//! makes the delivery claimable again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::AbortOnDrop;
use crate::app::App;
use crate::delivery::{Attempt, Credentials, Mailer, Route};
use crate::domain::accounts::{self, AccountStorage, SendType};
use crate::domain::email::EmailAddress;
use crate::domain::failure::FailureClass;
use crate::domain::ids::{DomainId, TaskId};
use crate::domain::senders::{
    self, CapTarget, DailyCap, DomainName, Mailbox, SenderDomain, SenderStorage, mailbox_password,
};
use crate::domain::storage::FileStorage;
use crate::domain::tasks::{self as tasks, sender_mailboxes};
use crate::domain::templates::{Recipient, TemplateStorage};
use crate::mail::dkim::{DkimAlgorithm, DomainSigner, SIGNED_HEADERS};
use crate::mail::{AttachmentFile, PreparedTask, TaskMessage, Tracking, link_base};
use crate::secrets::SecretBox;
use crate::store::{Claimed, Outcome, Store};

/// Deliveries claimed at once.
const BATCH: i64 = 256;
/// Messages in flight at once per worker.
const CONCURRENCY: usize = 32;
const IDLE: Duration = Duration::from_millis(500);
/// How long a worker trusts what it last heard of a task's state: a pause
/// or cancel stops a batch already claimed within this time, without a
/// query per message.
const GATE_FRESH: Duration = Duration::from_millis(500);
/// How long a worker trusts the daily caps it last read: a cap set or
/// changed holds everywhere within this time.
const CAPS_FRESH: Duration = Duration::from_secs(5);

/// What every message of one task shares, prepared once.
struct TaskContext {
    prepared: PreparedTask,
    senders: Vec<Sender>,
    /// A `day` service: each message takes a credit of today's allowance
    /// when it is handed to SMTP, and gets it back if it fails for good.
    day_type: bool,
    /// Whether the task still sends.
    gate: Arc<TaskGate>,
    /// The senders (by index) that sent their daily cap, on the day named.
    capped: std::sync::Mutex<(String, HashSet<usize>)>,
}

/// Whether a task still sends (2, not deleted), as the store said at most
/// [`GATE_FRESH`] ago: asked before each message of a claimed batch goes
/// to SMTP, since the batch may take long and the task be paused,
/// cancelled or deleted meanwhile (D-20).
struct TaskGate {
    task: i64,
    seen: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl TaskGate {
    fn new(task: i64) -> TaskGate {
        TaskGate {
            task,
            seen: tokio::sync::Mutex::new(None),
        }
    }

    async fn open(&self, app: &App) -> bool {
        let mut seen = self.seen.lock().await;
        if let Some((at, open)) = *seen
            && at.elapsed() < GATE_FRESH
        {
            return open;
        }
        let open = match app.store.task_sending(self.task).await {
            Ok(open) => open,
            Err(e) => {
                // The claim was made for a sending task: keep to it.
                tracing::warn!(task = self.task, error = %e, "checking whether a task still sends");
                true
            }
        };
        *seen = Some((Instant::now(), open));
        open
    }

    /// The task stopped sending (a guard paused it): no message of it
    /// starts from here on.
    async fn close(&self) {
        *self.seen.lock().await = Some((Instant::now(), false));
    }
}

struct Sender {
    mailbox: Mailbox,
    signer: Arc<DomainSigner>,
    route: Route,
}

impl Sender {
    /// What a daily cap may hold it to: its domain and itself.
    fn cap_targets(&self) -> [CapTarget; 2] {
        [
            CapTarget::Domain(self.mailbox.domain_id),
            CapTarget::Mailbox(self.mailbox.id),
        ]
    }
}

impl TaskContext {
    /// The mailboxes take turns (F.3 rotation), by delivery: the same on
    /// every worker and on a retry, whatever order messages go out in.
    fn sender_index(&self, delivery: i64) -> usize {
        delivery.rem_euclid(self.senders.len() as i64) as usize
    }

    /// Notes that sender `index` sent its cap on `day`; whether every
    /// sender of the task has now.
    fn capped_out(&self, index: usize, day: &str) -> bool {
        let mut capped = self.capped.lock().unwrap_or_else(|e| e.into_inner());
        if capped.0 != day {
            *capped = (day.to_string(), HashSet::new());
        }
        capped.1.insert(index);
        capped.1.len() == self.senders.len()
    }
}

/// Every daily cap set, by what it holds.
type Caps = Arc<HashMap<CapTarget, DailyCap>>;

/// The daily caps of sending domains and mailboxes, as read at most
/// [`CAPS_FRESH`] ago (one query, not one per message).
struct CapBook {
    seen: tokio::sync::Mutex<Option<(Instant, Caps)>>,
}

impl CapBook {
    fn new() -> CapBook {
        CapBook {
            seen: tokio::sync::Mutex::new(None),
        }
    }

    async fn get(&self, app: &App) -> Caps {
        let mut seen = self.seen.lock().await;
        if let Some((at, caps)) = &*seen
            && at.elapsed() < CAPS_FRESH
        {
            return caps.clone();
        }
        match senders::caps(&app.store).await {
            Ok(caps) => {
                let caps = Arc::new(caps);
                *seen = Some((Instant::now(), caps.clone()));
                caps
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the daily caps");
                seen.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()
            }
        }
    }
}

/// Runs until `stop` turns true. The next batch is claimed while the
/// current one is still out: its messages take the permits the current
/// one's frees, so the SMTP connections never wait for a batch's last
/// message and a claim before going on (a fifth of the throughput).
pub async fn run(app: App, mailer: Arc<Mailer>, mut stop: watch::Receiver<bool>) {
    let mut contexts: HashMap<i64, Arc<TaskContext>> = HashMap::new();
    let recorder = Recorder::start(app.clone());
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let caps = Arc::new(CapBook::new());
    let mut out: Option<Batch> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let claimed = dispatch(&app, &mailer, &recorder, &gate, &caps, &mut contexts).await;
        // The batch before is done by the time this one is all handed out,
        // but for its last messages.
        if let Some(previous) = out.take() {
            previous.finish().await;
        }
        match claimed {
            Ok(Some(batch)) => {
                out = Some(batch);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "delivery worker"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = app.engine_wakeup.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
    if let Some(last) = out {
        last.finish().await;
    }
}

/// One step of a worker, for those who drive the engine themselves (tests,
/// a one-shot run): claims the deliveries due now (one batch), sends them
/// and records every outcome before it returns; how many it handled.
pub async fn step(app: &App, mailer: &Arc<Mailer>) -> anyhow::Result<usize> {
    let recorder = Recorder::start(app.clone());
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let caps = Arc::new(CapBook::new());
    let mut contexts = HashMap::new();
    match dispatch(app, mailer, &recorder, &gate, &caps, &mut contexts).await? {
        Some(batch) => {
            let n = batch.running.len();
            batch.finish().await;
            Ok(n)
        }
        None => Ok(0),
    }
}

/// A claimed batch whose messages are out, each in a task of its own.
struct Batch {
    running: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Renews the batch's lease while it is out.
    _renewer: AbortOnDrop,
}

impl Batch {
    async fn finish(self) {
        for r in self.running {
            let result = match r.await {
                Ok(result) => result,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "delivery worker");
            }
        }
    }
}

/// Claims one batch and hands its messages out as permits of `gate` come
/// free; `None` when nothing is due.
async fn dispatch(
    app: &App,
    mailer: &Arc<Mailer>,
    recorder: &Recorder,
    gate: &Arc<Semaphore>,
    caps: &Arc<CapBook>,
    contexts: &mut HashMap<i64, Arc<TaskContext>>,
) -> anyhow::Result<Option<Batch>> {
    let now = app.clock.now();
    let lease = app.config.delivery_lease.as_secs() as i64;
    let claimed = app.store.claim_deliveries(now, now + lease, BATCH).await?;
    if claimed.is_empty() {
        contexts.clear();
        return Ok(None);
    }
    // Renew the batch's lease while it is being sent: only a worker that
    // died lets its claims run out for another to take over.
    let claims: Vec<(i64, i64)> = claimed.iter().map(|d| (d.id, d.attempts)).collect();
    let renewer = {
        let app = app.clone();
        AbortOnDrop(tokio::spawn(async move {
            let every = app.config.delivery_lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let until = app.clock.now() + lease;
                if let Err(e) = app.store.renew_claims(&claims, until).await {
                    tracing::warn!(error = %e, "renewing delivery claims");
                }
            }
        }))
    };
    let mut running = Vec::with_capacity(claimed.len());
    for d in claimed {
        let ctx = match contexts.get(&d.task_id) {
            Some(c) => c.clone(),
            None => match prepare(app, d.task_id).await {
                Ok(c) => {
                    let c = Arc::new(c);
                    contexts.insert(d.task_id, c.clone());
                    c
                }
                Err(e) => {
                    // A task that can't be prepared fails its recipients with a reason, not silently.
                    tracing::error!(task = d.task_id, error = %e, "task cannot be sent");
                    let outcome = Outcome::Failed {
                        sender: String::new(),
                        class: i64::from(FailureClass::UserReject.code()),
                        code: None,
                        status: String::new(),
                        text: format!("not sent: {e}"),
                    };
                    count(&outcome);
                    recorder.record(d, outcome, None).await?;
                    continue;
                }
            },
        };
        let permit = gate.clone().acquire_owned().await?;
        let (app, mailer, recorder, caps) = (app.clone(), mailer.clone(), recorder.clone(), caps.clone());
        running.push(tokio::spawn(async move {
            let outcome = deliver(&app, &mailer, &ctx, &caps, &d).await;
            // The next message may start while this outcome is written.
            drop(permit);
            count(&outcome);
            recorder.record(d, outcome, Some(ctx.gate.clone())).await
        }));
    }
    Ok(Some(Batch {
        running,
        _renewer: renewer,
    }))
}

/// `messages_total{outcome, class}` on /metrics.
fn count(o: &Outcome) {
    let (outcome, class) = match o {
        Outcome::Sent { .. } => ("sent", ""),
        Outcome::Deferred { .. } => ("deferred", ""),
        Outcome::Postponed { .. } => ("postponed", ""),
        Outcome::OverCap { .. } => ("capped", ""),
        Outcome::Withheld => ("withheld", ""),
        Outcome::Failed { class, .. } => (
            "failed",
            u8::try_from(*class)
                .ok()
                .and_then(FailureClass::from_code)
                .map_or("", FailureClass::as_str),
        ),
    };
    metrics::counter!("messages_total", "outcome" => outcome, "class" => class).increment(1);
}

/// An outcome on its way to the store, whom to tell when it is there, and
/// the gate of its task (closed when a guard pauses the task).
type Landed = (
    Claimed,
    Outcome,
    oneshot::Sender<Result<(), String>>,
    Option<Arc<TaskGate>>,
);

/// Records the outcomes of this worker's messages as soon as they land:
/// those that land while one transaction is written go together in the
/// next (one transaction each could not keep up with the messages: SQLite
/// has one writer, and each transaction is several round trips).
#[derive(Clone)]
struct Recorder(mpsc::Sender<Landed>);

/// Outcomes written in one transaction at most.
const GROUP: usize = 64;

/// The first and the longest wait before writing outcomes again.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

impl Recorder {
    fn start(app: App) -> Recorder {
        let (sender, mut landing) = mpsc::channel::<Landed>(BATCH as usize);
        tokio::spawn(async move {
            let mut landed = Vec::with_capacity(GROUP);
            while landing.recv_many(&mut landed, GROUP).await > 0 {
                let outcomes: Vec<(&Claimed, &Outcome)> = landed.iter().map(|(d, o, _, _)| (d, o)).collect();
                // Messages that went out must be recorded, or their lease
                // runs out and they go out again: while the database is
                // away (restarting, disk full) wait for it, holding the
                // senders, which wait on this.
                let mut wait = RECORD_RETRY_FIRST;
                let result = loop {
                    match app
                        .store
                        .record_outcomes(&outcomes, app.clock.now(), &today(&app))
                        .await
                    {
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, outcomes = outcomes.len(), "recording outcomes; retrying");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(RECORD_RETRY_MAX);
                        }
                        result => break result.map_err(|e| e.to_string()),
                    }
                };
                drop(outcomes);
                if result.is_ok() {
                    guard_reputation(&app, &landed).await;
                }
                for (_, _, tell, _) in landed.drain(..) {
                    let _ = tell.send(result.clone());
                }
            }
        });
        Recorder(sender)
    }

    /// Hands an outcome over and waits until it is recorded.
    async fn record(&self, d: Claimed, outcome: Outcome, gate: Option<Arc<TaskGate>>) -> anyhow::Result<()> {
        let stopped = || anyhow!("the outcome recorder stopped");
        let (tell, told) = oneshot::channel();
        self.0
            .send((d, outcome, tell, gate))
            .await
            .map_err(|_| stopped())?;
        told.await
            .map_err(|_| stopped())?
            .map_err(|e| anyhow!("recording outcomes: {e}"))
    }
}

fn today(app: &App) -> String {
    app.clock.day_of(app.clock.now())
}

/// The reputation guards, after outcomes landed: each task that had a
/// message sent or failed among them is looked at; one a guard pauses stops
/// at once here (its gate closes) and says why in the log.
async fn guard_reputation(app: &App, landed: &[Landed]) {
    let guards = &app.config.guards;
    if guards.bounces.is_none() && guards.complaints.is_none() {
        return;
    }
    let mut looked = HashSet::new();
    for (d, outcome, _, gate) in landed {
        if !matches!(outcome, Outcome::Sent { .. } | Outcome::Failed { .. }) || !looked.insert(d.task_id) {
            continue;
        }
        match tasks::watch_reputation(&app.store, TaskId(d.task_id), guards, app.clock.now()).await {
            Ok(Some(pause)) => {
                tracing::warn!(
                    task = d.task_id,
                    guard = pause.guard.as_str(),
                    outcomes = pause.outcomes,
                    count = pause.count,
                    limit = %pause.limit,
                    "task paused: {pause}"
                );
                if let Some(gate) = gate {
                    gate.close().await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(task = d.task_id, error = %e, "checking a task's reputation guards"),
        }
    }
}

/// Builds and sends one message; what became of it.
async fn deliver(app: &App, mailer: &Mailer, ctx: &TaskContext, caps: &CapBook, d: &Claimed) -> Outcome {
    let index = ctx.sender_index(d.id);
    let sender = &ctx.senders[index];
    let from = sender.mailbox.address.clone();
    let Some(to) = EmailAddress::parse(&d.address) else {
        return failed(&from, FailureClass::FormatError, "the address is malformed");
    };
    let recipient = Recipient {
        email: &d.address,
        fullname: &d.fullname,
        vars: d.vars(),
        unsubscribe_url: "",
    };
    let now = jiff::Timestamp::from_second(app.clock.now())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(app.config.timezone.clone());
    let message = match ctx.prepared.build(&from, &sender.signer, &recipient, d.id, &now) {
        Ok(m) => m,
        Err(e) => return failed(&from, FailureClass::UserReject, &format!("not built: {e}")),
    };
    let today = today(app);
    let tomorrow = || {
        let next = app.clock.today().tomorrow().map(|t| app.clock.start_of_day(t));
        next.unwrap_or(app.clock.now() + 3600)
    };
    // The daily caps of its domain and mailbox, counted before it goes.
    let book = caps.get(app).await;
    let day = app.clock.today();
    let limits: Vec<(CapTarget, i64)> = sender
        .cap_targets()
        .into_iter()
        .filter_map(|t| Some((t, book.get(&t)?.on(day)?)))
        .collect();
    let counted: Vec<CapTarget> = limits.iter().map(|(t, _)| *t).collect();
    match senders::take_allowance(&app.store, &limits, &today).await {
        Ok(true) => {}
        Ok(false) => {
            let until = tomorrow();
            if ctx.capped_out(index, &today) {
                // Every sender of the task sent its cap: the rest of the
                // task waits for the next day without being claimed again.
                if let Err(e) = app.store.defer_task_until(d.task_id, until).await {
                    tracing::warn!(task = d.task_id, error = %e, "deferring a capped task to the next day");
                }
            }
            return Outcome::OverCap {
                sender: from,
                retry_at: until,
            };
        }
        Err(e) => {
            tracing::error!(error = %e, "counting a message against a daily cap");
            return Outcome::Postponed {
                retry_at: app.clock.now() + 60,
            };
        }
    }
    let uncount = async || {
        if let Err(e) = senders::give_allowance(&app.store, &counted, &today).await {
            tracing::error!(error = %e, "giving back a message of a daily cap");
        }
    };
    if ctx.day_type {
        match app
            .store
            .take_day_credit(d.customer_id, d.task_id, &today, app.clock.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                uncount().await;
                return Outcome::Postponed { retry_at: tomorrow() };
            }
            Err(e) => {
                tracing::error!(error = %e, "taking a day credit");
                uncount().await;
                return Outcome::Postponed {
                    retry_at: app.clock.now() + 60,
                };
            }
        }
    }
    let mail_from = ctx.prepared.envelope_sender(d.id);
    let wanted = async || ctx.gate.open(app).await;
    let attempt = mailer
        .send_if(&sender.route, &mail_from, to.ascii(), &message, wanted)
        .await;
    let outcome = match attempt {
        Some(attempt) => outcome_of(app, d, from, attempt),
        None => {
            uncount().await;
            Outcome::Withheld
        }
    };
    // H-2 `day`: only an accepted message keeps its credit; one deferred
    // takes a credit again when it is retried.
    if ctx.day_type
        && !matches!(outcome, Outcome::Sent { .. })
        && let Err(e) = app
            .store
            .give_day_credit(d.customer_id, d.task_id, app.clock.now())
            .await
    {
        tracing::error!(error = %e, "giving back a day credit");
    }
    outcome
}

/// What an attempt's reply means for the delivery: sent, deferred until
/// the next retry, or failed with its class (H-4 after the last retry).
fn outcome_of(app: &App, d: &Claimed, from: String, attempt: Attempt) -> Outcome {
    let code = attempt.reply().map(|r| i64::from(r.code));
    let status = attempt.status().map(|s| s.to_string()).unwrap_or_default();
    match attempt {
        Attempt::Sent { .. } => Outcome::Sent {
            sender: from,
            code: code.unwrap_or(250),
            text: attempt.describe(),
        },
        Attempt::Failed { class, .. } => Outcome::Failed {
            sender: from,
            class: i64::from(class.code()),
            code,
            status,
            text: attempt.describe(),
        },
        Attempt::Deferred { class_if_last, .. } => {
            let delays = &app.config.retry_delays;
            match delays.get((d.attempts - 1).max(0) as usize) {
                Some(wait) => Outcome::Deferred {
                    sender: from,
                    retry_at: app.clock.now() + wait.as_secs() as i64,
                    code,
                    status,
                    text: attempt.describe(),
                },
                // H-4: after the last retry the last reply decides the class.
                None => Outcome::Failed {
                    sender: from,
                    class: i64::from(class_if_last.code()),
                    code,
                    status,
                    text: attempt.describe(),
                },
            }
        }
    }
}

fn failed(sender: &str, class: FailureClass, text: &str) -> Outcome {
    Outcome::Failed {
        sender: sender.to_string(),
        class: i64::from(class.code()),
        code: None,
        status: String::new(),
        text: text.to_string(),
    }
}

/// The signer of a domain's messages, with its keys of `algorithms`.
pub async fn domain_signer(
    store: &Store,
    secrets: &SecretBox,
    algorithms: &[DkimAlgorithm],
    domain: &SenderDomain,
) -> anyhow::Result<DomainSigner> {
    let mut keys = senders::dkim_keys(store, secrets, domain).await?;
    keys.retain(|k| algorithms.contains(&k.algorithm));
    Ok(DomainSigner::new(&domain.domain, &keys, SIGNED_HEADERS)?)
}

/// Where a mailbox's messages go: through the customer's own server for a
/// `remote` service whose domain has one (logging in as the mailbox), else
/// through the platform's relay or straight to the recipient's MX.
pub(super) async fn route_for(
    app: &App,
    mailbox: &Mailbox,
    send_type: SendType,
    domain: &SenderDomain,
) -> anyhow::Result<Route> {
    Ok(match (send_type, &domain.relay) {
        (SendType::Remote, Some((host, port, tls))) => {
            let password = mailbox_password(&app.store, &app.secret_box, mailbox).await?;
            Route::remote(
                host,
                *port,
                *tls,
                Some(Credentials::new(&mailbox.address, password.expose())),
            )
        }
        _ => match &app.config.smtp_relay {
            Some(relay) => Route::relay(relay),
            None => Route::Mx,
        },
    })
}

/// Everything a task's messages share: the template compiled and its
/// attachments encoded once, its senders with their DKIM signers and routes.
async fn prepare(app: &App, task_id: i64) -> anyhow::Result<TaskContext> {
    let store = &app.store;
    let task = store
        .task_by_id(task_id)
        .await?
        .ok_or_else(|| anyhow!("task {task_id} vanished"))?;
    let customer = task.customer_id;
    let template = store
        .template(customer, task.tpl_id)
        .await?
        .ok_or_else(|| anyhow!("its template is gone"))?;
    let stored = store.attachments(customer, Some(task.tpl_id)).await?;
    let mut contents = Vec::with_capacity(stored.len());
    for a in &stored {
        contents.push(app.files.read(customer, a.file_id).await?);
    }
    let files: Vec<AttachmentFile<'_>> = stored
        .iter()
        .zip(&contents)
        .map(|(a, c)| AttachmentFile {
            file_name: &a.file_name,
            content_type: &a.content_type,
            content: c,
        })
        .collect();
    let track_domain = Some(task.track_domain.as_str()).filter(|d| !d.is_empty());
    let base = link_base(&app.config.public_url, track_domain);
    let message = TaskMessage {
        subject: &template.subject,
        html: &template.content,
        text: &template.text_content,
        encoding: template.encoding,
        attachments: &files,
        sender_name: &task.sender_name,
        reply_to: Some(task.replyto.as_str()).filter(|r| !r.is_empty()),
        unsubscribe_link: task.subs_link,
        footer_language: task
            .footer_language
            .or(accounts::footer_language(store, customer).await?),
        tracking: Tracking::from_status(task.track_status).unwrap_or(Tracking::Off),
        link_base: &base,
        helo_name: &app.config.helo_name,
        bounce_domain: &app.config.bounce_domain,
    };
    let prepared = PreparedTask::new(&message, &app.link_secret).context("preparing the message")?;
    // The click tokens carry link ids; the redirect finds them here.
    store.save_task_links(task.id.get(), prepared.links()).await?;
    let mailboxes = sender_mailboxes(store, customer, &task.sender).await?;
    if mailboxes.is_empty() {
        return Err(anyhow!("its sender selection has no mailbox left"));
    }
    let service = store.service(customer).await?;
    let send_type = service.send_type;
    let day_type = service.service_type == crate::domain::accounts::ServiceType::Day;
    let mut signers: HashMap<DomainId, Arc<DomainSigner>> = HashMap::new();
    let mut senders = Vec::with_capacity(mailboxes.len());
    // Each sender's domain is looked up (and its signer built) once.
    let mut domains: HashMap<DomainId, SenderDomain> = HashMap::new();
    for mailbox in mailboxes {
        if !domains.contains_key(&mailbox.domain_id) {
            let found = match DomainName::parse(&mailbox.domain) {
                Some(name) => store.domain(&name).await?,
                None => None,
            };
            let found = found.ok_or_else(|| anyhow!("the domain of {} is gone", mailbox.address))?;
            signers.insert(
                found.id,
                Arc::new(domain_signer(store, &app.secret_box, app.config.dkim_algorithms(), &found).await?),
            );
            domains.insert(found.id, found);
        }
        let domain = &domains[&mailbox.domain_id];
        let signer = signers[&domain.id].clone();
        let route = route_for(app, &mailbox, send_type, domain).await?;
        senders.push(Sender {
            mailbox,
            signer,
            route,
        });
    }
    Ok(TaskContext {
        prepared,
        senders,
        day_type,
        gate: Arc::new(TaskGate::new(task_id)),
        capped: std::sync::Mutex::new((String::new(), HashSet::new())),
    })
}
