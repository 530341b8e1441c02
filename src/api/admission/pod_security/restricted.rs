//! The restricted checks, run after the baseline ones, with upstream's
//! reasons and details (the latest version of each: Windows pods are
//! spared the Linux-only ones).

use serde_json::Value;

use super::baseline::Check;
use super::fields::{
    added_capabilities, containers, containers_phrase, join_quote, name_of, pluralize, sc, setters,
    sorted_set, valid_seccomp, volumes,
};
use super::Violation;

/// In upstream's registration order.
pub(super) const CHECKS: &[Check] = &[
    allow_privilege_escalation,
    capabilities,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_profile,
];

/// `spec.os.name: windows`: the Linux-only checks pass (upstream 1.25+).
fn windows(spec: &Value) -> bool {
    spec.get("os")
        .and_then(|os| os.get("name"))
        .and_then(Value::as_str)
        == Some("windows")
}

fn allow_privilege_escalation(_meta: &Value, spec: &Value) -> Option<Violation> {
    if windows(spec) {
        return None;
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(|c| name_of(c).to_string())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn capabilities(_meta: &Value, spec: &Value) -> Option<Violation> {
    if windows(spec) {
        return None;
    }
    let (mut missing_drop, mut adding, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for c in containers(spec) {
        let Some(caps) = sc(c, "capabilities") else {
            missing_drop.push(name_of(c).to_string());
            continue;
        };
        let drops_all = caps
            .get("drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("ALL")));
        if !drops_all {
            missing_drop.push(name_of(c).to_string());
        }
        let forbidden: Vec<String> = added_capabilities(c)
            .filter(|cap| *cap != "NET_BIND_SERVICE")
            .map(str::to_string)
            .collect();
        if !forbidden.is_empty() {
            adding.push(name_of(c).to_string());
            added.extend(forbidden);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted_set(added))
        ));
    }
    if details.is_empty() {
        return None;
    }
    Violation::new("unrestricted capabilities", details.join("; "))
}

/// Volume sources the restricted level allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The sources upstream names, in the order it looks for them.
const NAMED_VOLUMES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let has = |v: &Value, field: &str| v.get(field).is_some_and(|s| !s.is_null());
    let (mut bad, mut kinds) = (Vec::new(), Vec::new());
    for v in volumes(spec) {
        if ALLOWED_VOLUMES.iter().any(|f| has(v, f)) {
            continue;
        }
        bad.push(name_of(v).to_string());
        let kind = NAMED_VOLUMES
            .iter()
            .find(|f| has(v, f))
            .unwrap_or(&"unknown");
        kinds.push(kind.to_string());
    }
    if bad.is_empty() {
        return None;
    }
    let kinds = sorted_set(kinds);
    Violation::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                kinds.len()
            ),
            join_quote(&kinds)
        ),
    )
}

fn run_as_non_root(_meta: &Value, spec: &Value) -> Option<Violation> {
    let pod = sc(spec, "runAsNonRoot").and_then(Value::as_bool);
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        match sc(c, "runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(name_of(c).to_string()),
            Some(true) => {}
            None if pod != Some(true) => implicit.push(name_of(c).to_string()),
            None => {}
        }
    }
    let who = setters(pod == Some(false), &explicit);
    if !who.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                who.join(" and ")
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    Violation::new(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    )
}

fn run_as_user(_meta: &Value, spec: &Value) -> Option<Violation> {
    let root = |holder: &Value| sc(holder, "runAsUser").and_then(Value::as_i64) == Some(0);
    let bad: Vec<String> = containers(spec)
        .filter(|c| root(c))
        .map(|c| name_of(c).to_string())
        .collect();
    let who = setters(root(spec), &bad);
    if who.is_empty() {
        return None;
    }
    Violation::new(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", who.join(" and ")),
    )
}

fn seccomp_profile(_meta: &Value, spec: &Value) -> Option<Violation> {
    if windows(spec) {
        return None;
    }
    let type_of = |p: &Value| {
        p.get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut values = Vec::new();
    let (mut pod_bad, mut pod_set) = (false, false);
    if let Some(p) = sc(spec, "seccompProfile") {
        if valid_seccomp(p) {
            pod_set = true;
        } else {
            pod_bad = true;
            values.push(type_of(p));
        }
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        match sc(c, "seccompProfile") {
            Some(p) if !valid_seccomp(p) => {
                explicit.push(name_of(c).to_string());
                values.push(type_of(p));
            }
            Some(_) => {}
            None if !pod_set => implicit.push(name_of(c).to_string()),
            None => {}
        }
    }
    let who = setters(pod_bad, &explicit);
    if !who.is_empty() {
        return Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                who.join(" and "),
                join_quote(&sorted_set(values))
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}
