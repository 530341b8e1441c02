//! Smaller API groups: coordination, RBAC, policy, scheduling, autoscaling,
//! admission registration and node.

use serde_json::{json, Value};

use super::clock::age;
use super::docs;
use super::format::{
    arr, at, i, int_or_string, len_of, name, opt_b, opt_i, opt_s, s, Col, Printer,
};
use super::quantity::quantity_ptr;

pub(super) fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("coordination.k8s.io", "leases") => &LEASES,
        ("rbac.authorization.k8s.io", "rolebindings") => &ROLEBINDINGS,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => &CLUSTERROLEBINDINGS,
        ("policy", "poddisruptionbudgets") => &PODDISRUPTIONBUDGETS,
        ("scheduling.k8s.io", "priorityclasses") => &PRIORITYCLASSES,
        ("autoscaling", "horizontalpodautoscalers") => &HORIZONTALPODAUTOSCALERS,
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
        | ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            &WEBHOOKCONFIGURATIONS
        }
        ("node.k8s.io", "runtimeclasses") => &RUNTIMECLASSES,
        _ => return None,
    })
}

const LEASES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Holder", "string", docs::LEASE_HOLDER),
        Col::AGE,
    ],
    row: |l, now| {
        vec![
            name(l),
            Value::from(s(l, &["spec", "holderIdentity"])),
            age(l, now),
        ]
        .into()
    },
};

macro_rules! binding_printer {
    ($role_ref:expr, $users:expr, $groups:expr, $sas:expr) => {
        Printer {
            columns: &[
                Col::NAME,
                Col::new("Role", "string", $role_ref),
                Col::AGE,
                Col::wide("Users", "string", $users),
                Col::wide("Groups", "string", $groups),
                Col::wide("ServiceAccounts", "string", $sas),
            ],
            row: |b, now| {
                let role = format!(
                    "{}/{}",
                    s(b, &["roleRef", "kind"]),
                    s(b, &["roleRef", "name"])
                );
                let (users, groups, sas) = subjects(arr(b, &["subjects"]));
                vec![name(b), Value::from(role), age(b, now), users, groups, sas].into()
            },
        }
    };
}

const ROLEBINDINGS: Printer = binding_printer!(
    docs::RB_ROLE_REF,
    "Users in the roleBinding",
    "Groups in the roleBinding",
    "ServiceAccounts in the roleBinding"
);
const CLUSTERROLEBINDINGS: Printer = binding_printer!(
    docs::CRB_ROLE_REF,
    "Users in the clusterRoleBinding",
    "Groups in the clusterRoleBinding",
    "ServiceAccounts in the clusterRoleBinding"
);

/// Users, groups and "namespace/name" service accounts, each joined by ", ".
fn subjects(subjects: &[Value]) -> (Value, Value, Value) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for sub in subjects {
        let n = s(sub, &["name"]);
        match s(sub, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{n}", s(sub, &["namespace"]))),
            "User" => users.push(n.to_string()),
            "Group" => groups.push(n.to_string()),
            _ => {}
        }
    }
    (
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(sas.join(", ")),
    )
}

const PODDISRUPTIONBUDGETS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        Col::new(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        Col::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        Col::AGE,
    ],
    row: |pdb, now| {
        let bound = |f: &str| match at(pdb, &["spec", f]) {
            None | Some(Value::Null) => "N/A".to_string(),
            Some(v) => int_or_string(v),
        };
        vec![
            name(pdb),
            Value::from(bound("minAvailable")),
            Value::from(bound("maxUnavailable")),
            Value::from(i(pdb, &["status", "disruptionsAllowed"])),
            age(pdb, now),
        ]
        .into()
    },
};

const PRIORITYCLASSES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Value", "integer", docs::PC_VALUE),
        Col::new("Global-Default", "boolean", docs::PC_DEFAULT),
        Col::AGE,
        Col::wide("PreemptionPolicy", "string", docs::PC_PREEMPTION),
    ],
    row: |pc, now| {
        vec![
            name(pc),
            Value::from(i(pc, &["value"])),
            Value::from(opt_b(pc, &["globalDefault"]).unwrap_or(false)),
            age(pc, now),
            Value::from(s(pc, &["preemptionPolicy"])),
        ]
        .into()
    },
};

const HORIZONTALPODAUTOSCALERS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Reference", "string", docs::HPA_REF),
        Col::new("Targets", "string", docs::HPA_METRICS),
        Col::new("MinPods", "string", docs::HPA_MIN),
        Col::new("MaxPods", "string", docs::HPA_MAX),
        Col::new("Replicas", "string", docs::HPA_CURRENT),
        Col::AGE,
    ],
    row: |hpa, now| {
        let reference = format!(
            "{}/{}",
            s(hpa, &["spec", "scaleTargetRef", "kind"]),
            s(hpa, &["spec", "scaleTargetRef", "name"])
        );
        let (specs, statuses) = hpa_metrics(hpa);
        let min = opt_i(hpa, &["spec", "minReplicas"])
            .map_or_else(|| "<unset>".into(), |m| m.to_string());
        vec![
            name(hpa),
            Value::from(reference),
            Value::from(format_hpa_metrics(&specs, &statuses)),
            Value::from(min),
            Value::from(i(hpa, &["spec", "maxReplicas"])),
            Value::from(i(hpa, &["status", "currentReplicas"])),
            age(hpa, now),
        ]
        .into()
    },
};

/// Metric specs and statuses in the v2 shape; an autoscaling/v1 object's CPU
/// target is turned into a Resource metric as upstream's conversion does.
fn hpa_metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    if at(hpa, &["spec", "metrics"]).is_none() {
        if let Some(target) = opt_i(hpa, &["spec", "targetCPUUtilizationPercentage"]) {
            let spec = json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target}}});
            let status = opt_i(hpa, &["status", "currentCPUUtilizationPercentage"]).map(|c| {
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}})
            });
            return (vec![spec], status.into_iter().collect());
        }
    }
    (
        arr(hpa, &["spec", "metrics"]).to_vec(),
        arr(hpa, &["status", "currentMetrics"]).to_vec(),
    )
}

fn percent(v: Option<i64>, missing: &str) -> String {
    v.map_or_else(|| missing.to_string(), |p| format!("{p}%"))
}

/// formatHPAMetrics: "current/target" per metric, at most two, "<none>" if none.
pub(super) fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(idx, spec)| {
            // The status for this metric, if the controller reported one of the same source type.
            let status = |key: &str| {
                statuses
                    .get(idx)
                    .and_then(|st| at(st, &[key]))
                    .filter(|v| v.is_object())
            };
            match s(spec, &["type"]) {
                ty @ ("External" | "Object") => {
                    let key = if ty == "External" {
                        "external"
                    } else {
                        "object"
                    };
                    let target = at(spec, &[key, "target"]).unwrap_or(&Value::Null);
                    match at(target, &["averageValue"]).filter(|v| !v.is_null()) {
                        Some(avg) => {
                            let current = status(key)
                                .and_then(|st| at(st, &["current", "averageValue"]))
                                .filter(|v| !v.is_null())
                                .map_or_else(|| "<unknown>".into(), |v| quantity_ptr(Some(v)));
                            format!("{current}/{} (avg)", quantity_ptr(Some(avg)))
                        }
                        None => {
                            let current = status(key).map_or_else(
                                || "<unknown>".into(),
                                |st| quantity_ptr(at(st, &["current", "value"])),
                            );
                            format!("{current}/{}", quantity_ptr(at(target, &["value"])))
                        }
                    }
                }
                "Pods" => {
                    let current = status("pods").map_or_else(
                        || "<unknown>".into(),
                        |st| quantity_ptr(at(st, &["current", "averageValue"])),
                    );
                    format!(
                        "{current}/{}",
                        quantity_ptr(at(spec, &["pods", "target", "averageValue"]))
                    )
                }
                ty @ ("Resource" | "ContainerResource") => {
                    let key = if ty == "Resource" {
                        "resource"
                    } else {
                        "containerResource"
                    };
                    let res = s(spec, &[key, "name"]);
                    let target = at(spec, &[key, "target"]).unwrap_or(&Value::Null);
                    match at(target, &["averageValue"]).filter(|v| !v.is_null()) {
                        Some(avg) => {
                            let current = status(key).map_or_else(
                                || "<unknown>".into(),
                                |st| quantity_ptr(at(st, &["current", "averageValue"])),
                            );
                            format!("{res}: {current}/{}", quantity_ptr(Some(avg)))
                        }
                        None => {
                            let current = percent(
                                status(key)
                                    .and_then(|st| opt_i(st, &["current", "averageUtilization"])),
                                "<unknown>",
                            );
                            let target = percent(opt_i(target, &["averageUtilization"]), "<auto>");
                            format!("{res}: {current}/{target}")
                        }
                    }
                }
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    if list.len() > 2 {
        return format!("{} + {} more...", list[..2].join(", "), list.len() - 2);
    }
    list.join(", ")
}

const WEBHOOKCONFIGURATIONS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        Col::AGE,
    ],
    row: |w, now| vec![name(w), Value::from(len_of(w, &["webhooks"])), age(w, now)].into(),
};

const RUNTIMECLASSES: Printer = Printer {
    // Upstream looks the Handler description up in ObjectMeta's docs, which has none.
    columns: &[Col::NAME, Col::new("Handler", "string", ""), Col::AGE],
    row: |rc, now| {
        vec![
            name(rc),
            Value::from(opt_s(rc, &["handler"]).unwrap_or("")),
            age(rc, now),
        ]
        .into()
    },
};
