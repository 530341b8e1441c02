//! Reading CronJob objects (spec fields, the active list, times) and
//! building the Job for one scheduled time.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::controllers::objects;

pub const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub fn spec<'a>(cj: &'a Value, field: &str) -> Option<&'a Value> {
    cj.get("spec")?.get(field).filter(|v| !v.is_null())
}

pub fn active_refs(cj: &Value) -> Vec<Value> {
    cj.get("status")
        .and_then(|s| s.get("active"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn in_active(cj: &Value, job_uid: &str) -> bool {
    active_refs(cj)
        .iter()
        .any(|r| r.get("uid").and_then(Value::as_str) == Some(job_uid))
}

pub fn remove_active(cj: &mut Value, job_uid: &str) {
    let kept: Vec<Value> = active_refs(cj)
        .into_iter()
        .filter(|r| r.get("uid").and_then(Value::as_str) != Some(job_uid))
        .collect();
    cj["status"]["active"] = Value::Array(kept);
}

pub fn timestamp_at(obj: &Value, path: &[&str]) -> Option<Timestamp> {
    let mut v = obj;
    for p in path {
        v = v.get(*p)?;
    }
    v.as_str()?.parse().ok()
}

pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Job for one scheduled time: the template's labels, annotations and
/// spec, the scheduled time (in the CronJob's zone, else UTC), and a
/// controller reference.
pub fn job_from_template(cj: &Value, job_name: &str, scheduled: Timestamp) -> Value {
    let template = spec(cj, "jobTemplate");
    let meta = template.and_then(|t| t.get("metadata"));
    let copy = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut annotations: Map<String, Value> = copy("annotations");
    let zone = spec(cj, "timeZone")
        .and_then(Value::as_str)
        .and_then(|z| TimeZone::get(z).ok())
        .unwrap_or(TimeZone::UTC);
    let local = scheduled.to_zoned(zone);
    let when = if local.offset().seconds() == 0 {
        local.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    };
    annotations.insert(SCHEDULED_ANNOTATION.into(), json!(when));
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": objects::namespace(cj),
            "labels": copy("labels"),
            "annotations": annotations,
            "ownerReferences": [objects::controller_reference(cj)],
        },
        "spec": template.and_then(|t| t.get("spec")).cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_named_by_minute_and_carry_the_scheduled_time() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u1"},
            "spec": {"timeZone": "Europe/Berlin", "jobTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"template": {"spec": {"containers": []}}}}}});
        let t: Timestamp = "2024-06-01T10:00:00Z".parse().unwrap();
        let name = format!("hello-{}", t.as_second() / 60);
        let job = job_from_template(&cj, &name, t);
        assert_eq!(job["metadata"]["name"], "hello-28620600");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_ANNOTATION],
            "2024-06-01T12:00:00+02:00"
        );
        assert_eq!(job["metadata"]["labels"]["team"], "a");
        assert!(objects::is_controlled_by(&job, "u1"));
        let mut utc = cj.clone();
        utc["spec"]["timeZone"] = Value::Null;
        let job = job_from_template(&utc, &name, t);
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_ANNOTATION],
            "2024-06-01T10:00:00Z"
        );
    }

    #[test]
    fn active_list_edits() {
        let mut cj = json!({"status": {"active": [{"uid": "a"}, {"uid": "b"}]}});
        assert!(in_active(&cj, "a"));
        remove_active(&mut cj, "a");
        assert!(!in_active(&cj, "a") && in_active(&cj, "b"));
    }
}
