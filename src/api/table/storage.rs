//! Volumes, storage.k8s.io kinds and resource quotas.

use serde_json::Value;

use super::clock::{age, Nanos};
use super::docs;
use super::format::{arr, at, len_of, map, name, opt_b, opt_s, s, Col, Printer, Row};
use super::quantity::quantity;

pub(super) fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("", "persistentvolumes") => &PERSISTENTVOLUMES,
        ("", "persistentvolumeclaims") => &PERSISTENTVOLUMECLAIMS,
        ("", "resourcequotas") => &RESOURCEQUOTAS,
        ("storage.k8s.io", "storageclasses") => &STORAGECLASSES,
        ("storage.k8s.io", "csidrivers") => &CSIDRIVERS,
        ("storage.k8s.io", "csinodes") => &CSINODES,
        ("storage.k8s.io", "volumeattachments") => &VOLUMEATTACHMENTS,
        _ => return None,
    })
}

/// GetAccessModesAsString: fixed order, de-duplicated.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn deleting(obj: &Value) -> bool {
    at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null())
}

/// The storage class: the legacy beta annotation wins when present, as upstream's
/// GetPersistentVolume(Claim)Class helpers decide.
fn storage_class(obj: &Value) -> &str {
    match at(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    ) {
        Some(v) => v.as_str().unwrap_or(""),
        None => s(obj, &["spec", "storageClassName"]),
    }
}

const PERSISTENTVOLUMES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Capacity", "string", docs::PV_CAPACITY),
        Col::new("Access Modes", "string", docs::PV_MODES),
        Col::new("Reclaim Policy", "string", docs::PV_RECLAIM),
        Col::new("Status", "string", docs::PV_PHASE),
        Col::new("Claim", "string", docs::PV_CLAIM),
        Col::new("StorageClass", "string", "StorageClass of the pv"),
        Col::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        Col::new("Reason", "string", docs::PV_REASON),
        Col::AGE,
        Col::wide("VolumeMode", "string", docs::PV_VOLUME_MODE),
    ],
    row: |pv, now| {
        let claim = match at(pv, &["spec", "claimRef"]) {
            Some(c) if c.is_object() => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
            _ => String::new(),
        };
        let phase = if deleting(pv) {
            "Terminating"
        } else {
            s(pv, &["status", "phase"])
        };
        vec![
            name(pv),
            Value::from(quantity(at(pv, &["spec", "capacity", "storage"]))),
            Value::from(access_modes(arr(pv, &["spec", "accessModes"]))),
            Value::from(s(pv, &["spec", "persistentVolumeReclaimPolicy"])),
            Value::from(phase),
            Value::from(claim),
            Value::from(storage_class(pv)),
            Value::from(opt_s(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
            Value::from(s(pv, &["status", "reason"])),
            age(pv, now),
            Value::from(opt_s(pv, &["spec", "volumeMode"]).unwrap_or("<unset>")),
        ]
        .into()
    },
};

const PERSISTENTVOLUMECLAIMS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Status", "string", docs::PVC_PHASE),
        Col::new("Volume", "string", docs::PVC_VOLUME),
        Col::new("Capacity", "string", docs::PVC_CAPACITY),
        Col::new("Access Modes", "string", docs::PVC_MODES),
        Col::new("StorageClass", "string", "StorageClass of the pvc"),
        Col::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        Col::AGE,
        Col::wide("VolumeMode", "string", docs::PVC_VOLUME_MODE),
    ],
    row: |pvc, now| {
        let phase = if deleting(pvc) {
            "Terminating"
        } else {
            s(pvc, &["status", "phase"])
        };
        let volume = s(pvc, &["spec", "volumeName"]);
        // Capacity and modes are only shown once the claim is bound to a volume.
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity(at(pvc, &["status", "capacity", "storage"])),
                access_modes(arr(pvc, &["status", "accessModes"])),
            )
        };
        vec![
            name(pvc),
            Value::from(phase),
            Value::from(volume),
            Value::from(capacity),
            Value::from(modes),
            Value::from(storage_class(pvc)),
            Value::from(opt_s(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
            age(pvc, now),
            Value::from(opt_s(pvc, &["spec", "volumeMode"]).unwrap_or("<unset>")),
        ]
        .into()
    },
};

const RESOURCEQUOTAS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Col::new(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        Col::AGE,
    ],
    row: print_resource_quota,
};

fn print_resource_quota(rq: &Value, now: Nanos) -> Row {
    let mut names: Vec<&String> = map(rq, &["status", "hard"])
        .into_iter()
        .flat_map(|m| m.keys())
        .collect();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for res in names {
        let used = quantity(at(rq, &["status", "used", res]));
        let hard = quantity(at(rq, &["status", "hard", res]));
        let entry = format!("{res}: {used}/{hard}");
        // Resources named "limits.*" go to the LIMIT column, everything else to REQUEST.
        match res.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![
        name(rq),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(rq, now),
    ]
    .into()
}

const STORAGECLASSES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Provisioner", "string", docs::SC_PROVISIONER),
        Col::new("ReclaimPolicy", "string", docs::SC_RECLAIM),
        Col::new("VolumeBindingMode", "string", docs::SC_BINDING),
        Col::new("AllowVolumeExpansion", "string", docs::SC_EXPANSION),
        Col::AGE,
    ],
    row: |sc, now| {
        let annotation = |k: &str| s(sc, &["metadata", "annotations", k]) == "true";
        let mut display = s(sc, &["metadata", "name"]).to_string();
        if annotation("storageclass.kubernetes.io/is-default-class")
            || annotation("storageclass.beta.kubernetes.io/is-default-class")
        {
            display.push_str(" (default)");
        }
        vec![
            Value::from(display),
            Value::from(s(sc, &["provisioner"])),
            Value::from(opt_s(sc, &["reclaimPolicy"]).unwrap_or("Delete")),
            Value::from(opt_s(sc, &["volumeBindingMode"]).unwrap_or("Immediate")),
            Value::from(opt_b(sc, &["allowVolumeExpansion"]).unwrap_or(false)),
            age(sc, now),
        ]
        .into()
    },
};

const CSIDRIVERS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("AttachRequired", "boolean", docs::CSI_ATTACH),
        Col::new("PodInfoOnMount", "boolean", docs::CSI_POD_INFO),
        Col::new("StorageCapacity", "boolean", docs::CSI_CAPACITY),
        Col::new("TokenRequests", "string", docs::CSI_TOKENS),
        Col::new("RequiresRepublish", "boolean", docs::CSI_REPUBLISH),
        Col::new("Modes", "string", docs::CSI_MODES),
        Col::AGE,
    ],
    row: |d, now| {
        let flag = |f: &str, default: bool| Value::from(opt_b(d, &["spec", f]).unwrap_or(default));
        let tokens = match at(d, &["spec", "tokenRequests"]).and_then(Value::as_array) {
            Some(t) => t
                .iter()
                .map(|t| s(t, &["audience"]))
                .collect::<Vec<_>>()
                .join(","),
            None => "<unset>".into(),
        };
        let modes: Vec<&str> = arr(d, &["spec", "volumeLifecycleModes"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let modes = if modes.is_empty() {
            "<none>".into()
        } else {
            modes.join(",")
        };
        vec![
            name(d),
            flag("attachRequired", true),
            flag("podInfoOnMount", false),
            flag("storageCapacity", false),
            Value::from(tokens),
            flag("requiresRepublish", false),
            Value::from(modes),
            age(d, now),
        ]
        .into()
    },
};

const CSINODES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        Col::AGE,
    ],
    row: |n, now| {
        vec![
            name(n),
            Value::from(len_of(n, &["spec", "drivers"])),
            age(n, now),
        ]
        .into()
    },
};

const VOLUMEATTACHMENTS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col {
            format: "name",
            ..Col::new("Attacher", "string", docs::VA_ATTACHER)
        },
        Col::new("PV", "string", docs::VA_PV),
        Col::new("Node", "string", docs::VA_NODE),
        Col::new("Attached", "boolean", docs::VA_ATTACHED),
        Col::AGE,
    ],
    row: |va, now| {
        vec![
            name(va),
            Value::from(s(va, &["spec", "attacher"])),
            Value::from(s(va, &["spec", "source", "persistentVolumeName"])),
            Value::from(s(va, &["spec", "nodeName"])),
            Value::from(opt_b(va, &["status", "attached"]).unwrap_or(false)),
            age(va, now),
        ]
        .into()
    },
};
