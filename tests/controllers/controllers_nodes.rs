//! Node and cluster-resource controllers against real kubectl, the
//! scheduler and hollow nodes: podCIDRs for every node; a dead agent's
//! nodes go Unknown and get the unreachable taints, and their pods are
//! evicted after the default tolerationSeconds and run elsewhere; `kubectl
//! drain` is refused by a PodDisruptionBudget with no disruptions left and
//! drains once one is allowed; a claim binds to a matching static volume;
//! a quota reports what its namespace uses.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::hollow::{hollow_agent, kubectl};
use crate::common::{Kubectl, Proc};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(120);
/// Hollow nodes renew their Lease every 10 s (20 s before the second
/// renewal), so the grace period must be longer than that.
const GRACE_SECONDS: &str = "25";
const TOLERATION_SECONDS: &str = "5";

fn server() -> Proc {
    Proc::server_with(|_| {
        [
            "--node-monitor-grace-period",
            GRACE_SECONDS,
            "--default-not-ready-toleration-seconds",
            TOLERATION_SECONDS,
            "--default-unreachable-toleration-seconds",
            TOLERATION_SECONDS,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
}

/// Polls `cond` until true; panics with `what` and the server log.
fn wait(p: &Proc, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\nserver log:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn time_of(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("bad timestamp {text:?}: {e}"))
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Pods of `app` not being deleted.
fn live_pods(k: &Kubectl, app: &str) -> Vec<Value> {
    items(&k.json(&["get", "pods", "-l", &format!("app={app}")]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn deployment(name: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{extra_spec}      containers:
      - name: c
        image: nginx
"
    )
}

#[test]
fn dead_nodes_are_tainted_and_their_pods_move() {
    let p = server();
    let k = kubectl(&p);
    let mut doomed = hollow_agent(&p, 2, &["--node-name", "a"]);
    let survivor = hollow_agent(&p, 2, &["--node-name", "b"]);

    // Every node gets its own /24 of the cluster CIDR.
    let all: Vec<String> = doomed
        .nodes
        .iter()
        .chain(&survivor.nodes)
        .cloned()
        .collect();
    wait(&p, "podCIDRs on every node", || {
        let nodes = items(&k.json(&["get", "nodes"]));
        let cidrs: Vec<&str> = nodes.iter().map(|n| text(n, "/spec/podCIDR")).collect();
        nodes.len() == all.len() && cidrs.iter().all(|c| !c.is_empty())
    });
    let nodes = items(&k.json(&["get", "nodes"]));
    let mut seen = HashSet::new();
    for n in &nodes {
        let cidr = text(n, "/spec/podCIDR");
        let third = cidr
            .strip_prefix("10.42.")
            .and_then(|r| r.strip_suffix(".0/24"))
            .and_then(|x| x.parse::<u8>().ok());
        assert!(third.is_some(), "podCIDR {cidr} not a 10.42.x.0/24");
        assert_eq!(n["spec"]["podCIDRs"][0], cidr, "podCIDRs");
        assert!(seen.insert(cidr.to_string()), "podCIDR {cidr} given twice");
    }

    // All pods on the doomed agent's nodes first.
    for n in &survivor.nodes {
        k.ok(&["cordon", n]);
    }
    k.stdin_ok(&["apply", "-f", "-"], &deployment("web", 3, ""));
    wait(&p, "3 ready web pods", || {
        let pods = live_pods(&k, "web");
        pods.len() == 3 && pods.iter().all(is_ready)
    });
    let first = live_pods(&k, "web");
    for pod in &first {
        assert!(
            doomed
                .nodes
                .iter()
                .any(|n| n == text(pod, "/spec/nodeName")),
            "pod on a cordoned node: {pod}"
        );
        let tolerations = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let t = tolerations.iter().find(|t| t["key"] == key);
            assert_eq!(
                t.map(|t| t["tolerationSeconds"].clone()),
                Some(Value::from(5)),
                "default toleration for {key}: {tolerations:?}"
            );
        }
    }
    for n in &survivor.nodes {
        k.ok(&["uncordon", n]);
    }

    // The agent dies without a word: its nodes go Unknown and get tainted.
    doomed.kill();
    let killed = Instant::now();
    wait(&p, "dead nodes Unknown with unreachable taints", || {
        let nodes = items(&k.json(&["get", "nodes"]));
        doomed.nodes.iter().all(|name| {
            let Some(n) = nodes
                .iter()
                .find(|n| n["metadata"]["name"] == *name.as_str())
            else {
                return false;
            };
            let ready = condition(n, "Ready");
            let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
            let has = |effect: &str| {
                taints.iter().any(|t| {
                    t["key"] == "node.kubernetes.io/unreachable"
                        && t["effect"] == effect
                        && t["timeAdded"].is_string()
                })
            };
            ready.is_some_and(|c| c["status"] == "Unknown" && c["reason"] == "NodeStatusUnknown")
                && has("NoSchedule")
                && has("NoExecute")
        })
    });
    // Not before the grace period after the last Lease renewal.
    for name in &doomed.nodes {
        let lease = k.json(&["get", "lease", "-n", "kube-node-lease", name]);
        let node = k.json(&["get", "node", name]);
        let renewed = time_of(text(&lease, "/spec/renewTime"));
        let unknown = time_of(
            condition(&node, "Ready")
                .and_then(|c| c["lastTransitionTime"].as_str())
                .unwrap_or(""),
        );
        let waited = (unknown - renewed).whole_seconds();
        let grace: i64 = GRACE_SECONDS.parse().unwrap();
        assert!(
            (grace - 1..grace + 10).contains(&waited),
            "{name} went Unknown {waited} s after its last renewal (grace {grace} s)"
        );
    }
    assert!(killed.elapsed() < TIMEOUT);
    let survivors: HashSet<&str> = survivor.nodes.iter().map(String::as_str).collect();
    for n in &survivor.nodes {
        let node = k.json(&["get", "node", n]);
        assert_eq!(
            condition(&node, "Ready").map(|c| c["status"].clone()),
            Some(Value::from("True")),
            "live node {n} stays Ready"
        );
    }

    // Their pods are evicted after tolerationSeconds and run elsewhere.
    wait(&p, "3 ready web pods on the live nodes", || {
        let pods = live_pods(&k, "web");
        pods.len() == 3
            && pods
                .iter()
                .all(|p| is_ready(p) && survivors.contains(text(p, "/spec/nodeName")))
    });
    let old = k.json(&["get", "pod", text(&first[0], "/metadata/name")]);
    assert!(
        !old["metadata"]["deletionTimestamp"].is_null(),
        "old pod deleted: {old}"
    );
    let target = condition(&old, "DisruptionTarget")
        .cloned()
        .unwrap_or_default();
    assert_eq!(target["reason"], "DeletionByTaintManager", "{old}");
    let events = k.ok(&[
        "get",
        "events",
        "-A",
        "-o",
        "custom-columns=R:.reason,M:.message",
    ]);
    assert!(events.contains("TaintManagerEviction"), "{events}");
    assert!(
        events.contains("Marking for deletion Pod default/"),
        "{events}"
    );
    assert!(events.contains("NodeNotReady"), "{events}");
    assert!(events.contains("RegisteredNode"), "{events}");
}

#[test]
fn drain_waits_for_the_disruption_budget() {
    let p = server();
    let k = kubectl(&p);
    let agent = hollow_agent(&p, 3, &["--node-name", "d"]);
    // One pod per node, so draining a node evicts one pod.
    let anti = "      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: db}}
            topologyKey: kubernetes.io/hostname
";
    k.stdin_ok(&["apply", "-f", "-"], &deployment("db", 2, anti));
    wait(&p, "2 ready db pods", || {
        let pods = live_pods(&k, "db");
        pods.len() == 2 && pods.iter().all(is_ready)
    });
    let budget = |min: u32| {
        format!(
            "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: db
spec:
  minAvailable: {min}
  selector:
    matchLabels: {{app: db}}
"
        )
    };
    let pdb_allows = |allowed: i64| {
        let pdb = k.json(&["get", "pdb", "db"]);
        pdb["status"]["disruptionsAllowed"] == allowed
            && pdb["status"]["observedGeneration"] == pdb["metadata"]["generation"]
            && pdb["status"]["currentHealthy"] == 2
            && pdb["status"]["expectedPods"] == 2
    };
    k.stdin_ok(&["apply", "-f", "-"], &budget(2));
    wait(&p, "budget with no disruption allowed", || pdb_allows(0));
    let pdb = k.json(&["get", "pdb", "db"]);
    assert_eq!(pdb["status"]["desiredHealthy"], 2);
    let cond = condition(&pdb, "DisruptionAllowed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (cond["status"].as_str(), cond["reason"].as_str()),
        (Some("False"), Some("InsufficientPods"))
    );

    let victim = text(&live_pods(&k, "db")[0], "/spec/nodeName").to_string();
    let drain = [
        "drain",
        &victim,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
    ];
    let refused = k.run(&[&drain[..], &["--timeout=10s"][..]].concat());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "drain succeeded against the budget: {stderr}"
    );
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert_eq!(live_pods(&k, "db").len(), 2, "no pod was evicted");

    k.stdin_ok(&["apply", "-f", "-"], &budget(1));
    wait(&p, "budget with one disruption allowed", || pdb_allows(1));
    let pdb = k.json(&["get", "pdb", "db"]);
    assert_eq!(
        condition(&pdb, "DisruptionAllowed").map(|c| c["reason"].clone()),
        Some(Value::from("SufficientPods"))
    );
    k.ok(&[&drain[..], &["--timeout=60s"][..]].concat());
    wait(&p, "db pods off the drained node and ready", || {
        let pods = live_pods(&k, "db");
        pods.len() == 2
            && pods
                .iter()
                .all(|p| is_ready(p) && text(p, "/spec/nodeName") != victim)
    });
    assert!(agent.nodes.contains(&victim));
}

#[test]
fn claims_bind_to_static_volumes_and_quotas_count_usage() {
    let p = server();
    let k = kubectl(&p);
    let volume = |name: &str, size: &str, policy: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
spec:
  capacity: {{storage: {size}}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: {policy}
  storageClassName: manual
  hostPath: {{path: /tmp/{name}}}
"
        )
    };
    k.create_yaml(&volume("pv-big", "10Gi", "Retain"));
    k.create_yaml(&volume("pv-small", "1Gi", "Retain"));
    k.create_yaml(&volume("pv-tiny", "100Mi", "Delete"));
    let claim = |name: &str, size: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: {size}}}}}
"
        )
    };
    k.create_yaml(&claim("data", "512Mi"));
    wait(&p, "claim data Bound", || {
        k.json(&["get", "pvc", "data"])["status"]["phase"] == "Bound"
    });
    let pvc = k.json(&["get", "pvc", "data"]);
    assert_eq!(
        pvc["spec"]["volumeName"], "pv-small",
        "smallest fitting volume"
    );
    assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(
        pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
        "yes"
    );
    wait(&p, "pv-small Bound", || {
        k.json(&["get", "pv", "pv-small"])["status"]["phase"] == "Bound"
    });
    let pv = k.json(&["get", "pv", "pv-small"]);
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(pv["spec"]["claimRef"]["uid"], pvc["metadata"]["uid"]);
    let table = k.ok(&["get", "pv", "pv-small"]);
    assert!(
        table.contains("Bound") && table.contains("default/data"),
        "{table}"
    );
    assert_eq!(
        k.json(&["get", "pv", "pv-big"])["status"]["phase"],
        "Available"
    );

    // No volume fits: Pending with upstream's event.
    let mut unclassed = claim("huge", "100Gi");
    unclassed = unclassed.replace("  storageClassName: manual\n", "  storageClassName: \"\"\n");
    k.create_yaml(&unclassed);
    wait(&p, "FailedBinding event", || {
        k.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=huge",
        ])
        .contains("no persistent volumes available for this claim and no storage class is set")
    });
    assert_eq!(
        k.json(&["get", "pvc", "huge"])["status"]["phase"],
        "Pending"
    );

    // Released: Retain keeps the volume, Delete removes it.
    k.create_yaml(&claim("scratch", "50Mi"));
    wait(&p, "claim scratch Bound to pv-tiny", || {
        k.json(&["get", "pvc", "scratch"])["spec"]["volumeName"] == "pv-tiny"
    });
    k.ok(&["delete", "pvc", "data", "scratch"]);
    wait(&p, "pv-small Released", || {
        k.json(&["get", "pv", "pv-small"])["status"]["phase"] == "Released"
    });
    wait(&p, "pv-tiny deleted", || {
        !k.ok(&["get", "pv", "-o", "name"]).contains("pv-tiny")
    });

    // A quota counts what the namespace holds.
    k.namespace("team");
    k.create_yaml(
        "apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: team}
spec:
  hard: {pods: \"10\", configmaps: \"20\", services: \"5\", requests.cpu: \"4\", requests.memory: 4Gi, persistentvolumeclaims: \"3\", requests.storage: 10Gi, count/deployments.apps: \"2\"}
",
    );
    k.configmap("team", "one", &[("a", "b")], &[]);
    k.create_yaml(
        "apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: team}
spec:
  containers:
  - {name: c, image: i, resources: {requests: {cpu: 250m, memory: 64Mi}}}
  - {name: d, image: i, resources: {requests: {cpu: 250m, memory: 64Mi}}}
",
    );
    k.create_yaml(
        "apiVersion: v1
kind: Service
metadata: {name: s, namespace: team}
spec: {ports: [{port: 80}]}
",
    );
    let mut pvc = claim("c1", "2Gi");
    pvc = pvc.replace("  name: c1\n", "  name: c1\n  namespace: team\n");
    k.create_yaml(&pvc);
    let want_configmaps = items(&k.json(&["get", "configmaps", "-n", "team"]))
        .len()
        .to_string();
    let expected = [
        ("pods", "1"),
        ("configmaps", want_configmaps.as_str()),
        ("services", "1"),
        ("requests.cpu", "500m"),
        ("requests.memory", "128Mi"),
        ("persistentvolumeclaims", "1"),
        ("requests.storage", "2Gi"),
        ("count/deployments.apps", "0"),
    ];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let described = k.ok(&["describe", "quota", "q", "-n", "team"]);
        let row = |name: &str| {
            described
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|cols| cols.first() == Some(&name))
        };
        if expected
            .iter()
            .all(|(name, used)| row(name).is_some_and(|c| c.get(1) == Some(used)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quota usage not reported:\n{described}\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
