//! A StatefulSet pod's stable identity (upstream `stateful_set_utils.go`):
//! its ordinal and name, labels, hostname, and the claims made from the
//! volume claim templates.

use serde_json::{json, Map, Value};

use crate::controllers::objects::{self, name, namespace};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// Splits `<parent>-<ordinal>`; None when the name has no ordinal.
pub fn parent_and_ordinal(pod_name: &str) -> Option<(&str, i64)> {
    let (parent, ordinal) = pod_name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

pub fn ordinal(pod: &Value) -> Option<i64> {
    parent_and_ordinal(name(pod)).map(|(_, o)| o)
}

/// Whether `pod` is named as a member of `set` (upstream `isMemberOf`).
pub fn is_member(set: &Value, pod: &Value) -> bool {
    parent_and_ordinal(name(pod)).is_some_and(|(p, _)| p == name(set))
}

fn spec_i64(set: &Value, pointer: &str, default: i64) -> i64 {
    set.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

pub fn replicas(set: &Value) -> i64 {
    spec_i64(set, "/spec/replicas", 1).max(0)
}

pub fn start_ordinal(set: &Value) -> i64 {
    spec_i64(set, "/spec/ordinals/start", 0).max(0)
}

/// The ordinals the set should have: start ..= start + replicas - 1.
pub fn in_range(set: &Value, ordinal: i64) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start + replicas(set)
}

pub fn pod_name(set: &Value, ordinal: i64) -> String {
    format!("{}-{ordinal}", name(set))
}

pub fn claim_name(template_name: &str, set: &Value, ordinal: i64) -> String {
    format!("{template_name}-{}-{ordinal}", name(set))
}

pub fn revision_of(pod: &Value) -> &str {
    objects::labels(pod)
        .and_then(|l| l.get(REVISION_LABEL))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Upstream `identityMatches`.
pub fn identity_matches(set: &Value, pod: &Value) -> bool {
    let Some((parent, ord)) = parent_and_ordinal(name(pod)) else {
        return false;
    };
    parent == name(set)
        && name(pod) == pod_name(set, ord)
        && namespace(pod) == namespace(set)
        && objects::labels(pod)
            .and_then(|l| l.get(POD_NAME_LABEL))
            .and_then(Value::as_str)
            == Some(name(pod))
}

/// The labels `updateIdentity` sets, as a merge patch.
pub fn identity_patch(pod: &Value) -> Value {
    let ord = ordinal(pod).unwrap_or(0);
    json!({"metadata": {"labels": {
        POD_NAME_LABEL: name(pod),
        POD_INDEX_LABEL: ord.to_string(),
    }}})
}

fn claim_templates(set: &Value) -> &[Value] {
    set.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The claims of ordinal `ord`: (template name, claim object), each with
/// the template's labels plus the selector's matchLabels.
pub fn claims(set: &Value, ord: i64) -> Vec<(String, Value)> {
    let match_labels = set
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|template| {
            let tname = name(template).to_string();
            let mut claim = template.clone();
            if let Some(c) = claim.as_object_mut() {
                c.remove("status");
                c.insert("apiVersion".into(), "v1".into());
                c.insert("kind".into(), "PersistentVolumeClaim".into());
            }
            let meta = &mut claim["metadata"];
            meta["name"] = claim_name(&tname, set, ord).into();
            meta["namespace"] = namespace(set).into();
            let mut labels = meta
                .get("labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.extend(match_labels.clone());
            meta["labels"] = Value::Object(labels);
            (tname, claim)
        })
        .collect()
}

/// Upstream `storageMatches`: every claim template has a volume of its
/// name referring to this ordinal's claim.
pub fn storage_matches(set: &Value, pod: &Value) -> bool {
    let Some(ord) = ordinal(pod) else {
        return false;
    };
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    claim_templates(set).iter().all(|t| {
        let want = claim_name(name(t), set, ord);
        volumes.iter().any(|v| {
            v.get("name").and_then(Value::as_str) == Some(name(t))
                && v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
                    == Some(want.as_str())
        })
    })
}

/// Whether a pod created now at `ord` gets the current revision rather
/// than the update revision: below the partition (or, without rolling
/// update parameters, below the current replica count), as upstream
/// `newVersionedStatefulSetPod`.
pub fn created_at_current(set: &Value, ord: i64) -> bool {
    let start = start_ordinal(set);
    let rolling = set
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete");
    let ru = set
        .pointer("/spec/updateStrategy/rollingUpdate")
        .filter(|v| !v.is_null());
    let current_replicas = spec_i64(set, "/status/currentReplicas", 0);
    let partition = ru
        .and_then(|r| r.get("partition"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    (rolling && ru.is_none() && ord < start + current_replicas)
        || (ru.is_some() && ord < start + partition)
}

/// A new pod of `set` (whose template is the one of the wanted revision)
/// at `ord`, labelled with `revision` (upstream `newStatefulSetPod`).
pub fn new_pod(set: &Value, ord: i64, revision: &str) -> Value {
    let template = set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let pname = pod_name(set, ord);
    let mut pod = objects::pod_from_template(&template, set, Some(&pname));
    let mut labels: Map<String, Value> = objects::labels(&pod).cloned().unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), pname.clone().into());
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string().into());
    labels.insert(REVISION_LABEL.into(), revision.into());
    pod["metadata"]["labels"] = Value::Object(labels);
    let spec = &mut pod["spec"];
    spec["hostname"] = pname.into();
    if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str) {
        if !service.is_empty() {
            spec["subdomain"] = service.into();
        }
    }
    // Claim volumes first, then the template's volumes of other names.
    let claims = claims(set, ord);
    let mut volumes: Vec<Value> = claims
        .iter()
        .map(|(tname, claim)| {
            json!({"name": tname, "persistentVolumeClaim": {"claimName": name(claim)}})
        })
        .collect();
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    volumes.extend(existing.into_iter().filter(|v| {
        let vname = v.get("name").and_then(Value::as_str).unwrap_or("");
        !claims.iter().any(|(t, _)| t == vname)
    }));
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "s1"},
            "spec": {"replicas": 3, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}],
                        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}},
                    "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}]}})
    }

    #[test]
    fn ordinals_parse_from_names() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        let set = sts();
        assert!(is_member(&set, &json!({"metadata": {"name": "web-4"}})));
        assert!(!is_member(&set, &json!({"metadata": {"name": "webb-4"}})));
    }

    #[test]
    fn ranges_follow_replicas_and_start() {
        let mut set = sts();
        assert!(in_range(&set, 0) && in_range(&set, 2) && !in_range(&set, 3));
        set["spec"]["ordinals"] = json!({"start": 5});
        assert!(!in_range(&set, 4) && in_range(&set, 5) && in_range(&set, 7));
        assert!(!in_range(&set, 8));
    }

    #[test]
    fn new_pods_carry_identity_and_claims() {
        let set = sts();
        let pod = new_pod(&set, 1, "web-abc");
        assert_eq!(pod["metadata"]["name"], "web-1");
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels[POD_NAME_LABEL], "web-1");
        assert_eq!(labels[POD_INDEX_LABEL], "1");
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        assert_eq!(pod["spec"]["hostname"], "web-1");
        assert_eq!(pod["spec"]["subdomain"], "nginx");
        let vols = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["persistentVolumeClaim"]["claimName"], "data-web-1");
        assert_eq!(vols[1]["name"], "tmp");
        assert!(identity_matches(&set, &pod));
        assert!(storage_matches(&set, &pod));
        assert!(objects::is_controlled_by(&pod, "s1"));
    }

    #[test]
    fn pods_below_the_partition_are_created_at_the_current_revision() {
        let mut set = sts();
        set["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        assert!(created_at_current(&set, 1));
        assert!(!created_at_current(&set, 2));
        set["spec"]["ordinals"] = json!({"start": 3});
        assert!(created_at_current(&set, 4) && !created_at_current(&set, 5));
        set["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(!created_at_current(&set, 3));
        set["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
        set["status"] = json!({"currentReplicas": 1});
        assert!(created_at_current(&set, 3) && !created_at_current(&set, 4));
    }

    #[test]
    fn claims_merge_selector_labels() {
        let set = sts();
        let c = claims(&set, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "data");
        let claim = &c[0].1;
        assert_eq!(claim["metadata"]["name"], "data-web-2");
        assert_eq!(claim["metadata"]["namespace"], "ns");
        assert_eq!(claim["metadata"]["labels"]["tier"], "db");
        assert_eq!(claim["metadata"]["labels"]["app"], "web");
        assert!(claim.get("status").is_none());
    }
}
