//! `bs.php`: sender domains (7.1–7.3) and the mailboxes under them (7.4–7.7).
//! A customer acts on its own data; a manager (`user_type=manager`, and
//! always in 7.2/7.3) on the customer `customer_id` names, 0 being the
//! platform (the table at the top of chapter 7). Another customer's domain
//! or mailbox answers exactly like a missing one (D-5).

use super::Call;
use super::params::Params;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::domain::accounts::{self, Role};
use crate::domain::ids::CustomerId;
use crate::domain::senders::{
    self, DomainName, Mailbox, MailboxAddress, MailboxPassword, MailboxScope, Owner, SenderDomain,
    SenderError,
};

pub const OPERATIONS: &[&str] = &[
    "domain-list",
    "domain-add",
    "domain-del",
    "mailbox-list",
    "mailbox-add",
    "mailbox-del",
    "mailbox-edit",
];

/// The operations only a manager may call, whatever `user_type` says.
const MANAGER_ONLY: &[&str] = &["domain-add", "domain-del"];

/// Which kind of account authenticates a `bs.php` request.
pub fn role(op: Option<&str>, params: &Params) -> Role {
    if op.is_some_and(|o| MANAGER_ONLY.contains(&o)) {
        return Role::Manager;
    }
    match params.get("user_type") {
        Ok(Some("manager")) => Role::Manager,
        _ => Role::Customer,
    }
}

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "domain-list" => domain_list(c).await,
        "domain-add" => domain_add(c).await,
        "domain-del" => domain_del(c).await,
        "mailbox-list" => mailbox_list(c).await,
        "mailbox-add" => mailbox_add(c).await,
        "mailbox-del" => mailbox_del(c).await,
        "mailbox-edit" => mailbox_edit(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

/// Who a call acts for.
enum Acting {
    /// The authenticated customer; `claimed` is a `customer_id` it sent.
    Customer { id: CustomerId, claimed: Option<i64> },
    /// A manager, for the owner `customer_id` names, or for everyone.
    Manager(Option<Owner>),
}

/// Whether a manager must name the customer.
#[derive(PartialEq, Eq)]
enum Naming {
    Optional,
    Required,
}

impl Acting {
    /// Reads `user_type` and `customer_id`: missing, then invalid (D-2).
    fn read(c: &Call<'_>, rule: Naming) -> Result<Acting, ApiError> {
        let p = c.params;
        let role = if MANAGER_ONLY.contains(&c.op) {
            Role::Manager
        } else {
            Role::from_api_user_type(p.get("user_type")?).ok_or_else(|| ApiError::invalid("user_type"))?
        };
        if role == Role::Manager && rule == Naming::Required && p.get("customer_id")?.is_none() {
            return Err(ApiError::missing("customer_id"));
        }
        let claimed = p.id("customer_id")?;
        Ok(match role {
            Role::Customer => Acting::Customer {
                id: c.customer(),
                claimed,
            },
            _ => Acting::Manager(claimed.map(Owner::from_api)),
        })
    }

    /// A manager's customer must exist (`not_found`, step 5 of D-2).
    async fn check_customer(&self, c: &Call<'_>) -> Result<(), ApiError> {
        if let Acting::Manager(Some(Owner::Customer(id))) = self
            && accounts::customer_by_id(&c.app.store, *id).await?.is_none()
        {
            return Err(ApiError::new(Code::NotFound));
        }
        Ok(())
    }

    /// The owner a call that needs one acts for.
    fn target(&self) -> Result<Owner, ApiError> {
        self.owner().ok_or_else(|| ApiError::missing("customer_id"))
    }

    /// The owner the call acts for; `None`: a manager acting for everyone.
    fn owner(&self) -> Option<Owner> {
        match self {
            Acting::Customer { id, .. } => Some(Owner::Customer(*id)),
            Acting::Manager(owner) => *owner,
        }
    }

    /// A customer naming another customer is refused (step 6 of D-2, after
    /// the lookups).
    fn authorize(&self) -> Result<(), ApiError> {
        match self {
            Acting::Customer {
                id,
                claimed: Some(other),
            } if *other != id.get() => Err(ApiError::new(Code::PermissionError)),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see (and use) a domain: its own or a system
    /// one for a customer; any for a manager.
    fn sees_domain(&self, d: &SenderDomain) -> bool {
        match self {
            Acting::Customer { id, .. } => d.owner == Owner::Customer(*id) || d.owner == Owner::System,
            Acting::Manager(_) => true,
        }
    }
}

/// A sender use-case's refusal as the vendor's code.
fn sender_error(e: SenderError) -> ApiError {
    match e {
        SenderError::DomainExists | SenderError::MailboxExists => ApiError::new(Code::AlreadyExists),
        SenderError::DomainNotFound | SenderError::MailboxNotFound => ApiError::new(Code::NotFound),
        SenderError::InUse => ApiError::new(Code::InUse),
        SenderError::Key(e) => ApiError::internal(e),
        SenderError::Store(e) => e.into(),
    }
}

fn domain_param(p: &Params) -> Result<DomainName, ApiError> {
    DomainName::parse(p.require("domain")?).ok_or_else(|| ApiError::invalid("domain"))
}

/// The mailbox 7.6/7.7 name: a malformed one can't exist (`invalid_param`).
fn mailbox_param(mailbox: &str) -> Result<MailboxAddress, ApiError> {
    MailboxAddress::parse(mailbox).ok_or_else(|| ApiError::invalid("mailbox"))
}

fn password_param(pwd: &str) -> Result<MailboxPassword, ApiError> {
    MailboxPassword::parse(pwd).ok_or_else(|| ApiError::with(Code::InvalidParam, "pwd: 1-64 characters"))
}

/// 7.1.
async fn domain_list(c: Call<'_>) -> ApiResult {
    let acting = Acting::read(&c, Naming::Optional)?;
    acting.check_customer(&c).await?;
    acting.authorize()?;
    let domains = senders::domains(&c.app.store, acting.owner()).await?;
    let mut x = Xml::new();
    x.open("domain_list");
    for d in &domains {
        x.open("data")
            .num("customer_id", d.owner.api_id())
            .text("domain", &d.domain)
            .close("data");
    }
    x.close("domain_list");
    Ok(xml_response(x.finish()))
}

/// The `customer_id` and `domain` of 7.2 and 7.3 (both required).
fn owner_and_domain(c: &Call<'_>) -> Result<(Acting, DomainName), ApiError> {
    let p = c.params;
    if p.get("customer_id")?.is_none() {
        return Err(ApiError::missing("customer_id"));
    }
    p.require("domain")?;
    let acting = Acting::read(c, Naming::Required)?;
    Ok((acting, domain_param(p)?))
}

/// 7.2: a domain for a customer (or the platform), with its DKIM keys.
async fn domain_add(c: Call<'_>) -> ApiResult {
    let (acting, name) = owner_and_domain(&c)?;
    acting.check_customer(&c).await?;
    let owner = acting.target()?;
    let app = c.app;
    match senders::add_domain(
        &app.store,
        &app.secret_box,
        app.config.dkim_algorithms(),
        owner,
        &name,
        app.clock.today(),
        app.clock.now(),
    )
    .await
    {
        Ok(_) => Ok(Success::message("添加域名成功").into_response()),
        Err(e) => Err(sender_error(e)),
    }
}

/// 7.3: a domain of the customer named, with its keys and mailboxes.
async fn domain_del(c: Call<'_>) -> ApiResult {
    let (acting, name) = owner_and_domain(&c)?;
    let owner = acting.target()?;
    senders::delete_domain(&c.app.store, owner, &name)
        .await
        .map_err(sender_error)?;
    Ok(Success::message("删除域名成功").into_response())
}

/// 7.4: the mailboxes of a domain the caller may see, by address; paged
/// when `page` is present (default 30).
async fn mailbox_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("domain")?;
    let acting = Acting::read(&c, Naming::Optional)?;
    let name = domain_param(p)?;
    let (page, limit) = p.paging(30)?;
    acting.check_customer(&c).await?;
    let store = &c.app.store;
    let domain = senders::domain(store, &name)
        .await?
        .filter(|d| acting.sees_domain(d))
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    acting.authorize()?;
    let scope = match &acting {
        Acting::Customer { id, .. } => MailboxScope::AvailableTo(*id),
        Acting::Manager(Some(owner)) => MailboxScope::OwnedBy(*owner),
        Acting::Manager(None) => MailboxScope::All,
    };
    let page = page.map(|n| (limit, (n - 1).saturating_mul(limit)));
    let mailboxes = senders::mailboxes(store, domain.id, scope, page).await?;
    let mut x = Xml::new();
    x.open("mailbox_list");
    for m in &mailboxes {
        x.open("data")
            .num("customer_id", m.owner.api_id())
            .text("domain", &m.domain)
            .text("name", &m.local_part)
            .text("mailbox", &m.address)
            .close("data");
    }
    x.close("mailbox_list");
    Ok(xml_response(x.finish()))
}

/// 7.5: a mailbox in a domain of the customer's, or in a system domain.
async fn mailbox_add(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let pwd = p.require("pwd")?;
    let mailbox = p.require("mailbox")?;
    let acting = Acting::read(&c, Naming::Required)?;
    let address = MailboxAddress::parse(mailbox).ok_or_else(|| ApiError::new(Code::FormatError))?;
    let password = password_param(pwd)?;
    acting.check_customer(&c).await?;
    let owner = acting.target()?;
    let app = c.app;
    // A domain the owner may not use answers not_found before a customer
    // naming another customer is refused (D-2's order of checks).
    senders::domain(&app.store, &address.domain)
        .await?
        .filter(|d| d.owner == owner || d.owner == Owner::System)
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    acting.authorize()?;
    senders::add_mailbox(
        &app.store,
        &app.secret_box,
        owner,
        &address,
        &password,
        app.clock.now(),
    )
    .await
    .map_err(sender_error)?;
    Ok(Success::message("添加账号成功").into_response())
}

/// The mailbox 7.6 and 7.7 act on: one of the owner's. A customer naming a
/// platform mailbox it can see is refused (`permission_error`, H-14); any
/// other mailbox is `not_found`.
async fn own_mailbox(c: &Call<'_>, acting: &Acting, address: &MailboxAddress) -> Result<Mailbox, ApiError> {
    let owner = acting.target()?;
    let found = senders::mailbox(&c.app.store, address)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    if found.owner == owner {
        acting.authorize()?;
        return Ok(found);
    }
    match acting {
        Acting::Customer { .. } if found.owner == Owner::System => Err(ApiError::new(Code::PermissionError)),
        _ => Err(ApiError::new(Code::NotFound)),
    }
}

/// 7.6.
async fn mailbox_del(c: Call<'_>) -> ApiResult {
    let mailbox = c.params.require("mailbox")?;
    let acting = Acting::read(&c, Naming::Required)?;
    let address = mailbox_param(mailbox)?;
    let found = own_mailbox(&c, &acting, &address).await?;
    senders::delete_mailbox(&c.app.store, &found)
        .await
        .map_err(sender_error)?;
    Ok(Success::message("删除账号成功").into_response())
}

/// 7.7: only the password changes.
async fn mailbox_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let pwd = p.require("pwd")?;
    let mailbox = p.require("mailbox")?;
    let acting = Acting::read(&c, Naming::Required)?;
    let address = mailbox_param(mailbox)?;
    let password = password_param(pwd)?;
    let found = own_mailbox(&c, &acting, &address).await?;
    let app = c.app;
    senders::set_mailbox_password(&app.store, &app.secret_box, &found, &password, app.clock.now())
        .await
        .map_err(sender_error)?;
    Ok(Success::message("修改账号成功").into_response())
}
