//! The clock as a value: read once at the edge (`main`), passed down, and driven by tests.
//!
//! Also the few ways compass writes and reads times for people: dates in tables, ages, and the
//! `--since` values operators type.

use anyhow::{Context, bail};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

/// The variable that pins the clock, for tests and for replaying what happened at a given time.
pub const NOW_VAR: &str = "COMPASS_NOW";

/// Now, to the second: `COMPASS_NOW` (RFC 3339) when `env` has it, otherwise the system clock.
pub fn now(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<OffsetDateTime> {
    let now = match env(NOW_VAR) {
        Some(text) => OffsetDateTime::parse(text.trim(), &Rfc3339)
            .with_context(|| format!("{NOW_VAR}={text} is not an RFC 3339 time"))?,
        None => OffsetDateTime::now_utc(),
    };
    Ok(now.to_offset(time::UtcOffset::UTC).replace_nanosecond(0)?)
}

/// `2026-11-02T09:00:00Z`: for JSON and logs.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `2026-11-02 09:00`, in UTC: for tables.
pub fn minute(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .unwrap_or_else(|_| at.to_string())
}

/// `3 December 2026`: for documents people keep (reports, invoices).
pub fn long_date(date: Date) -> String {
    date.format(format_description!(
        "[day padding:none] [month repr:long] [year]"
    ))
    .unwrap_or_else(|_| date.to_string())
}

/// How long ago, in the two largest units: `45s`, `12m`, `3h 5m`, `4d 2h`, `120d`.
pub fn age(since: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - since).whole_seconds().max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) | (d @ 30.., _, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A point in time as an operator types it: an age (`90m`, `12h`, `3d`, `2w`) counted back from
/// `now`, a date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    let text = text.trim();
    if let Some(age) = parse_age(text) {
        return now
            .checked_sub(age)
            .with_context(|| format!("`{text}` reaches back before the year -9999"));
    }
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc());
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    bail!("`{text}` is not an age like 3d, 12h, 90m or 2w, nor a date like 2026-11-01")
}

fn parse_age(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit = match unit {
        "m" | "min" => Duration::MINUTE,
        "h" => Duration::HOUR,
        "d" => Duration::DAY,
        "w" => Duration::WEEK,
        _ => return None,
    };
    unit.checked_mul(i32::try_from(n).ok()?)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn now_is_pinned_by_the_environment_and_whole_seconds() {
        let pinned = now(|_| Some("2026-11-02T10:30:00+01:00".into())).expect("valid");
        assert_eq!(pinned, datetime!(2026-11-02 09:30 UTC));
        assert_eq!(rfc3339(pinned), "2026-11-02T09:30:00Z");
        assert_eq!(now(|_| None).expect("system clock").nanosecond(), 0);
        let err = now(|_| Some("yesterday".into())).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "COMPASS_NOW=yesterday is not an RFC 3339 time"
        );
    }

    #[test]
    fn ages_read_at_a_glance() {
        let cases = [
            (Duration::seconds(-5), "0s"),
            (Duration::seconds(45), "45s"),
            (Duration::minutes(12), "12m"),
            (Duration::hours(3), "3h"),
            (Duration::minutes(185), "3h 5m"),
            (Duration::hours(98), "4d 2h"),
            (Duration::days(4), "4d"),
            (Duration::days(120) + Duration::hours(5), "120d"),
        ];
        for (ago, shown) in cases {
            assert_eq!(age(NOW - ago, NOW), shown);
        }
    }

    #[test]
    fn since_takes_ages_dates_and_times() {
        let cases = [
            ("90m", NOW - Duration::minutes(90)),
            ("12h", NOW - Duration::hours(12)),
            ("3d", NOW - Duration::days(3)),
            (" 2w ", NOW - Duration::weeks(2)),
            ("2026-11-01", datetime!(2026-11-01 00:00 UTC)),
            ("2026-11-01T08:00:00Z", datetime!(2026-11-01 08:00 UTC)),
        ];
        for (text, at) in cases {
            assert_eq!(parse_since(text, NOW).expect(text), at, "{text}");
        }
        let too_far = ["9999999d", "2147483647w"];
        for bad in ["", "3", "d", "3y", "-3d", "2026-13-01", "99999999999d"]
            .iter()
            .chain(&too_far)
        {
            assert!(parse_since(bad, NOW).is_err(), "{bad}");
        }
    }
}
