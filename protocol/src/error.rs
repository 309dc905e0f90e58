//! The error catalogue and envelope, the same for the REST API, signaling refusals and
//! the SDK's rejected promises.

use serde::{Deserialize, Serialize};

macro_rules! catalogue {
    ($($(#[$doc:meta])* $code:ident = $number:literal, $status:literal;)*) => {
        /// Every error the server can answer with: a stable code, a number and an HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            pub fn number(self) -> u32 {
                match self { $(ErrorCode::$code => $number,)* }
            }

            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$code => $status,)* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$code => stringify!($code),)* }
            }
        }
    };
}

catalogue! {
    /// Something failed on the server; retrying may help.
    Internal = 100001, 500;
    /// A request field is wrong; `target` names it.
    InvalidParameter = 100002, 400;
    RoomAlreadyExists = 100003, 409;
    RoomNotFound = 100004, 404;
    /// The user is not joined to the room's live session.
    NotInRoom = 100005, 404;
    /// The user is not on the room's invite roster.
    NotInvited = 100006, 403;
    /// The caller's role does not allow this.
    PermissionDenied = 100016, 403;
    /// A missing or wrong admin key or join token.
    Unauthenticated = 100007, 401;
    RoomFull = 100008, 409;
    /// Before the room's validFrom.
    RoomNotOpenYet = 100009, 403;
    /// The room's joinPolicy is `closed`.
    RoomClosed = 100010, 403;
    /// After the room's validUntil.
    RoomExpired = 100011, 410;
    RateLimited = 100012, 429;
    PayloadTooLarge = 100013, 413;
    /// No such route.
    NotFound = 100014, 404;
    MethodNotAllowed = 100015, 405;
    /// `If-Match` named a version the room is no longer at; read it again and retry.
    PreconditionFailed = 100017, 412;
    /// No token with this id was minted for this room.
    TokenNotFound = 100018, 404;
    /// The request (sending its body, or answering it) took longer than the server allows.
    RequestTimeout = 100019, 408;
    /// No webhook endpoint with this id.
    WebhookNotFound = 100020, 404;
    /// The seat is taken or locked, or no seat is free.
    SeatUnavailable = 100021, 409;
    /// No open seat application from this user.
    SeatApplicationNotFound = 100022, 404;
    /// The other nodes could not be asked: the cluster's Redis did not answer. Retry.
    ClusterUnavailable = 100023, 503;
    /// A track sent to this browser uses a codec it cannot play (another participant
    /// publishes H.264, which this browser did not accept); that video stays blank.
    CodecUnsupported = 100024, 415;
}

/// `{"error": {...}}`, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub number: u32,
    pub message: String,
    /// The request field the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The time the error is about (RFC 3339), so a client can say it in the user's own
    /// words and time zone: when the room opens (`RoomNotOpenYet`) or ended (`RoomExpired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            number: code.number(),
            message: message.into(),
            target: None,
            at: None,
            request_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_by_name() {
        let body = ErrorBody::new(ErrorCode::RoomNotFound, "no such room");
        let json = serde_json::to_value(ErrorEnvelope { error: body }).unwrap();
        assert_eq!(json["error"]["code"], "RoomNotFound");
        assert_eq!(json["error"]["number"], 100004);
        assert!(json["error"].get("target").is_none());
    }

    #[test]
    fn every_number_and_code_is_unique() {
        let mut numbers: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            ErrorCode::ALL.len(),
            "two codes share a number"
        );
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn statuses_are_errors() {
        for c in ErrorCode::ALL {
            assert!(c.http_status() >= 400, "{c:?}");
            assert_eq!(c.number() / 1000, 100, "{c:?}");
        }
    }
}
