//! PodSpec validation shared by pods and pod templates (upstream's
//! `ValidatePodSpec` and the container, volume and toleration rules it
//! calls). Field paths are relative to where the spec sits: `spec` for a
//! pod, `spec.template.spec` for a deployment.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::container::validate_container;
use super::json::{list, text};
use super::rules::{self, idx};
use crate::api::validation::{self as v, FieldCause};

const FILE_MODE: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// A PodTemplateSpec under `path`: required, labels valid, spec valid.
pub(super) fn validate_template(tmpl: Option<&Value>, path: &str, out: &mut Vec<FieldCause>) {
    let Some(tmpl) = tmpl.filter(|t| !t.is_null()) else {
        out.push(v::required(path, ""));
        return;
    };
    let meta = tmpl.get("metadata").unwrap_or(&Value::Null);
    rules::labels(&format!("{path}.metadata.labels"), meta.get("labels"), out);
    validate_pod_spec(tmpl.get("spec"), &format!("{path}.spec"), out);
}

/// ValidatePodSpec.
pub(super) fn validate_pod_spec(spec: Option<&Value>, path: &str, out: &mut Vec<FieldCause>) {
    let Some(spec) = spec.filter(|s| s.is_object()) else {
        out.push(v::required(path, ""));
        return;
    };
    let volumes = validate_volumes(list(spec, "volumes"), &format!("{path}.volumes"), out);
    let mut names = HashSet::new();
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        validate_container(
            c,
            &idx(&format!("{path}.initContainers"), i),
            &volumes,
            &mut names,
            out,
        );
    }
    let containers = list(spec, "containers");
    if containers.is_empty() {
        out.push(v::required(&format!("{path}.containers"), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        validate_container(
            c,
            &idx(&format!("{path}.containers"), i),
            &volumes,
            &mut names,
            out,
        );
    }
    match spec.get("restartPolicy") {
        None | Some(Value::Null) => out.push(v::required(&format!("{path}.restartPolicy"), "")),
        Some(p) if matches!(p.as_str(), Some("Always" | "OnFailure" | "Never")) => {}
        Some(p) => out.push(v::not_supported(
            &format!("{path}.restartPolicy"),
            p,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if let Some(p) = spec
        .get("dnsPolicy")
        .filter(|p| !p.as_str().is_some_and(|s| dns.contains(&s)))
    {
        out.push(v::not_supported(&format!("{path}.dnsPolicy"), p, &dns));
    }
    if let Some(d) = spec.get("activeDeadlineSeconds").filter(|d| !d.is_null()) {
        if !d
            .as_i64()
            .is_some_and(|d| (1..=i64::from(i32::MAX)).contains(&d))
        {
            let field = format!("{path}.activeDeadlineSeconds");
            out.push(v::invalid(
                &field,
                d,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    if let Some(g) = spec
        .get("terminationGracePeriodSeconds")
        .filter(|g| !g.is_null() && !g.is_i64())
    {
        out.push(v::invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            g,
            "must be an integer",
        ));
    }
    rules::labels(
        &format!("{path}.nodeSelector"),
        spec.get("nodeSelector"),
        out,
    );
    for field in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let s = text(spec, field);
        if !s.is_empty() {
            let msgs = v::is_dns1123_subdomain(s);
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid(&format!("{path}.{field}"), &json!(s), m)),
            );
        }
    }
    for field in ["hostname", "subdomain"] {
        let s = text(spec, field);
        if !s.is_empty() {
            let msgs = v::is_dns1123_label(s);
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid(&format!("{path}.{field}"), &json!(s), m)),
            );
        }
    }
    for (i, t) in list(spec, "tolerations").iter().enumerate() {
        validate_toleration(t, &idx(&format!("{path}.tolerations"), i), out);
    }
}

/// Volume names, exactly one source, and the sources' required fields.
/// Returns the set of valid names for volumeMount checks.
fn validate_volumes(volumes: &[Value], path: &str, out: &mut Vec<FieldCause>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, vol) in volumes.iter().enumerate() {
        let at = idx(path, i);
        let name = text(vol, "name");
        if name.is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        } else {
            let msgs = v::is_dns1123_label(name);
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid(&format!("{at}.name"), &json!(name), m)),
            );
            if !names.insert(name.to_string()) {
                out.push(v::duplicate(&format!("{at}.name"), &json!(name)));
            }
        }
        let sources: Vec<&String> = vol
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| *k != "name")
            .collect();
        match sources.len() {
            0 => out.push(v::required(&at, "must specify a volume type")),
            1 => {}
            _ => out.push(v::forbidden(
                &format!("{at}.{}", sources[1]),
                "may not specify more than 1 volume type",
            )),
        }
        let needs = [
            ("secret", "secretName"),
            ("configMap", "name"),
            ("persistentVolumeClaim", "claimName"),
            ("hostPath", "path"),
            ("nfs", "server"),
            ("nfs", "path"),
        ];
        for (source, field) in needs {
            if let Some(s) = vol.get(source) {
                if text(s, field).is_empty() {
                    out.push(v::required(&format!("{at}.{source}.{field}"), ""));
                }
            }
        }
        if let Some(kind) = vol
            .get("hostPath")
            .and_then(|h| h.get("type"))
            .filter(|t| !t.is_null())
        {
            const TYPES: [&str; 8] = [
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if !kind.as_str().is_some_and(|k| TYPES.contains(&k)) {
                out.push(v::not_supported(
                    &format!("{at}.hostPath.type"),
                    kind,
                    &TYPES,
                ));
            }
        }
        for source in ["secret", "configMap", "downwardAPI", "projected"] {
            if let Some(mode) = vol
                .get(source)
                .and_then(|s| s.get("defaultMode"))
                .filter(|m| !m.is_null())
            {
                if !mode.as_i64().is_some_and(|m| (0..=0o777).contains(&m)) {
                    out.push(v::invalid(
                        &format!("{at}.{source}.defaultMode"),
                        mode,
                        FILE_MODE,
                    ));
                }
            }
        }
    }
    names
}

fn validate_toleration(t: &Value, path: &str, out: &mut Vec<FieldCause>) {
    let key = text(t, "key");
    if !key.is_empty() {
        out.extend(
            v::is_qualified_name(key)
                .iter()
                .map(|m| v::invalid(&format!("{path}.key"), &json!(key), m)),
        );
    }
    let op = t.get("operator").cloned().unwrap_or(json!(""));
    match op.as_str() {
        Some("Equal" | "") if key.is_empty() => out.push(v::invalid(
            &format!("{path}.operator"),
            &op,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        )),
        Some("Exists") if !text(t, "value").is_empty() => out.push(v::invalid(
            &format!("{path}.operator"),
            &json!(text(t, "value")),
            "value must be empty when `operator` is 'Exists'",
        )),
        Some("Equal" | "" | "Exists") => {}
        _ => out.push(v::not_supported(&format!("{path}.operator"), &op, &["Equal", "Exists"])),
    }
    let effect = text(t, "effect");
    let effects = ["NoExecute", "NoSchedule", "PreferNoSchedule"];
    if !effect.is_empty() && !effects.contains(&effect) {
        out.push(v::not_supported(
            &format!("{path}.effect"),
            &json!(effect),
            &effects,
        ));
    }
    if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
        let msg = "effect must be 'NoExecute' when `tolerationSeconds` is set";
        out.push(v::invalid(&format!("{path}.effect"), &json!(effect), msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes(spec: Value) -> Vec<String> {
        let mut out = Vec::new();
        validate_pod_spec(Some(&spec), "spec", &mut out);
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn ok_spec() -> Value {
        json!({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "containers": [{"name": "a", "image": "nginx"}]})
    }

    #[test]
    fn a_good_spec_passes() {
        assert!(causes(ok_spec()).is_empty());
    }

    #[test]
    fn each_rule_is_caught() {
        let mut s = ok_spec();
        s["containers"] = json!([]);
        assert_eq!(causes(s), ["spec.containers: Required value"]);
        let mut s = ok_spec();
        s["containers"] = json!([{"name": "a"}, {"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "ICMP"}]}]);
        let got = causes(s).join("\n");
        assert!(
            got.contains("spec.containers[0].image: Required value"),
            "{got}"
        );
        assert!(
            got.contains("spec.containers[1].name: Duplicate value"),
            "{got}"
        );
        assert!(
            got.contains("spec.containers[1].ports[0].containerPort: Invalid value"),
            "{got}"
        );
        assert!(
            got.contains("spec.containers[1].ports[0].protocol: Unsupported value"),
            "{got}"
        );
        let mut s = ok_spec();
        s["restartPolicy"] = json!("Sometimes");
        s["volumes"] = json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]);
        s["containers"][0]["volumeMounts"] = json!([{"name": "w", "mountPath": "/x"}]);
        let got = causes(s).join("\n");
        assert!(
            got.contains("spec.restartPolicy: Unsupported value"),
            "{got}"
        );
        assert!(
            got.contains("spec.volumes[1].name: Duplicate value"),
            "{got}"
        );
        assert!(
            got.contains("spec.containers[0].volumeMounts[0].name: Not found"),
            "{got}"
        );
    }

    #[test]
    fn junk_is_a_cause_not_a_panic() {
        assert!(!causes(json!("x")).is_empty());
        assert!(!causes(
            json!({"containers": [1, "a", null], "volumes": {"a": 1}, "tolerations": [3]})
        )
        .is_empty());
        let mut out = Vec::new();
        validate_template(None, "spec.template", &mut out);
        assert_eq!(out[0].field, "spec.template");
    }
}
