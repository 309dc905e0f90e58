//! What both edges (`http`, the admin REST API, and `signal`, the WebSocket) share: the
//! error envelope every refusal uses, extractors that refuse bad input with it, and the
//! request id. Shared here so the two edges never import each other.

pub mod error;
pub mod extract;
pub mod observe;
pub mod request_context;

pub use error::{ApiError, ApiResult};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
