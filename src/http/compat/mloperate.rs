//! `mloperate.php`: contact lists and their addresses (API.md chapter 4).

use super::Call;
use super::params::Params;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::stream::{Batch, STREAM_BATCH, streamed, text_export};
use super::xml::Xml;
use crate::app::App;
use crate::clock::parse_date;
use crate::domain::email::EmailAddress;
use crate::domain::lists::{
    self, Address, ContactList, FileEncoding, ListStatus, MAX_BATCH, MAX_DESCRIPTION, MAX_SUBJECT, NewAddress,
};
use crate::store::{AddressChange, AddressFilter, ListChange, NewImport, Start, StoreError};

pub const OPERATIONS: &[&str] = &[
    "maillist-list",
    "maillist-detail",
    "maillist-add",
    "maillist-edit",
    "maillist-del",
    "subscription-export",
    "unsubscribe-export",
    "ml-addr-list",
    "ml-addr-add",
    "ml-addr-add-file",
    "ml-addr-edit",
    "ml-addr-del",
    "ml-addr-empty",
    "ml-sub",
    "ml-unsub",
];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "maillist-list" => maillist_list(c).await,
        "maillist-detail" => maillist_detail(c).await,
        "maillist-add" => maillist_add(c).await,
        "maillist-edit" => maillist_edit(c).await,
        "maillist-del" => maillist_del(c).await,
        "subscription-export" => subscription_export(c).await,
        "unsubscribe-export" => unsubscribe_export(c).await,
        "ml-addr-list" => addr_list(c).await,
        "ml-addr-add" if c.params.is_present("ml_addr") || !c.params.array("ml_addr")?.is_empty() => {
            addr_add_batch(c).await
        }
        "ml-addr-add" => addr_add_one(c).await,
        "ml-addr-add-file" => addr_add_file(c).await,
        "ml-addr-edit" => addr_edit(c).await,
        "ml-addr-del" => addr_del(c).await,
        "ml-addr-empty" => addr_empty(c).await,
        "ml-sub" => subscribe(c).await,
        "ml-unsub" => unsubscribe(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

fn list_xml(x: &mut Xml, l: &ContactList) {
    x.num("id", l.id)
        .text("subject", &l.subject)
        .text("description", &l.description)
        .num("count", l.count)
        .text("status", l.status.as_str());
}

async fn maillist_list(c: Call<'_>) -> ApiResult {
    let lists = c.app.store.lists(c.account_id).await?;
    let mut x = Xml::new();
    x.open("maillist");
    for l in &lists {
        x.open("item");
        list_xml(&mut x, l);
        x.close("item");
    }
    x.close("maillist");
    Ok(xml_response(x.finish()))
}

/// One of the customer's lists by the id parameter `name`; `not_found` for
/// another customer's list as for a missing one (D-5).
async fn own_list(c: &Call<'_>, name: &str) -> Result<ContactList, ApiError> {
    let id = c.params.require_id(name)?;
    c.app
        .store
        .list(c.account_id, id)
        .await?
        .ok_or(ApiError::new(Code::NotFound))
}

/// A list id where 0 (the unclassified addresses) is allowed.
async fn list_or_unclassified(c: &Call<'_>, name: &str) -> Result<i64, ApiError> {
    let id = c.params.require_id(name)?;
    if c.app.store.list_exists(c.account_id, id).await? {
        Ok(id)
    } else {
        Err(ApiError::new(Code::NotFound))
    }
}

async fn maillist_detail(c: Call<'_>) -> ApiResult {
    let l = own_list(&c, "id").await?;
    let mut x = Xml::new();
    x.open("maillist");
    list_xml(&mut x, &l);
    x.close("maillist");
    Ok(xml_response(x.finish()))
}

fn subject_param(p: &Params) -> Result<Option<String>, ApiError> {
    match p.get("subject")? {
        Some(s) if s.chars().count() > MAX_SUBJECT => Err(ApiError::invalid("subject")),
        s => Ok(s.map(str::to_string)),
    }
}

fn status_param(p: &Params) -> Result<Option<ListStatus>, ApiError> {
    p.get("status")?
        .map(|s| ListStatus::parse(s).ok_or_else(|| ApiError::invalid("status")))
        .transpose()
}

/// Both spellings of `description` (F.4); `Some("")` when sent empty (it
/// clears in 4.4).
fn description_param(p: &Params) -> Result<Option<String>, ApiError> {
    for name in ["description", "descrīption"] {
        if let Some(v) = p.raw(name)? {
            let v = v.trim();
            if v.chars().count() > MAX_DESCRIPTION {
                return Err(ApiError::invalid(name));
            }
            if !v.is_empty() || name == "description" || p.raw("description")?.is_none() {
                return Ok(Some(v.to_string()));
            }
        }
    }
    Ok(None)
}

async fn maillist_add(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("subject")?;
    p.require("status")?;
    let subject = subject_param(p)?.unwrap_or_default();
    let status = status_param(p)?.ok_or_else(|| ApiError::missing("status"))?;
    let description = description_param(p)?.unwrap_or_default();
    let id = c
        .app
        .store
        .create_list(c.account_id, &subject, &description, status, c.app.clock.now())
        .await
        .map_err(|e| store_failure(e, Code::AddMaillistError))?;
    Ok(Success::created(id).into_response())
}

fn store_failure(e: StoreError, code: Code) -> ApiError {
    if e.is_transient() {
        return e.into();
    }
    tracing::error!(error = %e, "contact list write failed");
    ApiError::new(code)
}

async fn maillist_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("id")?;
    if !["subject", "status", "description", "descrīption"]
        .iter()
        .any(|n| p.is_present(n))
    {
        return Err(ApiError::missing("subject"));
    }
    let change = ListChange {
        subject: subject_param(p)?,
        description: description_param(p)?,
        status: status_param(p)?,
    };
    let found = c
        .app
        .store
        .update_list(c.account_id, id, &change)
        .await
        .map_err(|e| store_failure(e, Code::UpdateMaillistError))?;
    if !found {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("修改联系人分类成功").into_response())
}

/// Whether a task on hold, waiting, running or paused uses the list (4.5,
/// 4.12, H-10).
async fn list_in_use(c: &Call<'_>, list_id: i64) -> Result<bool, ApiError> {
    Ok(c.app
        .store
        .held_by_task("list_id = $2", c.account_id, &crate::store::Arg::Int(list_id))
        .await?)
}

async fn maillist_del(c: Call<'_>) -> ApiResult {
    let l = own_list(&c, "id").await?;
    if list_in_use(&c, l.id).await? {
        return Err(ApiError::new(Code::InUse));
    }
    let deleted = c
        .app
        .store
        .delete_list(c.account_id, l.id)
        .await
        .map_err(|e| store_failure(e, Code::DeleteMaillistError))?;
    if !deleted {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Success::message("删除联系人分类成功").into_response())
}

/// Walks a customer's matching addresses in id order, a batch at a time.
struct AddressWalk {
    app: App,
    customer: i64,
    filter: AddressFilter,
    after: i64,
}

impl AddressWalk {
    async fn next_rows(&mut self) -> Result<Vec<Address>, StoreError> {
        let start = Start::AtId(self.after + 1);
        let rows = self
            .app
            .store
            .addresses(self.customer, &self.filter, start, STREAM_BATCH)
            .await?;
        self.after = rows.last().map_or(self.after, |a| a.id);
        Ok(rows)
    }
}

fn export_lines(mut w: AddressWalk) -> Batch<AddressWalk> {
    Box::pin(async move {
        let rows = w.next_rows().await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() * 48);
        for a in &rows {
            out.extend_from_slice(lists::export_field(&a.address).as_bytes());
            out.push(b'\t');
            out.extend_from_slice(lists::export_field(&a.fullname).as_bytes());
            out.push(b'\n');
        }
        Ok(Some((out, w)))
    })
}

async fn subscription_export(c: Call<'_>) -> ApiResult {
    let id = list_or_unclassified(&c, "id").await?;
    let walk = AddressWalk {
        app: c.app.clone(),
        customer: c.account_id,
        filter: AddressFilter {
            list_id: Some(id),
            ..Default::default()
        },
        after: 0,
    };
    Ok(text_export(
        format!("subscription-export-{id}.txt"),
        walk,
        export_lines,
    ))
}

struct UnsubscribeWalk {
    app: App,
    customer: i64,
    list_id: i64,
    after: (i64, i64),
}

fn unsubscribe_lines(mut w: UnsubscribeWalk) -> Batch<UnsubscribeWalk> {
    Box::pin(async move {
        let rows = w
            .app
            .store
            .unsubscribes_after(w.customer, w.list_id, w.after, STREAM_BATCH)
            .await?;
        let Some(last) = rows.last() else { return Ok(None) };
        w.after = (last.at, last.id);
        let mut out = Vec::with_capacity(rows.len() * 48);
        for u in &rows {
            out.extend_from_slice(w.app.clock.format_datetime(u.at).as_bytes());
            out.push(b'\t');
            out.extend_from_slice(lists::export_field(&u.address).as_bytes());
            out.push(b'\n');
        }
        Ok(Some((out, w)))
    })
}

async fn unsubscribe_export(c: Call<'_>) -> ApiResult {
    let id = list_or_unclassified(&c, "id").await?;
    let walk = UnsubscribeWalk {
        app: c.app.clone(),
        customer: c.account_id,
        list_id: id,
        after: (i64::MIN, 0),
    };
    Ok(text_export(
        format!("unsubscribe-export-{id}.txt"),
        walk,
        unsubscribe_lines,
    ))
}

/// One `<addr>` of 4.8, indented to sit inside `<data>`.
fn addr_fragment(app: &App, a: &Address) -> Vec<u8> {
    let mut x = Xml::fragment();
    x.open("addr")
        .num("id", a.id)
        .num("list_id", a.list_id)
        .text("address", &a.address)
        .text("fullname", &a.fullname)
        .text("time", &app.clock.format_datetime(a.created_at));
    for (i, v) in a.vars.iter().enumerate() {
        x.text(&format!("var{}", i + 1), v);
    }
    x.text("sex", &a.extra.sex)
        .text("birthday", &a.extra.birthday)
        .text("phone", &a.extra.phone)
        .text("area", &a.extra.area)
        .close("addr");
    x.finish_fragment(1)
}

fn addr_fragments(mut w: AddressWalk) -> Batch<AddressWalk> {
    Box::pin(async move {
        let rows = w.next_rows().await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let out = rows.iter().flat_map(|a| addr_fragment(&w.app, a)).collect();
        Ok(Some((out, w)))
    })
}

async fn addr_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let list_id = p.id("list_id")?;
    let address_id = p.id("address_id")?;
    let keyword = p.get("keyword")?.map(str::to_string);
    let (page, limit) = p.paging(50)?;
    if let Some(l) = list_id
        && !c.app.store.list_exists(c.account_id, l).await?
    {
        return Err(ApiError::new(Code::NotFound));
    }
    let filter = AddressFilter {
        list_id,
        keyword,
        address_id,
    };
    let head = Xml::head("data");
    let Some(page) = page else {
        // Every address: streamed, never held whole (H-9).
        let walk = AddressWalk {
            app: c.app.clone(),
            customer: c.account_id,
            filter,
            after: 0,
        };
        let body = streamed(head, walk, addr_fragments, b"</data>\n");
        return Ok(xml_response(body));
    };
    let rows = c
        .app
        .pages
        .addresses(&c.app.store, c.account_id, &filter, page, limit)
        .await?;
    let mut body = head;
    for a in &rows {
        body.extend(addr_fragment(c.app, a));
    }
    body.extend_from_slice(b"</data>\n");
    Ok(xml_response(body))
}

/// `var1`…`var10`, or `Var1`…`Var10` (F.4; the lower case wins).
fn var_param(p: &Params, i: usize) -> Result<Option<&str>, ApiError> {
    let lower = format!("var{i}");
    match p.raw(&lower)? {
        Some(v) => Ok(Some(v)),
        None => p.raw(&format!("Var{i}")),
    }
}

/// `sex`, `birthday`, `phone`, `area` (Part G): `sex` is F or M, a birthday
/// a date; an empty value is kept empty.
fn extra_param(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = p.raw(name)? else { return Ok(None) };
    let v = v.trim();
    let value = match name {
        "sex" if !v.is_empty() => match v.to_ascii_uppercase().as_str() {
            s @ ("F" | "M") => s.to_string(),
            _ => return Err(ApiError::invalid(name)),
        },
        "birthday" if !v.is_empty() => {
            crate::clock::format_date(parse_date(v).map_err(|_| ApiError::invalid(name))?)
        }
        _ => v.to_string(),
    };
    Ok(Some(value))
}

async fn addr_add_one(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    p.require("address")?;
    let list_id = p.require_id("list_id")?;
    let email = EmailAddress::parse(p.require("address")?).ok_or(ApiError::new(Code::FormatError))?;
    let mut a = NewAddress::new(email, p.get("fullname")?.unwrap_or(""));
    for i in 0..10 {
        a.vars[i] = var_param(p, i + 1)?
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
    }
    a.extra.sex = extra_param(p, "sex")?.unwrap_or_default();
    a.extra.birthday = extra_param(p, "birthday")?.unwrap_or_default();
    a.extra.phone = extra_param(p, "phone")?.unwrap_or_default();
    a.extra.area = extra_param(p, "area")?.unwrap_or_default();
    let return_id = p.get("return_id")? == Some("1");
    if !c.app.store.list_exists(c.account_id, list_id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    match c
        .app
        .store
        .add_address(c.account_id, list_id, &a, c.app.clock.now())
        .await
    {
        Ok(id) if return_id => Ok(Success::created(id).into_response()),
        Ok(_) => Ok(Success::message("添加地址成功").into_response()),
        Err(StoreError::Duplicate(_)) => Err(ApiError::new(Code::AlreadyExists)),
        Err(e) => Err(e.into()),
    }
}

fn batch_summary(added: u64, invalid: usize, duplicate: usize) -> String {
    format!("added {added}, invalid {invalid}, duplicate {duplicate}")
}

async fn addr_add_batch(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = p.require_id("list_id")?;
    let array = p.array("ml_addr")?;
    let records: Vec<&str> = match p.get("addr_type")? {
        Some("array") => array,
        None | Some("string") => match p.untrimmed("ml_addr")? {
            Some(text) => lists::split_records(text, p.raw("separate")?),
            None if !array.is_empty() => array,
            None => return Err(ApiError::missing("ml_addr")),
        },
        Some(_) => return Err(ApiError::invalid("addr_type")),
    };
    if lists::count_records(records.iter().copied()) == 0 {
        return Err(ApiError::missing("ml_addr"));
    }
    if lists::count_records(records.iter().copied()) > MAX_BATCH {
        return Err(ApiError::with(
            Code::InvalidParam,
            format!("ml_addr: more than {MAX_BATCH} records"),
        ));
    }
    if !c.app.store.list_exists(c.account_id, list_id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    let parsed = lists::parse_records(records);
    let added = c
        .app
        .store
        .add_addresses(c.account_id, list_id, &parsed.entries, c.app.clock.now())
        .await?;
    let duplicate = parsed.entries.len() - added as usize;
    Ok(Success::counted(added, batch_summary(added, parsed.invalid, duplicate)).into_response())
}

async fn addr_add_file(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = p.require_id("list_id")?;
    let upload = p
        .uploads
        .iter()
        .find(|u| u.field == "file")
        .ok_or_else(|| ApiError::missing("file"))?;
    if upload.size == 0 {
        return Err(ApiError::with(Code::FileError, "the file is empty"));
    }
    let encoding = detect_file_encoding(&upload.path).await?;
    if !c.app.store.list_exists(c.account_id, list_id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    let now = c.app.clock.now();
    let file_id = c.app.files.save(c.account_id, &upload.path, now).await?;
    let import = NewImport {
        list_id,
        file_id,
        file_name: &upload.file_name,
        encoding,
        size: upload.size as i64,
    };
    let job = c.app.store.create_import_job(c.account_id, &import, now).await;
    match job {
        Ok(id) => {
            c.app.import_wakeup.notify_one();
            Ok(Success::message(format!("文件已接收，导入任务 {id} 已排队")).into_response())
        }
        Err(e) => {
            let _ = c.app.files.delete(c.account_id, &[file_id]).await;
            Err(e.into())
        }
    }
}

/// UTF-8 (BOM allowed) or GB18030, judged on the first 64 KiB (H-7).
async fn detect_file_encoding(path: &std::path::Path) -> Result<FileEncoding, ApiError> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await.map_err(ApiError::internal)?;
    let mut prefix = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = f.read(&mut prefix[filled..]).await.map_err(ApiError::internal)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    prefix.truncate(filled);
    FileEncoding::detect(&prefix)
        .ok_or_else(|| ApiError::with(Code::FileError, "the file is neither UTF-8 nor GBK/GB18030 text"))
}

async fn addr_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("id")?;
    let mut change = AddressChange::default();
    if p.is_present("address") {
        let raw = p.raw("address")?.unwrap_or("");
        change.email = Some(EmailAddress::parse(raw).ok_or(ApiError::new(Code::FormatError))?);
    }
    change.fullname = p.raw("fullname")?.map(|v| v.trim().to_string());
    for i in 0..10 {
        change.vars[i] = var_param(p, i + 1)?.map(|v| v.trim().to_string());
    }
    change.sex = extra_param(p, "sex")?;
    change.birthday = extra_param(p, "birthday")?;
    change.phone = extra_param(p, "phone")?;
    change.area = extra_param(p, "area")?;
    if change.is_empty() {
        return Err(ApiError::missing("address"));
    }
    match c.app.store.update_address(c.account_id, id, &change).await {
        Ok(()) => Ok(Success::message("修改地址成功").into_response()),
        Err(StoreError::NotFound(_)) => Err(ApiError::new(Code::NotFound)),
        Err(StoreError::Duplicate(_)) => Err(ApiError::new(Code::AlreadyExists)),
        Err(e) => Err(e.into()),
    }
}

async fn addr_del(c: Call<'_>) -> ApiResult {
    let id = c.params.require_id("id")?;
    if c.app.store.delete_address(c.account_id, id).await? {
        Ok(Success::message("删除地址成功").into_response())
    } else {
        Err(ApiError::new(Code::NotFound))
    }
}

async fn addr_empty(c: Call<'_>) -> ApiResult {
    let list_id = list_or_unclassified(&c, "list_id").await?;
    if list_in_use(&c, list_id).await? {
        return Err(ApiError::new(Code::InUse));
    }
    let n = c.app.store.empty_list(c.account_id, list_id).await?;
    Ok(Success::counted(n, "清空联系人分类成功").into_response())
}

async fn subscribe(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = p.require_id("list_id")?;
    let entries = match p.untrimmed("maillist")? {
        Some(text) => {
            let parsed = lists::parse_maillist(text);
            if parsed.entries.len() + parsed.invalid > MAX_BATCH {
                return Err(ApiError::with(
                    Code::InvalidParam,
                    format!("maillist: more than {MAX_BATCH} records"),
                ));
            }
            parsed.entries
        }
        None => {
            let address = p.require("address")?;
            let email = EmailAddress::parse(address).ok_or(ApiError::new(Code::FormatError))?;
            vec![NewAddress::new(
                email,
                p.get_any(&["name", "fullname"])?.unwrap_or(""),
            )]
        }
    };
    if !c.app.store.list_exists(c.account_id, list_id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    let added = c
        .app
        .store
        .subscribe(c.account_id, list_id, &entries, c.app.clock.now())
        .await?;
    Ok(Success::counted(added, "订阅成功").into_response())
}

async fn unsubscribe(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let text = p
        .untrimmed("address")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::missing("address"))?;
    let list_id = p.require_id("list_id")?;
    let emails = lists::parse_address_list(text);
    if emails.len() > MAX_BATCH {
        return Err(ApiError::with(
            Code::InvalidParam,
            format!("address: more than {MAX_BATCH} records"),
        ));
    }
    if !c.app.store.list_exists(c.account_id, list_id).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    let n = c
        .app
        .store
        .unsubscribe(c.account_id, list_id, &emails, "unsubscribe", c.app.clock.now())
        .await?;
    Ok(Success::counted(n, "退订成功").into_response())
}
