//! The schedule and threshold logic with a scripted runner, in real time
//! run 5 times faster than the probes' settings say (tokio's paused clock
//! needs its test-util feature, which the crate does not enable).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{ExecAction, Probe};

use super::*;

const SCALE: u32 = 5;
/// One second of a probe's settings.
const UNIT: Duration = Duration::from_millis(200);
/// How late an event may come (jitter ≤ 20 ms plus a loaded machine).
const SLACK: Duration = Duration::from_millis(180);

fn scaled(probe: &Probe, kind: Kind) -> Settings {
    let s = Settings::new(probe, kind);
    Settings {
        initial_delay: s.initial_delay / SCALE,
        period: s.period / SCALE,
        fresh_jitter: s.fresh_jitter / SCALE,
        ..s
    }
}

fn units(n: u32) -> Duration {
    UNIT * n
}

#[derive(Default)]
struct Script {
    outcomes: Mutex<HashMap<Kind, VecDeque<Outcome>>>,
    calls: Mutex<Vec<(Kind, Duration)>>,
}

struct Fixture {
    script: Arc<Script>,
    t0: Instant,
    events: mpsc::UnboundedReceiver<ProbeEvent>,
    probes: ContainerProbes,
}

impl Fixture {
    /// `script`: per kind, the outcomes of the first attempts (then success).
    fn start(container: &Container, script: Vec<(Kind, Vec<Outcome>)>) -> Fixture {
        let t0 = Instant::now();
        let script = Arc::new(Script {
            outcomes: Mutex::new(
                script
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect()))
                    .collect(),
            ),
            calls: Mutex::default(),
        });
        let s = script.clone();
        let runner: Runner = Arc::new(move |kind| {
            s.calls.lock().unwrap().push((kind, t0.elapsed()));
            let next = s
                .outcomes
                .lock()
                .unwrap()
                .get_mut(&kind)
                .and_then(VecDeque::pop_front);
            Box::pin(async move { next.unwrap_or(Outcome::Success) })
        });
        let (tx, events) = mpsc::unbounded_channel();
        let key = ProbeKey {
            pod_uid: "uid".into(),
            container_name: container.name.clone(),
            container_id: "cid".into(),
        };
        let probes = ContainerProbes::start_with(container, runner, t0, tx, key, scaled);
        Fixture {
            script,
            t0,
            events,
            probes,
        }
    }

    /// The next event and when (since start) it came.
    async fn next(&mut self) -> (Duration, ProbeEvent) {
        let event = self.events.recv().await.unwrap();
        (self.t0.elapsed(), event)
    }

    fn calls(&self, kind: Kind) -> Vec<Duration> {
        let calls = self.script.calls.lock().unwrap();
        calls.iter().filter(|c| c.0 == kind).map(|c| c.1).collect()
    }
}

fn probe(initial_delay: i32, period: i32, success: i32, failure: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["true".into()]),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        success_threshold: Some(success),
        failure_threshold: Some(failure),
        ..Default::default()
    }
}

fn fail(text: &str) -> Outcome {
    Outcome::Failure(text.into())
}

/// `at` is at most [`SLACK`] after `n` units.
fn near(at: Duration, n: u32) -> bool {
    at >= units(n) && at <= units(n) + SLACK
}

const READY: ProbeState = ProbeState {
    started: true,
    ready: true,
};
const NOT_READY: ProbeState = ProbeState {
    started: true,
    ready: false,
};

#[tokio::test]
async fn no_probes_started_and_ready_at_once() {
    let f = Fixture::start(&Container::default(), vec![]);
    assert_eq!(f.probes.state(), READY);
    assert!(f.probes.tasks.is_empty());
}

#[tokio::test]
async fn readiness_thresholds_and_period() {
    let container = Container {
        name: "app".into(),
        readiness_probe: Some(probe(5, 4, 2, 3)),
        ..Default::default()
    };
    let script = vec![
        fail("Readiness probe failed: no"), // 5 s
        Outcome::Success,                   // 9 s
        Outcome::Success,                   // 13 s: 2 in a row, ready
        fail("Readiness probe failed: a"),  // 17 s
        fail("Readiness probe failed: b"),  // 21 s
        fail("Readiness probe failed: c"),  // 25 s: 3 in a row, not ready
    ];
    let mut f = Fixture::start(&container, vec![(Kind::Readiness, script)]);
    assert_eq!(f.probes.state(), NOT_READY);

    let (at, e) = f.next().await;
    assert!(near(at, 5), "{at:?}");
    assert_eq!(e.state, NOT_READY);
    assert_eq!(e.notice.unwrap().message, "Readiness probe failed: no");
    assert_eq!((e.kind, e.failure), (Kind::Readiness, None));

    let (at, e) = f.next().await;
    assert!(near(at, 13), "{at:?}");
    assert_eq!((e.state, e.notice), (READY, None));
    assert_eq!(f.probes.state(), READY);

    for (secs, text) in [(17, "a"), (21, "b")] {
        let (at, e) = f.next().await;
        assert!(near(at, secs), "{at:?}");
        assert_eq!(e.state, READY);
        let notice = e.notice.unwrap();
        assert_eq!(notice.reason, REASON_UNHEALTHY);
        assert_eq!(notice.message, format!("Readiness probe failed: {text}"));
    }
    let (at, e) = f.next().await;
    assert!(near(at, 25), "{at:?}");
    assert_eq!(e.state, NOT_READY);
    assert_eq!(e.notice.unwrap().message, "Readiness probe failed: c");
    assert_eq!(f.probes.state(), NOT_READY);
    assert_eq!(f.calls(Kind::Readiness).len(), 6);
}

#[tokio::test]
async fn liveness_failure_reported_once_then_stops() {
    let mut p = probe(0, 1, 1, 3);
    p.termination_grace_period_seconds = Some(7);
    let container = Container {
        name: "app".into(),
        liveness_probe: Some(p),
        ..Default::default()
    };
    let failures = vec![fail("Liveness probe failed: x"); 10];
    let mut f = Fixture::start(&container, vec![(Kind::Liveness, failures)]);
    for _ in 0..2 {
        let (_, e) = f.next().await;
        assert_eq!(
            (e.failure, e.termination_grace_period_seconds),
            (None, None)
        );
    }
    let (at, e) = f.next().await;
    assert!(near(at, 2), "{at:?}");
    assert_eq!(
        e.failure.as_deref(),
        Some("Container app failed liveness probe")
    );
    assert_eq!(e.termination_grace_period_seconds, Some(7));
    assert_eq!(e.notice.unwrap().message, "Liveness probe failed: x");
    assert_eq!(e.state, READY);
    tokio::time::sleep(units(10)).await;
    assert_eq!(f.calls(Kind::Liveness).len(), 3);
    assert!(f.events.try_recv().is_err());
}

#[tokio::test]
async fn startup_gates_liveness_and_readiness() {
    let container = Container {
        name: "app".into(),
        startup_probe: Some(probe(0, 2, 1, 5)),
        liveness_probe: Some(probe(0, 10, 1, 3)),
        readiness_probe: Some(probe(0, 10, 1, 3)),
        ..Default::default()
    };
    let startup = vec![
        fail("Startup probe failed: 1"),
        fail("Startup probe failed: 2"),
    ];
    let mut f = Fixture::start(&container, vec![(Kind::Startup, startup)]);
    assert_eq!(f.probes.state(), ProbeState::default());
    f.next().await;
    f.next().await;
    let (at, e) = f.next().await;
    assert!(near(at, 4), "{at:?}");
    assert_eq!(
        (e.kind, e.state, e.notice),
        (Kind::Startup, NOT_READY, None)
    );
    assert!(f.calls(Kind::Liveness).is_empty() && f.calls(Kind::Readiness).is_empty());
    // Readiness runs right after startup (its delay passed), then ready.
    let (at, e) = f.next().await;
    assert!(near(at, 4), "{at:?}");
    assert_eq!((e.kind, e.state), (Kind::Readiness, READY));
    // Liveness too, then every 10 s.
    tokio::time::sleep(units(12)).await;
    assert_eq!(f.calls(Kind::Startup).len(), 3);
    assert_eq!(f.calls(Kind::Liveness).len(), 2);
}

#[tokio::test]
async fn startup_success_without_readiness_probe_is_ready() {
    let container = Container {
        name: "app".into(),
        startup_probe: Some(probe(3, 10, 1, 3)),
        ..Default::default()
    };
    let mut f = Fixture::start(&container, vec![]);
    let (at, e) = f.next().await;
    assert!(near(at, 3), "{at:?}");
    assert_eq!((e.kind, e.state), (Kind::Startup, READY));
}

#[tokio::test]
async fn startup_failure_kills_and_nothing_else_runs() {
    let container = Container {
        name: "db".into(),
        startup_probe: Some(probe(0, 1, 1, 2)),
        liveness_probe: Some(probe(0, 1, 1, 1)),
        ..Default::default()
    };
    let mut f = Fixture::start(&container, vec![(Kind::Startup, vec![fail("s"); 5])]);
    f.next().await;
    let (_, e) = f.next().await;
    assert_eq!(
        e.failure.as_deref(),
        Some("Container db failed startup probe")
    );
    assert_eq!(e.state, ProbeState::default());
    tokio::time::sleep(units(8)).await;
    assert!(f.calls(Kind::Liveness).is_empty());
    assert_eq!(f.calls(Kind::Startup).len(), 2);
}

#[tokio::test]
async fn errors_are_retried_then_thrown_away() {
    let container = Container {
        name: "app".into(),
        liveness_probe: Some(probe(0, 10, 1, 1)),
        ..Default::default()
    };
    let unknown =
        Outcome::Unknown("Liveness probe errored and resulted in unknown state: e".into());
    let mut f = Fixture::start(&container, vec![(Kind::Liveness, vec![unknown; 3])]);
    let (_, e) = f.next().await;
    assert_eq!(e.failure, None);
    assert_eq!(e.notice.unwrap().reason, REASON_UNHEALTHY);
    assert_eq!(f.calls(Kind::Liveness).len(), 3);
    // The next period succeeds: no event, no kill.
    tokio::time::sleep(units(15)).await;
    assert!(f.events.try_recv().is_err());
    assert_eq!(f.calls(Kind::Liveness).len(), 4);
}

#[tokio::test]
async fn warnings_are_successes_with_a_notice() {
    let container = Container {
        name: "app".into(),
        readiness_probe: Some(probe(0, 10, 1, 3)),
        ..Default::default()
    };
    let warn = Outcome::Warning("Readiness probe warning: Probe terminated redirects".into());
    let mut f = Fixture::start(&container, vec![(Kind::Readiness, vec![warn])]);
    let (_, e) = f.next().await;
    assert_eq!(e.state, READY);
    assert_eq!(e.notice.unwrap().reason, REASON_PROBE_WARNING);
}

#[tokio::test]
async fn adopted_containers_spread_over_a_period_but_not_before_the_delay() {
    let container = Container {
        name: "app".into(),
        readiness_probe: Some(probe(0, 10, 1, 3)),
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runner: Runner = Arc::new(|_| Box::pin(async { Outcome::Success }));
    let key = ProbeKey {
        pod_uid: "u".into(),
        container_name: "app".into(),
        container_id: "c".into(),
    };
    let started = Instant::now() - Duration::from_secs(60);
    let t = Instant::now();
    let _probes = ContainerProbes::start_with(&container, runner, started, tx, key, scaled);
    rx.recv().await.unwrap();
    assert!(t.elapsed() <= units(10) + SLACK);

    // A fresh container with a delay is never probed before it.
    let mut f = Fixture::start(
        &Container {
            readiness_probe: Some(probe(8, 10, 1, 3)),
            ..Default::default()
        },
        vec![],
    );
    let (at, _) = f.next().await;
    assert!(near(at, 8), "{at:?}");
}

#[tokio::test]
async fn stop_ends_the_workers() {
    let container = Container {
        name: "app".into(),
        liveness_probe: Some(probe(0, 1, 1, 3)),
        ..Default::default()
    };
    let f = Fixture::start(&container, vec![]);
    tokio::time::sleep(UNIT * 5 / 2).await;
    let before = f.calls(Kind::Liveness).len();
    assert_eq!(before, 3);
    let Fixture { script, probes, .. } = f;
    probes.stop();
    tokio::time::sleep(units(5)).await;
    assert_eq!(script.calls.lock().unwrap().len(), before);
}

#[test]
fn defaults() {
    let s = Settings::new(&Probe::default(), Kind::Liveness);
    assert_eq!(s.period, Duration::from_secs(10));
    assert_eq!(s.initial_delay, Duration::ZERO);
    assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
    let s = Settings::new(&probe(-1, 0, 5, 0), Kind::Startup);
    assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
    assert_eq!(s.period, Duration::from_secs(10));
    let s = Settings::new(&probe(2, 3, 5, 4), Kind::Readiness);
    assert_eq!((s.success_threshold, s.failure_threshold), (5, 4));
}
