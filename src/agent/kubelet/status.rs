//! The pod's status as the kubelet reports it: phase, conditions, one
//! status per container, addresses and QoS, computed from what the runtime
//! holds and what the kubelet knows (back-off, pull errors, probes), and
//! written only when it changed: one write per change, none when idle.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Map, Value};

use super::observe::Instance;
use super::spec;
use super::worker::Worker;
use crate::api::meta;
use crate::client::{Client, PatchType, ResourceId};

/// The kubelet-owned condition types; others (PodScheduled,
/// DisruptionTarget, readiness gates) are kept as they are.
const OWNED: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

pub fn grace_period(pod: &Pod) -> Duration {
    let s = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// How long ago a CRI timestamp (nanoseconds since the epoch) was.
pub fn nanos_since(ns: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let then = u128::try_from(ns).unwrap_or(0);
    Duration::from_nanos(u64::try_from(now.saturating_sub(then)).unwrap_or(u64::MAX))
}

/// The monotonic instant of a CRI timestamp (now when unknown).
pub fn instant_of(ns: Option<i64>) -> Instant {
    let ago = ns.map(nanos_since).unwrap_or_default();
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

fn time(ns: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    meta::timestamp(t)
}

fn terminated(inst: &Instance) -> Value {
    let s = inst.status.clone().unwrap_or_default();
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": if s.reason.is_empty() { if s.exit_code == 0 { "Completed" } else { "Error" } } else { s.reason.as_str() },
        "containerID": format!("containerd://{}", inst.id),
    });
    if s.started_at > 0 {
        t["startedAt"] = json!(time(s.started_at));
    }
    if s.finished_at > 0 {
        t["finishedAt"] = json!(time(s.finished_at));
    }
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    json!({ "terminated": t })
}

/// What one container looks like in the status.
struct Shown {
    value: Value,
    running: bool,
    ready: bool,
    /// Exit code of the last termination, for the phase.
    stopped: Option<i32>,
    waiting_fresh: bool,
}

fn container_status<C: Client + Clone>(
    w: &Worker<C>,
    c: &Container,
    initializing: bool,
    with_started: bool,
) -> Shown {
    let latest = w.runtime.latest(&c.name);
    let previous = w.runtime.previous(&c.name);
    let track = w.tracks.get(&c.name);
    let probe = track
        .and_then(|t| t.probes.as_ref())
        .filter(|(id, _)| latest.is_some_and(|l| &l.id == id))
        .map(|(_, p)| p.state());
    let mut last = Value::Null;
    let mut stopped = None;
    let mut waiting_fresh = false;
    let state = match (latest, track.and_then(|t| t.waiting.as_ref())) {
        (Some(l), _) if l.running() => {
            if let Some(p) = previous.filter(|p| p.exited()) {
                last = terminated(p);
            }
            let started = l.started_at().map(time).unwrap_or_else(meta::now);
            json!({ "running": { "startedAt": started } })
        }
        (l, Some(wait)) => {
            match l.filter(|l| l.exited()) {
                Some(l) => {
                    last = terminated(l);
                    stopped = l.exit_code();
                }
                None => waiting_fresh = true,
            }
            json!({ "waiting": { "reason": wait.reason, "message": wait.message } })
        }
        (Some(l), None) if l.exited() => {
            if let Some(p) = previous.filter(|p| p.exited()) {
                last = terminated(p);
            }
            stopped = l.exit_code();
            let mut t = terminated(l);
            if let Some(m) = super::start::termination_message(&w.ctx, &w.pod, c, l.restart_count) {
                t["terminated"]["message"] = json!(m);
            }
            t
        }
        _ => {
            waiting_fresh = true;
            let reason = if initializing {
                "PodInitializing"
            } else {
                "ContainerCreating"
            };
            json!({ "waiting": { "reason": reason } })
        }
    };
    let running = latest.is_some_and(Instance::running);
    let started = running && probe.is_none_or(|p| p.started);
    let ready = running && probe.map_or(started, |p| p.ready);
    let mut v = json!({
        "name": c.name,
        "state": state,
        "lastState": if last.is_null() { json!({}) } else { last },
        "ready": ready,
        "restartCount": latest.map_or(0, |l| l.restart_count),
        "image": c.image.clone().unwrap_or_default(),
        "imageID": latest.and_then(|l| l.status.as_ref()).map(|s| s.image_ref.clone()).unwrap_or_default(),
    });
    if let Some(l) = latest {
        v["containerID"] = json!(format!("containerd://{}", l.id));
    }
    if with_started {
        v["started"] = json!(started);
    }
    Shown {
        value: v,
        running,
        ready,
        stopped,
        waiting_fresh,
    }
}

fn condition(pod: &Pod, kind: &str, ok: bool, reason: Option<&str>) -> Value {
    let status = if ok { "True" } else { "False" };
    // The transition time stays while the status does.
    let since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| json!(meta::now()));
    let mut c = json!({ "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since });
    if let (false, Some(r)) = (ok, reason) {
        c["reason"] = json!(r);
    }
    c
}

/// The status the kubelet reports now.
pub fn build<C: Client + Clone>(w: &Worker<C>) -> Value {
    let pod = &w.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let sandbox = w.runtime.ready_sandbox();
    let host_network = spec.host_network.unwrap_or(false);
    let node_ip = w.ctx.node.node_ip().to_string();
    let pod_ip = if host_network {
        Some(node_ip.clone())
    } else {
        sandbox.and_then(|s| s.ip).map(|ip| ip.to_string())
    };

    // Init containers.
    let mut init_done = true;
    let mut init_failed = false;
    let mut init_statuses = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        let shown = container_status(w, c, false, true);
        let latest = w.runtime.latest(&c.name);
        let done = if sidecar {
            shown.running && shown.value["started"] == json!(true)
        } else {
            latest.is_some_and(|l| l.exit_code() == Some(0))
        };
        if !sidecar
            && policy == "Never"
            && latest.is_some_and(|l| l.exit_code().is_some_and(|e| e != 0))
        {
            init_failed = true;
        }
        init_done &= done;
        init_statuses.push(shown.value);
    }

    // App containers.
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    let mut all_ready = !spec.containers.is_empty();
    let mut statuses = Vec::new();
    for c in &spec.containers {
        let shown = container_status(w, c, !init_done, true);
        all_ready &= shown.ready;
        if shown.running {
            running += 1;
        } else if let Some(code) = shown.stopped {
            if code == 0 {
                succeeded += 1;
            } else {
                failed += 1;
            }
        } else if shown.waiting_fresh || shown.value["state"]["waiting"].is_object() {
            waiting += 1;
        }
        statuses.push(shown.value);
    }
    let stopped = succeeded + failed;
    let phase = if init_failed {
        "Failed"
    } else if !init_done || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            "Always" => "Running",
            _ if failed == 0 => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        }
    } else {
        "Pending"
    };
    let gates_ok = spec.readiness_gates.iter().flatten().all(|g| {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == g.condition_type && c.status == "True")
    });
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let containers_ready = all_ready && !terminal;
    let mut conditions = vec![
        condition(pod, "PodReadyToStartContainers", sandbox.is_some(), None),
        condition(
            pod,
            "Initialized",
            init_done,
            Some("ContainersNotInitialized"),
        ),
        condition(
            pod,
            "ContainersReady",
            containers_ready,
            Some("ContainersNotReady"),
        ),
        condition(
            pod,
            "Ready",
            containers_ready && gates_ok,
            Some("ContainersNotReady"),
        ),
    ];
    for c in pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        if !OWNED.contains(&c.type_.as_str()) {
            if let Ok(v) = serde_json::to_value(c) {
                conditions.push(v);
            }
        }
    }
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| json!(meta::now()));
    let mut status = Map::new();
    status.insert("phase".into(), json!(phase));
    status.insert("conditions".into(), json!(conditions));
    status.insert("hostIP".into(), json!(node_ip));
    status.insert("hostIPs".into(), json!([{ "ip": node_ip }]));
    if let Some(ip) = &pod_ip {
        status.insert("podIP".into(), json!(ip));
        status.insert("podIPs".into(), json!([{ "ip": ip }]));
    }
    status.insert("startTime".into(), start_time);
    status.insert("qosClass".into(), json!(spec::qos_class(pod)));
    status.insert("containerStatuses".into(), json!(statuses));
    if !init_statuses.is_empty() {
        status.insert("initContainerStatuses".into(), json!(init_statuses));
    }
    let ephemeral: Vec<Value> = super::ephemeral::containers(pod)
        .iter()
        .map(|(c, _)| {
            // Never ready: ephemeral containers serve nothing.
            let mut v = container_status(w, c, false, false).value;
            v["ready"] = json!(false);
            v
        })
        .collect();
    if !ephemeral.is_empty() {
        status.insert("ephemeralContainerStatuses".into(), json!(ephemeral));
    }
    if let Some(wait) = &w.pod_waiting {
        if phase == "Pending" {
            status.insert("message".into(), json!(wait.message));
        }
    }
    Value::Object(status)
}

/// Writes the status if it differs from the last one written.
pub async fn report<C: Client + Clone>(w: &mut Worker<C>) {
    let status = build(w);
    if w.written.as_ref() == Some(&status) {
        return;
    }
    let res = ResourceId::new("", "v1", "pods");
    let patch = json!({ "status": status });
    let result = w
        .ctx
        .client
        .patch(
            &res,
            w.pod.metadata.namespace.as_deref(),
            w.pod.metadata.name.as_deref().unwrap_or_default(),
            PatchType::Merge,
            &patch,
            Some("status"),
        )
        .await;
    match result {
        Ok(v) => {
            if let Ok(p) = serde_json::from_value::<Pod>(v) {
                if p.metadata.uid == w.pod.metadata.uid {
                    w.pod = p;
                }
            }
            w.written = Some(status);
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => tracing::warn!(pod = %w.name(), error = %e, "writing pod status failed"),
    }
}
