//! The validity window rules: a room may be used from `validFrom` until `validUntil`.

use chrono::{DateTime, Duration, Utc};

use super::RuleError;

/// Longest window, and how far ahead a window may start.
pub const MAX_WINDOW_DAYS: i64 = 180;

pub fn max_window() -> Duration {
    Duration::days(MAX_WINDOW_DAYS)
}

/// Fills the defaults (from = now, until = from + 180 days) and checks the rules.
pub fn resolve_window(
    now: DateTime<Utc>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), RuleError> {
    let from = valid_from.unwrap_or(now);
    if from > now + max_window() {
        // Checked first: a far-future start (chrono parses years past 9999) would
        // overflow the default end below.
        return Err(RuleError::new(
            "validFrom",
            format!("validFrom may be at most {MAX_WINDOW_DAYS} days from now"),
        ));
    }
    let until = valid_until.unwrap_or(from + max_window());
    check_window(now, from, until)?;
    Ok((from, until))
}

pub fn check_window(
    now: DateTime<Utc>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), RuleError> {
    if from > now + max_window() {
        return Err(RuleError::new(
            "validFrom",
            format!("validFrom may be at most {MAX_WINDOW_DAYS} days from now"),
        ));
    }
    if until <= now {
        return Err(RuleError::new("validUntil", "validUntil is in the past"));
    }
    if until <= from {
        return Err(RuleError::new(
            "validUntil",
            "validUntil must be later than validFrom",
        ));
    }
    if until - from > max_window() {
        return Err(RuleError::new(
            "validUntil",
            format!("the validity window may be at most {MAX_WINDOW_DAYS} days long"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
    }

    #[test]
    fn defaults_are_now_and_180_days() {
        let (from, until) = resolve_window(now(), None, None).unwrap();
        assert_eq!(from, now());
        assert_eq!(until, now() + Duration::days(180));
    }

    #[test]
    fn until_defaults_from_a_given_start() {
        let start = now() + Duration::days(10);
        let (_, until) = resolve_window(now(), Some(start), None).unwrap();
        assert_eq!(until, start + Duration::days(180));
    }

    #[test]
    fn exactly_180_days_is_allowed() {
        assert!(check_window(now(), now(), now() + Duration::days(180)).is_ok());
        let start = now() + Duration::days(180);
        assert!(check_window(now(), start, start + Duration::hours(1)).is_ok());
    }

    #[test]
    fn too_long_window_names_valid_until() {
        let e = check_window(
            now(),
            now(),
            now() + Duration::days(180) + Duration::seconds(1),
        )
        .unwrap_err();
        assert_eq!(e.target, "validUntil");
        assert!(e.message.contains("180 days"));
    }

    #[test]
    fn start_too_far_ahead_names_valid_from() {
        let start = now() + Duration::days(181);
        let e = check_window(now(), start, start + Duration::days(1)).unwrap_err();
        assert_eq!(e.target, "validFrom");
    }

    #[test]
    fn far_future_years_do_not_overflow() {
        let far: DateTime<Utc> = "+262142-12-31T00:00:00Z".parse().unwrap();
        let e = resolve_window(now(), Some(far), None).unwrap_err();
        assert_eq!(e.target, "validFrom");
        let e = resolve_window(now(), None, Some(far)).unwrap_err();
        assert_eq!(e.target, "validUntil");
    }

    #[test]
    fn past_end_is_refused() {
        let e = check_window(now(), now() - Duration::days(2), now()).unwrap_err();
        assert_eq!(e.target, "validUntil");
        assert!(e.message.contains("past"));
    }

    #[test]
    fn end_before_start_is_refused() {
        let from = now() + Duration::days(3);
        let e = check_window(now(), from, from).unwrap_err();
        assert_eq!(e.target, "validUntil");
        assert!(e.message.contains("later than validFrom"));
    }

    #[test]
    fn started_window_may_begin_in_the_past() {
        assert!(check_window(now(), now() - Duration::days(1), now() + Duration::days(1)).is_ok());
    }
}
