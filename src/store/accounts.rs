//! Customers, agents, managers, services and the credit ledger.

use jiff::civil::Date;
use sqlx::FromRow;

use super::credits::ledger_row;
use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool, unique_as};
use crate::clock::{format_date, parse_date};
use crate::domain::accounts::{
    AccountStorage, CreditChange, Customer, LedgerEntry, LedgerKind, NewCustomer, Profile, Role, SendType,
    Service, ServiceStatus, ServiceType, StoredCredential, Username,
};
use crate::domain::ids::{CustomerId, OperatorId, TaskId};
use crate::domain::templates::FooterLanguage;

#[derive(FromRow)]
struct CredentialRow {
    id: i64,
    password_hash: String,
    disabled: bool,
}

/// A customer as stored, with its agent's name (the reports read it too).
#[derive(FromRow)]
pub(super) struct CustomerRow {
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
            id: CustomerId(r.id),
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

/// A service as stored (the reports read it too).
#[derive(FromRow)]
pub(super) struct ServiceRow {
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
        let corrupt = |what: &str| StoreError::Failed(format!("corrupt service row: {what}"));
        let date = |d: Option<String>| -> StoreResult<Option<Date>> {
            d.map(|s| parse_date(&s).map_err(|_| corrupt("date"))).transpose()
        };
        Ok(Service {
            customer_id: CustomerId(r.customer_id),
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

impl AccountStorage for Store {
    async fn create_customer(
        &self,
        c: &NewCustomer,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<CustomerId> {
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
            .bind(password_hash)
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
            Ok(CustomerId(id))
        })
    }

    async fn create_operator(
        &self,
        role: Role,
        username: &Username,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<OperatorId> {
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
        .map(OperatorId)
        .map_err(unique_as(what))
    }

    async fn credential(&self, role: Role, username: &Username) -> StoreResult<Option<StoredCredential>> {
        let username_key = username.key();
        // Every vendor API request asks: on SQLite it is read in place.
        if let Store::Sqlite(pool) = self {
            return super::sqlite_readers(pool)?.with(|r| {
                let mut st = match role {
                    Role::Customer => {
                        let mut st = r.prepare("SELECT id, password_hash, disabled FROM customers WHERE username_key = $1")?;
                        st.bind_text(1, &username_key)?;
                        st
                    }
                    Role::Agent | Role::Manager => {
                        let mut st = r.prepare(
                            "SELECT id, password_hash, disabled FROM operators WHERE role = $1 AND username_key = $2",
                        )?;
                        st.bind_text(1, role.as_str())?;
                        st.bind_text(2, &username_key)?;
                        st
                    }
                };
                Ok(st.next_row()?.then(|| StoredCredential {
                    id: st.int(0),
                    password_hash: st.text(1).to_string(),
                    disabled: st.int(2) != 0,
                }))
            });
        }
        let row = match role {
            Role::Customer => on_pool!(self, p => sqlx::query_as::<_, CredentialRow>(
                "SELECT id, password_hash, disabled FROM customers WHERE username_key = $1",
            )
            .bind(username_key)
            .fetch_optional(p)
            .await)?,
            Role::Agent | Role::Manager => on_pool!(self, p => sqlx::query_as::<_, CredentialRow>(
                "SELECT id, password_hash, disabled FROM operators WHERE role = $1 AND username_key = $2",
            )
            .bind(role.as_str())
            .bind(&username_key)
            .fetch_optional(p)
            .await)?,
        };
        Ok(row.map(|r| StoredCredential {
            id: r.id,
            password_hash: r.password_hash,
            disabled: r.disabled,
        }))
    }

    async fn set_password_hash(&self, role: Role, username: &Username, hash: &str) -> StoreResult<bool> {
        update_password_hash(self, role, username, hash, None).await
    }

    async fn replace_password_hash(
        &self,
        role: Role,
        username: &Username,
        old: &str,
        new: &str,
    ) -> StoreResult<bool> {
        update_password_hash(self, role, username, new, Some(old)).await
    }

    async fn set_customer_disabled(&self, username: &Username, disabled: bool) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE customers SET disabled = $1 WHERE username_key = $2",
                &[Arg::Bool(disabled), Arg::Text(&username.key())],
            )
            .await?;
        Ok(n == 1)
    }

    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        let sql = concat!(select_customer!(), "WHERE c.id = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql).bind(id.get()).fetch_optional(p).await)?;
        Ok(row.map(Customer::from))
    }

    async fn customer_by_username(&self, username: &Username) -> StoreResult<Option<Customer>> {
        let sql = concat!(select_customer!(), "WHERE c.username_key = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql)
            .bind(username.key())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Customer::from))
    }

    async fn customers(&self) -> StoreResult<Vec<Customer>> {
        let sql = concat!(select_customer!(), "ORDER BY c.id");
        let rows = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(Customer::from).collect())
    }

    async fn service(&self, customer: CustomerId) -> StoreResult<Service> {
        let row = on_pool!(self, p => sqlx::query_as::<_, ServiceRow>(SELECT_SERVICE)
            .bind(customer.get())
            .fetch_optional(p)
            .await)?;
        row.ok_or(StoreError::NotFound("customer"))?.try_into()
    }

    async fn update_service<E: Send>(
        &self,
        customer: CustomerId,
        now: i64,
        change: impl FnOnce(&Service) -> Result<(Service, Vec<CreditChange>), E> + Send,
    ) -> StoreResult<Result<Service, E>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, ServiceRow>(SELECT_SERVICE)
                .bind(customer.get())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("customer"))?;
            let current = Service::try_from(row)?;
            let (next, changes) = match change(&current) {
                Ok(v) => v,
                Err(refused) => return Ok(Err(refused)),
            };
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
            .bind(customer.get())
            .execute(&mut *tx)
            .await?;
            for c in changes {
                let entry = LedgerEntry {
                    at: now,
                    kind: c.kind,
                    amount: c.amount,
                    balance: c.balance,
                    task_id: None,
                    reason: c.reason,
                };
                ledger_row(&mut *tx, customer, &entry).await?;
            }
            tx.commit().await?;
            Ok(Ok(next))
        })
    }

    async fn ledger(&self, customer: CustomerId) -> StoreResult<Vec<LedgerEntry>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, LedgerRow>(
            "SELECT at, kind, amount, balance, task_id, reason FROM credit_ledger \
             WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer.get())
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(LedgerEntry {
                    at: r.at,
                    kind: LedgerKind::parse(&r.kind)
                        .ok_or_else(|| StoreError::Failed(format!("unknown ledger kind {}", r.kind)))?,
                    amount: r.amount,
                    balance: r.balance,
                    task_id: r.task_id.map(TaskId),
                    reason: r.reason,
                })
            })
            .collect()
    }

    async fn footer_language(&self, customer: CustomerId) -> StoreResult<FooterLanguage> {
        let value: Option<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT footer_language FROM customers WHERE id = $1",
        )
        .bind(customer.get())
        .fetch_optional(p)
        .await)?;
        // A value the column's check let through that this release does
        // not know is `auto`.
        Ok(value
            .as_deref()
            .and_then(FooterLanguage::parse)
            .unwrap_or_default())
    }

    async fn set_footer_language(&self, customer: CustomerId, language: FooterLanguage) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE customers SET footer_language = $1 WHERE id = $2",
                &[Arg::Text(language.as_str()), Arg::Int(customer.get())],
            )
            .await?;
        Ok(n == 1)
    }
}

/// Stores an account's credential, only where it is still `only_if` when
/// given; false if no account was changed.
async fn update_password_hash(
    store: &Store,
    role: Role,
    username: &Username,
    hash: &str,
    only_if: Option<&str>,
) -> StoreResult<bool> {
    let username_key = &username.key();
    let n = match role {
        Role::Customer => {
            store
                .write(
                    "UPDATE customers SET password_hash = $1 WHERE username_key = $2 \
                     AND ($3 IS NULL OR password_hash = $3)",
                    &[Arg::Text(hash), Arg::Text(username_key), Arg::OptText(only_if)],
                )
                .await?
        }
        Role::Agent | Role::Manager => {
            store
                .write(
                    "UPDATE operators SET password_hash = $1 WHERE role = $2 AND username_key = $3 \
                     AND ($4 IS NULL OR password_hash = $4)",
                    &[
                        Arg::Text(hash),
                        Arg::Text(role.as_str()),
                        Arg::Text(username_key),
                        Arg::OptText(only_if),
                    ],
                )
                .await?
        }
    };
    Ok(n == 1)
}
