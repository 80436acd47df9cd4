//! The console's two languages: Chinese and English, chosen by the
//! `lang` switch (kept in a cookie), else the browser's Accept-Language.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an Accept-Language header we speak; Chinese
    /// when it names none.
    pub fn from_accept(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Zh
    }

    /// Every string of the console in this language, by key.
    pub fn strings(self) -> BTreeMap<&'static str, &'static str> {
        STRINGS
            .iter()
            .map(|(k, zh, en)| (*k, if self == Lang::Zh { *zh } else { *en }))
            .collect()
    }
}

const STRINGS: &[(&str, &str, &str)] = &[
    ("title", "群发控制台", "qunfa console"),
    ("login", "登录", "Log in"),
    ("logout", "退出", "Log out"),
    ("username", "用户名", "User name"),
    ("password", "密码", "Password"),
    ("user_type", "用户类型", "Account type"),
    ("customer", "普通用户", "Customer"),
    ("agent", "代理商", "Agent"),
    ("manager", "管理员", "Manager"),
    ("login_failed", "用户名或密码错误", "Wrong user name or password"),
    ("dashboard", "概览", "Dashboard"),
    ("tasks", "群发任务", "Tasks"),
    ("lists", "联系人", "Contact lists"),
    ("templates", "邮件模板", "Templates"),
    ("domains", "域名与邮箱", "Domains and mailboxes"),
    ("customers", "客户", "Customers"),
    ("credits", "剩余群发量", "Credits left"),
    ("credits_total", "购买总量", "Credits bought"),
    ("last_30_days", "最近30天", "Last 30 days"),
    ("sent", "发送成功", "Delivered"),
    ("failed", "发送失败", "Failed"),
    ("opens", "打开", "Opens"),
    ("opens_human", "打开（真人）", "Opens (people)"),
    ("opens_machine", "打开（机器）", "Opens (machines)"),
    ("clicks", "点击", "Clicks"),
    ("failures_by_class", "失败原因", "Failures by class"),
    ("not_exist", "邮箱不存在", "Mailbox does not exist"),
    ("over_quota", "空间不足", "Mailbox full"),
    ("user_reject", "用户拒收", "Rejected"),
    ("invalid_addr", "无效地址", "Invalid address"),
    ("format_error", "格式错误", "Malformed address"),
    ("running_tasks", "正在发送的任务", "Tasks sending now"),
    ("none", "无", "None"),
    ("progress", "进度", "Progress"),
    ("id", "ID", "ID"),
    ("ident", "批次号", "Batch"),
    ("status", "状态", "State"),
    ("template", "模板", "Template"),
    ("list", "联系人分类", "List"),
    ("sender", "发件人", "Sender"),
    ("sender_name", "发件人名称", "Sender name"),
    ("send_time", "发送时间", "Send time"),
    ("recipients", "收件人", "Recipients"),
    ("new_task", "新建群发任务", "New task"),
    ("send_now", "立即发送", "Send now"),
    ("schedule", "定时发送", "Send at the time"),
    ("hold", "暂不发送", "Hold"),
    ("tracking", "跟踪", "Tracking"),
    ("track_none", "不跟踪", "None"),
    ("track_opens", "跟踪打开", "Opens"),
    ("track_all", "跟踪打开和点击", "Opens and clicks"),
    ("subs_link", "退订链接", "Unsubscribe link"),
    ("create", "创建", "Create"),
    ("report", "报告", "Report"),
    ("links", "链接点击", "Clicks per link"),
    ("link", "链接", "Link"),
    ("unique", "唯一", "Unique"),
    ("total", "总数", "Total"),
    ("export", "导出", "Export"),
    ("providers", "按邮箱服务商", "By provider"),
    ("provider", "服务商", "Provider"),
    ("opens_over_time", "每日打开与点击", "Opens and clicks per day"),
    ("open_rate", "打开率", "Open rate"),
    ("click_rate", "点击率", "Click rate"),
    ("addresses", "地址", "Addresses"),
    ("name", "名称", "Name"),
    ("description", "描述", "Description"),
    ("count", "地址数", "Addresses"),
    ("search", "搜索", "Search"),
    ("import", "导入文件", "Import a file"),
    ("imports", "导入", "Imports"),
    ("added", "新增", "Added"),
    ("invalid", "无效", "Invalid"),
    ("duplicate", "重复", "Duplicates"),
    ("new_list", "新建联系人分类", "New list"),
    ("prev", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("subject", "主题", "Subject"),
    ("preview", "预览", "Preview"),
    ("sample", "示例收件人", "Sample recipient"),
    ("domain", "域名", "Domain"),
    ("mailboxes", "邮箱", "Mailboxes"),
    ("dkim_record", "需发布的DKIM记录", "DKIM record to publish"),
    ("system", "系统", "System"),
    ("service", "服务", "Service"),
    ("type", "类型", "Type"),
    ("dates", "有效期", "Valid"),
    ("enabled", "启用", "Enabled"),
    ("disabled", "停用", "Disabled"),
    ("error", "错误", "Error"),
    ("created", "已创建", "Created"),
    ("st_-3", "取消发送", "Cancelled"),
    ("st_-2", "暂停发送", "Paused"),
    ("st_-1", "暂不发送", "On hold"),
    ("st_1", "等待发送", "Waiting"),
    ("st_2", "正在发送", "Sending"),
    ("st_3", "发送完成", "Completed"),
    ("act_pause", "暂停发送", "Pause"),
    ("act_resume", "继续发送", "Resume"),
    ("act_cancel", "取消发送", "Cancel"),
    ("done", "已完成", "Done"),
    ("import_queued", "排队中", "queued"),
    ("import_running", "导入中", "running"),
    ("import_done", "已完成", "done"),
    ("import_failed", "失败", "failed"),
    ("language", "English", "中文"),
];
