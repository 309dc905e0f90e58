//! Limits on a room's options, checked before anything is stored. Every limit is a named
//! constant so the docs and the OpenAPI descriptions can quote it.

use std::collections::BTreeMap;

use super::RuleError;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_COVER_URL_BYTES: usize = 2048;
pub const MAX_PARTICIPANTS_LIMIT: u32 = 1_000_000;
pub const MAX_DESTROY_DELAY_SECONDS: u32 = 86_400;
pub const DEFAULT_ANNOUNCE_LIMIT: u32 = 50;
pub const MAX_ANNOUNCE_LIMIT: u32 = 1_000;
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 64;
/// Characters (not bytes: the OpenAPI document can state a length in characters only).
/// With at most 32 pairs, a room's attributes stay under 140 KB.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1024;
/// Most roster changes in one request, and most users on one roster.
pub const MAX_ROSTER_CHANGES: usize = 1_000;
pub const MAX_ROSTER_SIZE: u64 = 100_000;
pub const DEFAULT_SEAT_COUNT: u32 = 8;
pub const MAX_SEAT_COUNT: u32 = 50;

/// Checks every option of a room (its window is checked by `validity`).
pub fn check_room(room: &crate::model::Room) -> Result<(), RuleError> {
    check_name(&room.name)?;
    if let Some(url) = &room.cover_url {
        check_cover_url(url)?;
    }
    if let Some(n) = room.max_participants {
        check_max_participants(n)?;
    }
    check_destroy_delay(room.destroy_delay_seconds)?;
    check_announce_limit(room.announce_limit)?;
    if !(1..=MAX_SEAT_COUNT).contains(&room.max_seat_count) {
        return Err(RuleError::new(
            "maxSeatCount",
            format!("maxSeatCount must be between 1 and {MAX_SEAT_COUNT}"),
        ));
    }
    check_attributes(&room.attributes)
}

pub fn check_name(name: &str) -> Result<(), RuleError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RuleError::new(
            "name",
            format!("name may be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(RuleError::new(
            "name",
            "name may not contain control characters",
        ));
    }
    Ok(())
}

/// An http(s) URL as Convene takes them (cover images, webhook endpoints):
/// `http(s)://host[:port][/path]`, the host a name or an IPv4 address. The OpenAPI
/// document states the same pattern.
pub const HTTP_URL_PATTERN: &str = "^https?://[A-Za-z0-9][A-Za-z0-9.-]*\
     (:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?\
     (/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$";

pub fn http_url_ok(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = host
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && !p.starts_with('0')
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~%!$&'()*+,;=:@/?-".contains(c));
    // And an HTTP client must be able to use it.
    host_ok && port_ok && path_ok && reqwest::Url::parse(url).is_ok()
}

pub fn check_cover_url(url: &str) -> Result<(), RuleError> {
    if url.len() > MAX_COVER_URL_BYTES || !http_url_ok(url) {
        return Err(RuleError::new(
            "coverUrl",
            format!(
                "coverUrl must be http(s)://host[:port][/path], at most {MAX_COVER_URL_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

pub fn check_max_participants(n: u32) -> Result<(), RuleError> {
    if n == 0 || n > MAX_PARTICIPANTS_LIMIT {
        return Err(RuleError::new(
            "maxParticipants",
            format!("maxParticipants must be between 1 and {MAX_PARTICIPANTS_LIMIT}"),
        ));
    }
    Ok(())
}

pub fn check_destroy_delay(s: u32) -> Result<(), RuleError> {
    if s > MAX_DESTROY_DELAY_SECONDS {
        return Err(RuleError::new(
            "destroyDelaySeconds",
            format!("destroyDelaySeconds may be at most {MAX_DESTROY_DELAY_SECONDS}"),
        ));
    }
    Ok(())
}

pub fn check_announce_limit(n: u32) -> Result<(), RuleError> {
    if n > MAX_ANNOUNCE_LIMIT {
        return Err(RuleError::new(
            "announceLimit",
            format!("announceLimit may be at most {MAX_ANNOUNCE_LIMIT}"),
        ));
    }
    Ok(())
}

pub fn check_attributes(attrs: &BTreeMap<String, String>) -> Result<(), RuleError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(RuleError::new(
            "attributes",
            format!("at most {MAX_ATTRIBUTES} attributes are allowed"),
        ));
    }
    for (k, v) in attrs {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_ATTRIBUTE_KEY_BYTES
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !key_ok {
            return Err(RuleError::new(
                format!("attributes.{k}"),
                format!(
                    "attribute keys must be 1 to {MAX_ATTRIBUTE_KEY_BYTES} characters of letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        if v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(RuleError::new(
                format!("attributes.{k}"),
                format!("attribute values may be at most {MAX_ATTRIBUTE_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_limits() {
        let mut a = BTreeMap::new();
        a.insert("team".to_string(), "blue".to_string());
        assert!(check_attributes(&a).is_ok());
        a.insert("bad key".to_string(), "x".to_string());
        assert_eq!(
            check_attributes(&a).unwrap_err().target,
            "attributes.bad key"
        );
        let many: BTreeMap<_, _> = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(check_attributes(&many).unwrap_err().target, "attributes");
        let full: BTreeMap<_, _> = (0..32)
            .map(|i| (format!("k{i}"), "é".repeat(1024)))
            .collect();
        assert!(check_attributes(&full).is_ok(), "counted in characters");
        let long: BTreeMap<_, _> = [("k".to_string(), "v".repeat(1025))].into();
        assert_eq!(check_attributes(&long).unwrap_err().target, "attributes.k");
    }

    #[test]
    fn option_limits() {
        assert!(check_name(&"x".repeat(200)).is_ok());
        assert!(check_name(&"x".repeat(201)).is_err());
        assert!(check_name("a\u{0}b").is_err());
        assert!(check_cover_url("https://example.com/a.png").is_ok());
        assert!(check_cover_url("javascript:alert(1)").is_err());
        assert!(check_max_participants(0).is_err());
        assert!(check_max_participants(10).is_ok());
        assert!(check_destroy_delay(86_401).is_err());
        assert!(check_announce_limit(1_001).is_err());
    }
}
