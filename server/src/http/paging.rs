//! Keyset paging: `maxPageSize` and an opaque `skipToken` (the last key of the previous
//! page), answered with `{"value": [...], "nextLink": "..."}` as in the ACS APIs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::ApiError;

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub max_page_size: Option<usize>,
    /// From the previous page's `nextLink`.
    pub skip_token: Option<String>,
}

impl PageQuery {
    pub fn size(&self) -> Result<usize, ApiError> {
        match self.max_page_size {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid(
                "maxPageSize",
                format!("maxPageSize must be between 1 and {MAX_PAGE_SIZE}"),
            )),
        }
    }

    /// The key to continue after, decoded from `skipToken`.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        let Some(t) = &self.skip_token else {
            return Ok(None);
        };
        B64.decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid("skipToken", "skipToken is not valid"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub value: Vec<T>,
    /// Relative URL of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

impl<T> Page<T> {
    /// `items` was fetched with one extra element to tell whether another page exists.
    pub fn build(mut items: Vec<T>, size: usize, path: &str, key: impl Fn(&T) -> String) -> Self {
        let next_link = if items.len() > size {
            items.truncate(size);
            items.last().map(|last| {
                format!(
                    "{path}?maxPageSize={size}&skipToken={}",
                    B64.encode(key(last))
                )
            })
        } else {
            None
        };
        Page {
            value: items,
            next_link,
        }
    }
}
