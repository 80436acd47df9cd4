//! Customers, agents, managers, services and the credit ledger.

use jiff::civil::Date;
use sqlx::FromRow;

use super::{Arg, Store, StoreError, StoreResult, WritePool, ledger_row, on_pool, unique_as};
use crate::clock::{format_date, parse_date};
use crate::domain::accounts::{
    Customer, LedgerEntry, LedgerKind, Profile, Role, SendType, Service, ServiceChange, ServiceStatus,
    ServiceType, Username,
};

/// What authentication needs of an account.
#[derive(Clone, Debug, FromRow)]
pub struct StoredCredential {
    pub id: i64,
    pub password_hash: String,
    pub disabled: bool,
}

pub struct NewCustomer {
    pub username: Username,
    pub password_hash: String,
    pub profile: Profile,
    pub agent: Option<Username>,
}

#[derive(FromRow)]
struct CustomerRow {
    id: i64,
    username: String,
    company: String,
    contact: String,
    phone: String,
    mobile: String,
    email: String,
    im: String,
    address: String,
    agent: Option<String>,
    disabled: bool,
}

impl From<CustomerRow> for Customer {
    fn from(r: CustomerRow) -> Customer {
        Customer {
            id: r.id,
            username: r.username,
            profile: Profile {
                company: r.company,
                contact: r.contact,
                phone: r.phone,
                mobile: r.mobile,
                email: r.email,
                im: r.im,
                address: r.address,
            },
            agent: r.agent,
            disabled: r.disabled,
        }
    }
}

/// `SELECT` of a customer row, as a literal for `concat!`.
macro_rules! select_customer {
    () => {
        "SELECT c.id, c.username, c.company, c.contact, c.phone, c.mobile, c.email, \
         c.im, c.address, o.username AS agent, c.disabled \
         FROM customers c LEFT JOIN operators o ON o.id = c.agent_id "
    };
}

#[derive(FromRow)]
struct ServiceRow {
    customer_id: i64,
    status: String,
    service_type: String,
    send_type: String,
    begin_date: Option<String>,
    end_date: Option<String>,
    qty_available: i64,
    qty_buytotal: i64,
    day_of: Option<String>,
}

impl TryFrom<ServiceRow> for Service {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> StoreResult<Service> {
        let corrupt = |what: &str| StoreError::Other(format!("corrupt service row: {what}"));
        let date = |d: Option<String>| -> StoreResult<Option<Date>> {
            d.map(|s| parse_date(&s).map_err(|_| corrupt("date"))).transpose()
        };
        Ok(Service {
            customer_id: r.customer_id,
            status: ServiceStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            service_type: ServiceType::parse(&r.service_type).ok_or_else(|| corrupt("type"))?,
            send_type: SendType::parse(&r.send_type).ok_or_else(|| corrupt("send type"))?,
            begin: date(r.begin_date)?,
            end: date(r.end_date)?,
            qty_available: r.qty_available,
            qty_buytotal: r.qty_buytotal,
            day_of: date(r.day_of)?,
        })
    }
}

const SELECT_SERVICE: &str = "SELECT customer_id, status, service_type, send_type, begin_date, end_date, \
     qty_available, qty_buytotal, day_of FROM services WHERE customer_id = $1";

#[derive(FromRow)]
struct LedgerRow {
    at: i64,
    kind: String,
    amount: i64,
    balance: i64,
    task_id: Option<i64>,
    reason: String,
}

impl Store {
    /// Adds a customer with a default service (enabled, `all`, `local`, no
    /// credits) and returns its id.
    pub async fn create_customer(&self, c: NewCustomer, now: i64) -> StoreResult<i64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let agent_id: Option<i64> = match &c.agent {
                None => None,
                Some(a) => Some(
                    sqlx::query_scalar("SELECT id FROM operators WHERE role = 'agent' AND username_key = $1")
                        .bind(a.key())
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound("agent"))?,
                ),
            };
            let p = &c.profile;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO customers (username, username_key, password_hash, company, contact, phone, \
                 mobile, email, im, address, agent_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(c.username.as_str())
            .bind(c.username.key())
            .bind(&c.password_hash)
            .bind(&p.company)
            .bind(&p.contact)
            .bind(&p.phone)
            .bind(&p.mobile)
            .bind(&p.email)
            .bind(&p.im)
            .bind(&p.address)
            .bind(agent_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_as("customer"))?;
            sqlx::query("INSERT INTO services (customer_id) VALUES ($1)")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Adds an agent or a manager and returns its id.
    pub async fn create_operator(
        &self,
        role: Role,
        username: &Username,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<i64> {
        let what = if role == Role::Agent { "agent" } else { "manager" };
        self.insert_id(
            "INSERT INTO operators (role, username, username_key, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                Arg::Text(role.as_str()),
                Arg::Text(username.as_str()),
                Arg::Text(&username.key()),
                Arg::Text(password_hash),
                Arg::Int(now),
            ],
        )
        .await
        .map_err(unique_as(what))
    }

    /// The credential of an account, looked up by its user name key.
    pub async fn credential(&self, role: Role, username_key: &str) -> StoreResult<Option<StoredCredential>> {
        let row = match role {
            Role::Customer => on_pool!(self, p => sqlx::query_as::<_, StoredCredential>(
                "SELECT id, password_hash, disabled FROM customers WHERE username_key = $1",
            )
            .bind(username_key)
            .fetch_optional(p)
            .await)?,
            Role::Agent | Role::Manager => on_pool!(self, p => sqlx::query_as::<_, StoredCredential>(
                "SELECT id, password_hash, disabled FROM operators WHERE role = $1 AND username_key = $2",
            )
            .bind(role.as_str())
            .bind(username_key)
            .fetch_optional(p)
            .await)?,
        };
        Ok(row)
    }

    /// Replaces an account's stored credential; false if there is no such account.
    pub async fn set_password_hash(&self, role: Role, username_key: &str, hash: &str) -> StoreResult<bool> {
        let n = match role {
            Role::Customer => {
                self.write(
                    "UPDATE customers SET password_hash = $1 WHERE username_key = $2",
                    &[Arg::Text(hash), Arg::Text(username_key)],
                )
                .await?
            }
            Role::Agent | Role::Manager => {
                self.write(
                    "UPDATE operators SET password_hash = $1 WHERE role = $2 AND username_key = $3",
                    &[Arg::Text(hash), Arg::Text(role.as_str()), Arg::Text(username_key)],
                )
                .await?
            }
        };
        Ok(n == 1)
    }

    /// Bars a customer from logging in (A.3 rule 7), or lets it in again.
    pub async fn set_customer_disabled(&self, username_key: &str, disabled: bool) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE customers SET disabled = $1 WHERE username_key = $2",
                &[Arg::Bool(disabled), Arg::Text(username_key)],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn customer_by_id(&self, id: i64) -> StoreResult<Option<Customer>> {
        let sql = concat!(select_customer!(), "WHERE c.id = $1");
        let row =
            on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql).bind(id).fetch_optional(p).await)?;
        Ok(row.map(Customer::from))
    }

    pub async fn customer_by_username(&self, username_key: &str) -> StoreResult<Option<Customer>> {
        let sql = concat!(select_customer!(), "WHERE c.username_key = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql)
            .bind(username_key)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Customer::from))
    }

    pub async fn list_customers(&self) -> StoreResult<Vec<Customer>> {
        let sql = concat!(select_customer!(), "ORDER BY c.id");
        let rows = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(Customer::from).collect())
    }

    pub async fn service(&self, customer_id: i64) -> StoreResult<Service> {
        let row = on_pool!(self, p => sqlx::query_as::<_, ServiceRow>(SELECT_SERVICE)
            .bind(customer_id)
            .fetch_optional(p)
            .await)?;
        row.ok_or(StoreError::NotFound("customer"))?.try_into()
    }

    /// Applies an administrator's change to a service in one transaction,
    /// writing a ledger row for every change to the credits.
    pub async fn change_service(
        &self,
        customer_id: i64,
        change: &ServiceChange,
        now: i64,
        today: Date,
    ) -> StoreResult<Service> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, ServiceRow>(SELECT_SERVICE)
                .bind(customer_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("customer"))?;
            let current = Service::try_from(row)?;
            let (next, entries) = current.apply(change, today).map_err(StoreError::Other)?;
            sqlx::query(
                "UPDATE services SET status = $1, service_type = $2, send_type = $3, begin_date = $4, \
                 end_date = $5, qty_available = $6, qty_buytotal = $7, day_of = $8 WHERE customer_id = $9",
            )
            .bind(next.status.as_str())
            .bind(next.service_type.as_str())
            .bind(next.send_type.as_str())
            .bind(next.begin.map(format_date))
            .bind(next.end.map(format_date))
            .bind(next.qty_available)
            .bind(next.qty_buytotal)
            .bind(next.day_of.map(format_date))
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
            for e in entries {
                ledger_row!(tx, customer_id, now, e.kind, e.amount, e.balance, None::<i64>, &e.reason);
            }
            tx.commit().await?;
            Ok(next)
        })
    }

    /// A customer's credit history, oldest first.
    pub async fn ledger(&self, customer_id: i64) -> StoreResult<Vec<LedgerEntry>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, LedgerRow>(
            "SELECT at, kind, amount, balance, task_id, reason FROM credit_ledger \
             WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer_id)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(LedgerEntry {
                    at: r.at,
                    kind: LedgerKind::parse(&r.kind)
                        .ok_or_else(|| StoreError::Other(format!("unknown ledger kind {}", r.kind)))?,
                    amount: r.amount,
                    balance: r.balance,
                    task_id: r.task_id,
                    reason: r.reason,
                })
            })
            .collect()
    }
}
