//! batch/v1 Job: `SetDefaults_Job`, the job strategy's generated selector,
//! `ValidateJob` and the fields a job update may not touch. CronJob lives
//! in `cron.rs`.

use serde_json::{json, Map, Value};

use super::json::{child, default, existing, root, same, text};
use super::podcheck::validate_template;
use super::podspec::default_template_at;
use super::rules;
use crate::api::validation::{self as v, FieldCause};

const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_UID_LABEL: &str = "controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_NAME_LABEL: &str = "job-name";

pub(super) fn job_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    let Some(spec) = child(o, "spec") else { return };
    // A non-parallel job may leave both unset: both become 1.
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|b| !b.is_null());
    default(
        spec,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let failure_policy = spec.get("podFailurePolicy").is_some_and(|p| !p.is_null());
    default(
        spec,
        "podReplacementPolicy",
        json!(if failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(policy) = existing(spec, "podFailurePolicy") {
        for rule in super::json::each_mut(policy, "rules") {
            for cond in super::json::each_mut(rule, "onPodConditions") {
                super::json::default_str(cond, "status", "True");
            }
        }
    }
    default_template_at(spec, "template");
    copy_template_labels(o);
}

/// A job without labels takes its template's (SetDefaults_Job).
fn copy_template_labels(o: &mut Map<String, Value>) {
    let labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|l| !l.is_empty()))
        .cloned();
    if let (Some(labels), Some(meta)) = (labels, child(o, "metadata")) {
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), labels);
        }
    }
}

/// The job strategy's generateSelector: unless the selector is manual,
/// label the template with the job's uid and name and select on the uid.
/// Needs `metadata.uid`, which the create path assigns before this runs.
pub(super) fn job_prepare_create(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    let meta = o.get("metadata");
    let uid = meta
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let manual = o
        .get("spec")
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true);
    if uid.is_empty() || manual {
        return;
    }
    let Some(spec) = child(o, "spec") else { return };
    let labels = child(spec, "template")
        .and_then(|t| child(t, "metadata"))
        .and_then(|m| child(m, "labels"));
    if let Some(labels) = labels {
        for (key, value) in [
            (LEGACY_NAME_LABEL, &name),
            (NAME_LABEL, &name),
            (LEGACY_UID_LABEL, &uid),
            (UID_LABEL, &uid),
        ] {
            labels.entry(key).or_insert_with(|| json!(value));
        }
    }
    if let Some(match_labels) = child(spec, "selector").and_then(|s| child(s, "matchLabels")) {
        match_labels.entry(UID_LABEL).or_insert_with(|| json!(uid));
    }
    copy_template_labels(o);
}

pub(super) fn job_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => out.push(v::required("spec.selector", "")),
        Some(sel) => {
            rules::label_selector("spec.selector", sel, &mut out);
            let labels = spec
                .get("template")
                .and_then(|t| t.get("metadata"))
                .and_then(|m| m.get("labels"));
            if !rules::selector_matches(sel, labels) {
                out.push(v::invalid(
                    "spec.template.metadata.labels",
                    labels.unwrap_or(&Value::Null),
                    "`selector` does not match template `labels`",
                ));
            }
            let uid = obj.get("metadata").map(|m| text(m, "uid")).unwrap_or("");
            let selected = sel
                .get("matchLabels")
                .and_then(|m| m.get(UID_LABEL))
                .and_then(Value::as_str);
            if !manual && !uid.is_empty() && selected != Some(uid) {
                out.push(v::invalid(
                    "spec.selector",
                    sel,
                    "`selector` not auto-generated",
                ));
            }
        }
    }
    job_spec(spec, "spec", &mut out);
    out
}

/// validateJobSpec: counts, modes and the pod template.
pub(super) fn job_spec(spec: &Value, path: &str, out: &mut Vec<FieldCause>) {
    for field in [
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        rules::non_negative(&format!("{path}.{field}"), spec.get(field), out);
    }
    if let Some(d) = spec.get("activeDeadlineSeconds").filter(|d| !d.is_null()) {
        if d.as_i64().is_none_or(|d| d <= 0) {
            out.push(v::invalid(
                &format!("{path}.activeDeadlineSeconds"),
                d,
                "must be greater than zero",
            ));
        }
    }
    match spec.get("completionMode").and_then(Value::as_str) {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec.get("completions").is_none_or(Value::is_null) {
                out.push(v::required(
                    &format!("{path}.completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(_) => out.push(v::not_supported(
            &format!("{path}.completionMode"),
            spec.get("completionMode").unwrap_or(&Value::Null),
            &["NonIndexed", "Indexed"],
        )),
    }
    let replacement = spec.get("podReplacementPolicy");
    if let Some(p) = replacement
        .filter(|p| !p.is_null() && !matches!(p.as_str(), Some("Failed" | "TerminatingOrFailed")))
    {
        out.push(v::not_supported(
            &format!("{path}.podReplacementPolicy"),
            p,
            &["Failed", "TerminatingOrFailed"],
        ));
    }
    let template_path = format!("{path}.template");
    validate_template(spec.get("template"), &template_path, out);
    let restart = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("restartPolicy"));
    if let Some(p) = restart.filter(|p| !matches!(p.as_str(), Some("OnFailure" | "Never"))) {
        out.push(v::not_supported(
            &format!("{template_path}.spec.restartPolicy"),
            p,
            &["OnFailure", "Never"],
        ));
    }
}

pub(super) fn job_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    for field in [
        "selector",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
    ] {
        if !same(ns.get(field), os.get(field)) {
            out.push(v::immutable(
                &format!("spec.{field}"),
                ns.get(field).unwrap_or(&Value::Null),
            ));
        }
    }
    // Elastic indexed jobs may scale completions together with parallelism.
    let elastic = ns.get("completionMode").and_then(Value::as_str) == Some("Indexed")
        && ns
            .get("completions")
            .is_some_and(|c| Some(c) == ns.get("parallelism"));
    if !elastic && !same(ns.get("completions"), os.get("completions")) {
        out.push(v::immutable(
            "spec.completions",
            ns.get("completions").unwrap_or(&Value::Null),
        ));
    }
    // A suspended job that never started may still retarget its pods.
    let never_started = old
        .get("status")
        .and_then(|s| s.get("startTime"))
        .is_none_or(Value::is_null);
    let suspended = os.get("suspend").and_then(Value::as_bool) == Some(true);
    let scheduling = |t: Option<&Value>| -> Value {
        let mut t = t.cloned().unwrap_or(Value::Null);
        if suspended && never_started {
            if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(s) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for f in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                    s.remove(f);
                }
            }
        }
        t
    };
    if !same(
        Some(&scheduling(ns.get("template"))),
        Some(&scheduling(os.get("template"))),
    ) {
        out.push(v::immutable(
            "spec.template",
            ns.get("template").unwrap_or(&Value::Null),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut j = job();
        job_defaults(&mut j);
        job_prepare_create(&mut j);
        let s = &j["spec"];
        assert_eq!(
            (
                s["completions"].clone(),
                s["parallelism"].clone(),
                s["backoffLimit"].clone()
            ),
            (json!(1), json!(1), json!(6))
        );
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(s["selector"], json!({"matchLabels": {UID_LABEL: "u-1"}}));
        let labels = &s["template"]["metadata"]["labels"];
        assert_eq!(labels[NAME_LABEL], "pi");
        assert_eq!(labels[LEGACY_UID_LABEL], "u-1");
        assert_eq!(&j["metadata"]["labels"], labels);
        assert!(job_validate(&j).is_empty(), "{:?}", job_validate(&j));
    }

    #[test]
    fn job_rules() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        j["spec"]["parallelism"] = json!(-1);
        job_defaults(&mut j);
        job_prepare_create(&mut j);
        let fields: Vec<String> = job_validate(&j).into_iter().map(|c| c.field).collect();
        assert!(fields.contains(&"spec.template.spec.restartPolicy".to_string()));
        assert!(fields.contains(&"spec.parallelism".to_string()));

        let mut old = job();
        job_defaults(&mut old);
        job_prepare_create(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
        assert_eq!(job_validate_update(&new, &old)[0].field, "spec.template");
        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        let mut retarget = suspended.clone();
        retarget["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(job_validate_update(&retarget, &suspended).is_empty());
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"spec": 1}),
            json!({"metadata": 3, "spec": {"template": [], "jobTemplate": 2}}),
        ] {
            let mut j = junk.clone();
            job_defaults(&mut j);
            job_prepare_create(&mut j);
            job_validate(&j);
            job_validate_update(&j, &junk);
        }
    }
}
