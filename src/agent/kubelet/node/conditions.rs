//! The node's conditions with upstream's reasons and messages, their
//! time semantics (lastHeartbeatTime: every report; lastTransitionTime:
//! only when the status flips, compared with what the server holds), and
//! the report cadence: a status is written when it differs from the last
//! one written, heartbeats aside, or when 5 minutes passed.

use std::time::Duration;

use serde_json::{json, Value};

use super::pressure::Pressure;

/// Upstream's nodeStatusReportFrequency.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);

/// What the conditions are computed from.
#[derive(Debug, Clone)]
pub struct Health {
    pub runtime: Result<(), String>,
    pub network: Result<(), String>,
    /// Pressure after the transition period.
    pub pressure: Pressure,
}

/// The Ready condition's message when not ready, as upstream aggregates
/// its errors (one: the text; several: `[a, b]`).
pub fn not_ready_message(h: &Health) -> Option<String> {
    let mut errs = Vec::new();
    if let Err(e) = &h.runtime {
        errs.push(format!("container runtime is down: {e}"));
    }
    if let Err(e) = &h.network {
        errs.push(format!("container runtime network not ready: {e}"));
    }
    match errs.len() {
        0 => None,
        1 => errs.pop(),
        _ => Some(format!("[{}]", errs.join(", "))),
    }
}

/// The four conditions, in upstream's order. `server` is the Node's
/// current conditions (for transition times), `now` the report time.
pub fn conditions(h: &Health, server: Option<&Value>, now: &str) -> Vec<Value> {
    let cond = |kind: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" };
        let prev = server
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
        // Kept while the status is what the server already holds.
        let since = prev
            .filter(|p| p["status"] == status)
            .and_then(|p| p["lastTransitionTime"].as_str())
            .unwrap_or(now);
        json!({
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
        })
    };
    let p = h.pressure;
    let mut out = vec![
        if p.memory {
            cond(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            cond(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if p.disk {
            cond(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            cond(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if p.pid {
            cond(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            cond(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
    ];
    out.push(match not_ready_message(h) {
        None => cond(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        Some(m) => cond("Ready", false, "KubeletNotReady", &m),
    });
    out
}

/// A status without its heartbeat times, conditions by type: what two
/// reports are compared on (upstream's `nodeStatusHasChanged`).
fn without_heartbeats(status: &Value) -> Value {
    let mut v = status.clone();
    if let Some(conds) = v.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds.iter_mut() {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
            }
        }
        conds.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    }
    v
}

pub fn status_changed(last: &Value, new: &Value) -> bool {
    without_heartbeats(last) != without_heartbeats(new)
}

/// Whether the server's conditions differ from those we last wrote, other
/// than in times: someone (the node lifecycle controller) changed them.
pub fn changed_by_others(server: &Value, ours: &Value) -> bool {
    let key = |c: &Value| {
        (
            c["status"].as_str().map(str::to_string),
            c["reason"].as_str().map(str::to_string),
            c["message"].as_str().map(str::to_string),
        )
    };
    let Some(ours) = ours.as_array() else {
        return false;
    };
    ours.iter().any(|o| {
        let theirs = server
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == o["type"]));
        theirs.is_none_or(|t| key(t) != key(o))
    })
}

/// The report cadence: write when the status changed (a first report, a
/// condition flipped, someone else changed ours, images came or went) or
/// every 5 minutes; otherwise only the Lease shows the node is alive.
pub fn should_report(changed: bool, since_last: Option<Duration>) -> bool {
    changed || since_last.is_none_or(|d| d >= REPORT_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Health {
        Health {
            runtime: Ok(()),
            network: Ok(()),
            pressure: Pressure::default(),
        }
    }

    fn find<'a>(cs: &'a [Value], kind: &str) -> &'a Value {
        cs.iter().find(|c| c["type"] == kind).unwrap()
    }

    #[test]
    fn ready_messages_name_the_runtime_and_network() {
        let cs = conditions(&healthy(), None, "T1");
        let ready = find(&cs, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("KubeletReady"))
        );
        assert_eq!(cs.len(), 4);
        assert_eq!(cs[3]["type"], "Ready");
        let mut h = healthy();
        h.runtime = Err("connection refused".into());
        let ready = find(&conditions(&h, None, "T1"), "Ready").clone();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "KubeletNotReady");
        assert_eq!(
            ready["message"],
            "container runtime is down: connection refused"
        );
        h.network = Err("cni config uninitialized".into());
        assert_eq!(
            not_ready_message(&h).unwrap(),
            "[container runtime is down: connection refused, container runtime network not ready: cni config uninitialized]"
        );
        h.pressure.disk = true;
        let disk = find(&conditions(&h, None, "T"), "DiskPressure").clone();
        assert_eq!(
            (disk["status"].as_str(), disk["reason"].as_str()),
            (Some("True"), Some("KubeletHasDiskPressure"))
        );
    }

    #[test]
    fn transition_time_is_kept_while_the_status_holds() {
        let first = Value::from(conditions(&healthy(), None, "T1"));
        assert_eq!(first[3]["lastTransitionTime"], "T1");
        // Same status later: new heartbeat, same transition.
        let second = Value::from(conditions(&healthy(), Some(&first), "T2"));
        assert_eq!(second[3]["lastHeartbeatTime"], "T2");
        assert_eq!(second[3]["lastTransitionTime"], "T1");
        assert!(!status_changed(
            &json!({"conditions": first.clone()}),
            &json!({"conditions": second.clone()})
        ));
        // The runtime goes down: Ready flips, the others keep T1.
        let mut h = healthy();
        h.runtime = Err("down".into());
        let third = Value::from(conditions(&h, Some(&second), "T3"));
        assert_eq!(third[3]["lastTransitionTime"], "T3");
        assert_eq!(third[0]["lastTransitionTime"], "T1");
        assert!(status_changed(
            &json!({"conditions": second}),
            &json!({"conditions": third.clone()})
        ));
        // The controller set Ready Unknown: our True is a new transition.
        let mut unknown = third.clone();
        unknown[3]["status"] = json!("Unknown");
        let fourth = Value::from(conditions(&healthy(), Some(&unknown), "T4"));
        assert_eq!(fourth[3]["lastTransitionTime"], "T4");
    }

    #[test]
    fn others_changing_our_conditions_is_noticed() {
        let ours = Value::from(conditions(&healthy(), None, "T1"));
        let mut server = ours.clone();
        server[0]["lastHeartbeatTime"] = json!("2024-01-01T00:00:00Z");
        assert!(!changed_by_others(&server, &ours), "times aside");
        server[3]["status"] = json!("Unknown");
        assert!(changed_by_others(&server, &ours));
        assert!(changed_by_others(&json!([]), &ours), "conditions removed");
    }

    #[test]
    fn report_cadence() {
        let min = Duration::from_secs(60);
        assert!(should_report(false, None), "never reported");
        assert!(!should_report(false, Some(min)), "idle: lease only");
        assert!(should_report(true, Some(min)), "changed");
        assert!(should_report(false, Some(REPORT_EVERY)), "5 minutes");
    }
}
