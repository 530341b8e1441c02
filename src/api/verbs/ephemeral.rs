//! pods/ephemeralcontainers: the one way to add debugging containers to a
//! running pod. Reads answer the Pod; writes (PUT of a Pod, or a patch of
//! one) change `spec.ephemeralContainers` only, and only by adding, as
//! upstream's podEphemeralContainersStrategy.

use serde_json::{json, Value};

use super::patch::patch_error;
use super::update::pinned_version;
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::patch::{self, PatchType};
use crate::api::registry::Resource;
use crate::api::validation::{self as v, FieldCause};
use crate::api::{Api, WriteOptions};

const POD_DEFINITION: &str = "io.k8s.api.core.v1.Pod";
const SUBRESOURCE: &str = "ephemeralcontainers";
const NOT_ALLOWED: &str = "cannot be set for an Ephemeral Container";

/// EphemeralContainerCommon fields upstream refuses (its allow-list is the
/// complement: they would make the container part of the workload).
const DISALLOWED: [&str; 8] = [
    "ports",
    "resources",
    "resizePolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "restartPolicy",
];

impl Api {
    /// PUT: the body is the whole Pod; only its ephemeral containers count.
    pub async fn update_ephemeral_containers(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            if kind != "Pod" {
                return Err(ApiError::BadRequest(format!(
                    "Pod in version \"v1\" cannot be handled as a Pod: expected kind Pod, got {kind}"
                )));
            }
        }
        let pinned = pinned_version(&body)?;
        let wanted = ephemeral_list(&body);
        let rv = meta::meta_str(&body, "resourceVersion").map(str::to_string);
        let change = |old: &Value| take_ephemeral(r, name, old, wanted.clone(), rv.as_deref());
        self.guaranteed_update(r, namespace, name, pinned, opts, change, Some(SUBRESOURCE))
            .await
    }

    /// PATCH: the patch is applied to the Pod; only its ephemeral
    /// containers are kept from the result.
    pub(super) async fn patch_ephemeral_containers(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let change = |old: &Value| -> Result<Value, ApiError> {
            let patched =
                patch::apply(Some(POD_DEFINITION), old, patch_type, body).map_err(patch_error)?;
            let rv = meta::meta_str(&patched, "resourceVersion").map(str::to_string);
            take_ephemeral(r, name, old, ephemeral_list(&patched), rv.as_deref())
        };
        self.guaranteed_update(r, namespace, name, None, opts, change, Some(SUBRESOURCE))
            .await
    }
}

/// Upstream's ValidatePodCreate: ephemeral containers come only through
/// the subresource.
pub(super) fn create_causes(r: &Resource, obj: &Value) -> Vec<FieldCause> {
    let set = obj
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    if r.storage == "pods" && set {
        vec![v::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        )]
    } else {
        Vec::new()
    }
}

fn ephemeral_list(pod: &Value) -> Value {
    match pod.get("spec").and_then(|s| s.get("ephemeralContainers")) {
        Some(Value::Null) | None => Value::Array(Vec::new()),
        Some(list) => list.clone(),
    }
}

/// The old pod with the new ephemeral containers, defaulted and checked
/// (upstream's dropNonEphemeralContainerUpdates, then its validation).
fn take_ephemeral(
    r: &Resource,
    name: &str,
    old: &Value,
    wanted: Value,
    resource_version: Option<&str>,
) -> Result<Value, ApiError> {
    if !wanted.is_array() {
        return Err(ApiError::BadRequest(format!(
            "Pod in version \"v1\" cannot be handled as a Pod: spec.ephemeralContainers: expected an array, got {wanted}"
        )));
    }
    let mut new = old.clone();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return Err(ApiError::internal("stored pod without a spec"));
    };
    spec.insert("ephemeralContainers".into(), wanted);
    if let Some(rv) = resource_version.filter(|rv| !rv.is_empty()) {
        meta::meta_mut(&mut new).insert("resourceVersion".into(), rv.into());
    }
    // Defaults first, so a client echoing what it read compares equal.
    (r.strategy.defaults)(&mut new);
    let mut causes = Vec::new();
    if old
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        causes.push(v::forbidden(
            "",
            "static pods do not support ephemeral containers",
        ));
        return Err(ApiError::invalid(r, name, causes));
    }
    validate_containers(new.get("spec").unwrap_or(&Value::Null), &mut causes);
    validate_update(&new, old, &mut causes);
    if causes.is_empty() {
        Ok(new)
    } else {
        Err(ApiError::invalid(r, name, causes))
    }
}

fn list<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn text<'a>(c: &'a Value, key: &str) -> &'a str {
    c.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Go's zero value: absent, null, empty string, list or object.
fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => o.values().any(|x| is_set(Some(x))),
        Some(_) => true,
    }
}

/// Upstream's validateEphemeralContainers for the parts that differ from
/// other containers: names, target, allowed fields, no subPath.
fn validate_containers(spec: &Value, out: &mut Vec<FieldCause>) {
    let others: Vec<&str> = list(spec, "containers")
        .iter()
        .chain(list(spec, "initContainers"))
        .map(|c| text(c, "name"))
        .collect();
    let mut all: Vec<&str> = others.clone();
    let volumes: Vec<&str> = list(spec, "volumes")
        .iter()
        .map(|v| text(v, "name"))
        .collect();
    for (i, ec) in list(spec, "ephemeralContainers").iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        let name = text(ec, "name");
        if name.is_empty() {
            out.push(v::required(&format!("{path}.name"), ""));
        } else {
            for m in v::is_dns1123_label(name) {
                out.push(v::invalid(&format!("{path}.name"), &json!(name), &m));
            }
        }
        if text(ec, "image").is_empty() {
            out.push(v::required(&format!("{path}.image"), ""));
        }
        if !name.is_empty() {
            if all.contains(&name) {
                out.push(v::duplicate(&format!("{path}.name"), &json!(name)));
            } else {
                all.push(name);
            }
        }
        let target = text(ec, "targetContainerName");
        if !target.is_empty() && !others.contains(&target) {
            out.push(not_found(&format!("{path}.targetContainerName"), target));
        }
        for field in DISALLOWED {
            if is_set(ec.get(field)) {
                out.push(v::forbidden(&format!("{path}.{field}"), NOT_ALLOWED));
            }
        }
        for (j, m) in list(ec, "volumeMounts").iter().enumerate() {
            let mpath = format!("{path}.volumeMounts[{j}]");
            let vol = text(m, "name");
            if !vol.is_empty() && !volumes.contains(&vol) {
                out.push(not_found(&format!("{mpath}.name"), vol));
            }
            for field in ["subPath", "subPathExpr"] {
                if !text(m, field).is_empty() {
                    out.push(v::forbidden(&format!("{mpath}.{field}"), NOT_ALLOWED));
                }
            }
        }
    }
}

/// Upstream's ValidatePodEphemeralContainersUpdate: existing ephemeral
/// containers may be neither removed nor changed.
fn validate_update(new: &Value, old: &Value, out: &mut Vec<FieldCause>) {
    let empty = Value::Null;
    let new_list = list(new.get("spec").unwrap_or(&empty), "ephemeralContainers");
    let path = "spec.ephemeralContainers";
    for o in list(old.get("spec").unwrap_or(&empty), "ephemeralContainers") {
        let name = text(o, "name");
        match new_list.iter().find(|n| text(n, "name") == name) {
            None => out.push(v::forbidden(
                path,
                &format!(
                    "existing ephemeral containers {} may not be removed\n",
                    v::go_quote(name)
                ),
            )),
            Some(n) if n != o => out.push(v::forbidden(
                &format!("{path}[{name}]"),
                &format!(
                    "existing ephemeral containers {} may not be changed\n{}",
                    v::go_quote(name),
                    changed_fields(o, n)
                ),
            )),
            Some(_) => {}
        }
    }
}

/// A short account of what changed, standing in for upstream's cmp.Diff.
fn changed_fields(old: &Value, new: &Value) -> String {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return String::new();
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| {
            let show = |x: Option<&Value>| x.map_or_else(|| "<none>".into(), Value::to_string);
            format!("  {k}: {} -> {}", show(o.get(k)), show(n.get(k)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upstream `field.NotFound`.
fn not_found(field: &str, value: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueNotFound",
        message: format!("Not found: {}", v::go_quote(value)),
        field: field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ephemeral: Value) -> Value {
        json!({"metadata": {"name": "p"},
               "spec": {"containers": [{"name": "app", "image": "x"}],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "ephemeralContainers": ephemeral}})
    }

    fn causes(new: &Value, old: &Value) -> Vec<String> {
        let mut out = Vec::new();
        validate_containers(&new["spec"], &mut out);
        validate_update(new, old, &mut out);
        out.iter().map(FieldCause::summary).collect()
    }

    #[test]
    fn adding_a_container_is_allowed() {
        let old = pod(json!([]));
        let new = pod(json!([{"name": "dbg", "image": "busybox", "targetContainerName": "app"}]));
        assert!(causes(&new, &old).is_empty(), "{:?}", causes(&new, &old));
    }

    #[test]
    fn upstream_rules_with_upstream_texts() {
        let old = pod(json!([{"name": "one", "image": "busybox"}]));
        let new = pod(json!([
            {"name": "app", "image": "busybox"},
            {"name": "two", "image": "busybox", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}}, "readinessProbe": {"exec": {"command": ["true"]}},
             "targetContainerName": "nope",
             "volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}]},
            {"name": "three"}
        ]));
        let got = causes(&new, &old);
        let want = [
            "spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
            "spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\"",
            "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[1].resources: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[1].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[1].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[2].image: Required value",
            "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"one\" may not be removed\n",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn existing_containers_cannot_change() {
        let old = pod(json!([{"name": "one", "image": "busybox"}]));
        let new = pod(json!([{"name": "one", "image": "alpine"}]));
        let got = causes(&new, &old);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with(
            "spec.ephemeralContainers[one]: Forbidden: existing ephemeral containers \"one\" may not be changed\n"
        ));
        assert!(got[0].contains("image"));
    }

    #[test]
    fn empty_resources_are_not_set() {
        assert!(!is_set(Some(&json!({}))));
        assert!(!is_set(Some(&json!({"limits": {}}))));
        assert!(is_set(Some(&json!({"limits": {"cpu": "1"}}))));
    }

    #[test]
    fn pods_cannot_be_created_with_ephemeral_containers() {
        let pods = crate::api::registry::Registry::builtin()
            .find("", "v1", "pods")
            .expect("pods are served");
        let got = create_causes(pods, &pod(json!([{"name": "e", "image": "x"}])));
        let got: Vec<String> = got.iter().map(FieldCause::summary).collect();
        assert_eq!(
            got,
            ["spec.ephemeralContainers: Forbidden: cannot be set on create"]
        );
        assert!(create_causes(pods, &pod(json!([]))).is_empty());
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!(1),
            json!([1, "x", null]),
            json!([{"name": 3}]),
        ] {
            let new = pod(junk);
            let _ = causes(&new, &new);
        }
    }
}
