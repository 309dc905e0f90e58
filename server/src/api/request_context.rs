//! Gives every request an id (kept from `x-request-id` when the caller sent a sane one)
//! and turns any error response that is not already an envelope (axum's own 404/405,
//! a body-limit 413) into one, so clients parse a single error shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use convene_protocol::ErrorCode;

use super::error::{ApiError, REQUEST_ID};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn incoming_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    sane.then(|| v.to_owned())
}

pub async fn request_context(req: Request, next: Next) -> Response {
    let id = incoming_id(&req).unwrap_or_else(|| format!("req_{}", crate::ids::random_token(16)));
    // The path only: the query can hold a join token, which is never logged.
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let resp =
        tracing::Instrument::instrument(REQUEST_ID.scope(id.clone(), next.run(req)), span).await;
    let mut resp = REQUEST_ID
        .scope(id.clone(), async { normalize(resp) })
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn normalize(resp: Response<Body>) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this method is not allowed here",
        ),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took too long; send the body promptly and retry",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        s if s.is_server_error() => ApiError::internal(format!("unhandled {s}")),
        s => ApiError::new(
            ErrorCode::InvalidParameter,
            format!(
                "the request was not understood ({})",
                s.canonical_reason().unwrap_or("bad request")
            ),
        ),
    };
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = err.into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}
