//! Pod startup on a real node: `nanokube server` with its agent, containerd
//! and CNI, a locally built busybox image (no registry).
//!
//! `cargo bench --bench pods` prints, each as a ratio of its target:
//! - cold start: spawning `nanokube server` → its node Ready (≤ 5 s);
//! - one pod at a time, create → Running and → Ready, p50 (≤ 1 s);
//! - a 30-replica Deployment, create → all 30 Ready (≤ 10 s);
//! - the agent's memory: the server's RSS minus the RSS of a reference
//!   server started with `--disable-agent` in the same run, holding the same
//!   objects (idle ≤ 25 MB; with 30 pods ≤ 40 MB). containerd is a separate
//!   process and not counted, as the targets say.
//!
//! Under `cargo test --all-targets` a smoke run (2 pods, 3 replicas) checks
//! that it works.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use serde_json::{json, Value};

use common::agent::{busybox_container, Cluster};
use support::{connect, percentile, request, start_server, tls_config};

const COLD_START: Duration = Duration::from_secs(5);
const SINGLE_P50: Duration = Duration::from_secs(1);
const DEPLOYMENT_READY: Duration = Duration::from_secs(10);
const IDLE_MB: f64 = 25.0;
const LOADED_MB: f64 = 40.0;
const POLL: Duration = Duration::from_millis(10);

fn main() {
    let Some((smoke, _)) = common::bench_mode(0.0) else {
        return;
    };
    let (singles, replicas) = if smoke { (2, 3) } else { (10, 30) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(singles, replicas, smoke));
}

fn rss_mb(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn get_json(send: &mut SendRequest<Full<Bytes>>, path: &str) -> Value {
    let (code, body) = request(send, "GET", path, None).await;
    if code != 200 {
        return Value::Null;
    }
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

async fn post(send: &mut SendRequest<Full<Bytes>>, path: &str, obj: &Value) {
    let (code, body) = request(send, "POST", path, Some(obj.to_string().into_bytes())).await;
    assert_eq!(code, 201, "POST {path}: {}", String::from_utf8_lossy(&body));
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn deployment(replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [busybox_container("c", "sleep 3600")]}
            }
        }
    })
}

/// Waits until `done` holds for the pod; returns the elapsed time.
async fn time_pod(
    send: &mut SendRequest<Full<Bytes>>,
    path: &str,
    t0: Instant,
    done: impl Fn(&Value) -> bool,
) -> Duration {
    loop {
        let pod = get_json(send, path).await;
        if done(&pod) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "pod {path} never got there: {pod}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn run(singles: usize, replicas: usize, smoke: bool) {
    let cluster = Cluster::start();
    let cold = cluster.cold_start;
    let kc = std::fs::read_to_string(cluster.kubeconfig()).expect("kubeconfig");
    let port = cluster.server.api_port.expect("api port");
    let mut send = connect(port, tls_config(&kc)).await;

    // The reference: the same control plane without the agent.
    let reference = start_server(&[]);
    let ref_kc = reference.kubeconfig.clone();
    let mut ref_send = connect(reference.port, tls_config(&ref_kc)).await;
    let ref_pid = i32::try_from(reference.child.id()).expect("pid");

    tokio::time::sleep(Duration::from_secs(if smoke { 1 } else { 10 })).await;
    let idle = rss_mb(cluster.pid()) - rss_mb(ref_pid);

    let mut running = Vec::new();
    let mut readies = Vec::new();
    for i in 0..singles {
        let name = format!("single-{i}");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [busybox_container("c", "sleep 3600")]}
        });
        let path = format!("/api/v1/namespaces/default/pods/{name}");
        let t0 = Instant::now();
        post(&mut send, "/api/v1/namespaces/default/pods", &pod).await;
        running.push(time_pod(&mut send, &path, t0, |p| p["status"]["phase"] == "Running").await);
        readies.push(time_pod(&mut send, &path, t0, ready).await);
        let (code, _) = request(&mut send, "DELETE", &path, None).await;
        assert_eq!(code, 200);
        while get_json(&mut send, &path).await != Value::Null {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    running.sort();
    readies.sort();

    let t0 = Instant::now();
    post(
        &mut send,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment(replicas),
    )
    .await;
    post(
        &mut ref_send,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment(replicas),
    )
    .await;
    let all_ready = loop {
        let d = get_json(
            &mut send,
            "/apis/apps/v1/namespaces/default/deployments/bench",
        )
        .await;
        if d["status"]["readyReplicas"].as_u64() == Some(replicas as u64) {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "deployment never ready: {d}"
        );
        tokio::time::sleep(POLL).await;
    };
    tokio::time::sleep(Duration::from_secs(if smoke { 1 } else { 5 })).await;
    let loaded = rss_mb(cluster.pid()) - rss_mb(ref_pid);

    let ratio = |v: f64, target: f64| v / target;
    let p50 = percentile(&running, 0.5);
    println!("pod startup on one node ({singles} single pods, a {replicas}-replica Deployment)");
    println!(
        "  cold start to node Ready    {:>8.2} s   target {:>5.1} s   ratio {:.2}",
        cold.as_secs_f64(),
        COLD_START.as_secs_f64(),
        ratio(cold.as_secs_f64(), COLD_START.as_secs_f64())
    );
    println!(
        "  single pod → Running p50    {:>8.3} s   target {:>5.1} s   ratio {:.2}   (p90 {:.3} s, Ready p50 {:.3} s)",
        p50.as_secs_f64(),
        SINGLE_P50.as_secs_f64(),
        ratio(p50.as_secs_f64(), SINGLE_P50.as_secs_f64()),
        percentile(&running, 0.9).as_secs_f64(),
        percentile(&readies, 0.5).as_secs_f64()
    );
    println!(
        "  {replicas} pods all Ready           {:>8.2} s   target {:>5.1} s   ratio {:.2}",
        all_ready.as_secs_f64(),
        DEPLOYMENT_READY.as_secs_f64(),
        ratio(all_ready.as_secs_f64(), DEPLOYMENT_READY.as_secs_f64())
    );
    println!(
        "  agent RSS idle              {idle:>8.1} MB  target {IDLE_MB:>5.1} MB  ratio {:.2}",
        ratio(idle, IDLE_MB)
    );
    println!(
        "  agent RSS with {replicas} pods      {loaded:>8.1} MB  target {LOADED_MB:>5.1} MB  ratio {:.2}",
        ratio(loaded, LOADED_MB)
    );
    println!(
        "  (server RSS {:.1} MB, reference server without the agent {:.1} MB)",
        rss_mb(cluster.pid()),
        rss_mb(ref_pid)
    );
    drop(reference);
    cluster.shutdown();
}
