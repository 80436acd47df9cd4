//! `account.php`: 1.1 `customer-info` and 1.2 `service-info`.

use super::Call;
use super::reply::{ApiError, ApiResult, Code, xml_response};
use super::xml::Xml;
use crate::domain::accounts;

pub const OPERATIONS: &[&str] = &["customer-info", "service-info"];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "customer-info" => customer_info(c).await,
        "service-info" => service_info(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

async fn customer_info(c: Call<'_>) -> ApiResult {
    let customer = accounts::customer_by_id(&c.app.store, c.customer())
        .await?
        .ok_or_else(|| ApiError::internal("authenticated customer vanished"))?;
    let p = &customer.profile;
    let mut x = Xml::new();
    x.open("customer")
        .num("id", customer.id)
        .text("username", &customer.username)
        .text("company", &p.company)
        .text("contact", &p.contact)
        .text("phone", &p.phone)
        .text("mobile", &p.mobile)
        .text("email", &p.email)
        .text("im", &p.im)
        .text("address", &p.address)
        .close("customer");
    Ok(xml_response(x.finish()))
}

async fn service_info(c: Call<'_>) -> ApiResult {
    let s = accounts::service(&c.app.store, c.customer()).await?;
    let today = c.app.clock.today();
    let mut x = Xml::new();
    x.open("service")
        .num("id", s.customer_id)
        .text("service_status", s.status.as_str())
        .text("service_type", s.service_type.as_str())
        .text("send_type", s.send_type.as_str())
        .text("beginning_date", &s.begin_text())
        .text("expiration_date", &s.end_text())
        .num("qty_available", s.available(today))
        .num("qty_buytotal", s.qty_buytotal)
        .close("service");
    Ok(xml_response(x.finish()))
}
