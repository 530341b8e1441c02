//! Pod termination and agent restarts on a real node: deleting a pod runs
//! its preStop hook and honours the grace period (SIGTERM first, SIGKILL
//! when it runs out); killing the server (and its agent) with SIGKILL and
//! starting it again leaves the containers running, with the same IDs and
//! a correct status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::agent::*;
use crate::common::*;
use serde_json::{json, Value};

const NS: &str = "default";

#[test]
fn termination_and_agent_restart() {
    let mut c = Cluster::start();
    let mut failed = try_scenarios(vec![
        (
            "prestop_and_grace_period",
            Box::new(|| prestop_and_grace_period(&c)),
        ),
        (
            "sigterm_ends_pod_early",
            Box::new(|| sigterm_ends_pod_early(&c)),
        ),
    ]);
    // The restart runs even when a termination scenario failed: it needs
    // the cluster to itself, so it comes after them.
    let restart = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        agent_restart_keeps_containers(&mut c)
    }));
    if restart.is_err() {
        failed.push("agent_restart_keeps_containers");
    }
    assert!(
        failed.is_empty(),
        "scenarios failed: {failed:?} (their panic messages are printed above)"
    );
    c.shutdown();
}

/// A hostPath volume (in the test's directory) the test reads from outside.
fn host_volume(c: &Cluster, name: &str) -> (std::path::PathBuf, Value) {
    let dir = c.host_dir.join(name);
    std::fs::create_dir_all(&dir).expect("create hostPath dir");
    let vol = json!({"name": "out", "hostPath": {"path": dir.to_str().expect("utf-8"), "type": "Directory"}});
    (dir, vol)
}

fn read_host_file(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// preStop runs on deletion; a container ignoring SIGTERM is killed when
/// the 3 s grace period runs out, not before, and not much later.
fn prestop_and_grace_period(c: &Cluster) {
    let (dir, vol) = host_volume(c, "prestop");
    let mut ctr = busybox_container(
        "app",
        "trap '' TERM; echo started > /out/started; while :; do sleep 1; done",
    );
    ctr["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"}]);
    ctr["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["sh", "-c", "echo prestop-ran > /out/prestop"]}}});
    c.apply_json(&pod_manifest(
        NS,
        "prestop",
        json!({"containers": [ctr], "terminationGracePeriodSeconds": 3, "volumes": [vol]}),
    ));
    c.wait_running(NS, "prestop", POD_TIMEOUT);
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            read_host_file(&dir.join("started")) == "started\n"
        }),
        "the container did not write to its hostPath volume\n{}",
        c.describe(NS, "prestop")
    );
    let t0 = Instant::now();
    c.delete_pod(NS, "prestop");
    std::thread::sleep(Duration::from_millis(1500));
    let pod = c.pod(NS, "prestop").unwrap_or_else(|| {
        panic!(
            "pod gone {:?} after deletion, before its 3 s grace period",
            t0.elapsed()
        )
    });
    assert!(
        pod["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        pod["metadata"]
    );
    c.wait_gone(NS, "prestop", Duration::from_secs(20));
    let took = t0.elapsed();
    eprintln!("pod ignoring SIGTERM (grace 3 s) gone after {took:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(10),
        "a pod ignoring SIGTERM with a 3 s grace period was gone after {took:?}"
    );
    assert_eq!(
        read_host_file(&dir.join("prestop")),
        "prestop-ran\n",
        "preStop did not run"
    );
}

/// A container that exits on SIGTERM ends its pod long before a 30 s
/// grace period.
fn sigterm_ends_pod_early(c: &Cluster) {
    let (dir, vol) = host_volume(c, "sigterm");
    let mut ctr = busybox_container(
        "app",
        "trap 'echo got-term > /out/term; exit 0' TERM; while :; do sleep 1; done",
    );
    ctr["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"}]);
    c.apply_json(&pod_manifest(
        NS,
        "sigterm",
        json!({"containers": [ctr], "terminationGracePeriodSeconds": 30, "volumes": [vol]}),
    ));
    c.wait_running(NS, "sigterm", POD_TIMEOUT);
    let t0 = Instant::now();
    c.delete_pod(NS, "sigterm");
    c.wait_gone(NS, "sigterm", Duration::from_secs(20));
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "pod handling SIGTERM took {took:?} to go"
    );
    assert_eq!(
        read_host_file(&dir.join("term")),
        "got-term\n",
        "no SIGTERM reached the container"
    );
}

/// (container name → containerID, restartCount) of a pod.
fn container_ids(pod: &Value) -> BTreeMap<String, (String, i64)> {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                (
                    s["containerID"].as_str().unwrap_or_default().to_string(),
                    s["restartCount"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect()
}

/// SIGKILL the server with pods running: the containers keep serving;
/// after the restart the agent adopts them (same container IDs, no
/// restarts, Ready), and still starts and removes pods.
fn agent_restart_keeps_containers(c: &mut Cluster) {
    let mut web = busybox_container(
        "web",
        "mkdir -p /www && echo still-here > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1});
    c.apply_json(&pod_manifest(
        NS,
        "keep-web",
        json!({"containers": [web], "terminationGracePeriodSeconds": 1}),
    ));
    c.apply_json(&pod_manifest(
        NS,
        "keep-two",
        json!({
            "containers": [busybox_container("a", "exec sleep 3600"), busybox_container("b", "exec sleep 3600")],
            "terminationGracePeriodSeconds": 1,
        }),
    ));
    let mut before = BTreeMap::new();
    for name in ["keep-web", "keep-two"] {
        c.wait_running(NS, name, POD_TIMEOUT);
        let pod = c.wait_ready(NS, name, true, Duration::from_secs(30));
        before.insert(name, (container_ids(&pod), pod_ip(&pod)));
    }
    let web_addr = SocketAddr::new(before["keep-web"].1, 8080);
    assert_eq!(
        wait_http(web_addr, "/", Duration::from_secs(10)),
        "still-here\n"
    );

    c.kill_server();
    // Containers outlive their agent.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        wait_http(web_addr, "/", Duration::from_secs(5)),
        "still-here\n",
        "the pod stopped serving when the agent died"
    );
    let t0 = Instant::now();
    c.restart();
    eprintln!("restart to node Ready: {:?}", t0.elapsed());

    for name in ["keep-web", "keep-two"] {
        let pod = c.wait_ready(NS, name, true, Duration::from_secs(30));
        assert!(is_running(&pod), "{name}: {}", pod["status"]);
        assert_eq!(
            container_ids(&pod),
            before[name].0,
            "{name}: containers replaced or restarted"
        );
        assert_eq!(pod_ip(&pod), before[name].1, "{name}: pod IP changed");
    }
    // Nothing restarts a little later either (a late resync).
    std::thread::sleep(Duration::from_secs(5));
    for name in ["keep-web", "keep-two"] {
        let pod = c.pod(NS, name).expect("pod still exists");
        assert_eq!(
            container_ids(&pod),
            before[name].0,
            "{name}: containers replaced after adoption"
        );
        assert_eq!(
            condition(&pod, "Ready"),
            Some("True"),
            "{name}: {}",
            pod["status"]
        );
    }
    assert_eq!(
        wait_http(web_addr, "/", Duration::from_secs(5)),
        "still-here\n"
    );

    // The restarted agent still runs new pods and removes deleted ones.
    c.apply_json(&pod_manifest(
        NS,
        "after",
        json!({"containers": [busybox_container("app", "exec sleep 3600")], "terminationGracePeriodSeconds": 1}),
    ));
    c.wait_running(NS, "after", POD_TIMEOUT);
    c.delete_pod(NS, "keep-two");
    c.wait_gone(NS, "keep-two", Duration::from_secs(20));
}
