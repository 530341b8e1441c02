//! Conversions between versions that share storage: autoscaling/v1 ↔ v2
//! HorizontalPodAutoscaler (stored as v2) and events.k8s.io/v1 ↔ core/v1
//! Event (stored as core). Field mappings follow upstream's conversion.

use serde_json::{json, Map, Value};

use crate::api::registry::Strategy;

pub const HPA_V1: Strategy = Strategy {
    generation: true,
    to_storage: Some(hpa_v1_to_v2),
    from_storage: Some(hpa_v2_to_v1),
    ..Strategy::PLAIN
};

pub const EVENTS_V1: Strategy = Strategy {
    to_storage: Some(event_v1_to_core),
    from_storage: Some(event_core_to_v1),
    ..Strategy::PLAIN
};

/// Moves `from` of `src` to `to` of `dst` when present.
fn carry(src: &mut Map<String, Value>, from: &str, dst: &mut Map<String, Value>, to: &str) {
    if let Some(v) = src.remove(from) {
        dst.insert(to.to_string(), v);
    }
}

fn take_object(obj: &mut Value, field: &str) -> Map<String, Value> {
    match obj.get_mut(field).map(Value::take) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let mut spec = take_object(&mut obj, "spec");
    if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage") {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": cpu}}}]),
        );
    }
    let mut status = take_object(&mut obj, "status");
    if let Some(cpu) = status.remove("currentCPUUtilizationPercentage") {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": cpu}}}]),
        );
    }
    finish(obj, "autoscaling/v2", spec, status)
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let mut spec = take_object(&mut obj, "spec");
    let metrics = spec.remove("metrics");
    spec.remove("behavior");
    if let Some(cpu) = cpu_metric(metrics.as_ref(), "target") {
        spec.insert("targetCPUUtilizationPercentage".into(), cpu);
    }
    let mut status = take_object(&mut obj, "status");
    let current = status.remove("currentMetrics");
    status.remove("conditions");
    if let Some(cpu) = cpu_metric(current.as_ref(), "current") {
        status.insert("currentCPUUtilizationPercentage".into(), cpu);
    }
    finish(obj, "autoscaling/v1", spec, status)
}

/// The CPU utilization of a v2 metric list, as v1 expresses it.
fn cpu_metric(metrics: Option<&Value>, which: &str) -> Option<Value> {
    metrics?.as_array()?.iter().find_map(|m| {
        let resource = m.get("resource")?;
        (m.get("type")?.as_str()? == "Resource" && resource.get("name")?.as_str()? == "cpu")
            .then(|| resource.get(which)?.get("averageUtilization").cloned())
            .flatten()
    })
}

fn finish(
    mut obj: Value,
    api_version: &str,
    spec: Map<String, Value>,
    status: Map<String, Value>,
) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("spec".into(), Value::Object(spec));
        map.insert("status".into(), Value::Object(status));
    }
    obj
}

/// (events.k8s.io/v1 field, core/v1 field) pairs that only change name.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn event_v1_to_core(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut dst = Map::new();
    for (v1, core) in EVENT_RENAMES {
        carry(&mut src, v1, &mut dst, core);
    }
    if let Some(Value::Object(mut source)) = src.remove("deprecatedSource") {
        let mut s = Map::new();
        carry(&mut source, "component", &mut s, "component");
        carry(&mut source, "host", &mut s, "host");
        dst.insert("source".into(), Value::Object(s));
    }
    dst.extend(src);
    dst.insert("apiVersion".into(), "v1".into());
    Value::Object(dst)
}

fn event_core_to_v1(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut dst = Map::new();
    for (v1, core) in EVENT_RENAMES {
        carry(&mut src, core, &mut dst, v1);
    }
    if let Some(source) = src.remove("source") {
        if source.as_object().is_some_and(|m| !m.is_empty()) {
            dst.insert("deprecatedSource".into(), source);
        }
    }
    dst.extend(src);
    dst.insert("apiVersion".into(), "events.k8s.io/v1".into());
    Value::Object(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_round_trip_keeps_cpu_target() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "a"},
            "spec": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70,
                     "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
            "status": {"currentReplicas": 1, "desiredReplicas": 1}});
        let v2 = hpa_v1_to_v2(v1.clone());
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(hpa_v2_to_v1(v2), v1);
    }

    #[test]
    fn event_round_trip_renames_fields() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "count": 2,
            "reason": "Started", "source": {"component": "kubelet"}});
        let v1 = event_core_to_v1(core.clone());
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "hi");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert_eq!(event_v1_to_core(v1), core);
    }
}
