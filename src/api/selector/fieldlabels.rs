//! Which field labels each resource accepts and where their values live.
//!
//! Upstream has two layers: the field label conversion funcs registered per
//! kind (`pkg/apis/<group>/<version>/conversion.go`), which accept or reject
//! a label (and may rename it), and the registry's `ToSelectableFields`
//! (`pkg/registry/.../strategy.go`), which computes the values matched
//! against. Kinds without a conversion func get
//! `runtime.DefaultMetaV1FieldSelectorConversion` (metadata.name and
//! metadata.namespace, with its own error text) — including all of `apps`,
//! so a ReplicaSet really rejects `status.replicas` (v1.33).

use serde_json::Value;

use crate::api::validation::go_quote as quoted;

/// How a kind's conversion func words a rejection.
#[derive(Clone, Copy)]
enum Reject {
    /// `field label not supported: <label>` (most registered funcs).
    NotSupported,
    /// batch/v1 Job: `field label "<label>" not supported for Job`.
    ForJob,
}

/// (accepted label, label it is converted to) per kind.
type Labels = &'static [(&'static str, &'static str)];

const POD: Labels = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.podIPs", "status.podIPs"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
    // Kept upstream for old v1 clients.
    ("spec.host", "spec.nodeName"),
];
const NODE: Labels = &[
    ("metadata.name", "metadata.name"),
    ("spec.unschedulable", "spec.unschedulable"),
];
const REPLICATION_CONTROLLER: Labels = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.replicas", "status.replicas"),
];
const CORE_EVENT: Labels = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
/// events.k8s.io maps its own spellings onto the core Event's field set.
const EVENTS_API_EVENT: Labels = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
const NAMESPACE: Labels = &[
    ("status.phase", "status.phase"),
    ("metadata.name", "metadata.name"),
];
const SECRET: Labels = &[
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
const SERVICE: Labels = &[
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
    ("spec.clusterIP", "spec.clusterIP"),
    ("spec.type", "spec.type"),
];
const JOB: Labels = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.successful", "status.successful"),
];
const CSR: Labels = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
];

fn registered(group: &str, resource: &str) -> Option<(Labels, Reject)> {
    let labels = match (group, resource) {
        ("", "pods") => POD,
        ("", "nodes") => NODE,
        ("", "replicationcontrollers") => REPLICATION_CONTROLLER,
        ("", "events") => CORE_EVENT,
        ("events.k8s.io", "events") => EVENTS_API_EVENT,
        ("", "namespaces") => NAMESPACE,
        ("", "secrets") => SECRET,
        ("", "services") => SERVICE,
        ("batch", "jobs") => return Some((JOB, Reject::ForJob)),
        ("certificates.k8s.io", "certificatesigningrequests") => CSR,
        _ => return None,
    };
    Some((labels, Reject::NotSupported))
}

/// The conversion step: the label the value is matched under, or upstream's
/// rejection text (a 400 BadRequest upstream).
pub(super) fn convert(group: &str, resource: &str, label: &str) -> Result<&'static str, String> {
    let Some((labels, reject)) = registered(group, resource) else {
        return match label {
            "metadata.name" => Ok("metadata.name"),
            "metadata.namespace" => Ok("metadata.namespace"),
            _ => Err(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                quoted(label)
            )),
        };
    };
    if let Some((_, to)) = labels.iter().find(|(from, _)| *from == label) {
        return Ok(to);
    }
    Err(match reject {
        Reject::NotSupported => format!("field label not supported: {label}"),
        Reject::ForJob => format!("field label {} not supported for Job", quoted(label)),
    })
}

fn text_at(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Typed fields always have a value upstream: false / 0 when unset.
fn text_or(obj: &Value, path: &str, zero: &str) -> String {
    let v = text_at(obj, path);
    if v.is_empty() {
        zero.to_string()
    } else {
        v
    }
}

/// The value `ToSelectableFields` gives a converted label for this object.
/// Labels the registry never sets (pods' status.podIPs) read as "".
pub(super) fn value(group: &str, resource: &str, label: &str, obj: &Value) -> String {
    let events_api = group == "events.k8s.io";
    match (resource, label) {
        (_, "metadata.name") | (_, "metadata.namespace") => text_at(obj, label),
        ("pods", "spec.hostNetwork") => text_or(obj, label, "false"),
        ("pods", "status.podIP") => {
            // Upstream reads the first of status.podIPs.
            match obj.pointer("/status/podIPs/0/ip").and_then(Value::as_str) {
                Some(ip) => ip.to_string(),
                None => text_at(obj, label),
            }
        }
        ("pods", "status.podIPs") => String::new(),
        ("nodes", "spec.unschedulable") => text_or(obj, label, "false"),
        ("replicationcontrollers", "status.replicas") => text_or(obj, label, "0"),
        ("jobs", "status.successful") => text_or(obj, "status.succeeded", "0"),
        ("events", "reportingComponent") if events_api => text_at(obj, "reportingController"),
        ("events", "source") => {
            let (component, reporter) = if events_api {
                ("deprecatedSource.component", "reportingController")
            } else {
                ("source.component", "reportingComponent")
            };
            let v = text_at(obj, component);
            if v.is_empty() {
                text_at(obj, reporter)
            } else {
                v
            }
        }
        ("events", l) if events_api && l.starts_with("involvedObject.") => {
            text_at(obj, &l.replacen("involvedObject.", "regarding.", 1))
        }
        (_, l) => text_at(obj, l),
    }
}
