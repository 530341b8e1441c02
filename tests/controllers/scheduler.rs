//! The scheduler against a real server: nodes are plain Node objects made
//! Ready with kubectl (no agent), pods get `spec.nodeName`, a pod too big
//! for every node gets upstream's FailedScheduling message and schedules
//! once a big node joins; the same with hollow nodes (`nanokube agent
//! --hollow`), where the bound pod also runs.

use std::time::{Duration, Instant};

use crate::common::hollow::{hollow_agent, kubectl};
use crate::common::Proc;
use serde_json::Value;

fn add_node(k: &crate::common::Kubectl, name: &str, cpu: &str, extra_labels: &str) {
    k.create_yaml(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    \
         kubernetes.io/hostname: {name}\n{extra_labels}"
    ));
    let status = format!(
        r#"{{"status":{{"capacity":{{"cpu":"{cpu}","memory":"4Gi","pods":"110"}},
        "allocatable":{{"cpu":"{cpu}","memory":"4Gi","pods":"110"}},
        "conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady"}}]}}}}"#
    );
    k.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
}

fn pod_yaml(name: &str, cpu: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  \
         labels:\n    app: {name}\nspec:\n{extra_spec}  containers:\n  - name: c\n    image: i\n    \
         resources:\n      requests:\n        cpu: {cpu}\n"
    )
}

/// Waits until `check` returns Some, or panics with `what`.
fn wait_for<T>(p: &Proc, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} did not happen within 30 s;\nserver stderr:\n{}",
                p.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn node_of(k: &crate::common::Kubectl, pod: &str) -> String {
    let v = k.json(&["get", "pod", pod, "-n", "default"]);
    v.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn failed_scheduling(k: &crate::common::Kubectl, pod: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={pod},reason=FailedScheduling");
    let v = k.json(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        &selector,
    ]);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pods_are_bound_and_unschedulable_ones_wait_for_room() {
    let p = Proc::server();
    let k = kubectl(&p);
    add_node(&k, "small-1", "1", "");
    add_node(&k, "small-2", "1", "");
    add_node(
        &k,
        "tainted",
        "1",
        "spec:\n  taints:\n  - key: node-role.kubernetes.io/master\n    effect: NoSchedule\n",
    );

    k.create_yaml(&pod_yaml("fits", "500m", ""));
    let node = wait_for(&p, "binding of pod fits", || {
        Some(node_of(&k, "fits")).filter(|n| !n.is_empty())
    });
    assert!(node.starts_with("small-"), "bound to {node}");
    let scheduled = k.json(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "involvedObject.name=fits,reason=Scheduled",
    ]);
    assert_eq!(
        scheduled["items"][0]["message"].as_str(),
        Some(format!("Successfully assigned default/fits to {node}").as_str())
    );

    k.create_yaml(&pod_yaml("big", "1500m", ""));
    let message = wait_for(&p, "FailedScheduling of pod big", || {
        failed_scheduling(&k, "big").into_iter().next()
    });
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for \
         scheduling, 2 No preemption victims found for incoming pod."
    );
    let cond = wait_for(&p, "PodScheduled=False on pod big", || {
        let v = k.json(&["get", "pod", "big", "-n", "default"]);
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
    });
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(cond["message"].as_str(), Some(message.as_str()));
    assert!(node_of(&k, "big").is_empty());

    // A node with room: the waiting pod is retried and lands there.
    add_node(&k, "big-1", "4", "");
    let node = wait_for(&p, "binding of pod big after a big node joined", || {
        Some(node_of(&k, "big")).filter(|n| !n.is_empty())
    });
    assert_eq!(node, "big-1");

    // A missing claim is a PreFilter failure.
    k.create_yaml(&pod_yaml(
        "claims",
        "10m",
        "  volumes:\n  - name: data\n    persistentVolumeClaim:\n      claimName: nope\n",
    ));
    let message = wait_for(&p, "FailedScheduling of pod claims", || {
        failed_scheduling(&k, "claims").into_iter().next()
    });
    assert_eq!(
        message,
        "0/4 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/4 nodes \
         are available: 4 Preemption is not helpful for scheduling."
    );
}

#[test]
fn many_pods_spread_over_nodes() {
    let p = Proc::server();
    let k = kubectl(&p);
    for i in 0..3 {
        add_node(&k, &format!("n{i}"), "8", "");
    }
    let mut yaml = String::new();
    for i in 0..30 {
        yaml.push_str(&pod_yaml(&format!("p{i}"), "100m", ""));
        yaml.push_str("---\n");
    }
    k.stdin_ok(&["create", "-f", "-"], &yaml);
    let placed = wait_for(&p, "binding of 30 pods", || {
        let v = k.json(&["get", "pods", "-n", "default"]);
        let nodes: Vec<String> = v["items"]
            .as_array()?
            .iter()
            .map(|p| {
                p.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        (nodes.len() == 30 && nodes.iter().all(|n| !n.is_empty())).then_some(nodes)
    });
    for i in 0..3 {
        let on = placed.iter().filter(|n| **n == format!("n{i}")).count();
        assert!(
            (5..=15).contains(&on),
            "n{i} got {on} of 30 pods: {placed:?}"
        );
    }
}

#[test]
fn a_pod_too_big_for_hollow_nodes_runs_once_a_big_hollow_node_joins() {
    let p = Proc::server();
    let small = hollow_agent(&p, 3, &[]);
    let k = kubectl(&p);
    k.create_yaml(&pod_yaml("huge", "\"100\"", ""));
    let message = wait_for(&p, "FailedScheduling of pod huge", || {
        failed_scheduling(&k, "huge").into_iter().next()
    });
    assert_eq!(
        message,
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: \
         3 No preemption victims found for incoming pod.",
        "small nodes {:?}",
        small.nodes
    );
    let pod = k.json(&["get", "pod", "huge", "-n", "default"]);
    assert_eq!(pod["status"]["phase"], "Pending", "{pod}");
    assert!(node_of(&k, "huge").is_empty(), "{pod}");

    let big = hollow_agent(&p, 1, &["--node-name", "big", "--hollow-cpu", "128"]);
    assert_eq!(big.nodes, ["big-hollow-0"]);
    let node = wait_for(&p, "binding of pod huge after a big node joined", || {
        Some(node_of(&k, "huge")).filter(|n| !n.is_empty())
    });
    assert_eq!(node, "big-hollow-0");
    wait_for(&p, "pod huge Running", || {
        let v = k.json(&["get", "pod", "huge", "-n", "default"]);
        (v["status"]["phase"] == "Running").then_some(())
    });
}
