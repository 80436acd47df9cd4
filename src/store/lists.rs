//! Contact lists, addresses, the unsubscribe log, suppressions and import
//! jobs. Every query names the customer; a list's `addr_count` and the
//! customer's `address_version` change in the transaction that changes its
//! addresses.

use sqlx::{FromRow, PgConnection, SqliteConnection};

use super::conn::Conn;
use super::sqlite_rows::{ReaderUse, Statement};
use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool, unique_as};
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, CustomerId, FileId, ImportId, ListId};
use crate::domain::lists::AddressState;
use crate::domain::lists::{
    Address, AddressChange, AddressFilter, AddressRecord, AddressRecords, ContactList, Extra, FileEncoding,
    ImportJob, ImportProgress, ImportState, ListChange, ListDescription, ListName, ListStatus, ListStorage,
    NewAddress, NewImport, PackedAddresses, PageRead, Start, Transfer, Transferred, Unsubscribe,
};
use crate::domain::tasks::SendStatus;

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
            id: ListId(r.id),
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
            id: AddressId(r.id),
            list_id: ListId(r.list_id),
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
            id: ImportId(r.id),
            customer_id: CustomerId(r.customer_id),
            list_id: ListId(r.list_id),
            file_id: r.file_id.map(FileId),
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

/// The WHERE clause of a filter, the customer id being `$1` and the
/// filter's values numbered from `$first`, and those values.
fn filter_sql(f: &AddressFilter, first: usize) -> (String, Vec<FilterArg>) {
    let mut sql = String::from(" WHERE customer_id = $1");
    let mut args = Vec::new();
    let mut n = first;
    if let Some(list) = f.list_id {
        sql.push_str(&format!(" AND list_id = ${n}"));
        args.push(FilterArg::Int(list.get()));
        n += 1;
    }
    if let Some(id) = f.address_id {
        sql.push_str(&format!(" AND id = ${n}"));
        args.push(FilterArg::Int(id.get()));
        n += 1;
    }
    if let Some(k) = &f.keyword {
        sql.push_str(&format!(
            " AND (lower(address) LIKE ${n} ESCAPE '\\' OR lower(fullname) LIKE ${n} ESCAPE '\\')"
        ));
        args.push(FilterArg::Text(like_pattern(k)));
    }
    if let Some(state) = f.state {
        sql.push_str(&state_sql(state));
    }
    (sql, args)
}

const VERSION_SQL: &str = "SELECT address_version FROM customers WHERE id = $1";
const LIST_OF_CUSTOMER_SQL: &str = "SELECT id FROM lists WHERE id = $1 AND customer_id = $2";

/// The query of a page of addresses and the value of its `$2` (the first id,
/// or the rows to skip); `$1` is the customer, `$3` the limit, the filter's
/// values follow ([`filter_sql`]).
fn addresses_sql(filter: &AddressFilter, start: Start) -> (String, i64) {
    let (where_sql, _) = filter_sql(filter, 4);
    let (tail, value) = match start {
        Start::AtId(id) => (" AND id >= $2 ORDER BY id LIMIT $3", id.get()),
        Start::Skip(n) => (" ORDER BY id LIMIT $3 OFFSET $2", n),
    };
    (format!("{ADDRESS_COLUMNS}{where_sql}{tail}"), value)
}

/// The addresses `sql` selects, read on the connection's own handle:
/// `leading` binds `$1` (the customer), `$2` (the start) and `$3` (the
/// limit); the filter's values follow.
fn sqlite_address_rows(
    r: &mut ReaderUse<'_>,
    sql: &str,
    leading: &[i64; 3],
    args: &[FilterArg],
) -> StoreResult<Vec<Address>> {
    let mut st = r.prepare(sql)?;
    let mut n = 0;
    for v in leading {
        n += 1;
        st.bind_int(n, *v)?;
    }
    for a in args {
        n += 1;
        match a {
            FilterArg::Int(v) => st.bind_int(n, *v)?,
            FilterArg::Text(t) => st.bind_text(n, t)?,
        }
    }
    // Room for the whole page at once: an address is half a kilobyte, and
    // growing the vector copied a page's worth again.
    let mut rows = Vec::with_capacity(usize::try_from(leading[2]).unwrap_or(0).min(1000));
    while st.next_row()? {
        let t = |c| st.text(c).to_string();
        rows.push(Address {
            id: AddressId(st.int(0)),
            list_id: ListId(st.int(1)),
            address: t(2),
            fullname: t(3),
            created_at: st.int(4),
            vars: std::array::from_fn(|i| t(5 + i as i32)),
            extra: Extra {
                sex: t(15),
                birthday: t(16),
                phone: t(17),
                area: t(18),
            },
        });
    }
    Ok(rows)
}

/// The condition of an address state: whether, and why, the address is
/// suppressed (the reasons are the domain's constants, not input).
fn state_sql(state: AddressState) -> String {
    let reasons: Vec<String> = state
        .reasons()
        .iter()
        .map(|r| format!("'{}'", r.as_str()))
        .collect();
    let suppressed = "SELECT 1 FROM suppressions s WHERE s.customer_id = addresses.customer_id \
                      AND s.address_key = addresses.address_key";
    if reasons.is_empty() {
        format!(" AND NOT EXISTS ({suppressed})")
    } else {
        format!(
            " AND EXISTS ({suppressed} AND s.reason IN ({}))",
            reasons.join(", ")
        )
    }
}

enum FilterArg {
    Int(i64),
    Text(String),
}

/// `%keyword%` with `%`, `_` and `\` taken literally (4.8).
pub(crate) fn like_pattern(keyword: &str) -> String {
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

    /// Like `insert_addresses`, reporting which rows were not added: the
    /// positions in `rows`, in order, of those whose address was in the
    /// list already or earlier in `rows`.
    fn insert_new_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<usize>>> + Send;

    /// The same for an import batch, whose reader has marked the rows that
    /// may repeat an address read before (`repeats`, their positions in
    /// order): the others are new unless the list had them before the
    /// file, and a backend may store them the fast way first.
    fn import_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        _repeats: &[usize],
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

    /// On SQLite the write transaction holds the database's write lock, so
    /// the addresses the list has before the insert are the ones it skips;
    /// only the others are inserted.
    async fn insert_new_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> StoreResult<Vec<usize>> {
        let keys: Vec<std::borrow::Cow<'_, str>> = (0..rows.count()).map(|i| rows.record(i).key).collect();
        // The batch's keys go in as one JSON array, each looked up in the
        // list's unique index (CROSS JOIN keeps the array the outer loop);
        // what comes back is their positions.
        let present: Vec<i64> = sqlx::query_scalar(
            "SELECT j.key FROM json_each($3) AS j CROSS JOIN addresses AS a \
             WHERE a.customer_id = $1 AND a.list_id = $2 AND a.address_key = j.value",
        )
        .bind(customer_id)
        .bind(list_id)
        .bind(json_array(&keys))
        .fetch_all(&mut *self)
        .await?;
        let mut skip = vec![false; keys.len()];
        for i in present {
            if let Some(s) = usize::try_from(i).ok().and_then(|i| skip.get_mut(i)) {
                *s = true;
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if !skip[i] && !seen.insert(key.as_ref()) {
                skip[i] = true;
            }
        }
        let (skipped, fresh): (Vec<usize>, Vec<usize>) = (0..keys.len()).partition(|&i| skip[i]);
        let fresh = Subset { rows, at: &fresh };
        let added = self.insert_addresses(customer_id, list_id, &fresh, now).await?;
        if added as usize != fresh.count() {
            return Err(StoreError::Failed(format!(
                "{added} of {} new addresses added",
                fresh.count()
            )));
        }
        Ok(skipped)
    }
}

/// Some of the records of `rows`, by position.
struct Subset<'r, R: ?Sized> {
    rows: &'r R,
    at: &'r [usize],
}

impl<R: AddressRecords + ?Sized> AddressRecords for Subset<'_, R> {
    fn count(&self) -> usize {
        self.at.len()
    }

    fn record(&self, i: usize) -> AddressRecord<'_> {
        self.rows.record(self.at[i])
    }
}

/// Texts as one JSON array, for SQLite's `json_each`.
fn json_array<S: AsRef<str> + serde::Serialize>(texts: &[S]) -> String {
    serde_json::to_string(texts).unwrap_or_else(|_| "[]".to_string())
}

/// From this many rows PostgreSQL gets them by COPY into a staging table;
/// fewer go in one INSERT from arrays.
const PG_COPY_FROM: usize = 1_000;

/// The INSERT of the staged rows in their order, as a literal for `concat!`.
macro_rules! pg_stage_insert {
    () => {
        "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, fullname, var1, var2, \
         var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) \
         SELECT $1, $2, $3, address, address_key, fullname, var1, var2, var3, var4, var5, var6, var7, var8, \
         var9, var10, sex, birthday, phone, area FROM address_stage ORDER BY seq \
         ON CONFLICT (customer_id, list_id, address_key) DO NOTHING"
    };
}

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
        pg_insert_arrays(self, customer_id, list_id, rows, now).await
    }

    /// The rows are staged, then inserted by one statement that also
    /// answers the positions of the staged rows whose address it did not
    /// insert (the list had it); later repeats of an address are never
    /// staged.
    async fn insert_new_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        now: i64,
    ) -> StoreResult<Vec<usize>> {
        let mut seen = std::collections::HashSet::with_capacity(rows.count());
        let mut skip: Vec<bool> = (0..rows.count())
            .map(|i| !seen.insert(rows.record(i).key))
            .collect();
        drop(seen);
        pg_stage(self, rows).await?;
        let present: Vec<i64> = sqlx::query_scalar(concat!(
            "WITH ins AS (",
            pg_stage_insert!(),
            " RETURNING address_key) SELECT s.seq FROM address_stage AS s \
             WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.address_key = s.address_key COLLATE \"C\")"
        ))
        .bind(customer_id)
        .bind(list_id)
        .bind(now)
        .fetch_all(&mut *self)
        .await?;
        pg_unstage(self).await?;
        for i in present {
            if let Some(s) = usize::try_from(i).ok().and_then(|i| skip.get_mut(i)) {
                *s = true;
            }
        }
        Ok((0..skip.len()).filter(|&i| skip[i]).collect())
    }

    /// COPY straight into `addresses` of the unmarked rows: no staging
    /// table, no sort, and one WAL record per page instead of per row. Then
    /// the marked rows' keys are probed: the list has all of them when each
    /// repeats an earlier row. An unmarked address
    /// already in the list (the file's import resumed, or the address added
    /// meanwhile) fails the COPY on the unique index, and a marked one that
    /// was new would not keep its place in the file: either way the batch
    /// goes the staging way instead, which keeps the file's order and skips
    /// what the list has. (A lookup of the marked keys first depends on the
    /// planner, whose statistics lag behind a table that an import is
    /// filling: it chose the list's index and a scan of the whole list for
    /// every key.)
    async fn import_addresses<R: AddressRecords + ?Sized>(
        &mut self,
        customer_id: i64,
        list_id: i64,
        rows: &R,
        repeats: &[usize],
        now: i64,
    ) -> StoreResult<u64> {
        if rows.count() < PG_COPY_FROM {
            return self.insert_addresses(customer_id, list_id, rows, now).await;
        }
        sqlx::query("SAVEPOINT direct_copy").execute(&mut *self).await?;
        let lead = format!("{customer_id}\t{list_id}\t{now}");
        let mut marked = repeats.iter().copied().peekable();
        let copied = copy_rows(
            self,
            "COPY addresses (customer_id, list_id, created_at, address, address_key, fullname, var1, var2, \
             var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) FROM STDIN",
            rows,
            |i, _, buf| {
                if marked.next_if_eq(&i).is_some() {
                    return false;
                }
                buf.extend_from_slice(lead.as_bytes());
                true
            },
        )
        .await;
        // The marked rows' addresses should all be in the list now; one
        // that is not was new (the filter's rare false alarm) and belongs
        // earlier in the file.
        let direct = match copied {
            Ok(added) if repeats.is_empty() => Some(added),
            Ok(added) => {
                let keys: Vec<_> = repeats.iter().map(|&i| rows.record(i).key).collect();
                let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
                let new = pg_probe_keys(self, customer_id, list_id, &keys, now).await?;
                (new == 0).then_some(added)
            }
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(added) = direct {
            sqlx::query("RELEASE SAVEPOINT direct_copy")
                .execute(&mut *self)
                .await?;
            return Ok(added);
        }
        sqlx::query("ROLLBACK TO SAVEPOINT direct_copy")
            .execute(&mut *self)
            .await?;
        pg_stage_addresses(self, customer_id, list_id, rows, now).await
    }
}

/// How many of `keys` the list does not have, by an INSERT of bare rows
/// with those keys that skips the keys the list has: the caller rolls back
/// whatever it added. Unlike a lookup, the INSERT's conflict check always
/// goes through the unique index, whatever the planner's statistics say;
/// and only the keys travel, not the rows' 17 texts.
async fn pg_probe_keys(
    conn: &mut PgConnection,
    customer_id: i64,
    list_id: i64,
    keys: &[&str],
    now: i64,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key) \
         SELECT $1, $2, $3, k, k FROM UNNEST($4::text[]) AS k \
         ON CONFLICT (customer_id, list_id, address_key) DO NOTHING",
    )
    .bind(customer_id)
    .bind(list_id)
    .bind(now)
    .bind(keys)
    .execute(conn)
    .await?
    .rows_affected())
}

/// One INSERT of `rows` from arrays, in their order, that skips the keys
/// the list has; answers how many it added.
async fn pg_insert_arrays<R: AddressRecords + ?Sized>(
    conn: &mut PgConnection,
    customer_id: i64,
    list_id: i64,
    rows: &R,
    now: i64,
) -> StoreResult<u64> {
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
    Ok(q.execute(conn).await?.rows_affected())
}

/// Sends `rows` to `copy` (a COPY … FROM STDIN, text format) 128 KiB at a
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

/// COPY into a staging table (text format, sent 128 KiB at a time), then one
/// INSERT … SELECT in the rows' order that skips the keys already there.
async fn pg_stage_addresses<R: AddressRecords + ?Sized>(
    conn: &mut PgConnection,
    customer_id: i64,
    list_id: i64,
    rows: &R,
    now: i64,
) -> StoreResult<u64> {
    pg_stage(conn, rows).await?;
    let added = sqlx::query(pg_stage_insert!())
        .bind(customer_id)
        .bind(list_id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    pg_unstage(conn).await?;
    Ok(added)
}

/// Puts `rows` into the transaction's staging table, in order, for
/// [`pg_stage_insert!`].
async fn pg_stage<R: AddressRecords + ?Sized>(conn: &mut PgConnection, rows: &R) -> StoreResult<()> {
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
    Ok(())
}

/// Empties the staging table: it is emptied at commit too, but the
/// transaction may stage again.
async fn pg_unstage(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("TRUNCATE address_stage").execute(&mut *conn).await?;
    Ok(())
}

/// What COPY is sent in: small enough that PostgreSQL starts on a batch
/// while the rest of it is written (a little faster than 1 MiB, measured).
const COPY_CHUNK: usize = 1 << 17;

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

/// After `delta` addresses came into (or left) a list (0: none): its
/// count and the customer's address version. On the caller's transaction.
async fn addresses_changed(
    c: &mut impl Conn,
    customer: i64,
    list: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    if list != 0 && delta != 0 {
        c.execute(
            "UPDATE lists SET addr_count = addr_count + $1 WHERE id = $2 AND customer_id = $3",
            &[Arg::Int(delta), Arg::Int(list), Arg::Int(customer)],
        )
        .await?;
    }
    c.execute(
        "UPDATE customers SET address_version = address_version + 1 WHERE id = $1",
        &[Arg::Int(customer)],
    )
    .await?;
    Ok(())
}

impl Store {
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
            Some(id) => self.import_job(None, ImportId(id)).await,
            None => Ok(None),
        }
    }

    /// Whether `import_batch` makes use of the rows marked as possible
    /// repeats: PostgreSQL copies the others the fast way; SQLite checks
    /// every row the same way, so a reader need not mark them.
    pub fn uses_import_repeats(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Stores one batch of an import (its rows, and the positions of those
    /// that may repeat an address read before) with the job's progress, in one
    /// transaction: a batch is either wholly done or not at all. Returns how
    /// many addresses were added, or `None` when the job's list is gone (the
    /// job has then failed).
    pub async fn import_batch(
        &self,
        job: &ImportJob,
        rows: &PackedAddresses,
        repeats: &[usize],
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
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            let list_ok = job.list_id == ListId(0)
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
            let (customer, list) = (job.customer_id.get(), job.list_id.get());
            let added = tx.import_addresses(customer, list, rows, repeats, now).await?;
            addresses_changed(&mut *tx, customer, list, added as i64).await?;
            let duplicate = rows.count() as i64 - added as i64;
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
    pub async fn release_import(&self, job_id: ImportId) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET lease_until = 0 WHERE id = $1 AND state = 'running'",
            &[Arg::Int(job_id.get())],
        )
        .await?;
        Ok(())
    }

    /// Ends a job that cannot go on.
    pub async fn fail_import(&self, job_id: ImportId, error: &str, now: i64) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET state = 'failed', error = $1, finished_at = $2 WHERE id = $3",
            &[Arg::Text(error), Arg::Int(now), Arg::Int(job_id.get())],
        )
        .await?;
        Ok(())
    }

    /// Forgets the file of a finished job (its bytes are deleted by the caller).
    pub async fn detach_import_file(&self, job_id: ImportId) -> StoreResult<()> {
        self.write(
            "UPDATE import_jobs SET file_id = NULL WHERE id = $1",
            &[Arg::Int(job_id.get())],
        )
        .await?;
        Ok(())
    }
}

impl ListStorage for Store {
    async fn lists(&self, customer: CustomerId) -> StoreResult<Vec<ContactList>> {
        let customer = customer.get();
        let sql = format!("{}{}", LIST_COLUMNS, " WHERE customer_id = $1 ORDER BY id");
        let rows = on_pool!(self, p => sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql))
            .bind(customer)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(ContactList::from).collect())
    }

    async fn list(&self, customer: CustomerId, id: ListId) -> StoreResult<Option<ContactList>> {
        let id = id.get();
        let customer = customer.get();
        let sql = format!("{}{}", LIST_COLUMNS, " WHERE customer_id = $1 AND id = $2");
        let row = on_pool!(self, p => sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql))
            .bind(customer)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(ContactList::from))
    }

    async fn create_list(
        &self,
        customer: CustomerId,
        subject: &str,
        description: &str,
        status: ListStatus,
        now: i64,
    ) -> StoreResult<ListId> {
        let customer = customer.get();
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
        Ok(ListId(id))
    }

    /// False when the customer has no such list.
    async fn update_list(&self, customer: CustomerId, id: ListId, c: &ListChange) -> StoreResult<bool> {
        let id = id.get();
        let customer = customer.get();
        let n = self
            .write(
                "UPDATE lists SET subject = COALESCE($1, subject), description = COALESCE($2, description), \
                 status = COALESCE($3, status) WHERE customer_id = $4 AND id = $5",
                &[
                    Arg::OptText(c.name.as_ref().map(ListName::as_str)),
                    Arg::OptText(c.description.as_ref().map(ListDescription::as_str)),
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
    async fn delete_list(&self, customer: CustomerId, id: ListId) -> StoreResult<bool> {
        let id = id.get();
        let customer = customer.get();
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
            addresses_changed(&mut *tx, customer, 0i64, 0i64).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Whether a task (not deleted) in one of `statuses` sends to the list.
    async fn list_used_by(
        &self,
        customer: CustomerId,
        list_id: ListId,
        statuses: &[SendStatus],
    ) -> StoreResult<bool> {
        self.task_in("list_id = $2", customer.get(), &Arg::Int(list_id.get()), statuses)
            .await
    }

    /// Adds addresses, skipping those already in the list (and repeats);
    /// returns the positions of the rows skipped.
    async fn add_addresses(
        &self,
        customer: CustomerId,
        list_id: ListId,
        rows: &[NewAddress],
        now: i64,
    ) -> StoreResult<Vec<usize>> {
        let list_id = list_id.get();
        let customer = customer.get();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let skipped = tx.insert_new_addresses(customer, list_id, rows, now).await?;
            let added = (rows.len() - skipped.len()) as i64;
            addresses_changed(&mut *tx, customer, list_id, added).await?;
            tx.commit().await?;
            Ok(skipped)
        })
    }

    /// Adds one address; `Duplicate` if it is already in the list.
    async fn add_address(
        &self,
        customer: CustomerId,
        list_id: ListId,
        a: &NewAddress,
        now: i64,
    ) -> StoreResult<AddressId> {
        let list_id = list_id.get();
        let customer = customer.get();
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
            addresses_changed(&mut *tx, customer, list_id, 1i64).await?;
            tx.commit().await?;
            Ok(AddressId(id))
        })
    }

    async fn address(&self, customer: CustomerId, id: AddressId) -> StoreResult<Option<Address>> {
        let id = id.get();
        let customer = customer.get();
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
    async fn update_address(
        &self,
        customer: CustomerId,
        id: AddressId,
        c: &AddressChange,
    ) -> StoreResult<()> {
        let id = id.get();
        let customer = customer.get();
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
                addresses_changed(&mut *tx, customer, 0i64, 0i64).await?;
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
    async fn delete_address(&self, customer: CustomerId, id: AddressId) -> StoreResult<bool> {
        let id = id.get();
        let customer = customer.get();
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
            addresses_changed(&mut *tx, customer, list, -1i64).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Removes every address of a list (0: the unclassified ones); returns
    /// how many.
    async fn empty_list(&self, customer: CustomerId, list_id: ListId) -> StoreResult<u64> {
        let list_id = list_id.get();
        let customer = customer.get();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM addresses WHERE customer_id = $1 AND list_id = $2")
                .bind(customer)
                .bind(list_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            addresses_changed(&mut *tx, customer, list_id, -(n as i64)).await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// 4.13: adds the addresses not yet in the list and lifts the suppression
    /// of every address named (H-5); returns how many were added.
    async fn subscribe(
        &self,
        customer: CustomerId,
        list_id: ListId,
        rows: &[NewAddress],
        now: i64,
    ) -> StoreResult<u64> {
        let list_id = list_id.get();
        let customer = customer.get();
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
            addresses_changed(&mut *tx, customer, list_id, added as i64).await?;
            tx.commit().await?;
            Ok(added)
        })
    }

    /// 4.14 and the unsubscribe link: removes the addresses from the list,
    /// logs each one removed, and suppresses every address named (H-5);
    /// returns how many were removed.
    async fn unsubscribe(
        &self,
        customer: CustomerId,
        list_id: ListId,
        emails: &[EmailAddress],
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let list_id = list_id.get();
        let customer = customer.get();
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
            addresses_changed(&mut *tx, customer, list_id, -(removed as i64)).await?;
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// Whether the customer's tasks must skip this address (H-5).
    async fn is_suppressed(&self, customer: CustomerId, email: &EmailAddress) -> StoreResult<bool> {
        let customer = customer.get();
        let n: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT customer_id FROM suppressions WHERE customer_id = $1 AND address_key = $2",
        )
        .bind(customer)
        .bind(email.key())
        .fetch_optional(p)
        .await)?;
        Ok(n.is_some())
    }

    /// Which of `keys` the customer has suppressed.
    async fn suppressed_keys(&self, customer: CustomerId, keys: &[String]) -> StoreResult<Vec<String>> {
        let customer = customer.get();
        match self {
            Store::Postgres(p) => Ok(sqlx::query_scalar::<_, String>(
                "SELECT address_key FROM suppressions WHERE customer_id = $1 AND address_key = ANY($2)",
            )
            .bind(customer)
            .bind(keys)
            .fetch_all(p)
            .await?),
            Store::Sqlite(p) => Ok(sqlx::query_scalar::<_, String>(
                "SELECT s.address_key FROM json_each($2) AS j CROSS JOIN suppressions AS s \
                 WHERE s.customer_id = $1 AND s.address_key = j.value",
            )
            .bind(customer)
            .bind(json_array(keys))
            .fetch_all(p)
            .await?),
        }
    }

    /// Changes whenever the customer's addresses change.
    async fn address_version(&self, customer: CustomerId) -> StoreResult<i64> {
        let customer = customer.get();
        let v = on_pool!(self, p => sqlx::query_scalar::<_, i64>("SELECT address_version FROM customers WHERE id = $1")
            .bind(customer)
            .fetch_one(p)
            .await)?;
        Ok(v)
    }

    async fn address_page(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        start: Start,
        limit: i64,
    ) -> StoreResult<PageRead> {
        let (sql, value) = addresses_sql(filter, start);
        let (_, args) = filter_sql(filter, 4);
        let leading = [customer.get(), value, limit];
        let list = filter.list_id.filter(|l| *l != ListId(0));
        match self {
            // One read transaction, so the three agree.
            Store::Sqlite(pool) => super::sqlite_readers(pool)?.with(|r| {
                r.prepare("BEGIN")?.next_row()?;
                let version = {
                    let mut st = r.prepare(VERSION_SQL)?;
                    st.bind_int(1, customer.get())?;
                    if st.next_row()? { st.int(0) } else { 0 }
                };
                let list_found = match list {
                    None => true,
                    Some(l) => {
                        let mut st = r.prepare(LIST_OF_CUSTOMER_SQL)?;
                        st.bind_int(1, l.get())?;
                        st.bind_int(2, customer.get())?;
                        st.next_row()?
                    }
                };
                let rows = if list_found {
                    sqlite_address_rows(r, &sql, &leading, &args)?
                } else {
                    Vec::new()
                };
                r.prepare("COMMIT")?.next_row()?;
                Ok(PageRead {
                    list_found,
                    version,
                    rows,
                })
            }),
            Store::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let version: i64 = sqlx::query_scalar(VERSION_SQL)
                    .bind(customer)
                    .fetch_optional(&mut *conn)
                    .await?
                    .unwrap_or(0);
                let list_found = match list {
                    None => true,
                    Some(l) => sqlx::query_scalar::<_, i64>(LIST_OF_CUSTOMER_SQL)
                        .bind(l)
                        .bind(customer)
                        .fetch_optional(&mut *conn)
                        .await?
                        .is_some(),
                };
                let mut rows = Vec::new();
                if list_found {
                    let q = sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(leading[0])
                        .bind(leading[1])
                        .bind(leading[2]);
                    rows = bind_filter!(q, &args)
                        .fetch_all(&mut *conn)
                        .await?
                        .into_iter()
                        .map(Address::from)
                        .collect();
                }
                Ok(PageRead {
                    list_found,
                    version,
                    rows,
                })
            }
        }
    }

    /// Up to `limit` matching addresses in id order, from where `start` says.
    async fn addresses(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        start: Start,
        limit: i64,
    ) -> StoreResult<Vec<Address>> {
        let (sql, value) = addresses_sql(filter, start);
        let (_, args) = filter_sql(filter, 4);
        let leading = [customer.get(), value, limit];
        if let Store::Sqlite(pool) = self {
            return super::sqlite_readers(pool)?.with(|r| sqlite_address_rows(r, &sql, &leading, &args));
        }
        let rows = on_pool!(self, p => {
            let q = sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(leading[0])
                .bind(leading[1])
                .bind(leading[2]);
            bind_filter!(q, &args).fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(Address::from).collect())
    }

    /// The ids of up to `limit` matching addresses after `after_id`, in order.
    async fn address_ids_after(
        &self,
        customer: CustomerId,
        filter: &AddressFilter,
        after_id: AddressId,
        limit: i64,
    ) -> StoreResult<Vec<AddressId>> {
        let after_id = after_id.get();
        let customer = customer.get();
        let (where_sql, args) = filter_sql(filter, 4);
        let sql = format!("SELECT id FROM addresses{where_sql} AND id > $2 ORDER BY id LIMIT $3");
        let ids = on_pool!(self, p => {
            let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(customer)
                .bind(after_id)
                .bind(limit);
            bind_filter!(q, &args).fetch_all(p).await
        })?;
        Ok(ids.into_iter().map(AddressId).collect())
    }

    /// How many addresses match.
    async fn address_count(&self, customer: CustomerId, filter: &AddressFilter) -> StoreResult<i64> {
        let customer = customer.get();
        let (where_sql, args) = filter_sql(filter, 2);
        let sql = format!("SELECT count(*) FROM addresses{where_sql}");
        let n = on_pool!(self, p => {
            let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone())).bind(customer);
            bind_filter!(q, &args).fetch_one(p).await
        })?;
        Ok(n)
    }

    async fn transfer_addresses(
        &self,
        customer: CustomerId,
        ids: &[AddressId],
        to: ListId,
        how: Transfer,
        now: i64,
    ) -> StoreResult<Transferred> {
        let (customer, to) = (customer.get(), to.get());
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut done = Transferred::default();
            // Addresses that came into or left each list.
            let mut deltas: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
            for id in ids {
                let from: Option<i64> =
                    sqlx::query_scalar("SELECT list_id FROM addresses WHERE customer_id = $1 AND id = $2")
                        .bind(customer)
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(from) = from else { continue };
                if from == to {
                    done.already += 1;
                    continue;
                }
                let added = sqlx::query(
                    "INSERT INTO addresses (customer_id, list_id, created_at, address, address_key, fullname, \
                     var1, var2, var3, var4, var5, var6, var7, var8, var9, var10, sex, birthday, phone, area) \
                     SELECT customer_id, $3, $4, address, address_key, fullname, var1, var2, var3, var4, var5, \
                     var6, var7, var8, var9, var10, sex, birthday, phone, area FROM addresses \
                     WHERE customer_id = $1 AND id = $2 \
                     ON CONFLICT (customer_id, list_id, address_key) DO NOTHING",
                )
                .bind(customer)
                .bind(id.get())
                .bind(to)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added > 0 {
                    done.added += 1;
                    *deltas.entry(to).or_default() += 1;
                } else {
                    done.already += 1;
                }
                if how == Transfer::Move {
                    sqlx::query("DELETE FROM addresses WHERE customer_id = $1 AND id = $2")
                        .bind(customer)
                        .bind(id.get())
                        .execute(&mut *tx)
                        .await?;
                    *deltas.entry(from).or_default() -= 1;
                }
            }
            for (list, delta) in deltas {
                addresses_changed(&mut *tx, customer, list, delta).await?;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Up to `limit` unsubscribes of a list after the (time, id) key, oldest first.
    async fn unsubscribes_after(
        &self,
        customer: CustomerId,
        list_id: ListId,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<Unsubscribe>> {
        let list_id = list_id.get();
        let customer = customer.get();
        let rows = on_pool!(self, p => sqlx::query_as::<_, (i64, i64, String)>(
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
        Ok(rows
            .into_iter()
            .map(|(id, at, address)| Unsubscribe { id, at, address })
            .collect())
    }

    /// Queues an import of a stored file.
    async fn create_import_job(
        &self,
        customer: CustomerId,
        job: &NewImport<'_>,
        now: i64,
    ) -> StoreResult<ImportId> {
        let customer = customer.get();
        let id = self
            .insert_id(
                "INSERT INTO import_jobs (customer_id, list_id, file_id, file_name, encoding, state, size, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) RETURNING id",
                &[
                    Arg::Int(customer),
                    Arg::Int(job.list_id.get()),
                    Arg::Int(job.file_id.get()),
                    Arg::Text(job.file_name),
                    Arg::Text(job.encoding.as_str()),
                    Arg::Int(job.size),
                    Arg::Int(now),
                ],
            )
            .await?;
        Ok(ImportId(id))
    }

    async fn import_job(&self, customer: Option<CustomerId>, id: ImportId) -> StoreResult<Option<ImportJob>> {
        let sql = format!(
            "{}{}",
            IMPORT_COLUMNS, " WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)"
        );
        let row = on_pool!(self, p => sqlx::query_as::<_, ImportRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(customer)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(ImportJob::from))
    }

    /// Import jobs, newest first; all customers' when `customer` is `None`.
    async fn import_jobs(&self, customer: Option<CustomerId>) -> StoreResult<Vec<ImportJob>> {
        let customer = customer.map(CustomerId::get);
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
}
