//! Several nodes on one machine (hosts as network namespaces, see
//! tests/common/multihost.rs): the server in host 0, agents in hosts 1, 2.
//!
//! `cargo bench --bench multinode` prints, each as a ratio of its target:
//! - join time: spawning `nanokube agent --server … --token …` → its node
//!   Ready (containerd start included; ≤ 5 s), per agent;
//! - pod-to-pod TCP throughput across nodes (over the pod network, VXLAN
//!   by default) against host-to-host throughput between the same two
//!   namespaces (ratio ≥ 0.5). One connection, one direction, from a test
//!   thread that joins the pod's (or host's) network namespace, so the
//!   figure is the network path's, not a tool's.
//!
//! `NANOKUBE_BENCH_FLANNEL_BACKEND=host-gw` measures the other backend.
//! Under `cargo test --all-targets` a smoke run (small transfers) checks
//! that it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use common::agent::busybox_container;
use common::multihost::*;

const JOIN_TARGET: Duration = Duration::from_secs(5);
const THROUGHPUT_RATIO_TARGET: f64 = 0.5;
const PORT: u16 = 5201;
const NS: &str = "bench";

fn main() {
    let Some((smoke, scale)) = common::bench_mode(0.0) else {
        return;
    };
    let (bytes, rounds) = if smoke {
        (8u64 << 20, 1)
    } else {
        (((512u64 << 20) as f64 * scale) as u64, 5)
    };
    let backend =
        std::env::var("NANOKUBE_BENCH_FLANNEL_BACKEND").unwrap_or_else(|_| "vxlan".into());
    let mut mh = MultiHost::with_server(3, &["--flannel-backend", &backend]);

    // Join time, one agent at a time (the machine has few cores).
    let mut joins = Vec::new();
    for i in [1, 2] {
        mh.spawn_agent(i, &[]);
        joins.push(mh.wait_joined(i, JOIN_TIMEOUT));
    }

    // One pod pinned to each agent's node; the test enters their network
    // namespaces through a process of theirs, found by a marker.
    mh.k().namespace(NS);
    let marker = |i: usize| format!("nkbench-{}-{i}", mh.slot);
    for i in [1, 2] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i}"), "namespace": NS},
            "spec": {"nodeName": mh.hosts[i].node_name,
                "terminationGracePeriodSeconds": 0,
                "containers": [busybox_container(
                    "main", &format!("sleep 3600; : {}", marker(i)))]}});
        mh.apply(&pod.to_string());
    }
    let pods = mh.wait_pods(NS, "", 2, Duration::from_secs(120), "", |_| true);
    let pod_ip = |name: &str| -> std::net::IpAddr {
        let p = pods
            .iter()
            .find(|p| p["metadata"]["name"] == name)
            .expect("bench pod");
        p["status"]["podIP"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("podIP")
    };
    let pod_netns = |i: usize| -> PathBuf {
        let pid = pid_with_cmdline(&marker(i))
            .unwrap_or_else(|| panic!("no process of pod p{i} on this machine"));
        PathBuf::from(format!("/proc/{pid}/ns/net"))
    };
    let (ns1, ns2) = (pod_netns(1), pod_netns(2));
    let host_ns = |i: usize| mh.hosts[i].netns_path();

    // Rounds alternate, so a busy moment of the machine hits both sides.
    let (mut hosts, mut pods_rate) = (0.0f64, 0.0f64);
    for _ in 0..rounds {
        hosts = hosts.max(tcp_throughput(
            &host_ns(2),
            mh.addr(2, PORT),
            &host_ns(1),
            bytes,
        ));
        let to = SocketAddr::new(pod_ip("p2"), PORT);
        pods_rate = pods_rate.max(tcp_throughput(&ns2, to, &ns1, bytes));
    }
    let vxlan = mh.hosts[1].vxlan_links();
    let device = vxlan
        .lines()
        .next()
        .and_then(|l| l.split(": ").nth(1))
        .unwrap_or("none")
        .to_string();

    let gbit = |bps: f64| bps * 8.0 / 1e9;
    println!(
        "multi-node on one machine (server + 2 agents, pod network {backend}, \
         {} MiB per transfer, best of {rounds}; VXLAN device {device})",
        bytes >> 20
    );
    for (k, j) in joins.iter().enumerate() {
        println!(
            "  agent {} join → node Ready     {:>8.2} s   target {:>5.1} s   ratio {:.2}",
            k + 1,
            j.as_secs_f64(),
            JOIN_TARGET.as_secs_f64(),
            j.as_secs_f64() / JOIN_TARGET.as_secs_f64()
        );
    }
    let ratio = pods_rate / hosts;
    println!(
        "  pod → pod across nodes        {:>8.2} Gbit/s\n  \
         host → host (same netns pair) {:>8.2} Gbit/s\n  \
         pod/host throughput           {:>8.2}     target ≥ {THROUGHPUT_RATIO_TARGET:.1}    \
         ratio {:.2}",
        gbit(pods_rate),
        gbit(hosts),
        ratio,
        THROUGHPUT_RATIO_TARGET / ratio.max(1e-9)
    );
    mh.shutdown();
}
