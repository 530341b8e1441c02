//! apps/v1 Deployment, ReplicaSet and DaemonSet: `SetDefaults_*` from
//! `pkg/apis/apps/v1/defaults.go` and the spec rules of
//! `pkg/apis/apps/validation`. StatefulSet lives in `statefulset.rs`.

use serde_json::{json, Value};

use super::json::{child, default, default_str, root};
use super::podcheck::validate_template;
use super::podspec::default_template_at;
use super::rules::{self, int_or_percent};
use crate::api::validation::{self as v, FieldCause};

/// The selector/template rules every apps workload shares. `kind` names
/// the kind in upstream's messages ("deployment", "daemonset", ...).
pub(super) fn selector_and_template(
    spec: &Value,
    kind: &str,
    deadline_msg: &str,
    out: &mut Vec<FieldCause>,
) {
    let template = spec.get("template");
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => out.push(v::required("spec.selector", "")),
        Some(sel) => {
            rules::label_selector("spec.selector", sel, out);
            if rules::selector_empty(sel) {
                out.push(v::invalid(
                    "spec.selector",
                    sel,
                    &format!("empty selector is invalid for {kind}"),
                ));
            } else {
                let labels = template
                    .and_then(|t| t.get("metadata"))
                    .and_then(|m| m.get("labels"));
                if !rules::selector_matches(sel, labels) {
                    out.push(v::invalid(
                        "spec.template.metadata.labels",
                        labels.unwrap_or(&Value::Null),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    validate_template(template, "spec.template", out);
    let tspec = template.and_then(|t| t.get("spec")).unwrap_or(&Value::Null);
    if let Some(p) = tspec
        .get("restartPolicy")
        .filter(|p| p.as_str() != Some("Always"))
    {
        out.push(v::not_supported(
            "spec.template.spec.restartPolicy",
            p,
            &["Always"],
        ));
    }
    if let Some(d) = tspec.get("activeDeadlineSeconds").filter(|d| !d.is_null()) {
        if kind == "daemonset" {
            out.push(v::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                d,
                deadline_msg,
            ));
        } else {
            out.push(v::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                deadline_msg,
            ));
        }
    }
}

/// apps/v1 forbids selector changes on update.
pub(super) fn selector_immutable(new: &Value, old: &Value) -> Vec<FieldCause> {
    let pick = |o: &Value| o.get("spec").and_then(|s| s.get("selector")).cloned();
    let (n, o) = (pick(new), pick(old));
    if super::json::same(n.as_ref(), o.as_ref()) {
        Vec::new()
    } else {
        vec![v::immutable(
            "spec.selector",
            n.as_ref().unwrap_or(&Value::Null),
        )]
    }
}

pub(super) fn deployment_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default(spec, "replicas", json!(1));
    let Some(strategy) = child(spec, "strategy") else {
        return;
    };
    default_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        if let Some(ru) = child(strategy, "rollingUpdate") {
            default(ru, "maxUnavailable", json!("25%"));
            default(ru, "maxSurge", json!("25%"));
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    default_template_at(spec, "template");
}

pub(super) fn deployment_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for field in [
        "replicas",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
    ] {
        rules::non_negative(&format!("spec.{field}"), spec.get(field), &mut out);
    }
    selector_and_template(
        spec,
        "deployment",
        "activeDeadlineSeconds in ReplicaSet is not Supported",
        &mut out,
    );
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    match strategy.get("type").and_then(Value::as_str) {
        None | Some("") => out.push(v::required("spec.strategy.type", "")),
        Some("Recreate") => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                out.push(v::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") => rolling_update(
            strategy.get("rollingUpdate"),
            "spec.strategy.rollingUpdate",
            &mut out,
        ),
        Some(_) => out.push(v::not_supported(
            "spec.strategy.type",
            strategy.get("type").unwrap_or(&Value::Null),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let progress = spec.get("progressDeadlineSeconds").and_then(Value::as_i64);
    let ready = spec
        .get("minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if progress.is_some_and(|p| p <= ready) {
        out.push(v::invalid(
            "spec.progressDeadlineSeconds",
            spec.get("progressDeadlineSeconds").unwrap_or(&Value::Null),
            "must be greater than minReadySeconds",
        ));
    }
    out
}

/// maxUnavailable/maxSurge: counts or percentages, not both zero.
fn rolling_update(ru: Option<&Value>, path: &str, out: &mut Vec<FieldCause>) {
    let Some(ru) = ru.filter(|r| !r.is_null()) else {
        return;
    };
    let unavailable = ru
        .get("maxUnavailable")
        .filter(|x| !x.is_null())
        .and_then(|x| int_or_percent(&format!("{path}.maxUnavailable"), x, out));
    let surge = ru
        .get("maxSurge")
        .filter(|x| !x.is_null())
        .and_then(|x| int_or_percent(&format!("{path}.maxSurge"), x, out));
    if unavailable.is_some_and(|(n, _)| n == 0) && surge.is_none_or(|(n, _)| n == 0) {
        out.push(v::invalid(
            &format!("{path}.maxUnavailable"),
            ru.get("maxUnavailable").unwrap_or(&Value::Null),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

pub(super) fn replicaset_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default(spec, "replicas", json!(1));
    default_template_at(spec, "template");
}

pub(super) fn replicaset_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    rules::replica_counts(spec, &mut out);
    selector_and_template(
        spec,
        "deployment",
        "activeDeadlineSeconds in ReplicaSet is not Supported",
        &mut out,
    );
    out
}

pub(super) fn daemonset_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    if let Some(strategy) = child(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = child(strategy, "rollingUpdate") {
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default_template_at(spec, "template");
}

pub(super) fn daemonset_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    rules::non_negative(
        "spec.minReadySeconds",
        spec.get("minReadySeconds"),
        &mut out,
    );
    rules::non_negative(
        "spec.revisionHistoryLimit",
        spec.get("revisionHistoryLimit"),
        &mut out,
    );
    selector_and_template(
        spec,
        "daemonset",
        "activeDeadlineSeconds must be nil for daemons",
        &mut out,
    );
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match strategy.get("type").and_then(Value::as_str) {
        None | Some("") => out.push(v::required("spec.updateStrategy.type", "")),
        Some("OnDelete") => {}
        Some("RollingUpdate") => rolling_update(
            strategy.get("rollingUpdate"),
            "spec.updateStrategy.rollingUpdate",
            &mut out,
        ),
        Some(_) => out.push(v::not_supported(
            "spec.updateStrategy.type",
            strategy.get("type").unwrap_or(&Value::Null),
            &["OnDelete", "RollingUpdate"],
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_defaults_and_validation() {
        let mut d = deployment();
        deployment_defaults(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(
            deployment_validate(&d).is_empty(),
            "{:?}",
            deployment_validate(&d)
        );

        let mut bad = d.clone();
        bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "b"});
        bad["spec"]["replicas"] = json!(-1);
        bad["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        let fields: Vec<String> = deployment_validate(&bad)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(fields.contains(&"spec.template.metadata.labels".to_string()));
        assert!(fields.contains(&"spec.replicas".to_string()));
        assert!(fields.contains(&"spec.template.spec.containers[0].image".to_string()));

        let mut moved = d.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "b"}});
        assert_eq!(selector_immutable(&moved, &d)[0].field, "spec.selector");
        assert!(selector_immutable(&d, &d).is_empty());
    }

    #[test]
    fn missing_or_empty_selectors() {
        let mut d = deployment();
        d["spec"]["selector"] = json!({});
        deployment_defaults(&mut d);
        let msgs: Vec<String> = deployment_validate(&d)
            .into_iter()
            .map(|c| c.message)
            .collect();
        assert!(msgs
            .iter()
            .any(|m| m.contains("empty selector is invalid for deployment")));
        let mut r = deployment();
        r["spec"].as_object_mut().map(|s| s.remove("selector"));
        replicaset_defaults(&mut r);
        assert_eq!(replicaset_validate(&r)[0].field, "spec.selector");
    }

    #[test]
    fn daemonset_defaults_and_rules() {
        let mut ds = deployment();
        daemonset_defaults(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert!(daemonset_validate(&ds).is_empty());
        ds["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!(0);
        let fields: Vec<String> = daemonset_validate(&ds)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(fields.contains(&"spec.template.spec.restartPolicy".to_string()));
        assert!(fields.contains(&"spec.updateStrategy.rollingUpdate.maxUnavailable".to_string()));
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(1),
            json!({"spec": []}),
            json!({"spec": {"strategy": 3, "template": "x", "selector": 2}}),
        ] {
            for (d, val) in [
                (
                    deployment_defaults as fn(&mut Value),
                    deployment_validate as fn(&Value) -> Vec<FieldCause>,
                ),
                (replicaset_defaults, replicaset_validate),
                (daemonset_defaults, daemonset_validate),
            ] {
                let mut j = junk.clone();
                d(&mut j);
                val(&j);
            }
        }
    }
}
