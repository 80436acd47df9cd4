//! Contact lists, addresses, the unsubscribe log, suppressions and import
//! jobs. Every query names the customer; a list's `addr_count` and the
//! customer's `address_version` change in the transaction that changes its
//! addresses.

use sqlx::{FromRow, PgConnection, SqliteConnection};

use super::sqlite_rows::Statement;
use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool, unique_as};
use crate::domain::email::EmailAddress;
use crate::domain::lists::{
    Address, AddressRecord, AddressRecords, ContactList, Extra, FileEncoding, ListStatus, NewAddress,
    PackedAddresses,
};

/// Which addresses a listing covers (4.8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddressFilter {
    /// `None`: every list; `Some(0)`: the unclassified addresses.
    pub list_id: Option<i64>,
    /// Case-insensitive substring of the address or the name.
    pub keyword: Option<String>,
    /// Only this address (Part G, H-13).
    pub address_id: Option<i64>,
}

/// Where a page of addresses starts.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// At the first id ≥ this one (key-based).
    AtId(i64),
    /// After skipping this many (OFFSET, for shallow pages).
    Skip(i64),
}

/// What 4.4 changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ListChange {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status: Option<ListStatus>,
}

/// What 4.10 changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct AddressChange {
    pub email: Option<EmailAddress>,
    pub fullname: Option<String>,
    pub vars: [Option<String>; 10],
    pub sex: Option<String>,
    pub birthday: Option<String>,
    pub phone: Option<String>,
    pub area: Option<String>,
}

impl AddressChange {
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.fullname.is_none()
            && self.vars.iter().all(Option::is_none)
            && self.sex.is_none()
            && self.birthday.is_none()
            && self.phone.is_none()
            && self.area.is_none()
    }
}

/// One line of the unsubscribe log (4.7).
#[derive(Clone, Debug, FromRow)]
pub struct Unsubscribe {
    pub id: i64,
    pub at: i64,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportState {
    Queued,
    Running,
    Done,
    Failed,
}

impl ImportState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> ImportState {
        match s {
            "queued" => ImportState::Queued,
            "running" => ImportState::Running,
            "done" => ImportState::Done,
            _ => ImportState::Failed,
        }
    }
}

/// An import about to be queued: a stored file for a list.
pub struct NewImport<'a> {
    pub list_id: i64,
    pub file_id: i64,
    pub file_name: &'a str,
    pub encoding: FileEncoding,
    pub size: i64,
}

/// An import job and its progress.
#[derive(Clone, Debug)]
pub struct ImportJob {
    pub id: i64,
    pub customer_id: i64,
    pub list_id: i64,
    pub file_id: Option<i64>,
    pub file_name: String,
    pub encoding: FileEncoding,
    pub state: ImportState,
    pub size: i64,
    pub offset_done: i64,
    pub lines_done: i64,
    pub added: i64,
    pub invalid: i64,
    pub duplicate: i64,
    pub error: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// What one batch of an import did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportProgress {
    /// Where the next batch starts.
    pub offset: i64,
    pub lines: i64,
    pub invalid: i64,
    /// Repeats of an address earlier in the file, left out of the batch's rows.
    pub duplicate: i64,
    /// The file is read to its end.
    pub finished: bool,
}

#[derive(FromRow)]
struct ListRow {
    id: i64,
    subject: String,
    description: String,
    status: String,
    addr_count: i64,
}

impl From<ListRow> for ContactList {
    fn from(r: ListRow) -> Self {
        ContactList {
            id: r.id,
            subject: r.subject,
            description: r.description,
            status: ListStatus::parse(&r.status).unwrap_or(ListStatus::Disabled),
            count: r.addr_count,
        }
    }
}

#[derive(FromRow)]
struct AddressRow {
    id: i64,
    list_id: i64,
    address: String,
    fullname: String,
    created_at: i64,
    var1: String,
    var2: String,
    var3: String,
    var4: String,
    var5: String,
    var6: String,
    var7: String,
    var8: String,
    var9: String,
    var10: String,
    sex: String,
    birthday: String,
    phone: String,
    area: String,
}

impl From<AddressRow> for Address {
    fn from(r: AddressRow) -> Self {
        Address {
            id: r.id,
            list_id: r.list_id,
            address: r.address,
            fullname: r.fullname,
            created_at: r.created_at,
            vars: [
                r.var1, r.var2, r.var3, r.var4, r.var5, r.var6, r.var7, r.var8, r.var9, r.var10,
            ],
            extra: Extra {
                sex: r.sex,
                birthday: r.birthday,
                phone: r.phone,
                area: r.area,
            },
        }
    }
}

#[derive(FromRow)]
struct ImportRow {
    id: i64,
    customer_id: i64,
    list_id: i64,
    file_id: Option<i64>,
    file_name: String,
    encoding: String,
    state: String,
    size: i64,
    offset_done: i64,
    lines_done: i64,
    added: i64,
    invalid: i64,
    duplicate: i64,
    error: String,
    created_at: i64,
    finished_at: Option<i64>,
}

impl From<ImportRow> for ImportJob {
    fn from(r: ImportRow) -> Self {
        ImportJob {
            id: r.id,
            customer_id: r.customer_id,
            list_id: r.list_id,
            file_id: r.file_id,
            file_name: r.file_name,
            encoding: FileEncoding::parse(&r.encoding).unwrap_or(FileEncoding::Utf8),
            state: ImportState::parse(&r.state),
            size: r.size,
            offset_done: r.offset_done,
            lines_done: r.lines_done,
            added: r.added,
            invalid: r.invalid,
            duplicate: r.duplicate,
            error: r.error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

const LIST_COLUMNS: &str = "SELECT id, subject, description, status, addr_count FROM lists";
const ADDRESS_COLUMNS: &str = "SELECT id, list_id, address, fullname, created_at, var1, var2, var3, var4, \
     var5, var6, var7, var8, var9, var10, sex, birthday, phone, area FROM addresses";
const IMPORT_COLUMNS: &str = "SELECT id, customer_id, list_id, file_id, file_name, encoding, state, size, \
     offset_done, lines_done, added, invalid, duplicate, error, created_at, finished_at FROM import_jobs";

/// `$n` placeholders after the customer id for a filter, and their values.
fn filter_sql(f: &AddressFilter) -> (String, Vec<FilterArg>) {
    let mut sql = String::from(" WHERE customer_id = $1");
    let mut args = Vec::new();
    let mut n = 4;
    if let Some(list) = f.list_id {
        sql.push_str(&format!(" AND list_id = ${n}"));
        args.push(FilterArg::Int(list));
        n += 1;
    }
    if let Some(id) = f.address_id {
        sql.push_str(&format!(" AND id = ${n}"));
        args.push(FilterArg::Int(id));
        n += 1;
    }
    if let Some(k) = &f.keyword {
        sql.push_str(&format!(
            " AND (lower(address) LIKE ${n} ESCAPE '\\' OR lower(fullname) LIKE ${n} ESCAPE '\\')"
        ));
        args.push(FilterArg::Text(like_pattern(k)));
    }
    (sql, args)
}

enum FilterArg {
    Int(i64),
    Text(String),
}

/// `%keyword%` with `%`, `_` and `\` taken literally (4.8).
fn like_pattern(keyword: &str) -> String {
    let mut p = String::from("%");
    for c in keyword.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Binds a filter's values (numbered from 4, after the customer id and the
/// two paging values) inside `on_pool!`, compiled for each backend.
macro_rules! bind_filter {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                FilterArg::Int(i) => q.bind(*i),
                FilterArg::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}

/// The backend-specific way to insert many addresses at once; returns how
/// many were new (the rest were duplicates, D-16). The first of two equal
/// keys wins, and ids follow the order of `rows`.
pub(crate) trait AddressRows {
    fn insert_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The same for an import batch, whose reader has already left out the
    /// repeats within the file (`FileKeys`): the rows are then mostly new,
    /// and a backend may store them the fast way first.
    fn import_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.insert_addresses(customer_id, list_id, rows, now)
    }
}

/// Rows per hold of a SQLite connection's handle: the runtime thread waits on
/// SQLite meanwhile (a few ms), then the other tasks get their turn.
const SQLITE_SLICE: usize = 2_048;
/// Rows per SQLite INSERT: one statement keeps its b-tree cursors open from
/// row to row, where a statement per row seeks every index from its root.
const SQLITE_ROWS: usize = 64;

/// An INSERT of `rows` rows: the customer, list and time are ?1, ?2, ?3 in
/// each; the text fields follow with anonymous `?`, numbered from 4 on
/// (SQLite looks a `$N` up by a linear scan, quadratic in a long statement).
fn sqlite_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, fullname, \
         var1, var2, var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?1,?2,?3,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(" ON CONFLICT (customer_id, list_id, address_key) DO NOTHING");
    sql
}

/// The 17 text fields of a record, in the order of the INSERT's columns.
fn record_texts<'r>(r: &'r AddressRecord<'_>) -> impl Iterator<Item = &'r str> {
    [r.address, r.key.as_ref(), r.fullname]
        .into_iter()
        .chain(r.vars)
        .chain(r.extra)
}

impl AddressRows for SqliteConnection {
    async fn insert_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> StoreResult<u64> {
        static MANY: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| sqlite_insert_sql(SQLITE_ROWS));
        static ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sqlite_insert_sql(1));
        let mut added = 0;
        let mut next = 0;
        while next < rows.count() {
            let end = (next + SQLITE_SLICE).min(rows.count());
            {
                let mut handle = self.lock_handle().await?;
                for (sql, size) in [(&*MANY, SQLITE_ROWS), (&*ONE, 1)] {
                    if end - next < size {
                        continue;
                    }
                    let mut insert = Statement::prepare(&mut handle, sql)?;
                    for (n, v) in [customer_id, list_id, now].into_iter().enumerate() {
                        insert.bind_int(n as i32 + 1, v)?;
                    }
                    while end - next >= size {
                        let records: Vec<AddressRecord<'_>> =
                            (next..next + size).map(|i| rows.record(i)).collect();
                        added += insert.run(4, records.iter().flat_map(record_texts))?;
                        next += size;
                    }
                }
            }
            if next < rows.count() {
                tokio::task::yield_now().await;
            }
        }
        Ok(added)
    }
}

/// From this many rows PostgreSQL gets them by COPY into a staging table;
/// fewer go in one INSERT from arrays.
const PG_COPY_FROM: usize = 1_000;

impl AddressRows for PgConnection {
    async fn insert_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> StoreResult<u64> {
        if rows.count() >= PG_COPY_FROM {
            return pg_stage_addresses(self, customer_id, list_id, rows, now).await;
        }
        const SQL: &str = "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, \
             fullname, var1, var2, var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) \
             SELECT $1, $2, $3, a, k, n, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, sex, birthday, phone, area \
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
             $18::text[], $19::text[], $20::text[]) WITH ORDINALITY \
             AS t(a, k, n, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, sex, birthday, phone, area, seq) \
             ORDER BY seq ON CONFLICT (customer_id, list_id, address_key) DO NOTHING";
        let records: Vec<AddressRecord<'_>> = (0..rows.count()).map(|i| rows.record(i)).collect();
        let col = |f: &dyn Fn(&AddressRecord<'_>) -> String| records.iter().map(f).collect::<Vec<String>>();
        let mut q = sqlx::query(SQL)
            .bind(customer_id)
            .bind(list_id)
            .bind(now)
            .bind(col(&|r| r.address.to_string()))
            .bind(col(&|r| r.key.to_string()))
            .bind(col(&|r| r.fullname.to_string()));
        for v in 0..10 {
            q = q.bind(col(&|r| r.vars[v].to_string()));
        }
        for e in 0..4 {
            q = q.bind(col(&|r| r.extra[e].to_string()));
        }
        Ok(q.execute(&mut *self).await?.rows_affected())
    }

    /// COPY straight into `addresses`: no staging table, no sort, and one
    /// WAL record per page instead of per row. Any address already in the
    /// list (or a repeat the reader could not remember) fails the COPY on the
    /// unique index; the batch then goes the staging way, which skips them.
    async fn import_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> StoreResult<u64> {
        if rows.count() < PG_COPY_FROM {
            return self.insert_addresses(customer_id, list_id, rows, now).await;
        }
        sqlx::query("SAVEPOINT direct_copy").execute(&mut *self).await?;
        let lead = format!("{customer_id}\t{list_id}\t{now}");
        let copied = copy_rows(
            self,
            "COPY addresses (customer_id, list_id, created_at, address, address_key, fullname, var1, var2, \
             var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) FROM STDIN",
            rows,
            |_, _, buf| {
                buf.extend_from_slice(lead.as_bytes());
                true
            },
        )
        .await;
        match copied {
            Ok(added) => {
                sqlx::query("RELEASE SAVEPOINT direct_copy")
                    .execute(&mut *self)
                    .await?;
                Ok(added)
            }
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                sqlx::query("ROLLBACK TO SAVEPOINT direct_copy")
                    .execute(&mut *self)
                    .await?;
                pg_stage_addresses(self, customer_id, list_id, rows, now).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Sends `rows` to `copy` (a COPY … FROM STDIN, text format) 1 MiB at a
/// time, each line led by what `lead` writes for the record (the columns
/// before its own fields); a record for which `lead` returns false is left
/// out. Returns the rows COPY stored.
async fn copy_rows<'r, R: AddressRecords + ?Sized>(
    conn: &mut PgConnection,
    copy: &str,
    rows: &'r R,
    mut lead: impl FnMut(usize, &AddressRecord<'r>, &mut Vec<u8>) -> bool,
) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(copy).await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
    for i in 0..rows.count() {
        let r = rows.record(i);
        if !lead(i, &r, &mut buf) {
            continue;
        }
        for field in record_texts(&r) {
            buf.push(b'\t');
            copy_text(&mut buf, field);
        }
        buf.push(b'\n');
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    copy.send(buf.as_slice()).await?;
    copy.finish().await
}

/// COPY into a staging table (text format, sent 1 MiB at a time), then one
/// INSERT … SELECT in the rows' order that skips the keys already there.
async fn pg_stage_addresses<R: AddressRecords + ?Sized>(
    conn: &mut PgConnection,
    customer_id: i64,
    list_id: i64,
    rows: &R,
    now: i64,
) -> StoreResult<u64> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS address_stage (seq BIGINT, address TEXT, address_key TEXT, \
         fullname TEXT, var1 TEXT, var2 TEXT, var3 TEXT, var4 TEXT, var5 TEXT, var6 TEXT, var7 TEXT, \
         var8 TEXT, var9 TEXT, var10 TEXT, sex TEXT, birthday TEXT, phone TEXT, area TEXT) \
         ON COMMIT DELETE ROWS",
    )
    .execute(&mut *conn)
    .await?;
    // A repeat within the batch is left out here, the first one kept: one
    // row fewer for PostgreSQL's conflict check.
    let mut seen = std::collections::HashSet::with_capacity(rows.count());
    copy_rows(conn, "COPY address_stage FROM STDIN", rows, |i, r, buf| {
        if !seen.insert(r.key.clone()) {
            return false;
        }
        buf.extend_from_slice(i.to_string().as_bytes());
        true
    })
    .await?;
    // The ORDER BY sorts the staged rows: in the default 4 MB of work_mem a
    // batch of 20,000 spills to disk.
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *conn)
        .await?;
    let added = sqlx::query(
        "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, fullname, var1, var2, \
         var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) \
         SELECT $1, $2, $3, address, address_key, fullname, var1, var2, var3, var4, var5, var6, var7, var8, \
         var9, var10, sex, birthday, phone, area FROM address_stage ORDER BY seq \
         ON CONFLICT (customer_id, list_id, address_key) DO NOTHING",
    )
    .bind(customer_id)
    .bind(list_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Emptied at commit too; now, in case the transaction stages again.
    sqlx::query("TRUNCATE address_stage").execute(&mut *conn).await?;
    Ok(added)
}

const COPY_CHUNK: usize = 1 << 20;

/// A field of COPY's text format: backslash, TAB, LF and CR escaped.
fn copy_text(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

/// After `delta` addresses came into (or left) a list: its count and the
/// customer's address version. Runs on the caller's transaction.
macro_rules! addresses_changed {
    ($tx:expr, $customer:expr, $list:expr, $delta:expr) => {{
        if $list != 0 && $delta != 0 {
            sqlx::query("UPDATE lists SET addr_count = addr_count + $1 WHERE id = $2 AND customer_id = $3")
                .bind($delta)
                .bind($list)
                .bind($customer)
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query("UPDATE customers SET address_version = address_version + 1 WHERE id = $1")
            .bind($customer)
            .execute(&mut *$tx)
            .await?;
    }};
}

impl Store {
    pub async fn lists(&self, customer: i64) -> StoreResult<Vec<ContactList>> {
        let sql = format!("{}{}", LIST_COLUMNS, " WHERE customer_id = $1 ORDER BY id");
        let rows = on_pool!(self, p => sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql))
            .bind(customer)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(ContactList::from).collect())
    }

    pub async fn list(&self, customer: i64, id: i64) -> StoreResult<Option<ContactList>> {
        let sql = format!("{}{}", LIST_COLUMNS, " WHERE customer_id = $1 AND id = $2");
        let row = on_pool!(self, p => sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql))
            .bind(customer)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(ContactList::from))
    }

    /// Whether `list_id` names one of the customer's lists; 0 (unclassified)
    /// always does.
    pub async fn list_exists(&self, customer: i64, list_id: i64) -> StoreResult<bool> {
        Ok(list_id == 0 || self.list(customer, list_id).await?.is_some())
    }

    pub async fn create_list(
        &self,
        customer: i64,
        subject: &str,
        description: &str,
        status: ListStatus,
        now: i64,
    ) -> StoreResult<i64> {
        let id = self
            .insert_id(
                "INSERT INTO lists (customer_id, subject, description, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    Arg::Int(customer),
                    Arg::Text(subject),
                    Arg::Text(description),
                    Arg::Text(status.as_str()),
                    Arg::Int(now),
                ],
            )
            .await?;
        Ok(id)
    }

    /// False when the customer has no such list.
    pub async fn update_list(&self, customer: i64, id: i64, c: &ListChange) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE lists SET subject = COALESCE($1, subject), description = COALESCE($2, description), \
                 status = COALESCE($3, status) WHERE customer_id = $4 AND id = $5",
                &[
                    Arg::OptText(c.subject.as_deref()),
                    Arg::OptText(c.description.as_deref()),
                    Arg::OptText(c.status.map(ListStatus::as_str)),
                    Arg::Int(customer),
                    Arg::Int(id),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a list with its addresses and unsubscribe log, in one
    /// transaction; false when the customer has no such list.
    pub async fn delete_list(&self, customer: i64, id: i64) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM lists WHERE customer_id = $1 AND id = $2")
                .bind(customer)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            for sql in [
                "DELETE FROM addresses WHERE customer_id = $1 AND list_id = $2",
                "DELETE FROM unsubscribes WHERE customer_id = $1 AND list_id = $2",
            ] {
                sqlx::query(sql).bind(customer).bind(id).execute(&mut *tx).await?;
            }
            addresses_changed!(tx, customer, 0i64, 0i64);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Adds addresses, skipping those already in the list; returns how many
    /// were added.
    pub async fn add_addresses(
        &self,
        customer: i64,
        list_id: i64,
        rows: &[NewAddress],
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let added = tx.insert_addresses(customer, list_id, rows, now).await?;
            addresses_changed!(tx, customer, list_id, added as i64);
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Adds one address; `Duplicate` if it is already in the list.
    pub async fn add_address(
        &self,
        customer: i64,
        list_id: i64,
        a: &NewAddress,
        now: i64,
    ) -> StoreResult<i64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, fullname, \
                 var1, var2, var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                 RETURNING id",
            )
            .bind(customer)
            .bind(list_id)
            .bind(now)
            .bind(a.email.as_str())
            .bind(a.email.key())
            .bind(&a.fullname)
            .bind(&a.vars[0])
            .bind(&a.vars[1])
            .bind(&a.vars[2])
            .bind(&a.vars[3])
            .bind(&a.vars[4])
            .bind(&a.vars[5])
            .bind(&a.vars[6])
            .bind(&a.vars[7])
            .bind(&a.vars[8])
            .bind(&a.vars[9])
            .bind(&a.extra.sex)
            .bind(&a.extra.birthday)
            .bind(&a.extra.phone)
            .bind(&a.extra.area)
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_as("address"))?;
            addresses_changed!(tx, customer, list_id, 1i64);
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn address(&self, customer: i64, id: i64) -> StoreResult<Option<Address>> {
        let sql = format!("{}{}", ADDRESS_COLUMNS, " WHERE customer_id = $1 AND id = $2");
        let row = on_pool!(self, p => sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql))
            .bind(customer)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Address::from))
    }

    /// Applies 4.10; `NotFound` or `Duplicate` (the new address is already
    /// in the same list).
    pub async fn update_address(&self, customer: i64, id: i64, c: &AddressChange) -> StoreResult<()> {
        let n = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "UPDATE addresses SET address = COALESCE($1, address), address_key = COALESCE($2, address_key), \
                 fullname = COALESCE($3, fullname), var1 = COALESCE($4, var1), var2 = COALESCE($5, var2), \
                 var3 = COALESCE($6, var3), var4 = COALESCE($7, var4), var5 = COALESCE($8, var5), \
                 var6 = COALESCE($9, var6), var7 = COALESCE($10, var7), var8 = COALESCE($11, var8), \
                 var9 = COALESCE($12, var9), var10 = COALESCE($13, var10), sex = COALESCE($14, sex), \
                 birthday = COALESCE($15, birthday), phone = COALESCE($16, phone), area = COALESCE($17, area) \
                 WHERE customer_id = $18 AND id = $19",
            )
            .bind(c.email.as_ref().map(|e| e.as_str().to_string()))
            .bind(c.email.as_ref().map(EmailAddress::key))
            .bind(c.fullname.as_deref())
            .bind(c.vars[0].as_deref())
            .bind(c.vars[1].as_deref())
            .bind(c.vars[2].as_deref())
            .bind(c.vars[3].as_deref())
            .bind(c.vars[4].as_deref())
            .bind(c.vars[5].as_deref())
            .bind(c.vars[6].as_deref())
            .bind(c.vars[7].as_deref())
            .bind(c.vars[8].as_deref())
            .bind(c.vars[9].as_deref())
            .bind(c.sex.as_deref())
            .bind(c.birthday.as_deref())
            .bind(c.phone.as_deref())
            .bind(c.area.as_deref())
            .bind(customer)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unique_as("address"))?
            .rows_affected();
            if n == 1 {
                addresses_changed!(tx, customer, 0i64, 0i64);
            }
            tx.commit().await?;
            n
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound("address"))
        }
    }

    /// Deletes one address (no unsubscribe is logged, 4.11); false if the
    /// customer has no such address.
    pub async fn delete_address(&self, customer: i64, id: i64) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let list: Option<i64> = sqlx::query_scalar(
                "DELETE FROM addresses WHERE customer_id = $1 AND id = $2 RETURNING list_id",
            )
            .bind(customer)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(list) = list else { return Ok(false) };
            addresses_changed!(tx, customer, list, -1i64);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Removes every address of a list (0: the unclassified ones); returns
    /// how many.
    pub async fn empty_list(&self, customer: i64, list_id: i64) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM addresses WHERE customer_id = $1 AND list_id = $2")
                .bind(customer)
                .bind(list_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            addresses_changed!(tx, customer, list_id, -(n as i64));
            tx.commit().await?;
            Ok(n)
        })
    }

    /// 4.13: adds the addresses not yet in the list and lifts the suppression
    /// of every address named (H-5); returns how many were added.
    pub async fn subscribe(
        &self,
        customer: i64,
        list_id: i64,
        rows: &[NewAddress],
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let added = tx.insert_addresses(customer, list_id, rows, now).await?;
            for a in rows {
                sqlx::query("DELETE FROM suppressions WHERE customer_id = $1 AND address_key = $2")
                    .bind(customer)
                    .bind(a.email.key())
                    .execute(&mut *tx)
                    .await?;
            }
            addresses_changed!(tx, customer, list_id, added as i64);
            tx.commit().await?;
            Ok(added)
        })
    }

    /// 4.14 and the unsubscribe link: removes the addresses from the list,
    /// logs each one removed, and suppresses every address named (H-5);
    /// returns how many were removed.
    pub async fn unsubscribe(
        &self,
        customer: i64,
        list_id: i64,
        emails: &[EmailAddress],
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut removed = 0u64;
            for e in emails {
                let gone: Vec<String> = sqlx::query_scalar(
                    "DELETE FROM addresses WHERE customer_id = $1 AND list_id = $2 AND address_key = $3 \
                     RETURNING address",
                )
                .bind(customer)
                .bind(list_id)
                .bind(e.key())
                .fetch_all(&mut *tx)
                .await?;
                for address in gone {
                    sqlx::query("INSERT INTO unsubscribes (customer_id, list_id, address, at) VALUES ($1, $2, $3, $4)")
                        .bind(customer)
                        .bind(list_id)
                        .bind(address)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    removed += 1;
                }
                sqlx::query(
                    "INSERT INTO suppressions (customer_id, address_key, reason, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (customer_id, address_key) DO NOTHING",
                )
                .bind(customer)
                .bind(e.key())
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            addresses_changed!(tx, customer, list_id, -(removed as i64));
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// Whether the customer's tasks must skip this address (H-5).
    pub async fn is_suppressed(&self, customer: i64, email: &EmailAddress) -> StoreResult<bool> {
        let n: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT customer_id FROM suppressions WHERE customer_id = $1 AND address_key = $2",
        )
        .bind(customer)
        .bind(email.key())
        .fetch_optional(p)
        .await)?;
        Ok(n.is_some())
    }

    /// Changes whenever the customer's addresses change.
    pub async fn address_version(&self, customer: i64) -> StoreResult<i64> {
        let v = on_pool!(self, p => sqlx::query_scalar::<_, i64>("SELECT address_version FROM customers WHERE id = $1")
            .bind(customer)
            .fetch_one(p)
            .await)?;
        Ok(v)
    }

    /// Up to `limit` matching addresses in id order, from where `start` says.
    pub async fn addresses(
        &self,
        customer: i64,
        filter: &AddressFilter,
        start: Start,
        limit: i64,
    ) -> StoreResult<Vec<Address>> {
        let (where_sql, args) = filter_sql(filter);
        let (tail, value) = match start {
            Start::AtId(id) => (" AND id >= $2 ORDER BY id LIMIT $3", id),
            Start::Skip(n) => (" ORDER BY id LIMIT $3 OFFSET $2", n),
        };
        let sql = format!("{ADDRESS_COLUMNS}{where_sql}{tail}");
        let rows = on_pool!(self, p => {
            let q = sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(customer)
                .bind(value)
                .bind(limit);
            bind_filter!(q, &args).fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(Address::from).collect())
    }

    /// The ids of up to `limit` matching addresses after `after_id`, in order.
    pub async fn address_ids_after(
        &self,
        customer: i64,
        filter: &AddressFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!("SELECT id FROM addresses{where_sql} AND id > $2 ORDER BY id LIMIT $3");
        let ids = on_pool!(self, p => {
            let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(customer)
                .bind(after_id)
                .bind(limit);
            bind_filter!(q, &args).fetch_all(p).await
        })?;
        Ok(ids)
    }

    /// Up to `limit` unsubscribes of a list after the (time, id) key, oldest first.
    pub async fn unsubscribes_after(
        &self,
        customer: i64,
        list_id: i64,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<Unsubscribe>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, Unsubscribe>(
            "SELECT id, at, address FROM unsubscribes WHERE customer_id = $1 AND list_id = $2 \
             AND (at > $3 OR (at = $3 AND id > $4)) ORDER BY at, id LIMIT $5",
        )
        .bind(customer)
        .bind(list_id)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Queues an import of a stored file.
    pub async fn create_import_job(&self, customer: i64, job: &NewImport<'_>, now: i64) -> StoreResult<i64> {
        let id = self
            .insert_id(
                "INSERT INTO import_jobs (customer_id, list_id, file_id, file_name, encoding, state, size, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) RETURNING id",
                &[
                    Arg::Int(customer),
                    Arg::Int(job.list_id),
                    Arg::Int(job.file_id),
                    Arg::Text(job.file_name),
                    Arg::Text(job.encoding.as_str()),
                    Arg::Int(job.size),
                    Arg::Int(now),
                ],
            )
            .await?;
        Ok(id)
    }

    /// Takes the oldest import job that is queued, or running under an
    /// expired lease (its worker died), and leases it until `lease_until`.
    pub async fn claim_import_job(&self, now: i64, lease_until: i64) -> StoreResult<Option<ImportJob>> {
        let pick = match self {
            Store::Sqlite(_) => {
                "SELECT id FROM import_jobs WHERE state IN ('queued', 'running') \
                 AND lease_until < $1 ORDER BY id LIMIT 1"
            }
            Store::Postgres(_) => {
                "SELECT id FROM import_jobs WHERE state IN ('queued', 'running') \
                 AND lease_until < $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
        };
        let claimed: Option<i64> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(pick).bind(now).fetch_optional(&mut *tx).await?;
            if let Some(id) = id {
                sqlx::query("UPDATE import_jobs SET state = 'running', lease_until = $1 WHERE id = $2")
                    .bind(lease_until)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        match claimed {
            Some(id) => self.import_job(id).await,
            None => Ok(None),
        }
    }

    pub async fn import_job(&self, id: i64) -> StoreResult<Option<ImportJob>> {
        let sql = format!("{}{}", IMPORT_COLUMNS, " WHERE id = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, ImportRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(ImportJob::from))
    }

    /// Import jobs, newest first; all customers' when `customer` is `None`.
    pub async fn import_jobs(&self, customer: Option<i64>) -> StoreResult<Vec<ImportJob>> {
        let rows = match customer {
            Some(c) => {
                let sql = format!("{}{}", IMPORT_COLUMNS, " WHERE customer_id = $1 ORDER BY id DESC");
                on_pool!(self, p => sqlx::query_as::<_, ImportRow>(sqlx::AssertSqlSafe(sql)).bind(c).fetch_all(p).await)?
            }
            None => {
                let sql = format!("{}{}", IMPORT_COLUMNS, " ORDER BY id DESC");
                on_pool!(self, p => sqlx::query_as::<_, ImportRow>(sqlx::AssertSqlSafe(sql)).fetch_all(p).await)?
            }
        };
        Ok(rows.into_iter().map(ImportJob::from).collect())
    }

    /// Stores one batch of an import with the job's progress, in one
    /// transaction: a batch is either wholly done or not at all. Returns how
    /// many addresses were added, or `None` when the job's list is gone (the
    /// job has then failed).
    pub async fn import_batch(
        &self,
        job: &ImportJob,
        rows: &PackedAddresses,
        progress: ImportProgress,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<u64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if matches!(self, Store::Postgres(_)) {
                // The batch's rows and the job's offset commit together, so a
                // commit lost in a server crash is only read and imported again:
                // no need to wait for its WAL flush (SQLite's synchronous=NORMAL
                // makes the same trade).
                sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
            }
            let list_ok = job.list_id == 0
                || sqlx::query_scalar::<_, i64>("SELECT id FROM lists WHERE id = $1 AND customer_id = $2")
                    .bind(job.list_id)
                    .bind(job.customer_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if !list_ok {
                sqlx::query("UPDATE import_jobs SET state = 'failed', error = 'the list was deleted', \
                     finished_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(job.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(None);
            }
            let added = tx.import_addresses(job.customer_id, job.list_id, rows, now).await?;
            addresses_changed!(tx, job.customer_id, job.list_id, added as i64);
            let duplicate = progress.duplicate + rows.count() as i64 - added as i64;
            sqlx::query(
                "UPDATE import_jobs SET offset_done = $1, lines_done = lines_done + $2, added = added + $3, \
                 invalid = invalid + $4, duplicate = duplicate + $5, lease_until = $6, \
                 state = CASE WHEN $7 THEN 'done' ELSE 'running' END, \
                 finished_at = CASE WHEN $7 THEN $8 ELSE NULL END WHERE id = $9",
            )
            .bind(progress.offset)
            .bind(progress.lines)
            .bind(added as i64)
            .bind(progress.invalid)
            .bind(duplicate)
            .bind(lease_until)
            .bind(progress.finished)
            .bind(now)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(added))
        })
    }

    /// Gives a running job back (on shutdown), so the next start resumes it
    /// at once instead of after its lease.
    pub async fn release_import(&self, job_id: i64) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET lease_until = 0 WHERE id = $1 AND state = 'running'",
            &[Arg::Int(job_id)],
        )
        .await?;
        Ok(())
    }

    /// Ends a job that cannot go on.
    pub async fn fail_import(&self, job_id: i64, error: &str, now: i64) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET state = 'failed', error = $1, finished_at = $2 WHERE id = $3",
            &[Arg::Text(error), Arg::Int(now), Arg::Int(job_id)],
        )
        .await?;
        Ok(())
    }

    /// Forgets the file of a finished job (its bytes are deleted by the caller).
    pub async fn detach_import_file(&self, job_id: i64) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET file_id = NULL WHERE id = $1",
            &[Arg::Int(job_id)],
        )
        .await?;
        Ok(())
    }
}
