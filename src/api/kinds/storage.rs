//! Storage kinds: PersistentVolumeClaim and PersistentVolume (core/v1) and
//! StorageClass (storage.k8s.io/v1): defaults, spec rules and what an
//! update may change.

use serde_json::{json, Value};

use super::json::{child, default, default_str, list, root, same, text, Obj};
use super::rules;
use crate::api::validation::{self as v, FieldCause};

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// SetDefaults_PersistentVolumeClaim(Spec), also used for the claim
/// templates of stateful sets.
pub(super) fn claim_defaults(claim: &mut Obj) {
    if let Some(spec) = child(claim, "spec") {
        default_str(spec, "volumeMode", "Filesystem");
    }
    if let Some(status) = child(claim, "status") {
        default_str(status, "phase", "Pending");
    }
}

pub(super) fn pvc_defaults(obj: &mut Value) {
    if let Some(o) = root(obj) {
        claim_defaults(o);
    }
}

fn access_modes(spec: &Value, out: &mut Vec<FieldCause>) {
    let modes = list(spec, "accessModes");
    if modes.is_empty() {
        out.push(v::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        if !m.as_str().is_some_and(|s| ACCESS_MODES.contains(&s)) {
            out.push(v::not_supported("spec.accessModes", m, ACCESS_MODES));
        }
    }
}

fn volume_mode(spec: &Value, out: &mut Vec<FieldCause>) {
    if let Some(m) = spec
        .get("volumeMode")
        .filter(|m| !matches!(m.as_str(), Some("Block" | "Filesystem")))
    {
        out.push(v::not_supported(
            "spec.volumeMode",
            m,
            &["Block", "Filesystem"],
        ));
    }
}

pub(super) fn pvc_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    access_modes(spec, &mut out);
    volume_mode(spec, &mut out);
    match spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"))
    {
        None => out.push(v::required("spec.resources[storage]", "")),
        Some(q) => match rules::quantity_nanos(q) {
            None => out.push(v::invalid(
                "spec.resources[storage]",
                q,
                rules::QUANTITY_FORMAT,
            )),
            Some(n) if n <= 0 => out.push(v::invalid(
                "spec.resources[storage]",
                q,
                "must be greater than zero",
            )),
            Some(_) => {}
        },
    }
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
        rules::label_selector("spec.selector", sel, &mut out);
    }
    out
}

pub(super) fn pvc_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let fixed = |o: &Value, bind: bool| -> Value {
        let mut spec = o.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
            if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
                r.remove("requests");
            }
            // Binding fills volumeName once; it may not change after.
            if bind {
                m.remove("volumeName");
            }
        }
        spec
    };
    let binding = text(old.get("spec").unwrap_or(&Value::Null), "volumeName").is_empty();
    if same(Some(&fixed(new, binding)), Some(&fixed(old, binding))) {
        return Vec::new();
    }
    vec![v::forbidden(
        "spec",
        "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
    )]
}

pub(super) fn pv_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    if let Some(spec) = child(o, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_str(spec, "volumeMode", "Filesystem");
    }
    if let Some(status) = child(o, "status") {
        default_str(status, "phase", "Pending");
    }
}

/// The spec fields of a PV that are not its volume source.
const PV_NON_SOURCE: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

fn pv_source(obj: &Value) -> Value {
    let mut spec = obj.get("spec").cloned().unwrap_or(json!({}));
    if let Some(m) = spec.as_object_mut() {
        m.retain(|k, _| !PV_NON_SOURCE.contains(&k.as_str()));
    }
    spec
}

pub(super) fn pv_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    access_modes(spec, &mut out);
    volume_mode(spec, &mut out);
    match spec.get("capacity").and_then(Value::as_object) {
        None => out.push(v::required("spec.capacity", "")),
        Some(c) if c.is_empty() => out.push(v::required("spec.capacity", "")),
        Some(c) if !c.contains_key("storage") || c.len() > 1 => {
            let keys: Vec<Value> = c.keys().map(|k| json!(k)).collect();
            out.push(v::not_supported(
                "spec.capacity",
                &Value::Array(keys),
                &["storage"],
            ));
        }
        Some(_) => {}
    }
    match pv_source(obj).as_object().map(|m| m.len()) {
        Some(1) => {}
        Some(0) | None => out.push(v::required("spec", "must specify a volume type")),
        Some(_) => out.push(v::forbidden(
            "spec",
            "may not specify more than 1 volume type",
        )),
    }
    let policies = ["Delete", "Recycle", "Retain"];
    if let Some(p) = spec
        .get("persistentVolumeReclaimPolicy")
        .filter(|p| !p.as_str().is_some_and(|s| policies.contains(&s)))
    {
        out.push(v::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            p,
            &policies,
        ));
    }
    out
}

pub(super) fn pv_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    if !same(Some(&pv_source(new)), Some(&pv_source(old))) {
        out.push(v::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    let mode = |o: &Value| o.get("spec").and_then(|s| s.get("volumeMode")).cloned();
    if !same(mode(new).as_ref(), mode(old).as_ref()) {
        out.push(v::immutable(
            "spec.volumeMode",
            mode(new).as_ref().unwrap_or(&Value::Null),
        ));
    }
    out
}

pub(super) fn storageclass_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    default(o, "reclaimPolicy", json!("Delete"));
    default(o, "volumeBindingMode", json!("Immediate"));
}

pub(super) fn storageclass_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let provisioner = text(obj, "provisioner");
    if provisioner.is_empty() {
        out.push(v::required("provisioner", ""));
    } else {
        let msgs = v::is_qualified_name(&provisioner.to_lowercase());
        out.extend(
            msgs.iter()
                .map(|m| v::invalid("provisioner", &json!(provisioner), m)),
        );
    }
    if let Some(p) = obj
        .get("reclaimPolicy")
        .filter(|p| !matches!(p.as_str(), Some("Delete" | "Retain")))
    {
        out.push(v::not_supported("reclaimPolicy", p, &["Delete", "Retain"]));
    }
    let modes = ["Immediate", "WaitForFirstConsumer"];
    if let Some(m) = obj
        .get("volumeBindingMode")
        .filter(|m| !m.as_str().is_some_and(|s| modes.contains(&s)))
    {
        out.push(v::not_supported("volumeBindingMode", m, &modes));
    }
    out
}

pub(super) fn storageclass_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    for (field, msg) in [
        ("parameters", "updates to parameters are forbidden."),
        ("provisioner", "updates to provisioner are forbidden."),
        ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
    ] {
        if !same(new.get(field), old.get(field)) {
            out.push(v::forbidden(field, msg));
        }
    }
    if !same(new.get("volumeBindingMode"), old.get("volumeBindingMode")) {
        out.push(v::immutable(
            "volumeBindingMode",
            new.get("volumeBindingMode").unwrap_or(&Value::Null),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_default_and_validate() {
        let mut pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        pvc_defaults(&mut pvc);
        assert_eq!(pvc["status"]["phase"], "Pending");
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert!(pvc_validate(&pvc).is_empty());
        let fields: Vec<String> = pvc_validate(&json!({"spec": {}}))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["spec.accessModes", "spec.resources[storage]"]);
        let mut bigger = pvc.clone();
        bigger["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        bigger["spec"]["volumeName"] = json!("pv-1");
        assert!(pvc_validate_update(&bigger, &pvc).is_empty());
        let mut other = bigger.clone();
        other["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(pvc_validate_update(&other, &bigger)[0].field, "spec");
    }

    #[test]
    fn volumes_default_and_validate() {
        let mut pv = json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/x"}}});
        pv_defaults(&mut pv);
        assert_eq!(pv["status"]["phase"], "Pending");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert!(pv_validate(&pv).is_empty(), "{:?}", pv_validate(&pv));
        let mut moved = pv.clone();
        moved["spec"]["hostPath"]["path"] = json!("/y");
        assert_eq!(
            pv_validate_update(&moved, &pv)[0].field,
            "spec.persistentvolumesource"
        );
        assert_eq!(pv_validate(&json!({"spec": {}})).len(), 3);
    }

    #[test]
    fn storage_classes() {
        let mut sc = json!({"provisioner": "rancher.io/local-path"});
        storageclass_defaults(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(storageclass_validate(&sc).is_empty());
        let mut changed = sc.clone();
        changed["provisioner"] = json!("other");
        assert_eq!(
            storageclass_validate_update(&changed, &sc)[0].message,
            "Forbidden: updates to provisioner are forbidden."
        );
        assert_eq!(storageclass_validate(&json!({}))[0].field, "provisioner");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [json!(null), json!([1]), json!({"spec": "x", "status": 1})] {
            let mut j = junk.clone();
            pvc_defaults(&mut j);
            pv_defaults(&mut j);
            storageclass_defaults(&mut j);
            pvc_validate(&j);
            pv_validate(&j);
            storageclass_validate(&j);
            pvc_validate_update(&j, &junk);
            pv_validate_update(&j, &junk);
            storageclass_validate_update(&j, &junk);
        }
    }
}
