//! The StatefulSet and DaemonSet controllers against real kubectl, the
//! scheduler and hollow nodes: ordered creation with claims, ordered scale
//! down, rolling updates from the highest ordinal with a partition,
//! rollout status/history/undo; one daemon pod per untainted node,
//! tolerations, and nodes joining later.

use std::time::{Duration, Instant};

use crate::common::hollow::{hollow_agent, kubectl, READY_AFTER};
use crate::common::{Kubectl, Proc};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `cond` until true; panics with `what` and the server log.
fn wait(p: &Proc, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\nserver log:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn label<'a>(v: &'a Value, key: &str) -> &'a str {
    v["metadata"]["labels"][key].as_str().unwrap_or("")
}

fn ready_since(pod: &Value) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_string)
}

fn statefulset(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: {replicas}
  serviceName: nginx
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{{READY_AFTER}: \"1\"}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"
    )
}

/// Static volumes for the claims (there is no dynamic provisioner).
fn volumes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-{i}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: /tmp/pv-{i}}}
"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The set's pods by name (pods being deleted included).
fn web_pods(k: &Kubectl) -> Vec<Value> {
    let mut pods = items(&k.json(&["get", "pods", "-l", "app=web"]));
    pods.sort_by_key(|p| text(p, "/metadata/name").to_string());
    pods
}

fn sts(k: &Kubectl) -> Value {
    k.json(&["get", "statefulset", "web"])
}

/// Every pod of the set ready and at the update revision.
fn rolled_out(k: &Kubectl, replicas: i64) -> bool {
    let s = sts(k);
    num(&s, "/status/observedGeneration") >= num(&s, "/metadata/generation")
        && num(&s, "/status/readyReplicas") == replicas
        && num(&s, "/status/updatedReplicas") == replicas
        && num(&s, "/status/replicas") == replicas
}

fn event_messages(k: &Kubectl, kind: &str, name: &str) -> Vec<String> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    items(&k.json(&["get", "events", "--field-selector", &selector]))
        .iter()
        .map(|e| text(e, "/message").to_string())
        .collect()
}

#[test]
fn statefulset_orders_pods_claims_scaling_and_rolling_updates() {
    let p = Proc::server();
    let _agent = hollow_agent(&p, 2, &[]);
    let k = kubectl(&p);
    k.create_yaml(&volumes(3));
    k.create_yaml(&statefulset(3));
    wait(&p, "web 3/3 ready", || rolled_out(&k, 3));
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);

    // Created in order: each pod only after its predecessor was Ready.
    let pods = web_pods(&k);
    let names: Vec<&str> = pods.iter().map(|p| text(p, "/metadata/name")).collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    for pair in pods.windows(2) {
        let before = ready_since(&pair[0]).expect("predecessor ready");
        let created = text(&pair[1], "/metadata/creationTimestamp");
        assert!(
            created >= before.as_str() && created > text(&pair[0], "/metadata/creationTimestamp"),
            "{} created at {created}, {} ready at {before}",
            text(&pair[1], "/metadata/name"),
            text(&pair[0], "/metadata/name")
        );
    }
    let s = sts(&k);
    let revision = text(&s, "/status/updateRevision").to_string();
    assert!(revision.starts_with("web-"), "{s}");
    assert_eq!(text(&s, "/status/currentRevision"), revision);
    for (i, pod) in pods.iter().enumerate() {
        let name = format!("web-{i}");
        assert_eq!(label(pod, "statefulset.kubernetes.io/pod-name"), name);
        assert_eq!(label(pod, "apps.kubernetes.io/pod-index"), i.to_string());
        assert_eq!(label(pod, "controller-revision-hash"), revision);
        assert_eq!(text(pod, "/spec/hostname"), name);
        assert_eq!(text(pod, "/spec/subdomain"), "nginx");
        let claim = format!("data-web-{i}");
        assert_eq!(
            text(pod, "/spec/volumes/0/persistentVolumeClaim/claimName"),
            claim
        );
        let pvc = k.json(&["get", "pvc", &claim]);
        assert_eq!(label(&pvc, "app"), "web");
    }
    let revisions = items(&k.json(&["get", "controllerrevisions"]));
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(text(&revisions[0], "/metadata/name"), revision);
    assert_eq!(num(&revisions[0], "/revision"), 1);
    assert_eq!(text(&revisions[0], "/data/spec/template/$patch"), "replace");
    let events = event_messages(&k, "StatefulSet", "web");
    for want in [
        "create Claim data-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful",
        "create Pod web-2 in StatefulSet web successful",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "{want:?} not in {events:?}"
        );
    }

    // Scale down from the highest ordinal, one at a time.
    k.ok(&["scale", "statefulset/web", "--replicas=1"]);
    let gone = |pods: &[Value], name: &str| {
        !pods.iter().any(|p| {
            text(p, "/metadata/name") == name && p["metadata"]["deletionTimestamp"].is_null()
        })
    };
    wait(&p, "scale down to web-0", || {
        let pods = web_pods(&k);
        assert!(
            !gone(&pods, "web-1") || pods.iter().all(|p| text(p, "/metadata/name") != "web-2"),
            "web-1 deleted before web-2 was gone: {pods:?}"
        );
        pods.len() == 1
    });
    let events = event_messages(&k, "StatefulSet", "web");
    assert!(events
        .iter()
        .any(|e| e == "delete Pod web-2 in StatefulSet web successful"));
    assert!(k.json(&["get", "pvc", "data-web-2"])["metadata"]["deletionTimestamp"].is_null());
    k.ok(&["scale", "statefulset/web", "--replicas=3"]);
    wait(&p, "web back at 3", || rolled_out(&k, 3));

    // A partition of 2 updates only web-2.
    k.ok(&[
        "patch",
        "statefulset/web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#,
    ]);
    k.ok(&["set", "image", "statefulset/web", "nginx=nginx:1.26"]);
    wait(&p, "web-2 updated", || {
        let s = sts(&k);
        let pods = web_pods(&k);
        let update = text(&s, "/status/updateRevision");
        update != revision
            && num(&s, "/status/updatedReplicas") == 1
            && num(&s, "/status/readyReplicas") == 3
            && pods.len() == 3
            && label(&pods[2], "controller-revision-hash") == update
    });
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    let pods = web_pods(&k);
    assert_eq!(label(&pods[0], "controller-revision-hash"), revision);
    assert_eq!(label(&pods[1], "controller-revision-hash"), revision);
    assert_eq!(text(&pods[2], "/spec/containers/0/image"), "nginx:1.26");

    // Without the partition the rest roll, web-1 before web-0.
    k.ok(&[
        "patch",
        "statefulset/web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    wait(&p, "all of web updated", || {
        let pods = web_pods(&k);
        if pods.len() == 3 {
            let old = |i: usize| label(&pods[i], "controller-revision-hash") == revision;
            assert!(!old(1) || old(0), "web-0 rolled before web-1: {pods:?}");
        }
        rolled_out(&k, 3)
    });
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    let s = sts(&k);
    assert_eq!(
        text(&s, "/status/currentRevision"),
        text(&s, "/status/updateRevision")
    );
    let history = k.ok(&["rollout", "history", "statefulset/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo goes back to the first template, renumbered as revision 3.
    k.ok(&["rollout", "undo", "statefulset/web"]);
    wait(&p, "undo rolled out", || {
        rolled_out(&k, 3) && text(&sts(&k), "/status/updateRevision") == revision
    });
    let first = k.json(&["get", "controllerrevision", &revision]);
    assert_eq!(num(&first, "/revision"), 3);
    assert!(web_pods(&k)
        .iter()
        .all(|p| text(p, "/spec/containers/0/image") == "nginx:1.25"));
}

fn daemonset(tolerate: bool) -> String {
    let tolerations = if tolerate {
        "\n      tolerations: [{key: dedicated, operator: Exists}]"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:{tolerations}
      containers:
      - name: agent
        image: busybox
"
    )
}

/// Node of each live daemon pod (pinned by affinity; bound by the scheduler).
fn daemon_nodes(k: &Kubectl) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = items(&k.json(&["get", "pods", "-l", "app=agent"]))
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let pinned = text(
                p,
                "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0",
            );
            (pinned.to_string(), text(p, "/spec/nodeName").to_string())
        })
        .collect();
    out.sort();
    out
}

fn ds_ready(k: &Kubectl, desired: i64) -> bool {
    let ds = k.json(&["get", "daemonset", "agent"]);
    num(&ds, "/status/observedGeneration") >= num(&ds, "/metadata/generation")
        && num(&ds, "/status/desiredNumberScheduled") == desired
        && num(&ds, "/status/numberReady") == desired
        && num(&ds, "/status/updatedNumberScheduled") == desired
        && num(&ds, "/status/numberAvailable") == desired
}

#[test]
fn daemonset_runs_one_pod_per_eligible_node() {
    let p = Proc::server();
    let agent = hollow_agent(&p, 3, &[]);
    let k = kubectl(&p);
    let tainted = agent.nodes[2].clone();
    k.ok(&["taint", "node", &tainted, "dedicated=special:NoSchedule"]);
    k.create_yaml(&daemonset(false));
    wait(&p, "2 daemon pods ready", || ds_ready(&k, 2));
    let placed = daemon_nodes(&k);
    let want: Vec<(String, String)> = agent.nodes[..2]
        .iter()
        .map(|n| (n.clone(), n.clone()))
        .collect();
    assert_eq!(placed, want);
    let pod = &items(&k.json(&["get", "pods", "-l", "app=agent"]))[0];
    let tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(
            tolerations.iter().any(|t| t["key"] == key),
            "{tolerations:?}"
        );
    }
    assert!(!label(pod, "controller-revision-hash").is_empty());
    assert!(!label(pod, "pod-template-generation").is_empty());
    assert!(event_messages(&k, "DaemonSet", "agent")
        .iter()
        .any(|e| e.starts_with("Created pod: agent-")));
    k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]);

    // Tolerating the taint reaches the third node (and rolls the others).
    k.stdin_ok(&["apply", "-f", "-"], &daemonset(true));
    wait(&p, "3 daemon pods updated and ready", || ds_ready(&k, 3));
    assert_eq!(daemon_nodes(&k).len(), 3);
    k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]);
    assert_eq!(items(&k.json(&["get", "controllerrevisions"])).len(), 2);

    // A node joining later gets its pod.
    let late = hollow_agent(&p, 1, &["--node-name", "late"]);
    wait(&p, "4 daemon pods", || ds_ready(&k, 4));
    assert!(daemon_nodes(&k)
        .iter()
        .any(|(pinned, bound)| pinned == &late.nodes[0] && bound == &late.nodes[0]));
    let ds = k.json(&["get", "daemonset", "agent"]);
    assert_eq!(num(&ds, "/status/numberMisscheduled"), 0);
    assert_eq!(num(&ds, "/status/numberUnavailable"), 0);
}
