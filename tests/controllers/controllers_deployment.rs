//! The deployment controller against real kubectl: rollouts keep
//! availability, history/undo/restart/pause/resume/scale, Recreate, and
//! cascading and orphaning deletion. The server schedules the pods onto
//! hollow nodes (`nanokube agent --hollow`), whose kubelet makes them
//! Running and Ready by itself, steered by the `ready-after-seconds` and
//! `never-ready` pod annotations.

#[path = "controllers_deployment/support.rs"]
mod support;

use std::time::{Duration, Instant};

use crate::common::hollow::{hollow_agent, kubectl, HollowAgent, NEVER_READY, READY_AFTER};
use crate::common::{Kubectl, Proc};
use serde_json::Value;
use support::AvailabilityProbe;

const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(90);
/// Hollow nodes per test (4 CPUs, 110 pods each: room for every pod).
const NODES: usize = 2;

/// A server with `NODES` Ready hollow nodes. The agent is declared after
/// the server so it is dropped (killed) first.
fn cluster() -> (Proc, HollowAgent) {
    let p = Proc::server();
    let agent = hollow_agent(&p, NODES, &[]);
    (p, agent)
}

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

/// Polls `cond` until true; panics with `what` and both logs.
fn wait(p: &Proc, agent: &HollowAgent, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + ROLLOUT_TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\nserver log:\n{}\nagent log:\n{}",
                p.log(),
                agent.log()
            );
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

/// The pods of app `name`.
fn pods(k: &Kubectl, name: &str) -> Vec<Value> {
    k.json(&["get", "pods", "-l", &format!("app={name}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Asserts every pod of app `name` runs Ready on one of the hollow nodes.
fn assert_running_on_hollow_nodes(k: &Kubectl, agent: &HollowAgent, name: &str, n: usize) {
    let pods = pods(k, name);
    assert_eq!(pods.len(), n, "{pods:?}");
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        assert!(agent.nodes.iter().any(|n| n == node), "{pod}");
        assert_eq!(pod["status"]["phase"], "Running", "{pod}");
        let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        assert!(ready, "{pod}");
    }
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
    let (p, agent) = cluster();
    let k = kubectl(&p);
    k.create_yaml(&manifest("web", 5, SURGE_ONE, "nginx:1.25"));
    wait(&p, &agent, "web 5/5 available", || {
        rolled_out(&deploy(&k, "web"), 5)
    });
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_running_on_hollow_nodes(&k, &agent, "web", 5);
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
    wait(&p, &agent, "old replica set scaled to 0", || {
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
    wait(&p, &agent, "DeploymentPaused", || {
        deploy(&k, "web")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "DeploymentPaused"))
    });
    k.ok(&["set", "image", "deployment/web", "app=nginx:1.27"]);
    k.ok(&["scale", "deployment/web", "--replicas=6"]);
    wait(&p, &agent, "paused scale to 6", || {
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
    wait(&p, &agent, "no pods", || {
        k.json(&["get", "pods", "-l", "app=web"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    k.ok(&["scale", "deployment/web", "--replicas=3"]);
    wait(&p, &agent, "back to 3", || {
        rolled_out(&deploy(&k, "web"), 3)
    });
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
    let (p, agent) = cluster();
    let k = kubectl(&p);
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
    wait(&p, &agent, "ProgressDeadlineExceeded", || {
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
    let (p, agent) = cluster();
    let k = kubectl(&p);
    k.create_yaml(&manifest("db", 3, "{type: Recreate}", "postgres:15"));
    wait(&p, &agent, "db 3/3", || rolled_out(&deploy(&k, "db"), 3));
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
            "recreate did not finish\n{}\n{}",
            p.log(),
            agent.log()
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
    let (p, agent) = cluster();
    let k = kubectl(&p);
    k.create_yaml(&manifest("gone", 2, SURGE_ONE, "nginx:1.25"));
    wait(&p, &agent, "gone 2/2", || {
        rolled_out(&deploy(&k, "gone"), 2)
    });
    assert_running_on_hollow_nodes(&k, &agent, "gone", 2);
    k.ok(&["delete", "deployment", "gone"]);
    wait(&p, &agent, "replica sets and pods removed", || {
        k.json(&["get", "rs,pods", "-l", "app=gone"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
}

#[test]
fn orphaning_a_deployment_keeps_its_replica_sets_and_pods() {
    let (p, agent) = cluster();
    let k = kubectl(&p);
    k.create_yaml(&manifest("kept", 2, SURGE_ONE, "nginx:1.25"));
    wait(&p, &agent, "kept 2/2", || {
        rolled_out(&deploy(&k, "kept"), 2)
    });
    assert_running_on_hollow_nodes(&k, &agent, "kept", 2);
    let rs_before = replica_sets(&k, "kept");
    assert_eq!(rs_before.len(), 1);
    let rs_name = rs_before[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let deploy_uid = deploy(&k, "kept")["metadata"]["uid"].clone();
    assert_eq!(
        rs_before[0]["metadata"]["ownerReferences"][0]["uid"], deploy_uid,
        "{}",
        rs_before[0]
    );
    let pod_names = |pods: &[Value]| {
        let mut names: Vec<String> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        names
    };
    let pods_before = pod_names(&pods(&k, "kept"));

    k.ok(&["delete", "deploy", "kept", "--cascade=orphan"]);
    wait(&p, &agent, "deployment kept gone", || {
        k.json(&["get", "deployments"])["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|d| d["metadata"]["name"] != "kept"))
    });
    // The garbage collector removes the owner reference from the RS.
    wait(
        &p,
        &agent,
        "owner reference removed from the replica set",
        || {
            let rs = k.json(&["get", "rs", &rs_name]);
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(|refs| refs.iter().all(|r| r["uid"] != deploy_uid))
        },
    );
    // Nothing is deleted afterwards: the RS and its pods stay as they were.
    std::thread::sleep(Duration::from_secs(3));
    let rss = replica_sets(&k, "kept");
    assert_eq!(rss.len(), 1, "{rss:?}");
    assert_eq!(rss[0]["metadata"]["name"], rs_name.as_str());
    assert!(
        rss[0]["metadata"]["deletionTimestamp"].is_null(),
        "{}",
        rss[0]
    );
    assert_eq!(rss[0]["spec"]["replicas"], 2);
    let pods_after = pods(&k, "kept");
    assert_eq!(pod_names(&pods_after), pods_before);
    for pod in &pods_after {
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["name"],
            rs_name.as_str(),
            "{pod}"
        );
    }
    assert_running_on_hollow_nodes(&k, &agent, "kept", 2);
}
