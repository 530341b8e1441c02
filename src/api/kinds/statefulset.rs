//! apps/v1 StatefulSet: `SetDefaults_StatefulSet`, `ValidateStatefulSetSpec`
//! and the short list of spec fields an update may touch.

use serde_json::{json, Value};

use super::apps::selector_and_template;
use super::json::{child, default, default_str, each_mut, list, root, same};
use super::podspec::default_template_at;
use super::rules;
use crate::api::validation::{self as v, FieldCause};

const MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

pub(super) fn defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = child(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = child(strategy, "rollingUpdate") {
                default(ru, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(policy, "whenDeleted", "Retain");
        default_str(policy, "whenScaled", "Retain");
    }
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    for claim in each_mut(spec, "volumeClaimTemplates") {
        default_str(claim, "apiVersion", "v1");
        default_str(claim, "kind", "PersistentVolumeClaim");
        super::storage::claim_defaults(claim);
    }
    default_template_at(spec, "template");
}

pub(super) fn validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for field in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        rules::non_negative(&format!("spec.{field}"), spec.get(field), &mut out);
    }
    match spec.get("podManagementPolicy") {
        None | Some(Value::Null) => out.push(v::required("spec.podManagementPolicy", "")),
        Some(p) if matches!(p.as_str(), Some("OrderedReady" | "Parallel")) => {}
        Some(p) => out.push(v::not_supported(
            "spec.podManagementPolicy",
            p,
            &["OrderedReady", "Parallel"],
        )),
    }
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match strategy.get("type").and_then(Value::as_str) {
        None | Some("") => out.push(v::required("spec.updateStrategy", "")),
        Some("OnDelete") => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                out.push(v::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    strategy.get("rollingUpdate").unwrap_or(&Value::Null),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            let partition = strategy
                .get("rollingUpdate")
                .and_then(|r| r.get("partition"));
            rules::non_negative(
                "spec.updateStrategy.rollingUpdate.partition",
                partition,
                &mut out,
            );
        }
        Some(_) => out.push(v::not_supported(
            "spec.updateStrategy.type",
            strategy.get("type").unwrap_or(&Value::Null),
            &["OnDelete", "RollingUpdate"],
        )),
    }
    let policy = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .unwrap_or(&Value::Null);
    for field in ["whenDeleted", "whenScaled"] {
        if let Some(p) = policy
            .get(field)
            .filter(|p| !matches!(p.as_str(), Some("Retain" | "Delete")))
        {
            let path = format!("spec.persistentVolumeClaimRetentionPolicy.{field}");
            out.push(v::not_supported(&path, p, &["Retain", "Delete"]));
        }
    }
    for (i, claim) in list(spec, "volumeClaimTemplates").iter().enumerate() {
        let name = claim
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            out.push(v::required(
                &format!("spec.volumeClaimTemplates[{i}].metadata.name"),
                "",
            ));
        }
    }
    selector_and_template(
        spec,
        "statefulset",
        "activeDeadlineSeconds in StatefulSet is not Supported",
        &mut out,
    );
    out
}

pub(super) fn validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let fixed = |o: &Value| -> Value {
        let mut spec = o.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.as_object_mut() {
            m.retain(|k, _| !MUTABLE.contains(&k.as_str()));
        }
        spec
    };
    if same(Some(&fixed(new)), Some(&fixed(old))) {
        return Vec::new();
    }
    vec![v::forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        let mut s = json!({"spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        defaults(&mut s);
        s
    }

    #[test]
    fn defaults_match_upstream() {
        let s = sts();
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let claim = &s["spec"]["volumeClaimTemplates"][0];
        assert_eq!(claim["kind"], "PersistentVolumeClaim");
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        assert_eq!(claim["status"]["phase"], "Pending");
        assert!(validate(&s).is_empty(), "{:?}", validate(&s));
    }

    #[test]
    fn rules_and_update_limits() {
        let mut bad = sts();
        bad["spec"]["podManagementPolicy"] = json!("Random");
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        let fields: Vec<String> = validate(&bad).into_iter().map(|c| c.field).collect();
        assert!(fields.contains(&"spec.podManagementPolicy".to_string()));
        assert!(fields.contains(&"spec.template.spec.restartPolicy".to_string()));

        let old = sts();
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        assert!(validate_update(&scaled, &old).is_empty());
        let mut grown = old.clone();
        grown["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
            json!("2Gi");
        assert_eq!(validate_update(&grown, &old)[0].field, "spec");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"spec": {"updateStrategy": "x", "volumeClaimTemplates": [1]}}),
        ] {
            let mut j = junk.clone();
            defaults(&mut j);
            validate(&j);
            validate_update(&j, &junk);
        }
    }
}
