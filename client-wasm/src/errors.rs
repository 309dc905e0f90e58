//! The error every rejected promise carries: `{code, number, message}` (plus `target`
//! and `at` when the server gave them), as a JS `Error` named `ConveneError`.
//! Server codes come from the protocol catalogue; a few codes are the SDK's own, for
//! failures that happen in the browser and never reach the server.

use convene_protocol::{ErrorBody, ErrorCode};

/// Codes only the SDK raises, numbered apart from the server's catalogue.
pub const SDK_CODES: &[(&str, u32)] = &[
    // The server could not be reached, or the connection failed before joining.
    ("ConnectionFailed", 100101),
    // getUserMedia or getDisplayMedia failed: permission refused or no device.
    ("MediaUnavailable", 100102),
    // The room was left; this call needs a joined room.
    ("NotConnected", 100103),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkError {
    pub code: String,
    pub number: u32,
    pub message: String,
    pub target: Option<String>,
    pub at: Option<String>,
}

impl SdkError {
    fn sdk(code: &str, message: impl Into<String>) -> Self {
        let number = SDK_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n);
        Self {
            code: code.into(),
            number,
            message: message.into(),
            target: None,
            at: None,
        }
    }

    pub fn server(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().into(),
            number: code.number(),
            message: message.into(),
            target: None,
            at: None,
        }
    }

    pub fn invalid(target: &str, message: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..Self::server(ErrorCode::InvalidParameter, message)
        }
    }

    pub fn connection_failed(message: impl Into<String>) -> Self {
        Self::sdk("ConnectionFailed", message)
    }

    pub fn media_unavailable(message: impl Into<String>) -> Self {
        Self::sdk("MediaUnavailable", message)
    }

    pub fn not_connected() -> Self {
        Self::sdk("NotConnected", "the room was left; join again to do this")
    }

    /// True for refusals that trying again will not change (a bad token, a removed
    /// invitation, an ended room), as opposed to a network or server hiccup.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self.code.as_str(),
            "ConnectionFailed" | "Internal" | "RateLimited"
        )
    }
}

impl From<ErrorBody> for SdkError {
    fn from(b: ErrorBody) -> Self {
        Self {
            code: b.code.as_str().into(),
            number: b.number,
            message: b.message,
            target: b.target,
            at: b.at,
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl SdkError {
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        use js_sys::Reflect;
        use wasm_bindgen::JsValue;
        let e = js_sys::Error::new(&self.message);
        e.set_name("ConveneError");
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&e, &JsValue::from_str(k), &v);
        };
        set("code", JsValue::from_str(&self.code));
        set("number", JsValue::from(self.number));
        if let Some(t) = &self.target {
            set("target", JsValue::from_str(t));
        }
        if let Some(at) = &self.at {
            set("at", JsValue::from_str(at));
        }
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_numbers_are_known_and_apart_from_the_server_catalogue() {
        for (code, number) in SDK_CODES {
            assert!(
                ErrorCode::ALL.iter().all(|c| c.number() != *number),
                "{code}"
            );
            assert_eq!(SdkError::sdk(code, "x").number, *number);
        }
        assert_eq!(SdkError::not_connected().number, 100103);
    }

    #[test]
    fn the_typescript_error_codes_list_every_code() {
        // types.rs is only compiled for wasm32; its text is checked here natively.
        let ts = include_str!("types.rs");
        let union = &ts[ts.find("export type ErrorCode").expect("the union")..];
        let union = &union[..union.find(';').expect("its end")];
        for c in ErrorCode::ALL {
            assert!(union.contains(&format!("\"{}\"", c.as_str())), "{c:?}");
        }
        for (code, _) in SDK_CODES {
            assert!(union.contains(&format!("\"{code}\"")), "{code}");
        }
    }

    #[test]
    fn server_bodies_keep_every_field() {
        let mut body = ErrorBody::new(ErrorCode::RoomNotOpenYet, "this room opens at T");
        body.at = Some("2026-03-03T10:00:00+00:00".into());
        let e = SdkError::from(body);
        assert_eq!(e.code, "RoomNotOpenYet");
        assert_eq!(e.number, 100009);
        assert_eq!(e.at.as_deref(), Some("2026-03-03T10:00:00+00:00"));
        assert!(e.is_permanent());
        assert!(!SdkError::connection_failed("x").is_permanent());
        assert!(!SdkError::server(ErrorCode::Internal, "x").is_permanent());
    }
}
