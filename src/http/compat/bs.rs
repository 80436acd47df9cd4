//! `bs.php`: sender domains (7.1–7.3) and the mailboxes under them (7.4–7.7).
//! A customer acts on its own data; a manager (`user_type=manager`, and
//! always in 7.2/7.3) on the customer `customer_id` names, 0 being the
//! platform (the table at the top of chapter 7). Another customer's domain
//! or mailbox answers exactly like a missing one (D-5).

use super::Call;
use super::params::Params;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::domain::accounts::Role;
use crate::domain::senders::{
    AddDomainError, DomainName, MailboxAddress, MailboxPassword, Owner, add_domain, seal_mailbox_password,
};
use crate::store::{Mailbox, MailboxScope, SenderDomain, StoreError};

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
    Customer { id: i64, claimed: Option<i64> },
    /// A manager, for the owner `customer_id` names, or for everyone.
    Manager(Option<Owner>),
}

/// Whether a manager must name the customer.
#[derive(PartialEq, Eq)]
enum CustomerId {
    Optional,
    Required,
}

impl Acting {
    /// Reads `user_type` and `customer_id`: missing, then invalid (D-2).
    fn read(c: &Call<'_>, rule: CustomerId) -> Result<Acting, ApiError> {
        let p = c.params;
        let role = if MANAGER_ONLY.contains(&c.op) {
            Role::Manager
        } else {
            Role::from_api_user_type(p.get("user_type")?).ok_or_else(|| ApiError::invalid("user_type"))?
        };
        if role == Role::Manager && rule == CustomerId::Required && p.get("customer_id")?.is_none() {
            return Err(ApiError::missing("customer_id"));
        }
        let claimed = p.id("customer_id")?;
        Ok(match role {
            Role::Customer => Acting::Customer {
                id: c.account_id,
                claimed,
            },
            _ => Acting::Manager(claimed.map(Owner::from_api)),
        })
    }

    /// A manager's customer must exist (`not_found`, step 5 of D-2).
    async fn check_customer(&self, c: &Call<'_>) -> Result<(), ApiError> {
        if let Acting::Manager(Some(Owner::Customer(id))) = self
            && c.app.store.customer_by_id(*id).await?.is_none()
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
            } if other != id => Err(ApiError::new(Code::PermissionError)),
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
    let acting = Acting::read(&c, CustomerId::Optional)?;
    acting.check_customer(&c).await?;
    acting.authorize()?;
    let domains = c.app.store.domains(acting.owner()).await?;
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
    let acting = Acting::read(c, CustomerId::Required)?;
    Ok((acting, domain_param(p)?))
}

/// 7.2: a domain for a customer (or the platform), with its DKIM keys.
async fn domain_add(c: Call<'_>) -> ApiResult {
    let (acting, name) = owner_and_domain(&c)?;
    acting.check_customer(&c).await?;
    let owner = acting.target()?;
    let app = c.app;
    match add_domain(
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
        Err(AddDomainError::Exists) => Err(ApiError::new(Code::AlreadyExists)),
        Err(AddDomainError::Key(e)) => Err(ApiError::internal(e)),
        Err(AddDomainError::Store(e)) => Err(e.into()),
    }
}

/// 7.3: a domain of the customer named, with its keys and mailboxes.
async fn domain_del(c: Call<'_>) -> ApiResult {
    let (acting, name) = owner_and_domain(&c)?;
    let owner = acting.target()?;
    let store = &c.app.store;
    let domain = store
        .domain(&name)
        .await?
        .filter(|d| d.owner == owner)
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    if store.domain_in_use(domain.id).await? {
        return Err(ApiError::new(Code::InUse));
    }
    if !store.delete_domain(owner, &name).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("删除域名成功").into_response())
}

/// 7.4: the mailboxes of a domain the caller may see, by address; paged
/// when `page` is present (default 30).
async fn mailbox_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("domain")?;
    let acting = Acting::read(&c, CustomerId::Optional)?;
    let name = domain_param(p)?;
    let (page, limit) = p.paging(30)?;
    acting.check_customer(&c).await?;
    let store = &c.app.store;
    let domain = store
        .domain(&name)
        .await?
        .filter(|d| acting.sees_domain(d))
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    acting.authorize()?;
    let scope = match &acting {
        Acting::Customer { id, .. } => MailboxScope::AvailableTo(*id),
        Acting::Manager(Some(owner)) => MailboxScope::OwnedBy(*owner),
        Acting::Manager(None) => MailboxScope::All,
    };
    let mailboxes = store
        .mailboxes(
            domain.id,
            scope,
            page.map(|n| (limit, (n - 1).saturating_mul(limit))),
        )
        .await?;
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
    let acting = Acting::read(&c, CustomerId::Required)?;
    let address = MailboxAddress::parse(mailbox).ok_or_else(|| ApiError::new(Code::FormatError))?;
    let password = password_param(pwd)?;
    acting.check_customer(&c).await?;
    let owner = acting.target()?;
    let app = c.app;
    let domain = app
        .store
        .domain(&address.domain)
        .await?
        .filter(|d| d.owner == owner || d.owner == Owner::System)
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    acting.authorize()?;
    let sealed = seal_mailbox_password(&app.secret_box, &address, &password);
    match app
        .store
        .create_mailbox(domain.id, owner, &address, &sealed, app.clock.now())
        .await
    {
        Ok(_) => Ok(Success::message("添加账号成功").into_response()),
        Err(StoreError::Duplicate(_)) => Err(ApiError::new(Code::AlreadyExists)),
        Err(e) => Err(e.into()),
    }
}

/// The mailbox 7.6 and 7.7 act on: one of the owner's. A customer naming a
/// platform mailbox it can see is refused (`permission_error`, H-14); any
/// other mailbox is `not_found`.
async fn own_mailbox(c: &Call<'_>, acting: &Acting, address: &MailboxAddress) -> Result<Mailbox, ApiError> {
    let owner = acting.target()?;
    let found = c
        .app
        .store
        .mailbox(address)
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
    let acting = Acting::read(&c, CustomerId::Required)?;
    let address = mailbox_param(mailbox)?;
    let found = own_mailbox(&c, &acting, &address).await?;
    let store = &c.app.store;
    if store.mailbox_in_use(found.id).await? {
        return Err(ApiError::new(Code::InUse));
    }
    if !store.delete_mailbox(found.id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("删除账号成功").into_response())
}

/// 7.7: only the password changes.
async fn mailbox_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let pwd = p.require("pwd")?;
    let mailbox = p.require("mailbox")?;
    let acting = Acting::read(&c, CustomerId::Required)?;
    let address = mailbox_param(mailbox)?;
    let password = password_param(pwd)?;
    let found = own_mailbox(&c, &acting, &address).await?;
    let app = c.app;
    let sealed = seal_mailbox_password(&app.secret_box, &address, &password);
    if !app
        .store
        .set_mailbox_password(found.id, &sealed, app.clock.now())
        .await?
    {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("修改账号成功").into_response())
}
