//! The deployment controller against real kubectl: rollouts keep
//! availability, history/undo/restart/pause/resume/scale, Recreate, and
//! cascading deletion. Pods are made Ready by [`FakeKubelet`], which
//! honours the hollow kubelet's `ready-after-seconds` annotation (the
//! scheduler is not wired into the server yet, so hollow nodes would get
//! no pods).

mod common;
#[path = "controllers_deployment/support.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{Kubectl, Proc, KUBECTL_NEWEST};
use serde_json::Value;
use support::{AvailabilityProbe, FakeKubelet};

pub const READY_AFTER: &str = "hollow.nanokube.io/ready-after-seconds";
pub const NEVER_READY: &str = "hollow.nanokube.io/never-ready";
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(90);

fn manifest(name: &str, replicas: u32, strategy: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  strategy: {strategy}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{{READY_AFTER}: \"1\"}}
    spec:
      containers:
      - name: app
        image: {image}
"
    )
}

const SURGE_ONE: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

/// Polls `cond` until true; panics with `what` and the server log.
fn wait(p: &Proc, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + ROLLOUT_TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\nserver log:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn deploy(k: &Kubectl, name: &str) -> Value {
    k.json(&["get", "deployment", name])
}

pub fn count(v: &Value, field: &str) -> i64 {
    v["status"][field].as_i64().unwrap_or(0)
}

/// Whether the Deployment is fully rolled out at `replicas`.
fn rolled_out(d: &Value, replicas: i64) -> bool {
    d["status"]["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64()
        && count(d, "updatedReplicas") == replicas
        && count(d, "replicas") == replicas
        && count(d, "availableReplicas") == replicas
}

/// The ReplicaSets of app `name`, oldest first.
fn replica_sets(k: &Kubectl, name: &str) -> Vec<Value> {
    let list = k.json(&["get", "rs", "-l", &format!("app={name}")]);
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|rs| {
        rs["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or("")
            .to_string()
    });
    items
}

fn image_of(obj: &Value) -> String {
    obj["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn annotation(obj: &Value, key: &str) -> String {
    obj["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn rolling_update_history_undo_restart_pause_and_scale() {
    let p = Proc::server();
    let _kubelet = FakeKubelet::start(&p);
    let k = p.kubectl(KUBECTL_NEWEST);
    k.create_yaml(&manifest("web", 5, SURGE_ONE, "nginx:1.25"));
    wait(&p, "web 5/5 available", || {
        rolled_out(&deploy(&k, "web"), 5)
    });
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let d = deploy(&k, "web");
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "1");
    let first = replica_sets(&k, "web");
    assert_eq!(first.len(), 1);
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first[0]["metadata"]["name"], format!("web-{hash}"));
    assert!(
        hash.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{hash}"
    );
    assert_eq!(
        first[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        annotation(&first[0], "deployment.kubernetes.io/desired-replicas"),
        "5"
    );
    assert_eq!(
        annotation(&first[0], "deployment.kubernetes.io/max-replicas"),
        "6"
    );
    let conds = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reason = |t: &str| {
        conds
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["reason"].clone())
    };
    assert_eq!(reason("Available"), Some("MinimumReplicasAvailable".into()));
    assert_eq!(reason("Progressing"), Some("NewReplicaSetAvailable".into()));

    // A rolling update with maxUnavailable=0 never drops below 5 available.
    // The change cause is copied to the current new ReplicaSet (as
    // upstream), so it is annotated after the template changed.
    let probe = AvailabilityProbe::start(&p, "web");
    k.ok(&["set", "image", "deployment/web", "app=nginx:1.26"]);
    k.ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=image 1.26",
    ]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let min = probe.finish();
    assert_ne!(min, i64::MAX, "the probe never read the deployment");
    assert!(min >= 5, "availability dropped to {min} during the rollout");
    wait(&p, "old replica set scaled to 0", || {
        let rss = replica_sets(&k, "web");
        rss.len() == 2 && rss[0]["spec"]["replicas"] == 0 && rss[1]["spec"]["replicas"] == 5
    });
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(
        events.contains(&format!("Scaled up replica set web-{hash} to 5")),
        "{events}"
    );
    assert!(
        events.contains(&format!("Scaled down replica set web-{hash} to 4 from 5")),
        "{events}"
    );
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains("1         <none>"), "{history}");
    assert!(history.contains("2         image 1.26"), "{history}");

    // Undo maps back to the first ReplicaSet (revision 3, history "1").
    k.ok(&["rollout", "undo", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let rss = replica_sets(&k, "web");
    assert_eq!(rss.len(), 2, "undo must reuse the old replica set");
    assert_eq!(image_of(&deploy(&k, "web")), "nginx:1.25");
    assert_eq!(rss[0]["spec"]["replicas"], 5);
    assert_eq!(
        annotation(&rss[0], "deployment.kubernetes.io/revision"),
        "3"
    );
    assert_eq!(
        annotation(&rss[0], "deployment.kubernetes.io/revision-history"),
        "1"
    );
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("3 ") && !history.contains("\n1 "),
        "{history}"
    );

    // Restart: a new ReplicaSet for the restartedAt template annotation.
    k.ok(&["rollout", "restart", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert_eq!(replica_sets(&k, "web").len(), 3);

    // Paused: template changes wait, scaling still applies.
    k.ok(&["rollout", "pause", "deployment/web"]);
    wait(&p, "DeploymentPaused", || {
        deploy(&k, "web")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "DeploymentPaused"))
    });
    k.ok(&["set", "image", "deployment/web", "app=nginx:1.27"]);
    k.ok(&["scale", "deployment/web", "--replicas=6"]);
    wait(&p, "paused scale to 6", || {
        rolled_out(&deploy(&k, "web"), 6) || {
            let d = deploy(&k, "web");
            count(&d, "availableReplicas") == 6
        }
    });
    assert_eq!(replica_sets(&k, "web").len(), 3, "no rollout while paused");
    k.ok(&["rollout", "resume", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let rss = replica_sets(&k, "web");
    assert_eq!(rss.len(), 4);
    assert_eq!(image_of(rss.last().unwrap()), "nginx:1.27");
    assert_eq!(rss.last().unwrap()["spec"]["replicas"], 6);

    // Scale to zero and back.
    k.ok(&["scale", "deployment/web", "--replicas=0"]);
    wait(&p, "no pods", || {
        k.json(&["get", "pods", "-l", "app=web"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    k.ok(&["scale", "deployment/web", "--replicas=3"]);
    wait(&p, "back to 3", || rolled_out(&deploy(&k, "web"), 3));
    assert_eq!(
        replica_sets(&k, "web").len(),
        4,
        "scaling creates no replica set"
    );

    // Settled: the controller writes nothing more.
    let versions = || {
        let mut v = vec![deploy(&k, "web")["metadata"]["resourceVersion"].clone()];
        v.extend(
            replica_sets(&k, "web")
                .iter()
                .map(|rs| rs["metadata"]["resourceVersion"].clone()),
        );
        v
    };
    let before = versions();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(before, versions(), "writes on a settled deployment");
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline() {
    let p = Proc::server();
    let _kubelet = FakeKubelet::start(&p);
    let k = p.kubectl(KUBECTL_NEWEST);
    let yaml = manifest("stuck", 1, SURGE_ONE, "nginx:1.25")
        .replace(
            "  replicas: 1\n",
            "  replicas: 1\n  progressDeadlineSeconds: 2\n",
        )
        .replace(
            &format!("{READY_AFTER}: \"1\""),
            &format!("{NEVER_READY}: \"true\""),
        );
    k.create_yaml(&yaml);
    wait(&p, "ProgressDeadlineExceeded", || {
        let d = deploy(&k, "stuck");
        d["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ProgressDeadlineExceeded"
                    && c["message"].as_str().is_some_and(|m| {
                        m.starts_with("ReplicaSet \"stuck-")
                            && m.ends_with("\" has timed out progressing.")
                    })
            })
        })
    });
    let d = deploy(&k, "stuck");
    let available = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Available").cloned())
        .unwrap_or_default();
    assert_eq!(available["reason"], "MinimumReplicasUnavailable", "{d}");
    let err = k.err(&["rollout", "status", "deployment/stuck", "--timeout=20s"]);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
}

#[test]
fn recreate_stops_old_pods_before_starting_new_ones() {
    let p = Proc::server();
    let _kubelet = FakeKubelet::start(&p);
    let k = p.kubectl(KUBECTL_NEWEST);
    k.create_yaml(&manifest("db", 3, "{type: Recreate}", "postgres:15"));
    wait(&p, "db 3/3", || rolled_out(&deploy(&k, "db"), 3));
    let old_hash = replica_sets(&k, "db")[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    k.ok(&["set", "image", "deployment/db", "app=postgres:16"]);
    let deadline = Instant::now() + ROLLOUT_TIMEOUT;
    loop {
        let pods = k.json(&["get", "pods", "-l", "app=db"]);
        let hashes: Vec<String> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["metadata"]["labels"]["pod-template-hash"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let old = hashes.iter().filter(|h| **h == old_hash).count();
        assert!(
            old == 0 || old == hashes.len(),
            "old and new pods at once: {hashes:?}"
        );
        if rolled_out(&deploy(&k, "db"), 3) && old == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recreate did not finish\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss = replica_sets(&k, "db");
    assert_eq!(rss.len(), 2);
    assert_eq!(
        (
            rss[0]["spec"]["replicas"].as_i64(),
            rss[1]["spec"]["replicas"].as_i64()
        ),
        (Some(0), Some(3))
    );
    k.ok(&["rollout", "status", "deployment/db", "--timeout=30s"]);
}

#[test]
fn deleting_a_deployment_removes_its_replica_sets_and_pods() {
    let p = Proc::server();
    let _kubelet = FakeKubelet::start(&p);
    let k = p.kubectl(KUBECTL_NEWEST);
    k.create_yaml(&manifest("gone", 2, SURGE_ONE, "nginx:1.25"));
    wait(&p, "gone 2/2", || rolled_out(&deploy(&k, "gone"), 2));
    k.ok(&["delete", "deployment", "gone"]);
    wait(&p, "replica sets and pods removed", || {
        k.json(&["get", "rs,pods", "-l", "app=gone"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
}
