//! The `qunfa` command: `serve`, `worker`, `admin …`, `bounce …` (docs/interface.md).
//! Every failure ends in one line on stderr and a non-zero exit.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::clock::{format_date, parse_date};
use crate::config::Settings;
use crate::delivery::dns::Dns;
use crate::domain::accounts::{
    self, Customer, NewCustomer, Profile, Role, SendType, Service, ServiceChange, ServiceStatus, ServiceType,
    Username,
};
use crate::domain::api_keys;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{ApiKeyId, ImportId, TaskId};
use crate::domain::lists;
use crate::domain::senders::{
    self, CapChange, CapTarget, CapToday, DomainName, MailboxAddress, Owner, SenderDomain, SenderError,
    Warmup,
};
use crate::domain::tasks::{self, Intervention, Task, TaskError, TaskFilter};
use crate::domain::templates::FooterLanguage;
use crate::server::{Parts, Running};

#[derive(Parser)]
#[command(
    name = "qunfa",
    version,
    about = "Self-hosted bulk e-mail platform",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// The API, console, tracking, scheduler and delivery in one process.
    Serve,
    /// Scheduler and delivery only, no HTTP.
    Worker,
    /// Administration the vendor API has no call for.
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
    /// Bounce and complaint reports.
    Bounce {
        #[command(subcommand)]
        command: BounceCmd,
    },
}

#[derive(Subcommand)]
enum BounceCmd {
    /// Classifies bounce, complaint and auto-reply messages (.eml), one line per recipient.
    Classify(BounceClassify),
}

#[derive(Args)]
struct BounceClassify {
    /// One JSON object a line: file, recipient, class, status, code, reason.
    #[arg(long)]
    json: bool,
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Admin {
    /// Customers: the accounts that send.
    Customer {
        #[command(subcommand)]
        command: CustomerCmd,
    },
    /// A customer's bulk-send service and credits.
    Service {
        #[command(subcommand)]
        command: ServiceCmd,
    },
    /// Managers: administer domains and customers.
    Manager {
        #[command(subcommand)]
        command: OperatorCmd,
    },
    /// Agents: resell to their own customers.
    Agent {
        #[command(subcommand)]
        command: OperatorCmd,
    },
    /// Address-file imports (4.9.3).
    Import {
        #[command(subcommand)]
        command: ImportCmd,
    },
    /// Sender domains: DKIM records, 'remote' sending.
    Domain {
        #[command(subcommand)]
        command: DomainCmd,
    },
    /// A customer's bulk-send tasks: list, pause, resume, cancel (D-20).
    Task {
        #[command(subcommand)]
        command: TaskCmd,
    },
    /// Keys of the JSON API (docs/json-api.md): each acts as its customer.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCmd,
    },
}

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// Makes a key and prints it alone on one line; it is shown only this once.
    Add {
        #[arg(long)]
        username: String,
        /// What the key is for, to tell keys apart in the list.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Lists a customer's keys: id, name, created, last used, revoked.
    List(UserArg),
    /// Revokes a key: requests with it get 401 from now on.
    Revoke {
        #[arg(long)]
        username: String,
        /// The key's id, as `list` shows it.
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand)]
enum TaskCmd {
    /// Lists a customer's tasks: state, counts, credits held.
    List(UserArg),
    /// Pauses a sending task: no new message starts (those in SMTP finish).
    Pause(TaskArg),
    /// Resumes a paused task.
    Resume(TaskArg),
    /// Cancels an unfinished task; what it had not sent is refunded.
    Cancel(TaskArg),
}

#[derive(Args)]
struct TaskArg {
    #[arg(long)]
    username: String,
    /// The task's id (`id` of 6.1).
    #[arg(long)]
    id: i64,
}

#[derive(Subcommand)]
enum ImportCmd {
    /// Shows import jobs, newest first: state, progress and counts.
    Status {
        /// Only this customer's jobs.
        #[arg(long)]
        username: Option<String>,
        /// Only this job.
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
    /// Adds a domain (with new DKIM keys) for a customer, or for the
    /// platform without --customer; prints its DKIM records.
    Add(DomainAdd),
    /// Lists every domain: owner, name, relay.
    List,
    /// Prints the DNS TXT records of a domain's DKIM keys.
    Dkim(DomainArg),
    /// Sends a domain's 'remote' mail through the customer's server.
    Relay(DomainRelay),
    /// Holds a sending domain or mailbox to so many messages a day.
    Cap(DomainCap),
    /// Ramps a new sending domain's daily cap up over some days.
    Warmup(DomainWarmup),
    /// Checks a domain's DNS: DKIM, SPF, DMARC, the bounce MX, alignment;
    /// each with the record to publish.
    Check(DomainCheck),
}

#[derive(Args)]
struct DomainCheck {
    #[arg(long)]
    domain: String,
    /// One JSON object a line: check, status, found, publish.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DomainCap {
    /// The sending domain …
    #[arg(long, required_unless_present = "mailbox", conflicts_with = "mailbox")]
    domain: Option<String>,
    /// … or the mailbox.
    #[arg(long)]
    mailbox: Option<String>,
    /// At most this many messages a day (day boundaries in QUNFA_TIMEZONE).
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    per_day: Option<String>,
    /// Lifts the cap.
    #[arg(long)]
    off: bool,
}

#[derive(Args)]
struct DomainWarmup {
    #[arg(long)]
    domain: String,
    /// Today's cap.
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    start: Option<String>,
    /// Days of warm-up, today the first; then the cap is lifted.
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    days: Option<String>,
    /// Growth of the cap a day, e.g. 40%.
    #[arg(long, conflicts_with = "off")]
    growth: Option<String>,
    /// Ends the warm-up.
    #[arg(long)]
    off: bool,
}

#[derive(Args)]
struct DomainAdd {
    #[arg(long)]
    domain: String,
    /// The customer's user name; without it, a system domain.
    #[arg(long)]
    customer: Option<String>,
}

#[derive(Args)]
struct DomainArg {
    #[arg(long)]
    domain: String,
}

#[derive(Args)]
struct DomainRelay {
    #[arg(long)]
    domain: String,
    /// HOST:PORT of the customer's SMTP server.
    #[arg(long)]
    host: String,
    /// Connect with TLS from the start (otherwise STARTTLS when offered).
    #[arg(long)]
    tls: bool,
}

#[derive(Subcommand)]
enum CustomerCmd {
    /// Adds a customer and prints its id.
    Add(CustomerAdd),
    /// Lists every customer with its service.
    List,
    /// Shows one customer, its service and its credit history.
    Show(UserArg),
    /// Sets a customer's password.
    Passwd(UserPassword),
    /// Bars a customer from logging in.
    Disable(UserArg),
    /// Lets a disabled customer log in again.
    Enable(UserArg),
    /// Changes a customer's settings; prints them.
    Set(CustomerSet),
}

#[derive(Args)]
struct CustomerSet {
    #[arg(long)]
    username: String,
    /// The unsubscribe footer's language: zh | en | both | auto (the
    /// template's language). A task's own `footer_language` wins.
    #[arg(long)]
    footer_language: Option<String>,
}

#[derive(Args)]
struct CustomerAdd {
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value = "")]
    company: String,
    #[arg(long, default_value = "")]
    contact: String,
    #[arg(long, default_value = "")]
    phone: String,
    #[arg(long, default_value = "")]
    mobile: String,
    #[arg(long, default_value = "")]
    email: String,
    #[arg(long, default_value = "")]
    im: String,
    #[arg(long, default_value = "")]
    address: String,
    /// The agent that owns this customer.
    #[arg(long)]
    agent: Option<String>,
}

#[derive(Args)]
struct UserArg {
    #[arg(long)]
    username: String,
}

#[derive(Args)]
struct UserPassword {
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Changes a customer's service; prints the result.
    Set(ServiceSet),
}

#[derive(Args)]
struct ServiceSet {
    #[arg(long)]
    username: String,
    /// enabled | disabled
    #[arg(long)]
    status: Option<String>,
    /// all | day
    #[arg(long = "type")]
    service_type: Option<String>,
    /// local | remote
    #[arg(long)]
    send_type: Option<String>,
    /// Sets the credits available and bought (all), or the daily allowance (day).
    #[arg(long, allow_negative_numbers = true)]
    quota: Option<String>,
    /// Buys this many more.
    #[arg(long, allow_negative_numbers = true)]
    add: Option<String>,
    /// YYYY-MM-DD
    #[arg(long)]
    begin: Option<String>,
    /// YYYY-MM-DD, inclusive
    #[arg(long)]
    end: Option<String>,
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Adds an account and prints its id.
    Add(UserPassword),
    /// Sets an account's password.
    Passwd(UserPassword),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first paragraph, without its usage and help hints.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("qunfa: {}", first.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    // Classifying files needs no settings, database or runtime.
    if let Command::Bounce {
        command: BounceCmd::Classify(args),
    } = &cli.command
    {
        return match bounce_classify(args, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("qunfa: {}", e.to_string().replace('\n', " "));
                ExitCode::FAILURE
            }
        };
    }
    let quiet = matches!(cli.command, Command::Admin { .. });
    init_logging(quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qunfa: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("qunfa: {}", chain.join(": ").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_env("QUNFA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.settings.validate()?;
    match cli.command {
        Command::Serve => {
            let shutdown = Shutdown::install()?;
            let running = Running::start_parts(config, Parts::SERVE).await?;
            tracing::info!(
                "qunfa listening on http://{} ({}, data dir {})",
                running.http_addr(),
                running.app.store.backend(),
                running.app.config.data_dir.display()
            );
            shutdown.wait().await;
            tracing::info!("shutting down");
            running.stop().await
        }
        Command::Worker => {
            let shutdown = Shutdown::install()?;
            let running = Running::start_parts(config, Parts::WORKER).await?;
            tracing::info!("qunfa worker running ({})", running.app.store.backend());
            shutdown.wait().await;
            tracing::info!("shutting down");
            running.stop().await
        }
        Command::Bounce { .. } => Ok(()), // handled in main, before the runtime
        Command::Admin { command } => {
            let app = App::init(config).await?;
            let result = admin(&app, command).await;
            app.store.close().await;
            result
        }
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is created, so
/// create it before announcing readiness: a signal that comes after the
/// announcement must never find the default handler.
struct Shutdown {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl Shutdown {
    fn install() -> anyhow::Result<Shutdown> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                signals: (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?),
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.signals.0.recv() => {}
            _ = self.signals.1.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `bounce classify`: every recipient of every file, in the files' order.
fn bounce_classify(args: &BounceClassify, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    use serde_json::to_string as json;
    for path in &args.files {
        let name = path.display().to_string();
        let raw = std::fs::read(path).map_err(|e| anyhow!("cannot read {name}: {e}"))?;
        for f in crate::bounce::classify_file(&raw) {
            let status = f.status.map(|s| s.to_string());
            let line = if args.json {
                format!(
                    "{{\"file\": {}, \"recipient\": {}, \"class\": {}, \"status\": {}, \"code\": {}, \"reason\": {}}}",
                    json(&name)?,
                    json(&f.recipient)?,
                    json(f.class.as_str())?,
                    json(&status)?,
                    json(&f.code)?,
                    json(&f.reason)?,
                )
            } else {
                // Tabs and line breaks inside a field would break the columns.
                let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t({})",
                    clean(&name),
                    if f.recipient.is_empty() {
                        "-".into()
                    } else {
                        clean(&f.recipient)
                    },
                    f.class,
                    status.as_deref().unwrap_or("-"),
                    f.code.map_or("-".to_string(), |c| c.to_string()),
                    clean(&f.reason),
                    if f.producer.is_empty() {
                        f.rule.to_string()
                    } else {
                        format!("{}: {}", f.producer, f.rule)
                    },
                )
            };
            writeln!(out, "{line}").map_err(|e| anyhow!("cannot write the output: {e}"))?;
        }
    }
    Ok(())
}

fn username(s: &str) -> anyhow::Result<Username> {
    Username::parse(s).map_err(|e| anyhow!("invalid --username: {e}"))
}

/// An account error as the admin command's one line: the flag at fault
/// where there is one.
fn account_error(e: accounts::AccountError) -> anyhow::Error {
    match e {
        accounts::AccountError::EmptyPassword => anyhow!("invalid --password: it is empty"),
        e => e.into(),
    }
}

fn count(flag: &str, s: &str) -> anyhow::Result<i64> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| anyhow!("invalid {flag}: '{s}' is not a whole number of credits"))
}

async fn customer_named(app: &App, name: &str) -> anyhow::Result<Customer> {
    let u = username(name)?;
    accounts::customer(&app.store, &u)
        .await
        .map_err(|_| anyhow!("unknown customer '{name}'"))
}

async fn admin(app: &App, command: Admin) -> anyhow::Result<()> {
    let now = app.clock.now();
    match command {
        Admin::Customer { command } => match command {
            CustomerCmd::Add(a) => {
                let name = username(&a.username)?;
                let email = a.email.trim();
                if !email.is_empty() && EmailAddress::parse(email).is_none() {
                    bail!("invalid --email: '{email}' is not an e-mail address");
                }
                let agent = a.agent.as_deref().map(username).transpose()?;
                let profile = Profile {
                    company: a.company.trim().to_string(),
                    contact: a.contact.trim().to_string(),
                    phone: a.phone.trim().to_string(),
                    mobile: a.mobile.trim().to_string(),
                    email: email.to_string(),
                    im: a.im.trim().to_string(),
                    address: a.address.trim().to_string(),
                };
                let new = NewCustomer {
                    username: name,
                    profile,
                    agent,
                };
                let id = accounts::add_customer(&app.store, &new, &a.password, now)
                    .await
                    .map_err(account_error)?;
                println!("{id}");
            }
            CustomerCmd::List => {
                let today = app.clock.today();
                println!("id\tusername\tcompany\tagent\tstatus\ttype\tavailable\tbought\tbegin\tend\tlogin");
                for (c, s) in accounts::customers(&app.store).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        c.id,
                        c.username,
                        c.profile.company,
                        c.agent.as_deref().unwrap_or("-"),
                        s.status.as_str(),
                        s.service_type.as_str(),
                        s.available(today),
                        s.qty_buytotal,
                        s.begin_text(),
                        s.end_text(),
                        if c.disabled { "disabled" } else { "enabled" },
                    );
                }
            }
            CustomerCmd::Show(u) => {
                let c = customer_named(app, &u.username).await?;
                let s = accounts::service(&app.store, c.id).await?;
                let p = &c.profile;
                for (k, v) in [
                    ("id", c.id.to_string()),
                    ("username", c.username.clone()),
                    (
                        "login",
                        if c.disabled { "disabled" } else { "enabled" }.to_string(),
                    ),
                    ("agent", c.agent.clone().unwrap_or_default()),
                    ("company", p.company.clone()),
                    ("contact", p.contact.clone()),
                    ("phone", p.phone.clone()),
                    ("mobile", p.mobile.clone()),
                    ("email", p.email.clone()),
                    ("im", p.im.clone()),
                    ("address", p.address.clone()),
                    (
                        "footer_language",
                        accounts::footer_language(&app.store, c.id).await?.to_string(),
                    ),
                ] {
                    println!("{k}: {v}");
                }
                print_service(app, &s);
                println!("ledger:");
                for e in accounts::ledger(&app.store, c.id).await? {
                    println!(
                        "  {}\t{}\t{:+}\t{}\t{}",
                        app.clock.format_datetime(e.at),
                        e.kind.as_str(),
                        e.amount,
                        e.balance,
                        e.reason
                    );
                }
            }
            CustomerCmd::Passwd(a) => {
                let name = username(&a.username)?;
                accounts::set_password(&app.store, Role::Customer, &name, &a.password)
                    .await
                    .map_err(account_error)?;
            }
            CustomerCmd::Disable(u) => set_disabled(app, &u.username, true).await?,
            CustomerCmd::Enable(u) => set_disabled(app, &u.username, false).await?,
            CustomerCmd::Set(a) => {
                let c = customer_named(app, &a.username).await?;
                if let Some(v) = &a.footer_language {
                    let language = FooterLanguage::parse(v).ok_or_else(|| {
                        anyhow!(
                            "invalid --footer-language: '{v}' is not {}",
                            FooterLanguage::VALUES
                        )
                    })?;
                    accounts::set_footer_language(&app.store, &c, language)
                        .await
                        .map_err(account_error)?;
                }
                println!(
                    "footer_language: {}",
                    accounts::footer_language(&app.store, c.id).await?
                );
            }
        },
        Admin::Service {
            command: ServiceCmd::Set(s),
        } => {
            let c = customer_named(app, &s.username).await?;
            let change = ServiceChange {
                status: s
                    .status
                    .as_deref()
                    .map(|v| {
                        ServiceStatus::parse(v)
                            .ok_or_else(|| anyhow!("invalid --status: '{v}' is not enabled or disabled"))
                    })
                    .transpose()?,
                service_type: s
                    .service_type
                    .as_deref()
                    .map(|v| {
                        ServiceType::parse(v)
                            .ok_or_else(|| anyhow!("invalid --type: '{v}' is not all or day"))
                    })
                    .transpose()?,
                send_type: s
                    .send_type
                    .as_deref()
                    .map(|v| {
                        SendType::parse(v)
                            .ok_or_else(|| anyhow!("invalid --send-type: '{v}' is not local or remote"))
                    })
                    .transpose()?,
                begin: s
                    .begin
                    .as_deref()
                    .map(|v| {
                        parse_date(v).map_err(|_| anyhow!("invalid --begin: '{v}' is not a date YYYY-MM-DD"))
                    })
                    .transpose()?,
                end: s
                    .end
                    .as_deref()
                    .map(|v| {
                        parse_date(v).map_err(|_| anyhow!("invalid --end: '{v}' is not a date YYYY-MM-DD"))
                    })
                    .transpose()?,
                quota: s.quota.as_deref().map(|v| count("--quota", v)).transpose()?,
                add: s.add.as_deref().map(|v| count("--add", v)).transpose()?,
            };
            if change.add == Some(0) {
                bail!("invalid --add: it must be at least 1");
            }
            let service = accounts::change_service(&app.store, c.id, &change, now, app.clock.today()).await?;
            print_service(app, &service);
        }
        Admin::Import {
            command: ImportCmd::Status { username, id },
        } => {
            let customer = match &username {
                Some(u) => Some(customer_named(app, u).await?.id),
                None => None,
            };
            let jobs = match id {
                Some(id) => {
                    let job = lists::import_job(&app.store, customer, ImportId(id)).await?;
                    vec![job.ok_or_else(|| anyhow!("unknown import job {id}"))?]
                }
                None => lists::import_jobs(&app.store, customer).await?,
            };
            println!(
                "id\tcustomer\tlist\tfile\tstate\tprogress\tlines\tadded\tinvalid\tduplicate\tcreated\tfinished\terror"
            );
            for j in jobs {
                let progress = if j.size > 0 {
                    j.offset_done.saturating_mul(100) / j.size
                } else {
                    100
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}%\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    j.id,
                    j.customer_id,
                    j.list_id,
                    j.file_name,
                    j.state.as_str(),
                    progress,
                    j.lines_done,
                    j.added,
                    j.invalid,
                    j.duplicate,
                    app.clock.format_datetime(j.created_at),
                    app.clock.format_opt_datetime(j.finished_at),
                    j.error
                );
            }
        }
        Admin::Manager { command } => operator(app, Role::Manager, command, now).await?,
        Admin::Agent { command } => operator(app, Role::Agent, command, now).await?,
        Admin::Domain { command } => domain(app, command, now).await?,
        Admin::Task { command } => task(app, command, now).await?,
        Admin::ApiKey { command } => api_key(app, command, now).await?,
    }
    Ok(())
}

async fn api_key(app: &App, command: ApiKeyCmd, now: i64) -> anyhow::Result<()> {
    match command {
        ApiKeyCmd::Add { username, name } => {
            let c = customer_named(app, &username).await?;
            let created = api_keys::add_key(&app.store, c.id, &name, now)
                .await
                .map_err(|e| match e {
                    api_keys::ApiKeyError::InvalidName => anyhow!("invalid --name: {e}"),
                    e => e.into(),
                })?;
            println!("{}", created.key);
        }
        ApiKeyCmd::List(UserArg { username }) => {
            let c = customer_named(app, &username).await?;
            println!("id\tname\tcreated\tlast_used\trevoked");
            for k in api_keys::list_keys(&app.store, c.id).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    app.clock.format_datetime(k.created_at),
                    app.clock.format_opt_datetime(k.last_used_at),
                    app.clock.format_opt_datetime(k.revoked_at),
                );
            }
        }
        ApiKeyCmd::Revoke { username, id } => {
            let c = customer_named(app, &username).await?;
            api_keys::revoke_key(&app.store, c.id, ApiKeyId(id), now)
                .await
                .map_err(|e| match e {
                    api_keys::ApiKeyError::NotFound(_) => {
                        anyhow!("invalid --id: no unrevoked key {id} of '{username}'")
                    }
                    e => e.into(),
                })?;
        }
    }
    Ok(())
}

const TASK_COLUMNS: &str =
    "id\tident\tsend_status\tstate\tsend_time\trecipients\tsent\tfailed\tskipped\treserved\tnote";

async fn print_task(app: &App, t: &Task) -> anyhow::Result<()> {
    let state = if t.service_paused {
        format!("{} (service unusable)", t.status.name())
    } else if t.guard_pause.is_some() {
        format!("{} (reputation guard)", t.status.name())
    } else {
        t.status.name().to_string()
    };
    // Why it waits, if it waits for something.
    let note = match &t.guard_pause {
        Some(p) => format!("{p} at {}", app.clock.format_datetime(p.at)),
        None if t.status.is_unfinished() => match tasks::waiting_for_cap(&app.store, t.id).await? {
            0 => String::new(),
            n => format!("{n} deferred to the next day ({})", senders::DAILY_CAP),
        },
        None => String::new(),
    };
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        t.id,
        t.ident,
        t.status.code(),
        state,
        app.clock.format_datetime(t.send_time),
        t.recipients,
        t.sent_count,
        t.error_count,
        t.skipped_count,
        t.reserved,
        note
    );
    Ok(())
}

async fn task(app: &App, command: TaskCmd, now: i64) -> anyhow::Result<()> {
    let (what, arg) = match command {
        TaskCmd::List(u) => {
            let c = customer_named(app, &u.username).await?;
            println!("{TASK_COLUMNS}");
            for t in tasks::tasks(&app.store, c.id, &TaskFilter::default()).await? {
                print_task(app, &t).await?;
            }
            return Ok(());
        }
        TaskCmd::Pause(a) => (Intervention::Pause, a),
        TaskCmd::Resume(a) => (Intervention::Resume, a),
        TaskCmd::Cancel(a) => (Intervention::Cancel, a),
    };
    let c = customer_named(app, &arg.username).await?;
    let id = TaskId(arg.id);
    let t = tasks::intervene(&app.store, c.id, id, what, now, app.clock.today())
        .await
        .map_err(|e| match e {
            TaskError::NotFound => anyhow!("unknown task {id} of customer '{}'", c.username),
            TaskError::ServiceUnusable => anyhow!(
                "task {id} of customer '{}': the bulk-send service is disabled or outside its dates: \
                 the task stays paused",
                c.username
            ),
            e => anyhow!("task {id} of customer '{}': {e}", c.username),
        })?;
    println!("{TASK_COLUMNS}");
    print_task(app, &t).await
}

fn domain_name(s: &str) -> anyhow::Result<DomainName> {
    DomainName::parse(s.trim()).ok_or_else(|| anyhow!("invalid --domain: '{s}' is not a domain name"))
}

async fn known_domain(app: &App, s: &str) -> anyhow::Result<SenderDomain> {
    let name = domain_name(s)?;
    senders::domain(&app.store, &name)
        .await?
        .ok_or_else(|| anyhow!("unknown domain '{name}'"))
}

async fn print_dkim(app: &App, d: &SenderDomain) -> anyhow::Result<()> {
    for key in senders::dkim_keys(&app.store, &app.secret_box, d).await? {
        println!("{}", key.zone_line(&d.domain));
    }
    Ok(())
}

async fn domain(app: &App, command: DomainCmd, now: i64) -> anyhow::Result<()> {
    match command {
        DomainCmd::Add(a) => {
            let name = domain_name(&a.domain)?;
            let owner = match &a.customer {
                None => Owner::System,
                Some(u) => Owner::Customer(customer_named(app, u).await?.id),
            };
            match senders::add_domain(
                &app.store,
                &app.secret_box,
                app.config.dkim_algorithms(),
                owner,
                &name,
                app.clock.today(),
                now,
            )
            .await
            {
                Ok(_) => {}
                Err(SenderError::DomainExists) => bail!("domain '{name}' already exists"),
                Err(e) => return Err(e.into()),
            }
            print_dkim(app, &known_domain(app, name.as_str()).await?).await?;
        }
        DomainCmd::List => {
            println!("{DOMAIN_COLUMNS}");
            let caps = senders::caps_on(&app.store, app.clock.today()).await?;
            for d in senders::domains(&app.store, None).await? {
                print_domain(app, &d, caps.get(&CapTarget::Domain(d.id)));
            }
        }
        DomainCmd::Cap(a) => {
            let per_day = match (&a.per_day, a.off) {
                (Some(n), false) => {
                    Some(n.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        anyhow!("invalid --per-day: '{n}' is not a whole number of messages")
                    })?)
                }
                _ => None,
            };
            let today = app.clock.today();
            match (&a.domain, &a.mailbox) {
                (Some(d), _) => {
                    let name = domain_name(d)?;
                    let cap =
                        senders::change_domain_cap(&app.store, &name, CapChange::PerDay(per_day), today)
                            .await
                            .map_err(|e| domain_error(e, &name))?;
                    let domain = known_domain(app, name.as_str()).await?;
                    println!("{DOMAIN_COLUMNS}");
                    print_domain(app, &domain, Some(&cap));
                }
                (None, Some(m)) => {
                    let address = MailboxAddress::parse(m.trim())
                        .ok_or_else(|| anyhow!("invalid --mailbox: '{m}' is not an e-mail address"))?;
                    let cap = match senders::change_mailbox_cap(&app.store, &address, per_day, today).await {
                        Err(SenderError::MailboxNotFound) => bail!("unknown mailbox '{}'", address.address()),
                        r => r?,
                    };
                    let shown = senders::mailbox(&app.store, &address)
                        .await?
                        .map_or_else(|| address.address(), |m| m.address);
                    println!("mailbox\tcap_today\tsent_today");
                    let (limit, sent) = cap_columns(Some(&cap));
                    println!("{shown}\t{limit}\t{sent}");
                }
                (None, None) => bail!("invalid arguments: --domain or --mailbox is needed"),
            }
        }
        DomainCmd::Warmup(a) => {
            let name = domain_name(&a.domain)?;
            let today = app.clock.today();
            let warmup = match (&a.start, &a.days, a.off) {
                (Some(start), Some(days), false) => {
                    let whole = |flag: &str, v: &str| {
                        v.trim().parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            anyhow!("invalid {flag}: '{v}' is not a whole number of at least 1")
                        })
                    };
                    let growth = match &a.growth {
                        None => senders::DEFAULT_GROWTH,
                        Some(g) => g
                            .trim()
                            .trim_end_matches('%')
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|g| g.is_finite() && *g >= 0.0 && *g <= 1000.0)
                            .ok_or_else(|| anyhow!("invalid --growth: '{g}' is not a percentage like 40%"))?,
                    };
                    let days = whole("--days", days)?;
                    if days > 3650 {
                        bail!("invalid --days: a warm-up of {days} days is longer than ten years");
                    }
                    Some(Warmup {
                        start: whole("--start", start)?,
                        days,
                        growth,
                        from: today,
                    })
                }
                _ => None,
            };
            let cap = senders::change_domain_cap(&app.store, &name, CapChange::Warmup(warmup), today)
                .await
                .map_err(|e| domain_error(e, &name))?;
            let domain = known_domain(app, name.as_str()).await?;
            println!("{DOMAIN_COLUMNS}");
            print_domain(app, &domain, Some(&cap));
        }
        DomainCmd::Dkim(a) => print_dkim(app, &known_domain(app, &a.domain).await?).await?,
        DomainCmd::Check(a) => {
            let name = domain_name(&a.domain)?;
            let platform = app.dns_platform();
            let dns = Dns::new(app.config.dns_server)?;
            let checks = senders::domain_health(&app.store, &dns, &platform, &name)
                .await
                .map_err(|e| domain_error(e, &name))?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for c in checks {
                let line = if a.json {
                    use serde_json::to_string as json;
                    format!(
                        "{{\"check\": {}, \"status\": {}, \"found\": {}, \"publish\": {}}}",
                        json(&c.check)?,
                        json(c.status.as_str())?,
                        json(&c.found)?,
                        json(&c.publish)?,
                    )
                } else {
                    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
                    format!(
                        "{}\t{}\t{}\t{}",
                        c.status.as_str(),
                        c.check,
                        clean(&c.found),
                        clean(&c.publish)
                    )
                };
                writeln!(out, "{line}").map_err(|e| anyhow!("cannot write the output: {e}"))?;
            }
        }
        DomainCmd::Relay(a) => {
            let name = domain_name(&a.domain)?;
            let (host, port) = relay_address(&a.host)?;
            match senders::set_relay(&app.store, &name, Some((&host, port, a.tls))).await {
                Err(SenderError::DomainNotFound) => bail!("unknown domain '{name}'"),
                r => r?,
            }
        }
    }
    Ok(())
}

const DOMAIN_COLUMNS: &str = "customer_id\tdomain\trelay\tcap_today\tsent_today\twarmup";

/// A domain as `domain list` shows it: owner, name, relay, and its daily
/// cap today with what was sent against it, and its warm-up.
fn print_domain(app: &App, d: &SenderDomain, cap: Option<&CapToday>) {
    let relay = match &d.relay {
        Some((host, port, tls)) => format!("{host}:{port}{}", if *tls { " tls" } else { "" }),
        None => "-".to_string(),
    };
    let (limit, sent) = cap_columns(cap);
    let today = app.clock.today();
    let warmup = cap
        .and_then(|c| c.cap.warmup.as_ref())
        .map_or("-".to_string(), |w| match w.cap_on(today) {
            Some(_) => {
                let day = w.from.until(today).map_or(0, |s| s.get_days()).max(0) + 1;
                format!("day {day} of {} (+{}%/day)", w.days, w.growth)
            }
            None => format!(
                "ended {}",
                format_date(w.from.saturating_add(jiff::Span::new().days(w.days)))
            ),
        });
    println!(
        "{}\t{}\t{relay}\t{limit}\t{sent}\t{warmup}",
        d.owner.api_id(),
        d.domain
    );
}

/// Today's cap and what was sent against it; `-` without a cap today.
fn cap_columns(cap: Option<&CapToday>) -> (String, String) {
    match cap.and_then(|c| c.limit.map(|l| (l, c.used))) {
        Some((limit, used)) => (limit.to_string(), used.to_string()),
        None => ("-".to_string(), "-".to_string()),
    }
}

fn domain_error(e: SenderError, name: &DomainName) -> anyhow::Error {
    match e {
        SenderError::DomainNotFound => anyhow!("unknown domain '{name}'"),
        e => e.into(),
    }
}

/// `HOST:PORT` (a host name, an IPv4 address or a bracketed IPv6 address).
fn relay_address(s: &str) -> anyhow::Result<(String, u16)> {
    let bad = || anyhow!("invalid --host: '{s}' is not HOST:PORT");
    let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            }));
    if !ok {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

async fn set_disabled(app: &App, name: &str, disabled: bool) -> anyhow::Result<()> {
    let u = username(name)?;
    Ok(accounts::set_disabled(&app.store, &u, disabled).await?)
}

async fn operator(app: &App, role: Role, command: OperatorCmd, now: i64) -> anyhow::Result<()> {
    match command {
        OperatorCmd::Add(a) => {
            let name = username(&a.username)?;
            let id = accounts::add_operator(&app.store, role, &name, &a.password, now)
                .await
                .map_err(account_error)?;
            println!("{id}");
        }
        OperatorCmd::Passwd(a) => {
            let name = username(&a.username)?;
            accounts::set_password(&app.store, role, &name, &a.password)
                .await
                .map_err(account_error)?;
        }
    }
    Ok(())
}

fn print_service(app: &App, s: &Service) {
    let today = app.clock.today();
    for (k, v) in [
        ("service_status", s.status.as_str().to_string()),
        ("service_type", s.service_type.as_str().to_string()),
        ("send_type", s.send_type.as_str().to_string()),
        ("beginning_date", s.begin_text()),
        ("expiration_date", s.end_text()),
        ("qty_available", s.available(today).to_string()),
        ("qty_buytotal", s.qty_buytotal.to_string()),
        (
            "usable_today",
            format!(
                "{} ({})",
                if s.is_usable(today) { "yes" } else { "no" },
                format_date(today)
            ),
        ),
    ] {
        println!("{k}: {v}");
    }
}
