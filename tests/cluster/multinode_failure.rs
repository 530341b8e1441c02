//! Issue 8's joins that must be refused and a node that fails, on several
//! hosts (tests/common/multihost.rs): a wrong CA hash in the token, a
//! second machine under an existing node's name, an agent restarted
//! without the token, and an agent cut off from the network (NotReady
//! within the grace period, its pods recreated elsewhere, cleaned up when
//! it comes back).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::agent::busybox_container;
use crate::common::multihost::*;

const NS: &str = "mhf";
/// Shortened node-failure timeouts (upstream: 40 s, 300 s, 300 s).
const GRACE_SECONDS: u64 = 10;
const TOLERATION_SECONDS: u64 = 5;
const POD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a refused agent may take to say so.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Six pods preferring distinct nodes but free to crowd the survivors.
fn deployment() -> Value {
    let labels = json!({"app": "spread"});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "spread", "namespace": NS},
        "spec": {"replicas": 6, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [busybox_container("main", "exec sleep 3600")],
                    "terminationGracePeriodSeconds": 1,
                    "topologySpreadConstraints": [{"maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": labels}}]}}}})
}

/// Waits until the agent in host `i` exits non-zero or logs `needle`;
/// returns its log. A refused agent may exit or keep retrying (as k3s's).
fn wait_refused(mh: &mut MultiHost, i: usize, needle: &str) -> String {
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    loop {
        if let Some((status, log)) = mh.try_exit(i) {
            assert!(!status.success(), "the refused agent exited 0:\n{log}");
            return log;
        }
        let log = mh.hosts[i].log();
        if log.contains(needle) {
            mh.kill_node(i);
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "the agent in host {i} neither exited nor logged {needle:?} within \
             {REFUSAL_TIMEOUT:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `spec.renewTime` of node `name`'s Lease.
fn lease_renew_time(mh: &MultiHost, name: &str) -> String {
    let lease = mh.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    ));
    lease["spec"]["renewTime"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn on_node<'a>(pods: &'a [Value], node: &str) -> Vec<&'a Value> {
    pods.iter().filter(|p| node_of(p) == node).collect()
}

#[test]
fn refused_joins_rejoin_and_node_failure() {
    let grace = GRACE_SECONDS.to_string();
    let toleration = TOLERATION_SECONDS.to_string();
    // Host 3 only ever tries joins that must be refused.
    let mut mh = MultiHost::with_server(
        4,
        &[
            "--node-monitor-grace-period",
            &grace,
            "--default-not-ready-toleration-seconds",
            &toleration,
            "--default-unreachable-toleration-seconds",
            &toleration,
        ],
    );
    for i in [1, 2] {
        mh.spawn_agent(i, &[]);
    }
    for i in [1, 2] {
        let took = mh.wait_joined(i, JOIN_TIMEOUT);
        eprintln!("host {i} joined in {took:?}");
    }
    let token = mh.token();

    // A token whose CA hash is not the server's CA: refused before any
    // credential is sent, naming the possible man in the middle.
    let secret = token
        .split_once("::")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("not a secure token: {token}"));
    let wrong = format!("K10{}::{secret}", "0".repeat(64));
    let args = mh.agent_args(3, Some(&wrong), &[]);
    mh.spawn_agent_with(3, &args);
    let (status, log) = mh.wait_exit(3, REFUSAL_TIMEOUT);
    assert!(!status.success(), "joined with a wrong CA hash:\n{log}");
    assert!(
        log.contains("man-in-the-middle") && log.contains("does not match"),
        "the refusal does not say why:\n{log}"
    );
    let (code, _) = mh.api(
        "GET",
        &format!("/api/v1/nodes/{}", mh.hosts[3].node_name),
        None,
    );
    assert_eq!(code, 404, "a node was registered with a wrong CA hash");

    // A second machine under host 1's node name: refused; host 1's node
    // keeps its address and stays Ready.
    let taken = mh.hosts[1].node_name.clone();
    let args = mh.agent_args(3, Some(&token), &["--node-name", &taken]);
    mh.spawn_agent_with(3, &args);
    let log = wait_refused(&mut mh, 3, "already joined");
    assert!(
        log.contains(&taken),
        "the refusal does not name the node:\n{log}"
    );
    let node = mh.get(&format!("/api/v1/nodes/{taken}"));
    assert_eq!(internal_ips(&node), vec![mh.hosts[1].ip.to_string()]);
    assert_eq!(mh.node_ready(&taken), "True");

    // Host 1's agent and containerd die; restarted without the token, it
    // rejoins with its stored credentials: Ready, and its Lease renewed by
    // the new process (the old Lease would keep the node Ready a while).
    mh.kill_node(1);
    let name1 = mh.hosts[1].node_name.clone();
    let before = lease_renew_time(&mh, &name1);
    let args = mh.agent_args(1, None, &[]);
    assert!(!args.contains(&"--token".to_string()));
    mh.spawn_agent_with(1, &args);
    let t0 = Instant::now();
    loop {
        mh.assert_alive(1);
        if lease_renew_time(&mh, &name1) != before {
            break;
        }
        assert!(
            t0.elapsed() < JOIN_TIMEOUT,
            "the restarted agent did not renew its Lease within {JOIN_TIMEOUT:?}:\n{}",
            mh.hosts[1].log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    mh.wait_joined(1, JOIN_TIMEOUT);
    eprintln!("host 1 rejoined without the token in {:?}", t0.elapsed());

    // Pods on every node, then host 2 is cut off.
    mh.k().namespace(NS);
    mh.apply(&deployment().to_string());
    let pods = mh.wait_pods(NS, "app=spread", 6, POD_TIMEOUT, "", |_| true);
    let lost = mh.hosts[2].node_name.clone();
    let stale: Vec<String> = on_node(&pods, &lost)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !stale.is_empty(),
        "no pod was placed on {lost}: {:?}",
        pods.iter().map(pod_line).collect::<Vec<_>>()
    );
    mh.set_link(2, false);
    let t0 = Instant::now();
    let not_ready = Duration::from_secs(GRACE_SECONDS + 20);
    loop {
        let r = mh.node_ready(&lost);
        if r != "True" {
            break;
        }
        assert!(
            t0.elapsed() < not_ready,
            "node {lost} still Ready {not_ready:?} after its link went down"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("node {lost} NotReady {:?} after the cut", t0.elapsed());

    // Its pods are replaced on the other nodes.
    let survivors = mh.wait_pods(
        NS,
        "app=spread",
        6,
        POD_TIMEOUT,
        " on the remaining nodes",
        |ps| ps.iter().all(|p| node_of(p) != lost),
    );
    eprintln!(
        "replaced {} pods {:?} after the cut",
        stale.len(),
        t0.elapsed()
    );
    assert!(survivors
        .iter()
        .all(|p| !stale.contains(&p["metadata"]["name"].as_str().unwrap_or("").to_string())));

    // Back on the network: Ready again, and the pods it ran are gone.
    mh.set_link(2, true);
    let took = mh.wait_node_condition(&lost, "True", Duration::from_secs(60));
    eprintln!("node {lost} Ready again {took:?} after the link came back");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<String> = stale
            .iter()
            .filter(|name| mh.pod(NS, name).is_some())
            .cloned()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stale pods of {lost} still exist 60 s after it came back: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    mh.wait_pods(NS, "app=spread", 6, POD_TIMEOUT, "", |_| true);

    mh.shutdown();
}
