//! How every backend writes values to columns: times as Unix milliseconds (exact, and
//! ordered as numbers), and a backend's own errors as text.

use chrono::{DateTime, TimeZone, Utc};

use super::StoreError;

pub fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}
