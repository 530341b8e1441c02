//! One task per pod: brings the runtime to what the pod asks for (sandbox,
//! init containers in order, app containers, restarts with back-off),
//! kills it when it is deleted, and reports its status. It wakes on a new
//! version of the pod, a runtime change seen by the relist, a probe result,
//! or its own timer (back-off ends, periodic resync).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::mpsc;

use super::images::PullBackoff;
use super::observe::{self, PodRuntime};
use super::probes::{ContainerProbes, ProbeEvent, ProbeKey, Target};
use super::start::{self, StartInput, Waiting};
use super::status;
use super::teardown;
use super::Ctx;
use crate::agent::cri::api;
use crate::client::Client;

/// What the pods manager tells a worker.
pub enum Msg {
    Pod(Box<Pod>),
    /// The pod left the API (deleted for good, or moved away).
    Gone,
    /// Something changed in the runtime for this pod.
    Wake,
}

/// Volumes are re-synced this often, so ConfigMap and Secret updates reach
/// running pods within a minute.
const RESYNC: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_secs(2);
const CRASH_FIRST: Duration = Duration::from_secs(10);
const CRASH_MAX: Duration = Duration::from_secs(300);

/// Per container (by name) state the runtime does not hold.
#[derive(Default)]
pub struct Track {
    /// Crash-loop delay before the next restart (None until the first one).
    pub backoff: Option<Duration>,
    /// Why the container is not running, when the kubelet knows better
    /// than the runtime (image pull, config errors, back-off).
    pub waiting: Option<Waiting>,
    pub pull: PullBackoff,
    /// Probes of the current instance.
    pub probes: Option<(String, ContainerProbes)>,
    /// Reported once per message.
    pub last_event: Option<String>,
}

pub struct Worker<C: Client + Clone> {
    pub ctx: Arc<Ctx<C>>,
    pub pod: Pod,
    pub gone: bool,
    pub tracks: HashMap<String, Track>,
    pub runtime: PodRuntime,
    /// Last status written (to write only changes).
    pub written: Option<serde_json::Value>,
    /// The pod's volume / sandbox problem, shown in status and events.
    pub pod_waiting: Option<Waiting>,
    probe_tx: mpsc::UnboundedSender<ProbeEvent>,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

pub fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Runs a pod until it is deleted and cleaned up (or the agent stops).
pub async fn run<C: Client + Clone>(
    ctx: Arc<Ctx<C>>,
    pod: Pod,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let id = uid(&pod);
    let mut w = Worker {
        ctx: ctx.clone(),
        pod,
        gone: false,
        tracks: HashMap::new(),
        runtime: PodRuntime::default(),
        written: None,
        pod_waiting: None,
        probe_tx,
    };
    loop {
        let wake_at = match w.sync().await {
            Ok(Next::Done) => break,
            Ok(Next::At(t)) => t,
            Err(e) => {
                tracing::warn!(pod = %w.name(), error = %e, "pod sync failed; retrying");
                Instant::now() + RETRY
            }
        };
        // Wait for something that matters: a status-only change of the pod
        // (our own writes coming back) is not a reason to sync.
        loop {
            let mut relevant = false;
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return, // the agent is stopping: leave the pod running
                    Some(m) => relevant |= w.take(m),
                },
                Some(ev) = probe_rx.recv() => {
                    w.probe_event(ev).await;
                    relevant = true;
                }
                _ = tokio::time::sleep_until(wake_at.into()) => relevant = true,
            }
            // Coalesce whatever else arrived meanwhile into this one sync.
            while let Ok(m) = rx.try_recv() {
                relevant |= w.take(m);
            }
            while let Ok(ev) = probe_rx.try_recv() {
                w.probe_event(ev).await;
                relevant = true;
            }
            if relevant {
                break;
            }
        }
    }
    let _ = ctx.done.send(id);
}

pub enum Next {
    At(Instant),
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Cri(#[from] crate::agent::cri::Error),
    #[error("container runtime: {0}")]
    Status(#[from] tonic::Status),
}

impl<C: Client + Clone> Worker<C> {
    pub fn name(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// Takes a message in; whether it calls for a sync.
    fn take(&mut self, m: Msg) -> bool {
        match m {
            Msg::Pod(p) => {
                // A namesake with another uid is another pod's business.
                if p.metadata.uid != self.pod.metadata.uid {
                    return false;
                }
                let relevant = p.spec != self.pod.spec
                    || p.metadata.deletion_timestamp != self.pod.metadata.deletion_timestamp
                    || p.metadata.deletion_grace_period_seconds
                        != self.pod.metadata.deletion_grace_period_seconds
                    || p.metadata.labels != self.pod.metadata.labels
                    || p.metadata.annotations != self.pod.metadata.annotations
                    || phase(&p) != phase(&self.pod);
                self.pod = *p;
                relevant
            }
            Msg::Gone => {
                self.gone = true;
                true
            }
            Msg::Wake => true,
        }
    }

    async fn probe_event(&mut self, ev: ProbeEvent) {
        if let Some(n) = &ev.notice {
            self.ctx.event_warning(&self.pod, n.reason, &n.message);
        }
        let Some(message) = ev.failure.clone() else {
            return; // a readiness/startup change: the sync reports it
        };
        let name = ev.key.container_name.clone();
        let current = self
            .tracks
            .get(&name)
            .and_then(|t| t.probes.as_ref())
            .map(|(id, _)| id.clone());
        if current.as_deref() != Some(ev.key.container_id.as_str()) {
            return; // an old instance's
        }
        let Some(container) = self.container(&name).cloned() else {
            return;
        };
        self.ctx.event_normal(
            &self.pod,
            "Killing",
            &format!("{message}, will be restarted"),
        );
        if let Some(t) = self.tracks.get_mut(&name) {
            if let Some((_, p)) = t.probes.take() {
                p.stop();
            }
        }
        let grace = ev
            .termination_grace_period_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
            .unwrap_or_else(|| status::grace_period(&self.pod));
        let ip = self.runtime.ready_sandbox().and_then(|s| s.ip);
        start::stop(
            &self.ctx,
            &self.pod,
            &container,
            &ev.key.container_id,
            ip,
            grace,
            true,
        )
        .await;
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        let spec = self.pod.spec.as_ref()?;
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    /// One pass. Returns when to look again.
    async fn sync(&mut self) -> Result<Next, SyncError> {
        let uid = uid(&self.pod);
        self.runtime = observe::observe(&self.ctx.cri, &uid).await?;
        if self.gone || self.pod.metadata.deletion_timestamp.is_some() {
            return teardown::terminate(self).await;
        }
        let phase = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed") {
            // Finished (or evicted): nothing runs again; free the sandbox.
            teardown::stop_all(self, false).await;
            self.runtime = observe::observe(&self.ctx.cri, &uid).await?;
            status::report(self).await;
            let later = if self.exit_settling() {
                Duration::from_secs(1)
            } else {
                RESYNC * 10
            };
            return Ok(Next::At(Instant::now() + later));
        }
        let mut wake = Instant::now() + RESYNC;
        if let Some(message) = super::eviction::empty_dir_over_limit(&self.ctx, &self.pod) {
            super::eviction::evict(&self.ctx, &self.pod, &message).await;
            return Ok(Next::At(Instant::now() + RETRY));
        }

        // Volumes first: a missing ConfigMap keeps the pod waiting.
        let volumes = match self.ctx.volumes.setup(&self.pod).await {
            Ok(v) => {
                self.pod_waiting = None;
                v
            }
            Err(e) => {
                let message = format!("MountVolume.SetUp failed: {e}");
                self.set_pod_waiting("ContainerCreating", message, "FailedMount");
                status::report(self).await;
                return Ok(Next::At(Instant::now() + RETRY));
            }
        };

        let sandbox_config = match teardown::ensure_sandbox(self).await {
            Ok(c) => c,
            Err(message) => {
                self.set_pod_waiting("ContainerCreating", message, "FailedCreatePodSandBox");
                status::report(self).await;
                return Ok(Next::At(Instant::now() + RETRY * 2));
            }
        };
        let Some(sandbox) = self.runtime.ready_sandbox().cloned() else {
            return Ok(Next::At(Instant::now() + RETRY));
        };
        let spec = self.pod.spec.clone().unwrap_or_default();

        // Init containers, in order; sidecars (restartPolicy Always) keep running.
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            let latest = self.runtime.latest(&c.name).cloned();
            match latest {
                Some(i) if sidecar && i.running() => {
                    if !self.started(&c.name) {
                        initialized = false;
                        break;
                    }
                    continue;
                }
                Some(i) if !sidecar && i.exited() && i.exit_code() == Some(0) => continue,
                Some(i) if i.running() => {
                    initialized = false;
                    break;
                }
                Some(i) if i.exited() && !sidecar && self.restart_policy() == "Never" => {
                    // A failed init container fails the pod for good.
                    initialized = false;
                    break;
                }
                _ => {
                    if let Some(at) = self
                        .start_or_wait(c, &sandbox, &sandbox_config, &volumes, latest.as_ref())
                        .await
                    {
                        wake = wake.min(at);
                    }
                    initialized = false;
                    break;
                }
            }
        }

        if initialized {
            for c in &spec.containers {
                let latest = self.runtime.latest(&c.name).cloned();
                let restart = match &latest {
                    None => true,
                    Some(i) if i.running() => false,
                    Some(i) if i.exited() => match self.restart_policy() {
                        "Never" => false,
                        "OnFailure" => i.exit_code() != Some(0),
                        _ => true,
                    },
                    // Created but never started (a start failed): try again.
                    Some(_) => true,
                };
                if restart {
                    if let Some(at) = self
                        .start_or_wait(c, &sandbox, &sandbox_config, &volumes, latest.as_ref())
                        .await
                    {
                        wake = wake.min(at);
                    }
                } else if latest.as_ref().is_some_and(|i| i.running()) {
                    self.ensure_probes(c, latest.as_ref(), sandbox.ip);
                }
            }
        }
        // Ephemeral containers may start before initialization is done.
        if let Some(at) = super::ephemeral::sync(self, &sandbox, &sandbox_config, &volumes).await {
            wake = wake.min(at);
        }
        // Started something: look at the runtime again for the status.
        self.runtime = observe::observe(&self.ctx.cri, &uid).await?;
        teardown::prune(self).await;
        status::report(self).await;
        if self.exit_settling() {
            wake = wake.min(Instant::now() + Duration::from_secs(1));
        }
        Ok(Next::At(wake))
    }

    /// A container killed by SIGKILL moments ago whose reason may still
    /// change: containerd learns of an OOM kill from a separate event that
    /// can arrive after the exit, so look again shortly.
    fn exit_settling(&self) -> bool {
        self.runtime
            .containers
            .values()
            .filter_map(|v| v.first())
            .any(|i| {
                i.exit_code() == Some(137)
                    && i.status.as_ref().is_some_and(|s| s.reason != "OOMKilled")
                    && status::nanos_since(i.finished_at().unwrap_or(0)) < Duration::from_secs(5)
            })
    }

    fn set_pod_waiting(&mut self, reason: &str, message: String, event: &'static str) {
        let changed = self.pod_waiting.as_ref().map(|w| &w.message) != Some(&message);
        if changed {
            self.ctx.event_warning(&self.pod, event, &message);
        }
        self.pod_waiting = Some(Waiting {
            reason: reason.into(),
            message,
            event: Some(event),
        });
    }

    pub fn started(&self, name: &str) -> bool {
        self.tracks
            .get(name)
            .and_then(|t| t.probes.as_ref())
            .is_none_or(|(_, p)| p.state().started)
    }

    /// Starts (or restarts) a container unless it must wait for its
    /// crash-loop back-off; returns when to try again if waiting.
    async fn start_or_wait(
        &mut self,
        c: &Container,
        sandbox: &observe::Sandbox,
        sandbox_config: &api::PodSandboxConfig,
        volumes: &super::volumes::PodVolumes,
        latest: Option<&observe::Instance>,
    ) -> Option<Instant> {
        let name = c.name.clone();
        let restart_count = latest.map_or(0, |i| i.restart_count + 1);
        let track = self.tracks.entry(name.clone()).or_default();
        if let Some(i) = latest.filter(|i| i.exited()) {
            // Upstream: a container that ran 10 min resets its back-off.
            let ran = i
                .finished_at()
                .zip(i.started_at())
                .map(|(f, s)| (f - s) / 1_000_000_000)
                .unwrap_or(0);
            if ran > 600 {
                track.backoff = None;
            }
            if let Some(delay) = track.backoff {
                let finished = i.finished_at().unwrap_or(0);
                let since = status::nanos_since(finished);
                if since < delay {
                    let message = format!(
                        "back-off {} restarting failed container={name} pod={}_{}({})",
                        humanize(delay),
                        self.pod.metadata.name.as_deref().unwrap_or_default(),
                        self.pod.metadata.namespace.as_deref().unwrap_or_default(),
                        uid(&self.pod)
                    );
                    if track.waiting.as_ref().map(|w| w.reason.as_str()) != Some("CrashLoopBackOff")
                    {
                        self.ctx.event_warning(
                            &self.pod,
                            "BackOff",
                            "Back-off restarting failed container",
                        );
                    }
                    let track = self.tracks.entry(name).or_default();
                    track.waiting = Some(Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message,
                        event: None,
                    });
                    return Some(Instant::now() + (delay - since));
                }
            }
            let track = self.tracks.entry(name.clone()).or_default();
            track.backoff = Some(
                track
                    .backoff
                    .map_or(CRASH_FIRST, |d| (d * 2).min(CRASH_MAX)),
            );
        }
        if let Some((_, p)) = self.tracks.entry(name.clone()).or_default().probes.take() {
            p.stop();
        }
        let input = StartInput {
            pod: &self.pod,
            sandbox_id: &sandbox.id,
            sandbox_config,
            pod_ip: sandbox.ip,
            volumes,
            restart_count,
            pid_target: None,
        };
        let mut pull = std::mem::take(&mut self.tracks.entry(name.clone()).or_default().pull);
        let result = start::start(&self.ctx, &input, c, &mut pull).await;
        let track = self.tracks.entry(name.clone()).or_default();
        track.pull = pull;
        match result {
            Ok(id) => {
                track.waiting = None;
                track.last_event = None;
                let inst = observe::Instance {
                    id: id.clone(),
                    restart_count,
                    created_at: 0,
                    state: api::ContainerState::ContainerRunning,
                    status: None,
                };
                self.ensure_probes(c, Some(&inst), sandbox.ip);
                None
            }
            Err(w) => {
                if let Some(event) = w.event {
                    if track.last_event.as_ref() != Some(&w.message) {
                        track.last_event = Some(w.message.clone());
                        let message = w.message.clone();
                        self.ctx.event_warning(&self.pod, event, &message);
                    }
                }
                let retry = match w.reason.as_str() {
                    // Shown until the next sync, which reports the back-off.
                    "ErrImagePull" => Instant::now() + RETRY,
                    "ImagePullBackOff" => self
                        .tracks
                        .get(&name)
                        .and_then(|t| t.pull.waiting())
                        .unwrap_or(Instant::now() + RETRY),
                    _ => Instant::now() + RETRY,
                };
                if let Some(t) = self.tracks.get_mut(&name) {
                    t.waiting = Some(w);
                }
                Some(retry)
            }
        }
    }

    /// Probes for the running instance, started once per instance.
    fn ensure_probes(
        &mut self,
        c: &Container,
        inst: Option<&observe::Instance>,
        pod_ip: Option<std::net::IpAddr>,
    ) {
        let Some(inst) = inst else { return };
        let track = self.tracks.entry(c.name.clone()).or_default();
        if track.probes.as_ref().is_some_and(|(id, _)| *id == inst.id) {
            return;
        }
        if let Some((_, p)) = track.probes.take() {
            p.stop();
        }
        let target = Target {
            cri: self.ctx.cri.clone(),
            container_id: inst.id.clone(),
            pod_ip,
            host_ip: Some(self.ctx.node.node_ip()),
        };
        let key = ProbeKey {
            pod_uid: uid(&self.pod),
            container_name: c.name.clone(),
            container_id: inst.id.clone(),
        };
        let started_at = status::instant_of(inst.started_at());
        let probes = ContainerProbes::start(c, target, started_at, self.probe_tx.clone(), key);
        track.probes = Some((inst.id.clone(), probes));
    }
}

/// Upstream prints back-off delays as Go durations: 10s, 1m20s, 5m0s.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
        assert_eq!(humanize(Duration::from_secs(80)), "1m20s");
        assert_eq!(humanize(Duration::from_secs(300)), "5m0s");
    }
}
