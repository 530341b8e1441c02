//! batch/v1 CronJob: `SetDefaults_CronJob`, `ValidateCronJob`, and the
//! schedule and time zone checks: the standard five-field syntax
//! and descriptors that upstream's cron parser (robfig/cron, `ParseStandard`)
//! accepts, with its error texts, and `validateTimeZone`.

use std::path::Path;

use serde_json::{json, Value};

use super::batch::job_spec;
use super::json::{child, default, existing, root, text};
use super::podspec::default_template_at;
use super::rules;
use crate::api::validation::{self as v, FieldCause};

/// Field bounds: minute, hour, day of month, month, day of week.
const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// `Err` carries the parser's message for `spec.schedule`.
pub(super) fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    if let Some(descriptor) = s.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = d["every ".len()..].trim();
                go_duration(dur).map_err(|e| format!("failed to parse duration {s}: {e}"))
            }
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        for part in field.split(',') {
            check_range(part, BOUNDS[i], names(i))?;
        }
    }
    Ok(())
}

fn names(field: usize) -> &'static [&'static str] {
    match field {
        3 => &MONTHS,
        4 => &DAYS,
        _ => &[],
    }
}

/// One comma-separated term: `*`, `a`, `a-b`, each optionally `/step`.
fn check_range(expr: &str, (min, max): (u32, u32), names: &[&str]) -> Result<(), String> {
    let (range, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
        [r] => (*r, None),
        [r, s] => (*r, Some(*s)),
        _ => return Err(format!("too many slashes: {expr}")),
    };
    let (start, end) = match range.split('-').collect::<Vec<_>>().as_slice() {
        ["*" | "?"] => (min, max),
        [a] => {
            let a = number(a, expr, min, names)?;
            (a, if step.is_some() { max } else { a })
        }
        [a, b] => (number(a, expr, min, names)?, number(b, expr, min, names)?),
        _ => return Err(format!("too many hyphens: {expr}")),
    };
    if let Some(step) = step {
        let n: i64 = step.parse().map_err(|_| parse_int_error(step))?;
        if n <= 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

/// A number or (month/day) name; names count from `min`.
fn number(text: &str, expr: &str, min: u32, names: &[&str]) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + min);
    }
    let n: i64 = text.parse().map_err(|_| parse_int_error(text))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| parse_int_error(text))
}

fn parse_int_error(text: &str) -> String {
    format!("failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax")
}

/// Go's `time.ParseDuration` syntax: `1h30m`, `90s`, `1.5h`.
fn go_duration(d: &str) -> Result<(), String> {
    let bad = || format!("time: invalid duration \"{d}\"");
    let mut rest = d.strip_prefix(['+', '-']).unwrap_or(d);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(&rest[..unit], "ns" | "us" | "µs" | "ms" | "s" | "m" | "h") {
            return Err(bad());
        }
        rest = &rest[unit..];
    }
    Ok(())
}

/// `Err` carries upstream's message for `spec.timeZone`.
pub(super) fn check_time_zone(tz: &str) -> Result<(), String> {
    if tz.is_empty() {
        return Err("timeZone must be nil or non-empty string".into());
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    if !tz.split('/').all(part_ok) {
        return Err(format!("unknown time zone {tz}"));
    }
    if tz.eq_ignore_ascii_case("local") {
        return Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        );
    }
    // Upstream embeds the tz database; here the host's stands in for it.
    // Without one, any well-formed name is taken on trust.
    let db = Path::new("/usr/share/zoneinfo");
    if tz == "UTC" || !db.is_dir() || db.join(tz).is_file() {
        Ok(())
    } else {
        Err(format!("unknown time zone {tz}"))
    }
}

pub(super) fn cronjob_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default(spec, "concurrencyPolicy", json!("Allow"));
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job) = existing(spec, "jobTemplate").and_then(|t| existing(t, "spec")) {
        default_template_at(job, "template");
    }
}

pub(super) fn cronjob_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let name = obj.get("metadata").map(|m| text(m, "name")).unwrap_or("");
    if name.len() > 52 {
        out.push(v::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 52 characters",
        ));
    }
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match spec.get("schedule").and_then(Value::as_str) {
        None | Some("") => out.push(v::required("spec.schedule", "")),
        Some(s) => {
            if let Err(msg) = check_schedule(s) {
                out.push(v::invalid("spec.schedule", &json!(s), &msg));
            }
        }
    }
    if let Some(tz) = spec.get("timeZone").filter(|t| !t.is_null()) {
        if let Err(msg) = check_time_zone(tz.as_str().unwrap_or("")) {
            out.push(v::invalid("spec.timeZone", tz, &msg));
        }
    }
    match spec.get("concurrencyPolicy") {
        None | Some(Value::Null) => out.push(v::required("spec.concurrencyPolicy", "")),
        Some(p) if matches!(p.as_str(), Some("Allow" | "Forbid" | "Replace")) => {}
        Some(p) => out.push(v::not_supported(
            "spec.concurrencyPolicy",
            p,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for field in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        rules::non_negative(&format!("spec.{field}"), spec.get(field), &mut out);
    }
    let job = spec.get("jobTemplate").and_then(|t| t.get("spec"));
    match job {
        None => out.push(v::required("spec.jobTemplate.spec", "")),
        Some(job) => {
            if let Some(m) = job
                .get("manualSelector")
                .filter(|m| m.as_bool() == Some(true))
            {
                out.push(v::not_supported(
                    "spec.jobTemplate.spec.manualSelector",
                    m,
                    &["nil", "false"],
                ));
            }
            job_spec(job, "spec.jobTemplate.spec", &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        for ok in [
            "*/5 * * * *",
            "0 3 * * 1-5",
            "@hourly",
            "@every 1h30m",
            "0 0 1 jan,JUL sun",
            "15,45 */2 1-15 * ?",
        ] {
            assert_eq!(check_schedule(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_schedule("* * *"),
            Err("expected exactly 5 fields, found 3: [* * *]".into())
        );
        assert_eq!(
            check_schedule("61 * * * *"),
            Err("end of range (61) above maximum (59): 61".into())
        );
        assert_eq!(
            check_schedule("@often"),
            Err("unrecognized descriptor: @often".into())
        );
        assert!(
            check_schedule("x * * * *").is_err_and(|e| e.starts_with("failed to parse int from x"))
        );
        assert!(check_schedule("*/0 * * * *").is_err());
        assert!(check_schedule("5-1 * * * *").is_err());
        assert!(check_schedule("@every soon").is_err());
        assert!(check_schedule("TZ=UTC * * * * *").is_err());
    }

    #[test]
    fn cronjob_defaults_and_rules() {
        let mut cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        cronjob_defaults(&mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(
            cronjob_validate(&cj).is_empty(),
            "{:?}",
            cronjob_validate(&cj)
        );
        cj["spec"]["schedule"] = json!("every minute");
        cj["spec"]["timeZone"] = json!("Local");
        let fields: Vec<String> = cronjob_validate(&cj).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["spec.schedule", "spec.timeZone"]);
    }

    #[test]
    fn time_zones() {
        assert!(check_time_zone("UTC").is_ok());
        assert!(check_time_zone("").is_err());
        assert!(check_time_zone("Local").is_err());
        assert!(check_time_zone("../etc").is_err());
    }
}
