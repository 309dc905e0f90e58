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

    /// The key to continue after, decoded from `skipToken`. Any base64url text is a
    /// position (after whatever key it decodes to), so only text that is not base64url
    /// at all is refused.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        let Some(t) = &self.skip_token else {
            return Ok(None);
        };
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        // A length of 4n+1 is never base64: drop the stray character.
        let t = if t.len() % 4 == 1 {
            &t[..t.len() - 1]
        } else {
            t
        };
        lenient
            .decode(t)
            .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
            .map_err(|_| ApiError::invalid("skipToken", "skipToken is not valid"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn after(t: &str) -> Result<Option<String>, ApiError> {
        PageQuery {
            max_page_size: None,
            skip_token: Some(t.to_string()),
        }
        .after()
    }

    #[test]
    fn any_base64url_text_is_a_position() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for len in 0..40 {
            for start in 0..alphabet.len() {
                let t: String = alphabet.chars().cycle().skip(start).take(len).collect();
                assert!(after(&t).is_ok(), "{t:?}");
            }
        }
        assert_eq!(
            after(&B64.encode("room-7")).unwrap().as_deref(),
            Some("room-7")
        );
        assert!(after("%%%").is_err());
        assert!(after("a b").is_err());
    }
}
