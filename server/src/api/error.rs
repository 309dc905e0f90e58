//! The API error type and its mapping to the JSON envelope. Internal causes are logged
//! with the request id and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use convene_protocol::{ErrorBody, ErrorCode, ErrorEnvelope};

use crate::model::RuleError;
use crate::store::StoreError;

tokio::task_local! {
    /// The id of the request being served, set by the request-context middleware so any
    /// error built deeper down can carry it without threading it through every call.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub target: Option<String>,
    pub at: Option<String>,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            target: None,
            at: None,
            retry_after: None,
        }
    }

    pub fn invalid(target: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..Self::new(ErrorCode::InvalidParameter, message)
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.at = Some(at.to_rfc3339());
        self
    }

    pub fn room_not_found(id: &str) -> Self {
        Self::new(
            ErrorCode::RoomNotFound,
            format!("room '{id}' does not exist"),
        )
        .with_target("roomId")
    }

    /// Logs `cause` and answers with a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = ?current_request_id(), "internal error: {cause}");
        Self::new(
            ErrorCode::Internal,
            "the server failed to handle this request; please retry",
        )
    }

    pub fn body(&self) -> ErrorEnvelope {
        let mut body = ErrorBody::new(self.code, self.message.clone());
        body.target = self.target.clone();
        body.at = self.at.clone();
        body.request_id = current_request_id();
        ErrorEnvelope { error: body }
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        ApiError::invalid(e.target, e.message)
    }
}

impl From<crate::rooms::admission::Refusal> for ApiError {
    fn from(r: crate::rooms::admission::Refusal) -> Self {
        let mut e = ApiError::new(r.code, r.message);
        e.target = r.target.map(str::to_string);
        if let Some(at) = r.at {
            e = e.with_at(at);
        }
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::AlreadyExists => ApiError::new(
                ErrorCode::RoomAlreadyExists,
                "a room with this id already exists",
            )
            .with_target("id"),
            StoreError::RoomNotFound => {
                ApiError::new(ErrorCode::RoomNotFound, "the room does not exist")
                    .with_target("roomId")
            }
            StoreError::RosterFull(n) => ApiError::invalid(
                "participants",
                format!("a room's roster may hold at most {n} users"),
            ),
            StoreError::VersionMismatch { current } => ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("the room is at version {current}, not the one expected"),
            )
            .with_target("If-Match"),
            StoreError::Rejected(rule) => {
                ApiError::invalid(rule.target.clone(), rule.message.clone())
            }
            StoreError::DuplicateRequest | StoreError::Backend(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::cluster::ClusterError> for ApiError {
    fn from(e: crate::cluster::ClusterError) -> Self {
        tracing::warn!("cannot ask the other nodes: {e}");
        ApiError::new(
            ErrorCode::ClusterUnavailable,
            "the other nodes could not be asked (their Redis did not answer); retry shortly",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.code == ErrorCode::Unauthenticated {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
