//! Where to connect: the signaling WebSocket URL from the server URL a developer gives
//! (or the page's own origin), and its plain-HTTP twin, the join check (`Room.check`,
//! and how the SDK reads why a join failed: browsers hide the HTTP answer to a refused
//! WebSocket upgrade).

use crate::errors::SdkError;

const SIGNALING_PATH: &str = "/v1/rtc";

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `(scheme, rest)` of the server URL, with the scheme lower-cased and any query,
/// fragment or trailing slash removed.
fn split(base: &str) -> Result<(String, String), SdkError> {
    let bad = || {
        SdkError::invalid(
            "url",
            format!("'{base}' is not a server URL; use e.g. https://calls.example.com"),
        )
    };
    let (scheme, rest) = base.trim().split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "ws" | "wss") {
        return Err(bad());
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = rest.trim_end_matches('/').to_string();
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad());
    }
    Ok((scheme, rest))
}

/// The join token as given, trimmed; refused before any request when it is missing or
/// longer than any token a server accepts (a link cut short or pasted twice), so the
/// user gets a clear reason instead of the HTTP layer's bare `414` for huge ones.
pub fn check_token(raw: &str) -> Result<String, SdkError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(SdkError::invalid(
            "token",
            "a join token is required (the part after #token= in an invite link)",
        ));
    }
    let max = convene_protocol::signal::MAX_TOKEN_BYTES;
    if token.len() > max {
        return Err(SdkError::invalid(
            "token",
            format!(
                "this join token is {} characters; tokens are at most {max} (is the invite \
                 link complete, and pasted once?)",
                token.len()
            ),
        ));
    }
    Ok(token.to_string())
}

fn query(token: &str, resume: Option<&str>) -> String {
    let mut q = format!("?token={}", encode(token));
    if let Some(r) = resume {
        q.push_str("&resume=");
        q.push_str(&encode(r));
    }
    q
}

/// The URL to open the signaling WebSocket on. `base` is an http(s) or ws(s) URL,
/// optionally with a path prefix (a server behind a proxy at `/convene`).
pub fn signaling_url(base: &str, token: &str, resume: Option<&str>) -> Result<String, SdkError> {
    let (scheme, rest) = split(base)?;
    let ws = if scheme == "https" || scheme == "wss" {
        "wss"
    } else {
        "ws"
    };
    Ok(format!(
        "{ws}://{rest}{SIGNALING_PATH}{}",
        query(token, resume)
    ))
}

/// The same endpoint over plain HTTP, the join check: the server answers it with what
/// joining would give, or with the error that would refuse the join.
pub fn check_url(base: &str, token: &str) -> Result<String, SdkError> {
    let (scheme, rest) = split(base)?;
    let http = if scheme == "https" || scheme == "wss" {
        "https"
    } else {
        "http"
    };
    Ok(format!(
        "{http}://{rest}{SIGNALING_PATH}{}",
        query(token, None)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_ws_urls_from_http_and_ws_bases() {
        assert_eq!(
            signaling_url("http://127.0.0.1:7880", "a.b-c_d", None).unwrap(),
            "ws://127.0.0.1:7880/v1/rtc?token=a.b-c_d"
        );
        assert_eq!(
            signaling_url("HTTPS://calls.example.com/convene/?x=1#y", "t", Some("r+1")).unwrap(),
            "wss://calls.example.com/convene/v1/rtc?token=t&resume=r%2B1"
        );
        assert_eq!(
            signaling_url("wss://h", "t", None).unwrap(),
            "wss://h/v1/rtc?token=t"
        );
        assert_eq!(
            check_url("wss://h/p", "t t").unwrap(),
            "https://h/p/v1/rtc?token=t%20t"
        );
        assert_eq!(check_url("ws://h", "t").unwrap(), "http://h/v1/rtc?token=t");
    }

    #[test]
    fn tokens_are_checked_before_sending() {
        assert_eq!(check_token("  a.b.c \n").unwrap(), "a.b.c");
        for bad in ["", "   ", &"x".repeat(2049)] {
            let e = check_token(bad).unwrap_err();
            assert_eq!(e.code, "InvalidParameter");
            assert_eq!(e.target.as_deref(), Some("token"));
        }
        assert!(check_token(&"x".repeat(2048)).is_ok());
        assert!(check_token(&"x".repeat(100_000))
            .unwrap_err()
            .message
            .contains("100000 characters"));
    }

    #[test]
    fn refuses_what_is_not_a_server_url() {
        for bad in ["", "calls.example.com", "ftp://h", "http://", "http:///x"] {
            let e = signaling_url(bad, "t", None).unwrap_err();
            assert_eq!(e.code, "InvalidParameter", "{bad}");
            assert_eq!(e.target.as_deref(), Some("url"));
        }
    }
}
