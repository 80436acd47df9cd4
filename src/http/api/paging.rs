//! Cursor paging of every listing: `?limit=` (1–1000, 100 unless given)
//! and `?cursor=` in, `{"items": [...], "next_cursor": "..." | null}` out.
//! A cursor is opaque to clients; here it is the id of the last item given.

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::http::lang::Lang;

pub(crate) const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A page of a listing.
#[derive(Serialize)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Where a page starts and how long it is, checked.
pub(crate) struct PageRequest {
    pub limit: usize,
    /// Items with ids above this one.
    pub after: Option<i64>,
}

impl PageQuery {
    pub fn checked(&self, lang: Lang) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(lang, "limit", "limit 须为 1 到 1000", "limit must be 1 to 1000.")
                })?,
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<i64>().map_err(|_| {
                ApiError::invalid(lang, "cursor", "cursor 无效", "cursor is not one this API gave.")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

impl PageRequest {
    /// One page of items in id order, from all of them.
    pub fn of<T>(&self, items: impl IntoIterator<Item = T>, id: impl Fn(&T) -> i64) -> Page<T> {
        let mut page: Vec<T> = items
            .into_iter()
            .filter(|t| self.after.is_none_or(|a| id(t) > a))
            .take(self.limit + 1)
            .collect();
        let next_cursor = if page.len() > self.limit {
            page.truncate(self.limit);
            page.last().map(|t| id(t).to_string())
        } else {
            None
        };
        Page {
            items: page,
            next_cursor,
        }
    }
}
