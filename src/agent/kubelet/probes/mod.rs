//! Container probes (startup, liveness, readiness) and lifecycle hooks
//! (postStart, preStop), with the upstream kubelet's semantics and texts
//! (`pkg/kubelet/prober`, `pkg/probe/*`, `pkg/kubelet/lifecycle`).
//!
//! - [`run_once`] makes one probe attempt (exec through CRI `ExecSync`,
//!   httpGet, tcpSocket, grpc health check) bounded by `timeoutSeconds`.
//! - [`ContainerProbes`] runs every probe of one container instance on its
//!   schedule and reports changes of [`ProbeState`] and failed attempts as
//!   [`ProbeEvent`]s; a liveness/startup failure past `failureThreshold`
//!   carries the kill order.
//! - [`post_start`] / [`pre_stop`] run lifecycle handlers.
//!
//! Network: probes and hooks connect to the pod IP the kubelet gives in
//! [`Target`] (or the `host` a user wrote into an httpGet/tcpSocket action,
//! as upstream), nowhere else; HTTP redirects are only followed to the same
//! host.

mod exec;
mod grpc;
mod hooks;
mod http;
mod resolve;
mod tcp;
#[cfg(test)]
mod testing;
mod tls;
mod worker;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

use crate::agent::cri::Cri;

// Used once the kubelet's pod workers are wired to the probes.
pub use hooks::{post_start, pre_stop};
pub use worker::ContainerProbes;

/// Upstream's kubelet version in the `kube-probe/<v>` and
/// `kube-lifecycle/<v>` user agents.
const KUBE_VERSION: &str = "1.33";

/// Upstream reads at most 10 KiB of probe output and HTTP bodies.
const MAX_OUTPUT: usize = 10 << 10;

/// Event reasons the kubelet records for [`Notice`]s (upstream
/// `events.ContainerUnhealthy` and `events.ContainerProbeWarning`).
pub const REASON_UNHEALTHY: &str = "Unhealthy";
pub const REASON_PROBE_WARNING: &str = "ProbeWarning";

/// Where the probes of one container instance go.
#[derive(Clone)]
pub struct Target {
    pub cri: Cri,
    pub container_id: String,
    /// The pod's IP (for hostNetwork pods the node's IP).
    pub pod_ip: Option<IpAddr>,
    /// The node's IP, used when the pod has no IP of its own.
    pub host_ip: Option<IpAddr>,
}

impl Target {
    /// The default host of httpGet/tcpSocket/grpc actions: the pod IP, else
    /// the host IP, else loopback.
    fn default_host(&self) -> IpAddr {
        self.pod_ip
            .or(self.host_ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// The container's probe of this kind.
    pub fn probe(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
        }
    }

    fn lower(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

/// Capitalised as upstream's probeType, which starts its event texts.
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        })
    }
}

/// The result of one probe attempt; texts are upstream's event messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Counts as success; upstream records a `ProbeWarning` event, e.g.
    /// `Readiness probe warning: Probe terminated redirects, Response body: `.
    Warning(String),
    /// e.g. `Liveness probe failed: HTTP probe failed with statuscode: 500`.
    Failure(String),
    /// The probe could not be run (bad named port, runtime error); upstream
    /// retries it and then throws the result away (no state change).
    Unknown(String),
}

/// One container instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub pod_uid: String,
    pub container_name: String,
    pub container_id: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// The startup probe succeeded (true at once without one).
    pub started: bool,
    /// Started, and the readiness probe succeeded last (true as soon as
    /// started without one).
    pub ready: bool,
}

/// An event for the kubelet to record on the container (type Warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// [`REASON_UNHEALTHY`] or [`REASON_PROBE_WARNING`].
    pub reason: &'static str,
    pub message: String,
}

/// Sent when the state changes, on every failed (or erroring, or warning)
/// attempt, and once when liveness/startup crossed `failureThreshold`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeEvent {
    pub key: ProbeKey,
    pub kind: Kind,
    /// The state after this event.
    pub state: ProbeState,
    /// Set once when liveness/startup crossed `failureThreshold`: the kubelet
    /// kills the container with this message, upstream's
    /// `Container X failed liveness probe` (reason `LivenessProbe`) or
    /// `... failed startup probe` (reason `StartupProbe`), to which upstream
    /// appends `, will be restarted` when the restart policy restarts it.
    /// The worker of that probe stops; the next instance gets a new
    /// [`ContainerProbes`].
    pub failure: Option<String>,
    /// The probe's own `terminationGracePeriodSeconds`, with `failure`: the
    /// kill uses it instead of the pod's.
    pub termination_grace_period_seconds: Option<i64>,
    pub notice: Option<Notice>,
}

/// Internal errors; they become [`Outcome::Unknown`] or hook failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("port {0:?} not found")]
    PortNotFound(String),
    #[error("invalid port number: {0}")]
    InvalidPort(i64),
    #[error("missing probe handler for container {0}")]
    MissingHandler(String),
    #[error("invalid handler: {0}")]
    InvalidHandler(String),
}

/// What a probe implementation found, before the kind's prefix is added
/// (upstream's probe.Result plus output or error).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Probed {
    Success,
    Warning(String),
    Failure(String),
    Error(String),
}

impl Probed {
    fn outcome(self, kind: Kind) -> Outcome {
        match self {
            Probed::Success => Outcome::Success,
            Probed::Warning(out) => Outcome::Warning(format!("{kind} probe warning: {out}")),
            Probed::Failure(out) => Outcome::Failure(format!("{kind} probe failed: {out}")),
            Probed::Error(err) => Outcome::Unknown(format!(
                "{kind} probe errored and resulted in unknown state: {err}"
            )),
        }
    }
}

/// `timeoutSeconds`, default (and minimum) 1.
fn probe_timeout(probe: &Probe) -> Duration {
    Duration::from_secs(positive(probe.timeout_seconds, 1))
}

fn positive(value: Option<i32>, default: u64) -> u64 {
    match value {
        Some(v) if v > 0 => v as u64,
        _ => default,
    }
}

/// One attempt of `probe` against `target`, bounded by `timeoutSeconds`.
pub async fn run_once(
    kind: Kind,
    probe: &Probe,
    container: &Container,
    target: &Target,
) -> Outcome {
    let timeout = probe_timeout(probe);
    let probed = if let Some(action) = &probe.exec {
        let command = action.command.as_deref().unwrap_or_default();
        exec::probe(target, container, command, timeout).await
    } else if let Some(action) = &probe.http_get {
        http::probe(action, container, target, timeout).await
    } else if let Some(action) = &probe.tcp_socket {
        tcp::probe(action, container, target, timeout).await
    } else if let Some(action) = &probe.grpc {
        grpc::probe(action, target, timeout).await
    } else {
        Probed::Error(Error::MissingHandler(container.name.clone()).to_string())
    };
    tracing::debug!(
        container = %container.name,
        id = %target.container_id,
        probe = kind.lower(),
        result = ?probed,
        "probe attempt"
    );
    probed.outcome(kind)
}
