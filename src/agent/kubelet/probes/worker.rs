//! The probe workers of one container instance (upstream
//! `pkg/kubelet/prober/worker.go`): one task per probe kind, each on its own
//! schedule from the container's start, sharing one [`ProbeState`].
//!
//! - No startup probe: started at once. A startup probe gates the others:
//!   liveness and readiness wait until it succeeded.
//! - Readiness is false until the readiness probe's first success (or, with
//!   no readiness probe, true as soon as started).
//! - A result changes the state only after `successThreshold` (readiness;
//!   1 for the others) or `failureThreshold` equal results in a row.
//! - A liveness/startup failure past its threshold is reported once with
//!   the kill message, and that worker stops.
//! - An attempt that errors is retried up to 3 times, then thrown away.

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    positive, run_once, Kind, Notice, Outcome, ProbeEvent, ProbeKey, ProbeState, Target,
    REASON_PROBE_WARNING, REASON_UNHEALTHY,
};

/// Upstream's maxProbeRetries: an erroring attempt is tried again at once.
const MAX_ATTEMPTS: usize = 3;

/// The first probe of a fresh container waits at most this share of the
/// period (at most 1 s) more than its initial delay, so containers started
/// together are not probed in the same instant.
const FRESH_JITTER_DIVISOR: u32 = 10;

/// Runs one attempt of the probe of a kind (the real [`run_once`], or a
/// script in tests).
pub(super) type Runner =
    Arc<dyn Fn(Kind) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// Runs all probes of one container instance until stopped or dropped.
pub struct ContainerProbes {
    state: watch::Receiver<ProbeState>,
    tasks: Vec<JoinHandle<()>>,
}

impl ContainerProbes {
    /// Starts the workers of `container`'s probes; `started_at` is when the
    /// container started (initialDelaySeconds counts from it).
    pub fn start(
        container: &Container,
        target: Target,
        started_at: std::time::Instant,
        events: mpsc::UnboundedSender<ProbeEvent>,
        key: ProbeKey,
    ) -> ContainerProbes {
        let spec = Arc::new(container.clone());
        let target = Arc::new(target);
        let runner: Runner = Arc::new(move |kind| {
            let (spec, target) = (spec.clone(), target.clone());
            Box::pin(async move {
                match kind.probe(&spec) {
                    Some(probe) => run_once(kind, probe, &spec, &target).await,
                    None => Outcome::Success,
                }
            })
        });
        let started_at = Instant::from_std(started_at);
        Self::start_with(container, runner, started_at, events, key, Settings::new)
    }

    /// `settings` reads a probe's timing (tests run faster).
    pub(super) fn start_with(
        container: &Container,
        runner: Runner,
        started_at: Instant,
        events: mpsc::UnboundedSender<ProbeEvent>,
        key: ProbeKey,
        settings: fn(&Probe, Kind) -> Settings,
    ) -> ContainerProbes {
        let started = container.startup_probe.is_none();
        let initial = ProbeState {
            started,
            ready: started && container.readiness_probe.is_none(),
        };
        let (state, receiver) = watch::channel(initial);
        let shared = Arc::new(Shared {
            state,
            events,
            key,
            container: container.name.clone(),
            has_readiness: container.readiness_probe.is_some(),
        });
        let now = Instant::now();
        let mut tasks = Vec::new();
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(probe) = kind.probe(container) else {
                continue;
            };
            let settings = settings(probe, kind);
            // Probes of a container that has run for a while (adopted after
            // an agent restart) spread over a whole period, as upstream does
            // after a kubelet restart.
            let adopted = now.saturating_duration_since(started_at) > settings.period;
            let most = if adopted {
                settings.period
            } else {
                settings.fresh_jitter
            };
            let worker = Worker {
                kind,
                settings,
                shared: shared.clone(),
                runner: runner.clone(),
                started_at,
                jitter: jitter(&shared.key, kind, most),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        tracing::debug!(
            container = %container.name,
            id = %shared.key.container_id,
            workers = tasks.len(),
            "probes started"
        );
        ContainerProbes {
            state: receiver,
            tasks,
        }
    }

    pub fn state(&self) -> ProbeState {
        *self.state.borrow()
    }

    pub fn stop(self) {}
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A random duration up to `max`, different for each container and kind.
fn jitter(key: &ProbeKey, kind: Kind, max: Duration) -> Duration {
    let hash = std::collections::hash_map::RandomState::new().hash_one((key, kind));
    let fraction = (hash % 1_000_000) as f64 / 1_000_000.0;
    max.mul_f64(fraction)
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    initial_delay: Duration,
    period: Duration,
    /// The most the first probe of a fresh container waits past its delay.
    fresh_jitter: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    termination_grace_period_seconds: Option<i64>,
}

impl Settings {
    /// The API's defaults: period 10 s, thresholds 1 and 3; successThreshold
    /// is 1 for liveness and startup whatever was written.
    fn new(probe: &Probe, kind: Kind) -> Settings {
        let period = Duration::from_secs(positive(probe.period_seconds, 10));
        Settings {
            initial_delay: Duration::from_secs(
                probe.initial_delay_seconds.unwrap_or(0).max(0) as u64
            ),
            period,
            fresh_jitter: period.min(Duration::from_secs(1)) / FRESH_JITTER_DIVISOR,
            success_threshold: match kind {
                Kind::Readiness => positive(probe.success_threshold, 1) as u32,
                Kind::Liveness | Kind::Startup => 1,
            },
            failure_threshold: positive(probe.failure_threshold, 3) as u32,
            termination_grace_period_seconds: probe.termination_grace_period_seconds,
        }
    }
}

struct Shared {
    state: watch::Sender<ProbeState>,
    events: mpsc::UnboundedSender<ProbeEvent>,
    key: ProbeKey,
    container: String,
    has_readiness: bool,
}

struct Worker {
    kind: Kind,
    settings: Settings,
    shared: Arc<Shared>,
    runner: Runner,
    started_at: Instant,
    jitter: Duration,
}

/// The current run of equal results.
#[derive(Default)]
struct Run {
    success: Option<bool>,
    count: u32,
}

impl Worker {
    async fn run(self) {
        if self.kind != Kind::Startup {
            let mut state = self.shared.state.subscribe();
            if state.wait_for(|s| s.started).await.is_err() {
                return;
            }
        }
        let due = (self.started_at + self.settings.initial_delay).max(Instant::now()) + self.jitter;
        let mut ticks = tokio::time::interval_at(due, self.settings.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut run = Run::default();
        loop {
            ticks.tick().await;
            let outcome = self.attempt().await;
            if !self.record(outcome, &mut run) {
                return;
            }
        }
    }

    async fn attempt(&self) -> Outcome {
        let mut outcome = (self.runner)(self.kind).await;
        for _ in 1..MAX_ATTEMPTS {
            if !matches!(outcome, Outcome::Unknown(_)) {
                break;
            }
            outcome = (self.runner)(self.kind).await;
        }
        outcome
    }

    /// Applies one result; false when this worker is done.
    fn record(&self, outcome: Outcome, run: &mut Run) -> bool {
        let (success, notice) = match outcome {
            Outcome::Success => (true, None),
            Outcome::Warning(message) => (true, Some(notice(REASON_PROBE_WARNING, message))),
            Outcome::Failure(message) => (false, Some(notice(REASON_UNHEALTHY, message))),
            // Thrown away: only the event is recorded.
            Outcome::Unknown(message) => {
                return self.send(notice(REASON_UNHEALTHY, message).into(), None);
            }
        };
        if run.success == Some(success) {
            run.count = run.count.saturating_add(1);
        } else {
            *run = Run {
                success: Some(success),
                count: 1,
            };
        }
        let threshold = if success {
            self.settings.success_threshold
        } else {
            self.settings.failure_threshold
        };
        let mut changed = false;
        if run.count >= threshold {
            match (self.kind, success) {
                (Kind::Startup, true) => {
                    let has_readiness = self.shared.has_readiness;
                    self.shared.state.send_modify(|s| {
                        s.started = true;
                        s.ready |= !has_readiness;
                    });
                    tracing::debug!(container = %self.shared.container, "startup probe succeeded");
                    self.send(notice, None);
                    return false;
                }
                (Kind::Readiness, ready) => {
                    changed = self.shared.state.send_if_modified(|s| {
                        let before = s.ready;
                        s.ready = ready;
                        before != ready
                    });
                }
                (Kind::Liveness | Kind::Startup, false) => {
                    let failure = format!(
                        "Container {} failed {} probe",
                        self.shared.container,
                        self.kind.lower()
                    );
                    tracing::info!(
                        container = %self.shared.container,
                        id = %self.shared.key.container_id,
                        probe = self.kind.lower(),
                        "probe failed {} times in a row, the container must be killed",
                        run.count
                    );
                    self.send(notice, Some(failure));
                    return false;
                }
                (Kind::Liveness, true) => {}
            }
        }
        if changed || notice.is_some() {
            return self.send(notice, None);
        }
        true
    }

    /// Sends an event with the current state; false once nobody listens.
    fn send(&self, notice: Option<Notice>, failure: Option<String>) -> bool {
        let termination_grace_period_seconds = failure
            .as_ref()
            .and(self.settings.termination_grace_period_seconds);
        let event = ProbeEvent {
            key: self.shared.key.clone(),
            kind: self.kind,
            state: *self.shared.state.borrow(),
            failure,
            termination_grace_period_seconds,
            notice,
        };
        self.shared.events.send(event).is_ok()
    }
}

fn notice(reason: &'static str, message: String) -> Notice {
    Notice { reason, message }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
