//! PriorityClass, PodDisruptionBudget, HorizontalPodAutoscaler
//! (autoscaling/v2) and Lease.

use serde_json::{json, Value};

use super::json::{child, default, default_str, existing, list, root, same, text};
use super::rules::{self, idx, int_or_percent};
use crate::api::validation::{self as v, FieldCause};

pub(super) fn priorityclass_defaults(obj: &mut Value) {
    if let Some(o) = root(obj) {
        default_str(o, "preemptionPolicy", "PreemptLowerPriority");
    }
}

pub(super) fn priorityclass_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let system = obj
        .get("metadata")
        .map(|m| text(m, "name"))
        .unwrap_or("")
        .starts_with("system-");
    match obj.get("value") {
        Some(val) if val.is_i64() => {
            if !system && val.as_i64().is_some_and(|n| n > 1_000_000_000) {
                out.push(v::forbidden(
                    "value",
                    "maximum allowed value of a user defined priority is 1000000000",
                ));
            }
        }
        Some(val) => out.push(v::invalid("value", val, "must be an integer")),
        None => out.push(v::required("value", "")),
    }
    let policies = ["Never", "PreemptLowerPriority"];
    if let Some(p) = obj
        .get("preemptionPolicy")
        .filter(|p| !p.as_str().is_some_and(|s| policies.contains(&s)))
    {
        out.push(v::not_supported("preemptionPolicy", p, &policies));
    }
    out
}

pub(super) fn priorityclass_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    if !same(new.get("value"), old.get("value")) {
        out.push(v::forbidden("value", "may not be changed in an update."));
    }
    if !same(new.get("preemptionPolicy"), old.get("preemptionPolicy")) {
        out.push(v::immutable(
            "preemptionPolicy",
            new.get("preemptionPolicy").unwrap_or(&Value::Null),
        ));
    }
    out
}

pub(super) fn pdb_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let set = |f: &str| spec.get(f).filter(|x| !x.is_null());
    if set("minAvailable").is_some() && set("maxUnavailable").is_some() {
        out.push(v::invalid(
            "spec",
            spec,
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for f in ["minAvailable", "maxUnavailable"] {
        if let Some(x) = set(f) {
            int_or_percent(&format!("spec.{f}"), x, &mut out);
        }
    }
    if let Some(sel) = set("selector") {
        rules::label_selector("spec.selector", sel, &mut out);
    }
    let policies = ["AlwaysAllow", "IfHealthyBudget"];
    if let Some(p) = set("unhealthyPodEvictionPolicy")
        .filter(|p| !p.as_str().is_some_and(|s| policies.contains(&s)))
    {
        out.push(v::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &policies,
        ));
    }
    out
}

/// autoscaling/v2 SetDefaults_HorizontalPodAutoscaler.
pub(super) fn hpa_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    let Some(behavior) = existing(spec, "behavior") else {
        return;
    };
    let scale_up = json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]);
    let scale_down = json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]);
    for (dir, window, policies) in [("scaleUp", 0, scale_up), ("scaleDown", 300, scale_down)] {
        if let Some(rules) = child(behavior, dir) {
            default(rules, "stabilizationWindowSeconds", json!(window));
            default_str(rules, "selectPolicy", "Max");
            default(rules, "policies", policies);
        }
    }
}

pub(super) fn hpa_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    for f in ["kind", "name"] {
        if text(target, f).is_empty() {
            out.push(v::required(&format!("spec.scaleTargetRef.{f}"), ""));
        }
    }
    let min = spec.get("minReplicas").and_then(Value::as_i64).unwrap_or(1);
    if min < 1 {
        out.push(v::invalid(
            "spec.minReplicas",
            &json!(min),
            "must be greater than or equal to 1",
        ));
    }
    match spec.get("maxReplicas").and_then(Value::as_i64) {
        None => out.push(v::required("spec.maxReplicas", "")),
        Some(max) if max < 1 => out.push(v::invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than 0",
        )),
        Some(max) if max < min => out.push(v::invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to `minReplicas`",
        )),
        Some(_) => {}
    }
    let kinds = [
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (i, m) in list(spec, "metrics").iter().enumerate() {
        let t = m.get("type").cloned().unwrap_or(json!(""));
        if !t.as_str().is_some_and(|s| kinds.contains(&s)) {
            out.push(v::not_supported(
                &format!("{}.type", idx("spec.metrics", i)),
                &t,
                &kinds,
            ));
        }
    }
    out
}

pub(super) fn lease_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(d) = spec.get("leaseDurationSeconds").filter(|d| !d.is_null()) {
        if d.as_i64().is_none_or(|d| d <= 0) {
            out.push(v::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
    }
    rules::non_negative(
        "spec.leaseTransitions",
        spec.get("leaseTransitions"),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_pdb_hpa_lease() {
        let mut pc = json!({"metadata": {"name": "high"}, "value": 1000});
        priorityclass_defaults(&mut pc);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        assert!(priorityclass_validate(&pc).is_empty());
        let mut changed = pc.clone();
        changed["value"] = json!(5);
        assert_eq!(
            priorityclass_validate_update(&changed, &pc)[0].field,
            "value"
        );
        assert_eq!(
            pdb_validate(&json!({"spec": {"minAvailable": 1, "maxUnavailable": "10%"}}))[0].field,
            "spec"
        );
        let mut hpa = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "behavior": {"scaleDown": {}}}});
        hpa_defaults(&mut hpa);
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(
            hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            300
        );
        assert!(hpa_validate(&hpa).is_empty());
        hpa["spec"]["maxReplicas"] = json!(0);
        assert_eq!(hpa_validate(&hpa)[0].field, "spec.maxReplicas");
        assert_eq!(
            lease_validate(&json!({"spec": {"leaseDurationSeconds": 0}}))[0].field,
            "spec.leaseDurationSeconds"
        );
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"rules": [1], "subjects": 2, "roleRef": 3, "spec": 4}),
            json!({"spec": {"behavior": 1, "metrics": [2]}}),
        ] {
            let mut j = junk.clone();
            priorityclass_defaults(&mut j);
            hpa_defaults(&mut j);
            for val in [
                priorityclass_validate,
                pdb_validate,
                hpa_validate,
                lease_validate,
            ] {
                val(&j);
            }
            priorityclass_validate_update(&j, &junk);
        }
    }
}
