//! Pods: `SetDefaults_Pod`, the pod strategy's `PrepareForCreate` (initial
//! status with QoS class), what the default admission chain adds to every
//! pod (priority, default not-ready/unreachable tolerations), and
//! `ValidatePodUpdate`'s short list of mutable fields.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::json::{child, default, each_mut, existing, root, same, Obj};
use super::podcheck::validate_pod_spec;
use super::podspec::{default_pod_spec, CONTAINER_LISTS};
use super::rules::quantity_nanos;
use crate::api::validation::{self as v, FieldCause};

const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(super) fn defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default_pod_spec(spec);
    // Pods only (not templates): requests default to limits.
    for list in ["containers", "initContainers"] {
        for c in each_mut(spec, list) {
            let Some(res) = existing(c, "resources") else {
                continue;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                continue;
            };
            if let Some(requests) = child(res, "requests") {
                for (k, q) in limits {
                    requests.entry(k).or_insert(q);
                }
            }
        }
    }
    default(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            for c in each_mut(spec, list) {
                for port in each_mut(c, "ports") {
                    if port
                        .get("hostPort")
                        .is_none_or(|h| h.is_null() || h.as_i64() == Some(0))
                    {
                        let cp = port.get("containerPort").cloned().unwrap_or(Value::Null);
                        port.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
}

pub(super) fn prepare_create(obj: &mut Value) {
    let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
    let Some(o) = root(obj) else { return };
    let mirror = o
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some();
    if let Some(spec) = child(o, "spec") {
        admit(spec);
        if !mirror {
            admit_service_account(spec);
        }
    }
    let gated = o
        .get("spec")
        .and_then(|s| s.get("schedulingGates"))
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    let mut status = Map::new();
    status.insert("phase".into(), json!("Pending"));
    status.insert("qosClass".into(), json!(qos));
    if gated {
        status.insert(
            "conditions".into(),
            json!([{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastProbeTime": null, "lastTransitionTime": null}]),
        );
    }
    o.insert("status".into(), Value::Object(status));
}

/// What the default admission plugins add: Priority (priority and
/// preemptionPolicy) and DefaultTolerationSeconds (five minutes of
/// tolerance for not-ready and unreachable nodes).
fn admit(spec: &mut Obj) {
    if spec.get("priority").is_none_or(Value::is_null) {
        let priority = match spec.get("priorityClassName").and_then(Value::as_str) {
            Some("system-node-critical") => Some(2_000_001_000),
            Some("system-cluster-critical") => Some(2_000_000_000),
            None | Some("") => Some(0),
            Some(_) => None,
        };
        if let Some(p) = priority {
            spec.insert("priority".into(), json!(p));
        }
    }
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let mut tolerations = match spec.get("tolerations") {
        Some(Value::Array(t)) => t.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return,
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !covered {
            let seconds = crate::api::admission::default_toleration_seconds(key).unwrap_or(300);
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
    spec.insert("tolerations".into(), Value::Array(tolerations));
}

const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";

/// The ServiceAccount admission plugin: the account defaults to `default`
/// and, unless the pod opts out, every container mounts the projected
/// `kube-api-access-*` volume (bound token, cluster CA, namespace)
/// read-only where client libraries look for it. A container with its own
/// mount at that path keeps it. (The account's own
/// automountServiceAccountToken is not consulted: it needs a lookup.)
fn admit_service_account(spec: &mut Obj) {
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    if spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        == Some(false)
    {
        return;
    }
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vols| {
            vols.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
                .map(str::to_string)
        });
    let name = existing
        .clone()
        .unwrap_or_else(|| crate::api::meta::generated_name(TOKEN_VOLUME_PREFIX));
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        for c in each_mut(spec, list) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            if mounts.is_null() {
                *mounts = json!([]);
            }
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !taken {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if existing.is_some() || !needed {
        return;
    }
    let volume = json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}});
    match spec.entry("volumes").or_insert_with(|| json!([])) {
        Value::Array(vols) => vols.push(volume),
        other @ Value::Null => *other = json!([volume]),
        // A wrong type is left for validation to report.
        _ => {}
    }
}

/// Upstream's ComputePodQOS over cpu and memory of all containers.
pub(super) fn qos_class(spec: &Value) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    // Non-zero cpu and memory amounts of one resource list.
    let amounts = |list: Option<&'_ Value>| -> Vec<(&'static str, i128)> {
        ["cpu", "memory"]
            .into_iter()
            .filter_map(|name| {
                let n = list?.get(name).and_then(quantity_nanos)?;
                (n != 0).then_some((name, n))
            })
            .collect()
    };
    let containers = ["containers", "initContainers"]
        .into_iter()
        .flat_map(|l| super::json::list(spec, l));
    for c in containers {
        let res = c.get("resources");
        for (name, n) in amounts(res.and_then(|r| r.get("requests"))) {
            *requests.entry(name).or_default() += n;
        }
        let found = amounts(res.and_then(|r| r.get("limits")));
        if found.len() < 2 {
            guaranteed = false;
        }
        for (name, n) in found {
            *limits.entry(name).or_default() += n;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests == limits {
        return "Guaranteed";
    }
    "Burstable"
}

pub(super) fn validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    validate_pod_spec(obj.get("spec"), "spec", &mut out);
    out
}

pub(super) fn validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let (Some(new_spec), Some(old_spec)) = (new.get("spec"), old.get("spec")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let count = |s: &Value| s.get("containers").and_then(Value::as_array).map(Vec::len);
    if count(new_spec) != count(old_spec) {
        out.push(v::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        ));
        return out;
    }
    let deadline = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (
        deadline,
        old_spec
            .get("activeDeadlineSeconds")
            .and_then(Value::as_i64),
    ) {
        (Some(n), Some(o)) if n > o => out.push(v::invalid(
            "spec.activeDeadlineSeconds",
            &json!(n),
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => out.push(v::invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let old_tolerations = super::json::list(old_spec, "tolerations");
    let new_tolerations = super::json::list(new_spec, "tolerations");
    let loose = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    if old_tolerations
        .iter()
        .any(|o| !new_tolerations.iter().any(|n| loose(n) == loose(o)))
    {
        out.push(v::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    let mut munged = new_spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in CONTAINER_LISTS.into_iter().take(2) {
            for (i, c) in each_mut(m, list).enumerate() {
                let image = old_spec
                    .get(list)
                    .and_then(|l| l.get(i))
                    .and_then(|c| c.get("image"))
                    .cloned();
                match image {
                    Some(img) => c.insert("image".into(), img),
                    None => c.remove("image"),
                };
            }
        }
        let grace = |s: &Value| {
            s.get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        };
        let keep_old = ["activeDeadlineSeconds", "tolerations", "schedulingGates"];
        let grace_fixed = grace(old_spec).is_some_and(|g| g < 0) && grace(new_spec) == Some(1);
        for field in keep_old
            .into_iter()
            .chain(grace_fixed.then_some("terminationGracePeriodSeconds"))
        {
            // Scheduling gates may only be removed, never added.
            if field == "schedulingGates" && !removed_only(new_spec.get(field), old_spec.get(field))
            {
                continue;
            }
            match old_spec.get(field) {
                Some(x) => m.insert(field.to_string(), x.clone()),
                None => m.remove(field),
            };
        }
    }
    if !same(Some(&munged), Some(old_spec)) {
        out.push(v::forbidden(
            "spec",
            &format!("{UPDATE_FORBIDDEN}\n{}", diff(old_spec, &munged)),
        ));
    }
    out
}

/// Whether `new` keeps only entries of `old`.
fn removed_only(new: Option<&Value>, old: Option<&Value>) -> bool {
    let old = old
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    new.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .all(|g| old.contains(g))
}

/// A short account of the spec fields that changed, standing in for the
/// struct diff upstream appends to the message.
fn diff(old: &Value, new: &Value) -> String {
    let keys = |x: &Value| {
        x.as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut all = keys(old);
    all.extend(keys(new));
    all.sort();
    all.dedup();
    all.iter()
        .filter(|k| !same(old.get(k.as_str()), new.get(k.as_str())))
        .map(|k| {
            let show = |x: Option<&Value>| x.map(Value::to_string).unwrap_or_else(|| "null".into());
            format!(
                "- {k}: {}\n+ {k}: {}",
                show(old.get(k.as_str())),
                show(new.get(k.as_str()))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(mut pod: Value) -> Value {
        defaults(&mut pod);
        prepare_create(&mut pod);
        pod
    }

    fn container(resources: Value) -> Value {
        json!({"name": "c", "image": "nginx:1", "resources": resources})
    }

    #[test]
    fn create_sets_status_and_admission_fields() {
        let pod = created(json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}}));
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(pod["spec"]["enableServiceLinks"], true);
        assert_eq!(pod["spec"]["priority"], 0);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert!(validate(&pod).is_empty());
    }

    #[test]
    fn qos_classes_follow_upstream() {
        let guaranteed = created(
            json!({"spec": {"containers": [container(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))]}}),
        );
        assert_eq!(
            guaranteed["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(guaranteed["status"]["qosClass"], "Guaranteed");
        let burstable = created(
            json!({"spec": {"containers": [container(json!({"requests": {"cpu": "100m"}}))]}}),
        );
        assert_eq!(burstable["status"]["qosClass"], "Burstable");
        let mixed = created(json!({"spec": {"containers": [
            container(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            container(json!({}))]}}));
        assert_eq!(mixed["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn updates_allow_only_the_listed_fields() {
        let old = created(json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        assert!(validate_update(&new, &old).is_empty());
        new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
        let causes = validate_update(&new, &old);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .contains("pod updates may not change fields other than"));
        let mut fewer = old.clone();
        fewer["spec"]["containers"] = json!([]);
        assert_eq!(validate_update(&fewer, &old)[0].field, "spec.containers");
        let mut dropped = old.clone();
        dropped["spec"]["tolerations"] = json!([]);
        assert_eq!(validate_update(&dropped, &old)[0].field, "spec.tolerations");
    }

    #[test]
    fn service_account_admission_mounts_the_token_volume() {
        let pod = created(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "a", "image": "x"},
                {"name": "b", "image": "x", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "own", "emptyDir": {}}]}}));
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        let vol = &spec["volumes"][1];
        let name = vol["name"].as_str().unwrap();
        assert!(
            name.starts_with(TOKEN_VOLUME_PREFIX) && name.len() == 21,
            "{name}"
        );
        assert_eq!(
            vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        for c in [&spec["initContainers"][0], &spec["containers"][0]] {
            assert_eq!(
                c["volumeMounts"][0],
                json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})
            );
        }
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let off = created(
            json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "sa",
            "automountServiceAccountToken": false, "containers": [{"name": "a", "image": "x"}]}}),
        );
        assert_eq!(off["spec"]["serviceAccountName"], "sa");
        assert!(off["spec"]["containers"][0].get("volumeMounts").is_none());
        assert!(off["spec"]["volumes"]
            .as_array()
            .is_none_or(|v| v.is_empty()));
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!("x"),
            json!({"spec": 4}),
            json!({"spec": {"tolerations": "x", "containers": [{"resources": 1}]}}),
        ] {
            let mut j = junk.clone();
            defaults(&mut j);
            prepare_create(&mut j);
            validate(&j);
            validate_update(&j, &junk);
        }
    }
}
