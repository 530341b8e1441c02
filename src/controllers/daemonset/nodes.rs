//! Which nodes a DaemonSet runs on (upstream `NodeShouldRunDaemonPod`):
//! the node name, node selector and required node affinity must match,
//! and every NoSchedule/NoExecute taint must be tolerated, counting the
//! tolerations DaemonSet pods always get.

use serde_json::{json, Value};

use crate::controllers::objects;

/// Added to every DaemonSet pod (upstream `AddOrUpdateDaemonPodTolerations`):
/// daemons survive node problems and run on cordoned nodes.
pub fn add_default_tolerations(spec: &mut Value) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, effect) in wanted {
        let t = json!({"key": key, "operator": "Exists", "effect": effect});
        // Same key, operator, value and effect: replaced in place.
        let same = |o: &Value| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|k| str_at(o, k) == str_at(&t, k))
        };
        match tolerations.iter_mut().find(|o| same(o)) {
            Some(existing) => *existing = t,
            None => tolerations.push(t),
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_at(toleration, "effect");
    if !effect.is_empty() && effect != str_at(taint, "effect") {
        return false;
    }
    let key = str_at(toleration, "key");
    if !key.is_empty() && key != str_at(taint, "key") {
        return false;
    }
    match str_at(toleration, "operator") {
        "" | "Equal" => str_at(toleration, "value") == str_at(taint, "value"),
        "Exists" => true,
        _ => false,
    }
}

/// Whether some taint with an effect in `effects` is tolerated by none of
/// the tolerations.
pub fn has_untolerated_taint(node: &Value, tolerations: &[Value], effects: &[&str]) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|t| effects.contains(&str_at(t, "effect")))
        .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// One node selector requirement against the node's labels or fields.
fn requirement_matches(req: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let as_int = |s: &str| s.parse::<i64>().ok();
    match str_at(req, "operator") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => !value.is_some_and(|v| values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                value.and_then(as_int),
                values.first().and_then(|b| as_int(b)),
            ) else {
                return false;
            };
            if str_at(req, "operator") == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// A node selector term: all its expressions and fields match; an empty
/// term matches nothing.
fn term_matches(term: &Value, node: &Value) -> bool {
    let list = |k: &str| {
        term.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (exprs, fields) = (list("matchExpressions"), list("matchFields"));
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = objects::labels(node);
    exprs.iter().all(|r| {
        let v = labels
            .and_then(|l| l.get(str_at(r, "key")))
            .and_then(Value::as_str);
        requirement_matches(r, v)
    }) && fields.iter().all(|r| {
        let v = (str_at(r, "key") == "metadata.name").then(|| objects::name(node));
        requirement_matches(r, v)
    })
}

/// The pod's nodeSelector and required node affinity (upstream
/// `GetRequiredNodeAffinity(pod).Match(node)`).
pub fn affinity_matches(spec: &Value, node: &Value) -> bool {
    let labels = objects::labels(node);
    let selector_ok = spec
        .get("nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| {
            sel.iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        });
    if !selector_ok {
        return false;
    }
    match spec.pointer(
        "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
    ) {
        Some(Value::Array(terms)) => terms.iter().any(|t| term_matches(t, node)),
        _ => true,
    }
}

/// (should run, should continue running) for the DaemonSet's pod
/// template on `node`.
pub fn should_run(ds: &Value, node: &Value) -> (bool, bool) {
    let mut spec = ds
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let node_name = str_at(&spec, "nodeName");
    if !node_name.is_empty() && node_name != objects::name(node) {
        return (false, false);
    }
    if !affinity_matches(&spec, node) {
        return (false, false);
    }
    add_default_tolerations(&mut spec);
    let tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if has_untolerated_taint(node, &tolerations, &["NoSchedule", "NoExecute"]) {
        // Running daemons stay unless a NoExecute taint evicts them.
        return (
            false,
            !has_untolerated_taint(node, &tolerations, &["NoExecute"]),
        );
    }
    (true, true)
}

/// Pins a pod to `node` by required affinity `metadata.name In [node]`,
/// replacing any required terms (upstream
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`); the scheduler binds it.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let terms = json!([{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node]}]}]);
    if !spec.get("affinity").is_some_and(Value::is_object) {
        spec["affinity"] = json!({});
    }
    let affinity = &mut spec["affinity"];
    if !affinity.get("nodeAffinity").is_some_and(Value::is_object) {
        affinity["nodeAffinity"] = json!({});
    }
    let na = &mut affinity["nodeAffinity"];
    let req = "requiredDuringSchedulingIgnoredDuringExecution";
    if !na.get(req).is_some_and(Value::is_object) {
        na[req] = json!({});
    }
    na[req]["nodeSelectorTerms"] = terms;
}

/// The node a daemon pod is for: its nodeName, else its pinned affinity.
pub fn target_node(pod: &Value) -> Option<&str> {
    if let Some(n) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Some(n);
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    terms.iter().find_map(|t| {
        t.get("matchFields")?.as_array()?.iter().find_map(|f| {
            let values = f.get("values")?.as_array()?;
            (str_at(f, "key") == "metadata.name"
                && str_at(f, "operator") == "In"
                && values.len() == 1)
                .then(|| values[0].as_str())
                .flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    fn ds(spec: Value) -> Value {
        json!({"spec": {"template": {"spec": spec}}})
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = json!({"key": "dedicated", "value": "special", "effect": "NoSchedule"});
        assert!(tolerates(
            &json!({"key": "dedicated", "value": "special"}),
            &taint
        ));
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Equal", "value": "special", "effect": "NoSchedule"}),
            &taint
        ));
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Exists"}),
            &taint
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(!tolerates(
            &json!({"key": "dedicated", "value": "other"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "other", "operator": "Exists"}),
            &taint
        ));
    }

    #[test]
    fn default_tolerations_are_added_once() {
        let mut spec = json!({"hostNetwork": true, "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
            {"key": "x", "operator": "Exists"}]});
        add_default_tolerations(&mut spec);
        add_default_tolerations(&mut spec);
        let t = spec["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(t[1]["key"], "x");
        assert_eq!(t[7]["key"], "node.kubernetes.io/network-unavailable");
        let mut plain = json!({});
        add_default_tolerations(&mut plain);
        assert_eq!(plain["tolerations"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn eligibility_follows_taints_selectors_and_affinity() {
        let clean = node("a", json!({"disk": "ssd"}), json!([]));
        let tainted = node(
            "b",
            json!({}),
            json!([{"key": "dedicated", "value": "special", "effect": "NoSchedule"}]),
        );
        let evicting = node("c", json!({}), json!([{"key": "k", "effect": "NoExecute"}]));
        let cordoned = node(
            "d",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        let plain = ds(json!({}));
        assert_eq!(should_run(&plain, &clean), (true, true));
        assert_eq!(should_run(&plain, &tainted), (false, true));
        assert_eq!(should_run(&plain, &evicting), (false, false));
        assert_eq!(should_run(&plain, &cordoned), (true, true));
        let tolerant = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        assert_eq!(should_run(&tolerant, &tainted), (true, true));
        let picky = ds(json!({"nodeSelector": {"disk": "ssd"}}));
        assert_eq!(should_run(&picky, &clean), (true, true));
        assert_eq!(should_run(&picky, &cordoned), (false, false));
        let affine = ds(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}}}}),
        );
        assert_eq!(should_run(&affine, &clean), (false, false));
        assert!(!should_run(&affine, &evicting).0);
        let named = ds(json!({"nodeName": "a"}));
        assert_eq!(should_run(&named, &clean), (true, true));
        assert_eq!(should_run(&named, &tainted), (false, false));
    }

    #[test]
    fn requirements_cover_every_operator() {
        let req = |op: &str, values: Value| json!({"key": "k", "operator": op, "values": values});
        assert!(requirement_matches(&req("Gt", json!(["3"])), Some("4")));
        assert!(!requirement_matches(&req("Lt", json!(["3"])), Some("4")));
        assert!(!requirement_matches(&req("Gt", json!(["3"])), None));
        assert!(requirement_matches(&req("DoesNotExist", json!([])), None));
        assert!(requirement_matches(&req("NotIn", json!(["a"])), None));
    }

    #[test]
    fn pods_are_pinned_by_affinity_not_node_name() {
        let mut spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}});
        pin_to_node(&mut spec, "n1");
        let pod = json!({"spec": spec});
        assert_eq!(target_node(&pod), Some("n1"));
        assert!(pod["spec"].get("nodeName").is_none());
        assert_eq!(
            pod["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let mut empty = json!({});
        pin_to_node(&mut empty, "n2");
        assert_eq!(target_node(&json!({"spec": empty})), Some("n2"));
        assert_eq!(
            target_node(&json!({"spec": {"nodeName": "n3"}})),
            Some("n3")
        );
        assert_eq!(target_node(&json!({"spec": {}})), None);
    }
}
