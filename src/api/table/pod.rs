//! Pods: upstream's most intricate printer (STATUS and RESTARTS logic).

use serde_json::{json, Value};

use super::clock::{age, since, time_at, Nanos};
use super::docs;
use super::format::{arr, at, i, name, opt_b, s, Col, Printer, Row};

pub(super) const PODS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        Col::new("Status", "string", "The aggregate status of the containers in this pod."),
        Col::new(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        Col::AGE,
        Col::wide("IP", "string", docs::POD_IP),
        Col::wide("Node", "string", docs::POD_NODE),
        Col::wide("Nominated Node", "string", docs::POD_NOMINATED),
        Col::wide("Readiness Gates", "string", docs::POD_GATES),
    ],
    row: print_pod,
};

/// The reason a node controller gives pods on a lost node.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

fn condition<'a>(pod: &'a Value, ty: &str) -> Option<&'a Value> {
    arr(pod, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    condition(pod, ty).is_some_and(|c| s(c, &["status"]) == "True")
}

/// Keeps the later of the known restart time and this container's last termination.
fn note_restart(latest: &mut Option<Nanos>, status: &Value) {
    if let Some(t) = time_at(status, &["lastState", "terminated", "finishedAt"]) {
        if latest.is_none_or(|l| l < t) {
            *latest = Some(t);
        }
    }
}

/// Sidecars: init containers with restartPolicy Always.
fn restartable_init(pod: &Value, container: &str) -> bool {
    arr(pod, &["spec", "initContainers"])
        .iter()
        .find(|c| s(c, &["name"]) == container)
        .is_some_and(|c| s(c, &["restartPolicy"]) == "Always")
}

/// Reason text for a terminated container without a reason: Signal:N or ExitCode:N.
fn terminated_code(prefix: &str, term: &Value) -> String {
    match i(term, &["signal"]) {
        0 => format!("{prefix}ExitCode:{}", i(term, &["exitCode"])),
        sig => format!("{prefix}Signal:{sig}"),
    }
}

fn print_pod(pod: &Value, now: Nanos) -> Row {
    let init_specs = arr(pod, &["spec", "initContainers"]);
    let mut total = arr(pod, &["spec", "containers"]).len();
    total += init_specs
        .iter()
        .filter(|c| s(c, &["restartPolicy"]) == "Always")
        .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<Nanos> = None;
    let mut last_sidecar_restart: Option<Nanos> = None;

    let phase = s(pod, &["status", "phase"]);
    let mut reason = match s(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let gated = arr(pod, &["status", "conditions"])
        .iter()
        .any(|c| s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (idx, st) in arr(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts += i(st, &["restartCount"]);
        note_restart(&mut last_restart, st);
        let sidecar = restartable_init(pod, s(st, &["name"]));
        if sidecar {
            sidecar_restarts += i(st, &["restartCount"]);
            note_restart(&mut last_sidecar_restart, st);
        }
        let terminated = at(st, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting = s(st, &["state", "waiting", "reason"]);
        match terminated {
            Some(t) if i(t, &["exitCode"]) == 0 => continue,
            _ if sidecar && opt_b(st, &["started"]) == Some(true) => {
                if opt_b(st, &["ready"]) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            Some(t) => {
                reason = match s(t, &["reason"]) {
                    "" => terminated_code("Init:", t),
                    r => format!("Init:{r}"),
                };
            }
            None if !waiting.is_empty() && waiting != "PodInitializing" => {
                reason = format!("Init:{waiting}");
            }
            None => reason = format!("Init:{idx}/{}", init_specs.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for st in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += i(st, &["restartCount"]);
            note_restart(&mut last_restart, st);
            let waiting = s(st, &["state", "waiting", "reason"]);
            let terminated = at(st, &["state", "terminated"]).filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match s(t, &["reason"]) {
                    "" => terminated_code("", t),
                    r => r.to_string(),
                };
            } else if opt_b(st, &["ready"]) == Some(true)
                && at(st, &["state", "running"]).is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    if deleting && s(pod, &["status", "reason"]) == NODE_UNREACHABLE_REASON {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let cells = vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_cell),
        age(pod, now),
        Value::from(pod_ip(pod)),
        Value::from(non_empty(s(pod, &["spec", "nodeName"]))),
        Value::from(non_empty(s(pod, &["status", "nominatedNodeName"]))),
        Value::from(readiness_gates(pod)),
    ];
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                                    "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed",
                                 "message": "The pod failed."}]),
        ),
        _ => None,
    };
    Row { cells, conditions }
}

fn non_empty(v: &str) -> String {
    if v.is_empty() { "<none>" } else { v }.to_string()
}

/// The internal API's first pod IP: status.podIP wins over status.podIPs, as
/// the v1 conversion makes it.
fn pod_ip(pod: &Value) -> String {
    let ip = match s(pod, &["status", "podIP"]) {
        "" => arr(pod, &["status", "podIPs"])
            .first()
            .map(|p| s(p, &["ip"]))
            .unwrap_or(""),
        ip => ip,
    };
    non_empty(ip)
}

fn readiness_gates(pod: &Value) -> String {
    let gates = arr(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".into();
    }
    let satisfied = gates
        .iter()
        .filter(|g| condition_true(pod, s(g, &["conditionType"])))
        .count();
    format!("{satisfied}/{}", gates.len())
}
