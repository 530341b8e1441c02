//! Cron schedules as upstream reads them (robfig/cron `ParseStandard`):
//! five fields with lists, ranges, steps and month/day names, the
//! `@yearly`…`@hourly` descriptors and `@every <duration>`, evaluated in
//! an IANA time zone, with upstream's walk through months, days, hours and
//! minutes (so DST gaps and folds behave as they do there).

use jiff::tz::TimeZone;
use jiff::{civil, Timestamp, ToSpan, Zoned};

/// Bit set when a field is `*` or `?` (day-of-month/week matching differs).
const STAR: u64 = 1 << 63;
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

#[derive(Debug, Clone)]
pub enum Schedule {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        tz: TimeZone,
    },
    /// `@every`: a fixed delay in whole seconds.
    Every { seconds: i64 },
}

/// Parses `schedule` evaluated in `tz` (a `TZ=`/`CRON_TZ=` prefix overrides it).
pub fn parse(schedule: &str, tz: TimeZone) -> Result<Schedule, String> {
    let mut spec = schedule.trim();
    let mut tz = tz;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (zone, rest) = spec.split_once(' ').unwrap_or((spec, ""));
        let name = zone.split_once('=').map(|(_, n)| n).unwrap_or("");
        tz = TimeZone::get(name).map_err(|e| format!("provided bad location {name}: {e}"))?;
        spec = rest.trim();
    }
    let fields: Vec<&str> = match spec {
        "@yearly" | "@annually" => vec!["0", "0", "1", "1", "*"],
        "@monthly" => vec!["0", "0", "1", "*", "*"],
        "@weekly" => vec!["0", "0", "*", "*", "0"],
        "@daily" | "@midnight" => vec!["0", "0", "*", "*", "*"],
        "@hourly" => vec!["0", "*", "*", "*", "*"],
        s if s.starts_with("@every ") => {
            let secs = go_duration_seconds(s["@every ".len()..].trim())
                .ok_or_else(|| format!("failed to parse duration {s}"))?;
            return Ok(Schedule::Every {
                seconds: secs.max(1),
            });
        }
        s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
        s => s.split_whitespace().collect(),
    };
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {spec}",
            fields.len()
        ));
    }
    Ok(Schedule::Spec {
        minute: field(fields[0], 0, 59, &[])?,
        hour: field(fields[1], 0, 23, &[])?,
        dom: field(fields[2], 1, 31, &[])?,
        month: field(fields[3], 1, 12, &MONTHS)?,
        dow: field(fields[4], 0, 6, &DAYS)?,
        tz,
    })
}

/// A comma-separated field as a bit set.
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    text.split(',')
        .map(|part| range(part, min, max, names))
        .try_fold(0, |acc, bits| Ok(acc | bits?))
}

fn range(expr: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let (span, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
        [r] => (*r, None),
        [r, s] => (*r, Some(*s)),
        _ => return Err(format!("too many slashes: {expr}")),
    };
    let bounds: Vec<&str> = span.split('-').collect();
    let mut star = 0;
    let (start, mut end) = match bounds.as_slice() {
        ["*" | "?", ..] => {
            star = STAR;
            (min, max)
        }
        [a] => {
            let a = number(a, names, min)?;
            (a, a)
        }
        [a, b] => (number(a, names, min)?, number(b, names, min)?),
        _ => return Err(format!("too many hyphens: {expr}")),
    };
    let step = match step {
        None => 1,
        Some(s) => {
            // "N/step" means "N-max/step".
            if bounds.len() == 1 {
                end = max;
            }
            let n: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            if n > 1 {
                star = 0;
            }
            n
        }
    };
    if start < min || end > max || start > end || step == 0 {
        return Err(format!("invalid range: {expr}"));
    }
    let bits = (start..=end)
        .step_by(step as usize)
        .fold(0u64, |acc, i| acc | 1 << i);
    Ok(bits | star)
}

fn number(text: &str, names: &[&str], min: u32) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + min);
    }
    text.parse()
        .map_err(|_| format!("failed to parse int from {text}"))
}

/// Go's `time.ParseDuration`, truncated to whole seconds.
fn go_duration_seconds(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total = 0f64;
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total as i64)
}

fn has(bits: u64, i: impl Into<i64>) -> bool {
    let i = i.into();
    (0..63).contains(&i) && bits & (1 << i) != 0
}

/// Midnight-or-later civil time in `tz`, as Go's `time.Date` resolves it.
fn at(tz: &TimeZone, y: i16, m: i8, d: i8, h: i8) -> Option<Zoned> {
    civil::date(y, m, d)
        .at(h, 0, 0, 0)
        .to_zoned(tz.clone())
        .ok()
}

impl Schedule {
    /// The first activation strictly after `t` (whole seconds); None when
    /// there is none within five years (e.g. February 30th).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, tz) = match self {
            Schedule::Every { seconds } => {
                return Timestamp::from_second(t.as_second() + seconds).ok();
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                tz,
            } => (*minute, *hour, *dom, *month, *dow, tz),
        };
        let day_matches = |z: &Zoned| {
            let d = has(dom, z.day());
            let w = has(dow, z.weekday().to_sunday_zero_offset());
            if dom & STAR != 0 || dow & STAR != 0 {
                d && w
            } else {
                d || w
            }
        };
        let mut z = Timestamp::from_second(t.as_second() + 1)
            .ok()?
            .to_zoned(tz.clone());
        let year_limit = z.year() + 5;
        let mut added = false;
        'wrap: loop {
            if z.year() > year_limit {
                return None;
            }
            while !has(month, z.month()) {
                if !added {
                    added = true;
                    z = at(tz, z.year(), z.month(), 1, 0)?;
                }
                z = z.checked_add(1.month()).ok()?;
                if z.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&z) {
                if !added {
                    added = true;
                    z = at(tz, z.year(), z.month(), z.day(), 0)?;
                }
                z = z.checked_add(1.day()).ok()?;
                // A DST change at midnight moves the day's start.
                if z.hour() != 0 {
                    let fix = if z.hour() > 12 {
                        i64::from(24 - z.hour())
                    } else {
                        -i64::from(z.hour())
                    };
                    z = z.checked_add(fix.hours()).ok()?;
                }
                if z.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(hour, z.hour()) {
                if !added {
                    added = true;
                    z = at(tz, z.year(), z.month(), z.day(), z.hour())?;
                }
                z = z.checked_add(1.hour()).ok()?;
                if z.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(minute, z.minute()) {
                if !added {
                    added = true;
                    z = truncate(&z, 60)?;
                }
                z = z.checked_add(1.minute()).ok()?;
                if z.minute() == 0 {
                    continue 'wrap;
                }
            }
            if z.second() != 0 {
                if !added {
                    added = true;
                    z = truncate(&z, 1)?;
                }
                // Seconds are always 0: move to the next minute and recheck.
                z = truncate(&z, 60)?.checked_add(1.minute()).ok()?;
                continue 'wrap;
            }
            return Some(z.timestamp());
        }
    }
}

fn truncate(z: &Zoned, unit: i64) -> Option<Zoned> {
    let s = z.timestamp().as_second();
    Some(
        Timestamp::from_second(s - s.rem_euclid(unit))
            .ok()?
            .to_zoned(z.time_zone().clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(schedule: &str, tz: &str, after: &str) -> String {
        let s = parse(schedule, TimeZone::get(tz).unwrap()).unwrap();
        let t = s.next(ts(after)).unwrap();
        t.to_zoned(TimeZone::get(tz).unwrap())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    #[test]
    fn fields_ranges_steps_lists_and_names() {
        assert_eq!(
            next("*/15 * * * *", "UTC", "2024-01-01T10:07:30Z"),
            "2024-01-01T10:15:00+00:00"
        );
        assert_eq!(
            next("0 3 * * 1-5", "UTC", "2024-01-05T04:00:00Z"),
            "2024-01-08T03:00:00+00:00"
        );
        assert_eq!(
            next("30 9 * JAN,jul SUN", "UTC", "2024-02-01T00:00:00Z"),
            "2024-07-07T09:30:00+00:00"
        );
        assert_eq!(
            next("5/20 * * * *", "UTC", "2024-01-01T00:30:00Z"),
            "2024-01-01T00:45:00+00:00"
        );
        assert_eq!(
            next("* * * * *", "UTC", "2024-01-01T00:00:00Z"),
            "2024-01-01T00:01:00+00:00"
        );
        assert_eq!(
            next("59 23 31 12 *", "UTC", "2024-12-31T23:59:00Z"),
            "2025-12-31T23:59:00+00:00"
        );
    }

    #[test]
    fn day_of_month_or_week_unless_one_is_a_star() {
        // Both restricted: either matches (the 13th or any Friday).
        assert_eq!(
            next("0 0 13 * 5", "UTC", "2024-09-01T00:00:00Z"),
            "2024-09-06T00:00:00+00:00"
        );
        // One is a star: both must match.
        assert_eq!(
            next("0 0 * * 5", "UTC", "2024-09-01T00:00:00Z"),
            "2024-09-06T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 13 * *", "UTC", "2024-09-01T00:00:00Z"),
            "2024-09-13T00:00:00+00:00"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next("@hourly", "UTC", "2024-01-01T10:07:00Z"),
            "2024-01-01T11:00:00+00:00"
        );
        assert_eq!(
            next("@daily", "UTC", "2024-01-01T10:07:00Z"),
            "2024-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next("@midnight", "UTC", "2024-01-01T10:07:00Z"),
            "2024-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", "UTC", "2024-01-01T10:07:00Z"),
            "2024-01-07T00:00:00+00:00"
        );
        assert_eq!(
            next("@monthly", "UTC", "2024-01-01T10:07:00Z"),
            "2024-02-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", "UTC", "2024-01-01T10:07:00Z"),
            "2025-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@annually", "UTC", "2024-01-01T10:07:00Z"),
            "2025-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@every 1h30m", "UTC", "2024-01-01T10:07:00Z"),
            "2024-01-01T11:37:00+00:00"
        );
        assert!(parse("@often", TimeZone::UTC).is_err());
        assert!(parse("* * *", TimeZone::UTC).is_err());
        assert!(parse("61 * * * *", TimeZone::UTC).is_err());
        assert!(parse("*/0 * * * *", TimeZone::UTC).is_err());
    }

    #[test]
    fn time_zones_and_prefixes() {
        assert_eq!(
            next("0 9 * * *", "Europe/Berlin", "2024-06-01T08:00:00Z"),
            "2024-06-02T09:00:00+02:00"
        );
        assert_eq!(
            next("0 9 * * *", "Asia/Kolkata", "2024-06-01T00:00:00Z"),
            "2024-06-01T09:00:00+05:30"
        );
        let s = parse("CRON_TZ=America/New_York 0 12 * * *", TimeZone::UTC).unwrap();
        assert_eq!(
            s.next(ts("2024-01-01T00:00:00Z")),
            Some(ts("2024-01-01T17:00:00Z"))
        );
    }

    #[test]
    fn dst_gaps_and_folds() {
        // 02:30 does not exist on 2024-03-10 in New York: as upstream's
        // walk by absolute hours, that day's run is skipped.
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2024-03-10T05:00:00Z"),
            "2024-03-11T02:30:00-04:00"
        );
        // 01:30 happens twice on 2024-11-03; the walk by absolute hours meets both, as upstream's.
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2024-11-03T04:00:00Z"),
            "2024-11-03T01:30:00-04:00"
        );
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2024-11-03T05:30:00Z"),
            "2024-11-03T01:30:00-05:00"
        );
        // Hourly across the spring gap: 01:00 then 03:00 EDT.
        assert_eq!(
            next("0 * * * *", "America/New_York", "2024-03-10T06:00:00Z"),
            "2024-03-10T03:00:00-04:00"
        );
    }

    #[test]
    fn impossible_dates_never_come() {
        let s = parse("0 0 30 2 *", TimeZone::UTC).unwrap();
        assert_eq!(s.next(ts("2024-01-01T00:00:00Z")), None);
    }
}
