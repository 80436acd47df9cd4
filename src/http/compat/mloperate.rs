//! `mloperate.php`: contact lists and their addresses (chapter 4 of the
//! vendor API). Each operation reads its parameters, calls the list
//! use-case and words its refusal as the vendor does.

use super::Call;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::app::App;
use crate::clock::LastTime;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{AddressId, ListId};
use crate::domain::lists::{
    self, Address, AddressChange, AddressFilter, AddressWalk, BatchRow, ContactList, Extra, ImportUpload,
    ListChange, ListDescription, ListError, ListName, ListStatus, NewAddress, NewList, UnsubscribeWalk,
    VAR_NAMES,
};
use crate::domain::storage::StoreError;
use crate::http::params::Params;
use crate::http::stream::{Batch, STREAM_BATCH, streamed, text_export};

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

/// A list use-case's refusal as the vendor's code; `records` names the
/// parameter that carried a batch.
fn list_error(e: ListError, records: &str) -> ApiError {
    match e {
        ListError::NotFound | ListError::AddressNotFound => ApiError::new(Code::NotFound),
        ListError::NameRequired => ApiError::missing("subject"),
        ListError::NameTooLong { .. } => ApiError::invalid("subject"),
        ListError::DescriptionTooLong { .. } => ApiError::invalid("description"),
        ListError::InUse => ApiError::new(Code::InUse),
        ListError::InvalidAddress => ApiError::new(Code::FormatError),
        ListError::Duplicate => ApiError::new(Code::AlreadyExists),
        ListError::NoRecords => ApiError::missing(records),
        ListError::TooManyRecords { max } => {
            ApiError::with(Code::InvalidParam, format!("{records}: more than {max} records"))
        }
        ListError::EmptyFile => ApiError::with(Code::FileError, "the file is empty"),
        ListError::NotText => {
            ApiError::with(Code::FileError, "the file is neither UTF-8 nor GBK/GB18030 text")
        }
        ListError::Store(e) => e.into(),
    }
}

/// [`list_error`] for the operations that carry no batch.
fn refused(e: ListError) -> ApiError {
    list_error(e, "address")
}

/// A failed write of 4.3–4.5 as the original's own codes; storage that is
/// away for now is said so, as everywhere.
fn write_failure(code: Code) -> impl Fn(ListError) -> ApiError {
    move |e| match e {
        ListError::Store(e) if !e.is_transient() => {
            tracing::error!(error = %e, "contact list write failed");
            ApiError::new(code)
        }
        e => refused(e),
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
    let lists = lists::lists(&c.app.store, c.customer()).await.map_err(refused)?;
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

/// The list id parameter `name` (required).
fn list_id(p: &Params, name: &str) -> Result<ListId, ApiError> {
    Ok(ListId(p.require_id(name)?))
}

async fn maillist_detail(c: Call<'_>) -> ApiResult {
    let id = list_id(c.params, "id")?;
    let l = lists::list(&c.app.store, c.customer(), id)
        .await
        .map_err(refused)?;
    let mut x = Xml::new();
    x.open("maillist");
    list_xml(&mut x, &l);
    x.close("maillist");
    Ok(xml_response(x.finish()))
}

/// `subject`; blank is absent.
fn name_param(p: &Params) -> Result<Option<ListName>, ApiError> {
    p.get("subject")?
        .map(|s| ListName::parse(s).map_err(refused))
        .transpose()
}

fn status_param(p: &Params) -> Result<Option<ListStatus>, ApiError> {
    p.get("status")?
        .map(|s| ListStatus::parse(s).ok_or_else(|| ApiError::invalid("status")))
        .transpose()
}

/// Both spellings of `description` (F.4); `Some` empty when sent empty (it
/// clears in 4.4). A refusal names the spelling that was sent.
fn description_param(p: &Params) -> Result<Option<ListDescription>, ApiError> {
    for name in ["description", "descrīption"] {
        if let Some(v) = p.raw(name)? {
            let v = ListDescription::parse(v).map_err(|_| ApiError::invalid(name))?;
            if !v.as_str().is_empty() || name == "description" || p.raw("description")?.is_none() {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

async fn maillist_add(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("subject")?;
    p.require("status")?;
    let name = name_param(p)?.ok_or_else(|| ApiError::missing("subject"))?;
    let status = status_param(p)?.ok_or_else(|| ApiError::missing("status"))?;
    let description = description_param(p)?.unwrap_or_default();
    let list = NewList {
        name,
        description,
        status,
    };
    let id = lists::create_list(&c.app.store, c.customer(), &list, c.app.clock.now())
        .await
        .map_err(write_failure(Code::AddMaillistError))?;
    Ok(Success::created(id.get()).into_response())
}

async fn maillist_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = list_id(p, "id")?;
    if !["subject", "status", "description", "descrīption"]
        .iter()
        .any(|n| p.is_present(n))
    {
        return Err(ApiError::missing("subject"));
    }
    let change = ListChange {
        name: name_param(p)?,
        description: description_param(p)?,
        status: status_param(p)?,
    };
    lists::edit_list(&c.app.store, c.customer(), id, &change)
        .await
        .map_err(write_failure(Code::UpdateMaillistError))?;
    Ok(Success::message("修改联系人分类成功").into_response())
}

async fn maillist_del(c: Call<'_>) -> ApiResult {
    let id = list_id(c.params, "id")?;
    lists::delete_list(&c.app.store, c.customer(), id)
        .await
        .map_err(write_failure(Code::DeleteMaillistError))?;
    Ok(Success::message("删除联系人分类成功").into_response())
}

/// A walk over addresses, with what the streamed answer needs.
struct Walk {
    app: App,
    walk: AddressWalk,
}

impl Walk {
    async fn next_rows(&mut self) -> Result<Vec<Address>, StoreError> {
        self.walk.next_batch(&self.app.store, STREAM_BATCH).await
    }
}

fn export_lines(mut w: Walk) -> Batch<Walk> {
    Box::pin(async move {
        let rows = w.next_rows().await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() * 48);
        for a in &rows {
            lists::export_line(&mut out, a);
        }
        Ok(Some((out, w)))
    })
}

async fn subscription_export(c: Call<'_>) -> ApiResult {
    let id = list_id(c.params, "id")?;
    let filter = AddressFilter {
        list_id: Some(id),
        ..Default::default()
    };
    let walk = lists::walk_addresses(&c.app.store, c.customer(), filter)
        .await
        .map_err(refused)?;
    let walk = Walk {
        app: c.app.clone(),
        walk,
    };
    Ok(text_export(
        format!("subscription-export-{id}.txt"),
        walk,
        export_lines,
    ))
}

struct UnsubscribeLog {
    app: App,
    walk: UnsubscribeWalk,
}

fn unsubscribe_lines(mut w: UnsubscribeLog) -> Batch<UnsubscribeLog> {
    Box::pin(async move {
        let rows = w.walk.next_batch(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
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
    let id = list_id(c.params, "id")?;
    let walk = lists::unsubscribe_log(&c.app.store, c.customer(), id)
        .await
        .map_err(refused)?;
    let log = UnsubscribeLog {
        app: c.app.clone(),
        walk,
    };
    Ok(text_export(
        format!("unsubscribe-export-{id}.txt"),
        log,
        unsubscribe_lines,
    ))
}

/// The `<addr>` elements of `rows` (4.8), one level deep, after `before`.
fn addr_fragment(app: &App, before: Vec<u8>, rows: &[Address]) -> Vec<u8> {
    let mut x = Xml::fragment_after(before, 1, rows.len() * 640);
    let mut time = LastTime::default();
    for a in rows {
        addr_element(
            &mut x,
            a,
            time.text(a.created_at, |t| app.clock.format_datetime(t)),
        );
    }
    x.finish_fragment()
}

fn addr_element(x: &mut Xml, a: &Address, time: &str) {
    x.open("addr")
        .num("id", a.id)
        .num("list_id", a.list_id)
        .text("address", &a.address)
        .text("fullname", &a.fullname)
        .text("time", time);
    for (name, v) in VAR_NAMES.iter().zip(&a.vars) {
        x.text(name, v);
    }
    x.text("sex", &a.extra.sex)
        .text("birthday", &a.extra.birthday)
        .text("phone", &a.extra.phone)
        .text("area", &a.extra.area)
        .close("addr");
}

fn addr_fragments(mut w: Walk) -> Batch<Walk> {
    Box::pin(async move {
        let rows = w.next_rows().await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let out = addr_fragment(&w.app, Vec::new(), &rows);
        Ok(Some((out, w)))
    })
}

async fn addr_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let list_id = p.id("list_id")?.map(ListId);
    let address_id = p.id("address_id")?.map(AddressId);
    let keyword = p.get("keyword")?.map(str::to_string);
    let (page, limit) = p.paging(50)?;
    let filter = AddressFilter {
        list_id,
        keyword,
        address_id,
        state: None,
    };
    let head = Xml::head("data");
    let Some(page) = page else {
        // Every address: streamed, never held whole (H-9).
        let walk = lists::walk_addresses(&c.app.store, c.customer(), filter)
            .await
            .map_err(refused)?;
        let walk = Walk {
            app: c.app.clone(),
            walk,
        };
        let body = streamed(head, walk, addr_fragments, b"</data>\n");
        return Ok(xml_response(body));
    };
    let rows = lists::address_page(&c.app.store, &c.app.pages, c.customer(), &filter, page, limit)
        .await
        .map_err(refused)?;
    let mut body = addr_fragment(c.app, head, &rows);
    body.extend_from_slice(b"</data>\n");
    Ok(xml_response(body))
}

/// `var1`…`var10`, or `Var1`…`Var10` (F.4; the lower case wins).
fn var_param(p: &Params, i: usize) -> Result<Option<&str>, ApiError> {
    let lower = format!("var{i}");
    match p.raw(&lower)? {
        Some(v) => Ok(Some(v)),
        None => Ok(p.raw(&format!("Var{i}"))?),
    }
}

/// `sex`, `birthday`, `phone`, `area` (Part G), as the domain keeps them;
/// `invalid_param` for a value it refuses.
fn extra_param(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = p.raw(name)? else { return Ok(None) };
    let value = match name {
        "sex" => Extra::parse_sex(v),
        "birthday" => Extra::parse_birthday(v),
        _ => Some(v.trim().to_string()),
    };
    value.map(Some).ok_or_else(|| ApiError::invalid(name))
}

/// An address parameter: `format_error` when it is none.
fn email(v: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(v).ok_or_else(|| refused(ListError::InvalidAddress))
}

async fn addr_add_one(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    p.require("address")?;
    let list_id = list_id(p, "list_id")?;
    let email = email(p.require("address")?)?;
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
    let added = lists::add_address(&c.app.store, c.customer(), list_id, &a, c.app.clock.now())
        .await
        .map_err(refused)?;
    if return_id {
        Ok(Success::created(added.id.get()).into_response())
    } else {
        Ok(Success::message("添加地址成功").into_response())
    }
}

async fn addr_add_batch(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = list_id(p, "list_id")?;
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
    let rows = lists::parse_records(records);
    let outcome = lists::add_addresses(&c.app.store, c.customer(), list_id, rows, c.app.clock.now())
        .await
        .map_err(|e| list_error(e, "ml_addr"))?;
    let summary = format!(
        "added {}, invalid {}, duplicate {}",
        outcome.added,
        outcome.invalid(),
        outcome.duplicates()
    );
    Ok(Success::counted(outcome.added, summary).into_response())
}

async fn addr_add_file(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = list_id(p, "list_id")?;
    let upload = p
        .uploads
        .iter()
        .find(|u| u.field == "file")
        .ok_or_else(|| ApiError::missing("file"))?;
    let file = ImportUpload {
        path: &upload.path,
        file_name: &upload.file_name,
        size: upload.size,
    };
    let id = lists::queue_import(
        &c.app.store,
        &c.app.files,
        c.customer(),
        list_id,
        file,
        c.app.clock.now(),
    )
    .await
    .map_err(refused)?;
    c.app.import_wakeup.notify_one();
    Ok(Success::message(format!("文件已接收，导入任务 {id} 已排队")).into_response())
}

async fn addr_edit(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = AddressId(p.require_id("id")?);
    let mut change = AddressChange::default();
    if p.is_present("address") {
        change.email = Some(email(p.raw("address")?.unwrap_or(""))?);
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
    lists::edit_address(&c.app.store, c.customer(), id, &change)
        .await
        .map_err(refused)?;
    Ok(Success::message("修改地址成功").into_response())
}

async fn addr_del(c: Call<'_>) -> ApiResult {
    let id = AddressId(c.params.require_id("id")?);
    lists::delete_address(&c.app.store, c.customer(), id)
        .await
        .map_err(refused)?;
    Ok(Success::message("删除地址成功").into_response())
}

async fn addr_empty(c: Call<'_>) -> ApiResult {
    let list_id = list_id(c.params, "list_id")?;
    let n = lists::empty_list(&c.app.store, c.customer(), list_id)
        .await
        .map_err(refused)?;
    Ok(Success::counted(n, "清空联系人分类成功").into_response())
}

async fn subscribe(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let list_id = list_id(p, "list_id")?;
    let (rows, records) = match p.untrimmed("maillist")? {
        Some(text) => (lists::parse_maillist(text), "maillist"),
        None => {
            let email = email(p.require("address")?)?;
            let name = p.get_any(&["name", "fullname"])?.unwrap_or("");
            (vec![BatchRow::Address(NewAddress::new(email, name))], "address")
        }
    };
    let added = lists::subscribe(&c.app.store, c.customer(), list_id, rows, c.app.clock.now())
        .await
        .map_err(|e| list_error(e, records))?;
    Ok(Success::counted(added, "订阅成功").into_response())
}

async fn unsubscribe(c: Call<'_>) -> ApiResult {
    let p = c.params;
    p.require("list_id")?;
    let text = p
        .untrimmed("address")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::missing("address"))?;
    let list_id = list_id(p, "list_id")?;
    let emails = lists::parse_address_list(text);
    let n = lists::unsubscribe_addresses(&c.app.store, c.customer(), list_id, &emails, c.app.clock.now())
        .await
        .map_err(|e| list_error(e, "address"))?;
    Ok(Success::counted(n, "退订成功").into_response())
}
