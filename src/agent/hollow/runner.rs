//! One pod's made-up life on a hollow node, driven by its annotations:
//! Running at once; Ready at once, after `ready-after-seconds`, or never;
//! pods that are meant to finish (restartPolicy Never/OnFailure) exit after
//! `run-seconds` with `exit-code` — Succeeded, Failed, or (OnFailure with a
//! non-zero code) restarted with one more restart counted.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::node::NodeState;
use super::podstatus::{self, State, View};
use super::status::now;
use super::Ctx;
use crate::client::{Client, PatchType, ResourceId};

pub const READY_AFTER: &str = "hollow.nanokube.io/ready-after-seconds";
pub const NEVER_READY: &str = "hollow.nanokube.io/never-ready";
pub const RUN_SECONDS: &str = "hollow.nanokube.io/run-seconds";
pub const EXIT_CODE: &str = "hollow.nanokube.io/exit-code";

/// Pause before an OnFailure container runs again (a kubelet backs off
/// from 10 s; a short fixed pause keeps Job tests quick but never spins).
const RESTART_PAUSE: Duration = Duration::from_secs(1);
const PATCH_ATTEMPTS: u32 = 5;

/// A pod's address, given back exactly once (by whoever ends the pod).
pub struct PodIp {
    node: Arc<NodeState>,
    ip: Mutex<Option<Ipv4Addr>>,
}

impl PodIp {
    pub fn new(node: Arc<NodeState>, ip: Ipv4Addr) -> Arc<PodIp> {
        Arc::new(PodIp {
            node,
            ip: Mutex::new(Some(ip)),
        })
    }

    pub fn release(&self) {
        let taken = self.ip.lock().ok().and_then(|mut ip| ip.take());
        if let (Some(ip), Ok(mut ipam)) = (taken, self.node.ipam.lock()) {
            ipam.release(ip);
        }
    }
}

/// What a previous run of the agent already reported for a Running pod.
pub struct Adopted {
    pub start_time: String,
    pub since: String,
    pub restart_count: u32,
    pub ready: bool,
}

pub struct Start {
    pub pod: Arc<Value>,
    pub node: Arc<NodeState>,
    pub ip: Arc<PodIp>,
    pub ip_text: String,
    pub adopted: Option<Adopted>,
}

fn annotation<T: std::str::FromStr>(pod: &Value, key: &str) -> Option<T> {
    pod["metadata"]["annotations"][key]
        .as_str()?
        .trim()
        .parse()
        .ok()
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

/// The pod was deleted under us: nothing more to report.
struct Gone;

/// Runs the pod's timeline; returns when it finished or vanished.
pub async fn run(ctx: Arc<Ctx>, s: Start) {
    let pod = s.pod.clone();
    let ready_after: f64 = annotation(&pod, READY_AFTER).unwrap_or(0.0);
    let never_ready = annotation::<String>(&pod, NEVER_READY).as_deref() == Some("true");
    let policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    let finishes = policy != "Always";
    let run_seconds: f64 = annotation(&pod, RUN_SECONDS).unwrap_or(ctx.settings.run_seconds);
    let exit_code: i32 = annotation(&pod, EXIT_CODE).unwrap_or(0);
    let ready_at_start = !never_ready && ready_after <= 0.0;

    let start_time = s
        .adopted
        .as_ref()
        .map_or_else(now, |a| a.start_time.clone());
    let mut restart_count = s.adopted.as_ref().map_or(0, |a| a.restart_count);
    // After an agent restart a pod already reported as it would be now is
    // not written again.
    let mut skip_report = s
        .adopted
        .as_ref()
        .is_some_and(|a| a.ready == ready_at_start);
    let mut since = s.adopted.as_ref().map_or_else(now, |a| a.since.clone());
    let mut last_state = Value::Null;
    let report = |state: State, restarts: u32, last: &Value, changed: &str| {
        let view = View {
            pod: &pod,
            host_ip: s.node.host_ip.to_string(),
            pod_ip: s.ip_text.clone(),
            start_time: &start_time,
            ready_changed: changed,
            restart_count: restarts,
            last_state: last.clone(),
            state,
        };
        patch_status(ctx.clone(), pod.clone(), podstatus::build(&view))
    };
    loop {
        let t0 = Instant::now();
        let state = State::Running {
            since: since.clone(),
            ready: ready_at_start,
        };
        if !std::mem::take(&mut skip_report)
            && report(state, restart_count, &last_state, &now())
                .await
                .is_err()
        {
            return;
        }
        let ready_at = (!never_ready && !ready_at_start).then(|| t0 + seconds(ready_after));
        let exit_at = finishes.then(|| t0 + seconds(run_seconds));
        if let Some(r) = ready_at.filter(|r| exit_at.is_none_or(|e| *r < e)) {
            tokio::time::sleep_until(r).await;
            let state = State::Running {
                since: since.clone(),
                ready: true,
            };
            if report(state, restart_count, &last_state, &now())
                .await
                .is_err()
            {
                return;
            }
        }
        let Some(exit_at) = exit_at else {
            // restartPolicy Always: runs until deleted.
            return std::future::pending().await;
        };
        tokio::time::sleep_until(exit_at).await;
        let at = now();
        if exit_code == 0 || policy == "Never" {
            let state = State::Exited {
                since: since.clone(),
                at: at.clone(),
                code: exit_code,
            };
            let _ = report(state, restart_count, &last_state, &at).await;
            // A finished pod holds no address.
            s.ip.release();
            tracing::debug!(pod = name(&pod), exit_code, "hollow pod finished");
            return;
        }
        let id = format!(
            "hollow://{}-restart",
            pod["metadata"]["uid"].as_str().unwrap_or_default()
        );
        last_state = podstatus::terminated(&since, &at, exit_code, &id);
        restart_count += 1;
        tracing::debug!(pod = name(&pod), restart_count, "hollow pod restarts");
        tokio::time::sleep(RESTART_PAUSE).await;
        since = now();
    }
}

fn name(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Writes the status (merge patch: lists are replaced whole), retrying
/// transient failures; `Gone` when the pod no longer exists.
async fn patch_status(ctx: Arc<Ctx>, pod: Arc<Value>, status: Value) -> Result<(), Gone> {
    let pods = ResourceId::new("", "v1", "pods");
    let ns = pod["metadata"]["namespace"].as_str();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    // The uid pins the patch to this pod, not a namesake created since.
    let uid = pod["metadata"]["uid"].clone();
    let body = json!({"metadata": {"uid": uid}, "status": status});
    let mut missing = false;
    for attempt in 1..=PATCH_ATTEMPTS {
        let res = ctx
            .client
            .patch(&pods, ns, pod_name, PatchType::Merge, &body, Some("status"))
            .await;
        match res {
            Ok(_) => return Ok(()),
            // What a uid mismatch (a namesake) answers: ours is gone.
            Err(e) if e.code() == Some(422) => {
                tracing::warn!(pod = name(&pod), error = %e, "status refused");
                return Err(Gone);
            }
            // 404 and 409 are retried too: a pod fresh from the watch was
            // seen to read as missing under load, and a deleted pod's
            // DELETED event stops this task anyway.
            Err(e) => {
                missing = e.is_not_found();
                tracing::debug!(pod = name(&pod), error = %e, attempt, "status patch failed");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        }
    }
    if missing {
        return Err(Gone);
    }
    tracing::warn!(pod = name(&pod), "giving up on a status update");
    Ok(())
}
