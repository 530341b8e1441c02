//! Timestamps: RFC 3339 parsing and formatting plus upstream's HumanDuration.
//! Done by hand because the main crate's `time` dependency has no parsing feature.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::at;

/// Nanoseconds since the Unix epoch; i128 so any year from an object fits.
pub(super) type Nanos = i128;

const NS: i128 = 1_000_000_000;

pub(super) fn now_nanos(now: SystemTime) -> Nanos {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, the form Kubernetes stores.
pub(super) fn parse_rfc3339(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac: i128 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        // Only nanosecond precision matters; extra digits are truncated like Go does.
        let kept = &r[..n.min(9)];
        frac = digits(kept)? as i128 * 10_i128.pow(9 - kept.len() as u32);
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let secs = digits(&rest[1..3])? * 3600 + digits(&rest[4..6])? * 60;
            if rb[0] == b'-' {
                -secs
            } else {
                secs
            }
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs as i128 * NS + frac)
}

/// RFC 3339 in UTC with whole seconds, as Go's `time.RFC3339` layout prints it.
pub(super) fn format_rfc3339(t: Nanos) -> String {
    let secs = t.div_euclid(NS) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Upstream's HumanDuration: about two significant figures, "<invalid>" for
/// clearly-future times and "0s" for a second of clock skew.
pub(super) fn human_duration(d: Nanos) -> String {
    let seconds = d / NS;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / (60 * NS);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / (3600 * NS);
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = hours / 24 % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The timestamp at `path`, if present and well-formed.
pub(super) fn time_at(v: &Value, path: &[&str]) -> Option<Nanos> {
    at(v, path).and_then(Value::as_str).and_then(parse_rfc3339)
}

/// translateTimestampSince: a missing (zero) time prints "<unknown>".
pub(super) fn since(t: Option<Nanos>, now: Nanos) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// The AGE cell: time since metadata.creationTimestamp.
pub(super) fn age(obj: &Value, now: Nanos) -> Value {
    Value::from(since(time_at(obj, &["metadata", "creationTimestamp"]), now))
}
