//! Extractors that refuse bad input with the error envelope (axum's own answer with
//! plain text) and name the offending field where serde can tell it.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use convene_protocol::ErrorCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::ids::{RoomId, UserId};
use crate::state::AppState;

/// Proof that the caller sent the admin key as `Authorization: Bearer <key>`. Wrong keys
/// are limited per source address (`state::admin_failures`): past the limit, every
/// request from that address is refused with 429 and `Retry-After` until it refills,
/// right or wrong, so guessing costs time. Each wrong key is logged.
pub struct Admin;

/// The address a request came from (unknown in tests that call the router directly).
pub fn source_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

fn too_many(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many wrong admin keys from this address; retry in {secs} s"),
    )
    .with_retry_after(secs)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            state.metrics.admin_refusals.inc();
            tracing::info!(target: "convene::audit", route = %parts.uri.path(), "refused a request without an admin key");
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "send the admin key as 'Authorization: Bearer <key>'",
            ));
        };
        let ip = source_ip(parts);
        let now = std::time::Instant::now();
        state.admin_failures.check(&ip, now).map_err(too_many)?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or("");
        if !state.admin_key.matches(key.trim()) {
            let blocked = state.admin_failures.charge(&ip, now).is_err()
                || state.admin_failures.check(&ip, now).is_err();
            state.metrics.admin_refusals.inc();
            tracing::warn!(target: "convene::audit", %ip, route = %parts.uri.path(), blocked, "refused a wrong admin key");
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "the admin key is not valid",
            ));
        }
        Ok(Admin)
    }
}

/// A JSON body. Any content type is read as JSON (so `curl -d` works); an empty body
/// counts as `{}` where `T` allows it.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!(
                            "the request body is larger than {} bytes",
                            crate::api::MAX_BODY_BYTES
                        ),
                    )
                } else {
                    ApiError::invalid("body", "the request body could not be read")
                }
            })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes).map(JsonBody)
    }
}

/// JSON has one number type: `1403.0` is the integer 1403 (JSON Schema agrees), but
/// serde refuses it for an integer field. Integral numbers written with a fraction or an
/// exponent become integers before the typed parse.
fn integral_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *v = Value::from(f as i64);
            } else if f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 {
                *v = Value::from(f as u64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(o) => o.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Parses JSON and turns serde's error into an `InvalidParameter` whose target is the
/// path of the bad field (`participants.alice.role`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        ApiError::invalid("body", format!("the body is not valid JSON: {msg}"))
    })?;
    integral_numbers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde's text ends with " at line 1 column 17"; the target says where instead.
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        // For an unknown field the path already ends with its name; a missing one is
        // only named in the message.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| msg.strip_prefix(p))
            .and_then(|r| r.split('`').next());
        let target = match (path.as_str(), named) {
            (".", Some(field)) => field.to_string(),
            (".", None) => "body".to_string(),
            (p, Some(field)) if msg.starts_with("missing") => format!("{p}.{field}"),
            _ => path,
        };
        let msg = if msg.contains("input contains invalid characters")
            || msg.contains("premature end of input")
            || msg.contains("input is out of range")
            || msg.contains("input is not enough for unique date")
        {
            format!("{msg}: expected an RFC 3339 time such as 2026-12-01T09:00:00Z")
        } else {
            msg
        };
        ApiError::invalid(target, msg)
    })
}

/// Query parameters, refused with the envelope when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::invalid("query", e.body_text()))
    }
}

pub fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw).map_err(|e| ApiError::invalid("roomId", e.0))
}

pub fn user_id(raw: &str, target: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|e| ApiError::invalid(target, e.0))
}
