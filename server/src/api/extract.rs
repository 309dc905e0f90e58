//! Extractors that refuse bad input with the error envelope (axum's own answer with
//! plain text) and name the offending field where serde can tell it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use convene_protocol::ErrorCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::ids::{RoomId, UserId};
use crate::state::AppState;

/// Proof that the caller sent the admin key as `Authorization: Bearer <key>`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "send the admin key as 'Authorization: Bearer <key>'",
            ));
        };
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or("");
        if !state.admin_key.matches(key.trim()) {
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
                            super::MAX_BODY_BYTES
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

/// Parses JSON and turns serde's error into an `InvalidParameter` whose target is the
/// path of the bad field (`participants.alice.role`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde's text ends with " at line 1 column 17"; the target says where instead.
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid("body", format!("the body is not valid JSON: {msg}"));
        }
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
