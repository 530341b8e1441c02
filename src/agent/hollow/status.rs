//! The Node objects and statuses hollow nodes report, and the time formats
//! of the API (`metav1.Time` in seconds, `metav1.MicroTime` for Leases).

use serde_json::{json, Value};

use super::ipam::node_address;
use super::Settings;

pub const KUBELET_VERSION: &str = "v1.33.0-nanokube";
pub const RUNTIME_VERSION: &str = "hollow://0";
pub const KUBELET_PORT: u16 = 10250;
pub const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";

/// `2006-01-02T15:04:05Z`, now.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2006-01-02T15:04:05.000000Z`, now.
pub fn now_micro() -> String {
    let t = time::OffsetDateTime::now_utc();
    let secs = now();
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), t.microsecond())
}

/// Go's GOARCH for this machine, as kubelets label their nodes.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub fn labels(name: &str) -> Value {
    json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch(),
        INSTANCE_TYPE_LABEL: "hollow",
    })
}

/// A Node to create: metadata and an empty spec (the podCIDR is the node
/// IPAM controller's to set); the status goes through the status subresource.
pub fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels(name),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
    })
}

/// What a kubelet reports, with `ready_since` as the Ready condition's
/// transition time and `heartbeat` as every condition's heartbeat.
pub fn node_status(
    s: &Settings,
    index: usize,
    name: &str,
    ready_since: &str,
    heartbeat: &str,
) -> Value {
    let resources = json!({
        "cpu": s.cpu,
        "memory": s.memory,
        "pods": s.pods.to_string(),
        "ephemeral-storage": "50Gi",
    });
    let pressure = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": ready_since,
        })
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "addresses": [
            {"type": "InternalIP", "address": node_address(index).to_string()},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": format!("hollow-{index}"),
            "systemUUID": format!("hollow-{index}"),
            "bootID": format!("hollow-{index}"),
            "kernelVersion": "hollow",
            "osImage": "nanokube hollow node",
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": arch(),
        },
        "conditions": [
            pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": ready_since,
            },
        ],
    })
}

/// Whether the status the server holds differs from what we would report,
/// heartbeat times aside (upstream kubelet's `nodeStatusHasChanged`):
/// someone else (the node lifecycle controller) changed a condition.
pub fn status_differs(server: &Value, ours: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(conds) = v.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in conds.iter_mut() {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastHeartbeatTime");
                }
            }
            conds.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
        }
        v
    };
    let (server, ours) = (strip(server), strip(ours));
    [
        "conditions",
        "capacity",
        "allocatable",
        "addresses",
        "nodeInfo",
    ]
    .iter()
    .any(|k| server.get(*k) != ours.get(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            prefix: "h".into(),
            nodes: 1,
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: 110,
            run_seconds: 3.0,
        }
    }

    #[test]
    fn times_have_the_api_formats() {
        let t = now();
        assert_eq!(t.len(), "2006-01-02T15:04:05Z".len(), "{t}");
        let m = now_micro();
        assert_eq!(m.len(), "2006-01-02T15:04:05.000000Z".len(), "{m}");
        assert!(m.ends_with('Z') && m.as_bytes()[19] == b'.', "{m}");
    }

    #[test]
    fn only_heartbeats_changing_is_no_change() {
        let s = settings();
        let a = node_status(&s, 0, "n", "t0", "t1");
        let b = node_status(&s, 0, "n", "t0", "t2");
        assert!(!status_differs(&a, &b));
        let mut c = a.clone();
        c["conditions"][3]["status"] = json!("Unknown");
        assert!(status_differs(&c, &b));
        assert_eq!(a["capacity"]["pods"], "110");
        assert_eq!(a["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    }
}
