//! The control plane at scale, like upstream's kubemark density test: one
//! server and 500 hollow nodes (`nanokube agent --hollow`), then a
//! Deployment of 15,000 pods.
//!
//! `cargo bench --bench scale` prints the time until every pod is Running
//! and Ready, the scheduling throughput, the p99 latency of mutating API
//! calls during the run (from the server's `/metrics`, HTTPS and
//! in-process calls alike), the server's RSS and CPU seconds — each as a
//! ratio of its target (upstream's SLOs and the targets).
//! `NANOKUBE_BENCH_SCALE=0.1` shrinks nodes and pods; under `cargo test
//! --all-targets` a smoke run (5 nodes, 100 pods) checks it works.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use serde_json::Value;

use support::{connect, cpu_secs, request, start_server, tls_config};

const NODES: usize = 500;
const PODS: usize = 15_000;
/// Targets: scheduling rate, time to all Running, mutating p99, RSS.
const TARGET_PODS_PER_SEC: f64 = 300.0;
const TARGET_ALL_RUNNING: Duration = Duration::from_secs(90);
const TARGET_P99: Duration = Duration::from_secs(1);
const TARGET_RSS_MIB: f64 = 600.0;

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let Some((smoke, scale)) = common::bench_mode(0.0) else {
        return;
    };
    let (nodes, pods) = if smoke {
        (5, 100)
    } else {
        (
            ((NODES as f64 * scale) as usize).max(1),
            ((PODS as f64 * scale) as usize).max(10),
        )
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(nodes, pods, smoke));
}

async fn get_json(send: &mut SendRequest<Full<Bytes>>, path: &str) -> Value {
    let (code, body) = request(send, "GET", path, None).await;
    assert_eq!(code, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json answer")
}

async fn ready_nodes(send: &mut SendRequest<Full<Bytes>>) -> usize {
    let list = get_json(send, "/api/v1/nodes").await;
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|n| {
                    n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

/// Pods not yet bound to a node (one-item page + remainingItemCount).
async fn unscheduled(send: &mut SendRequest<Full<Bytes>>) -> u64 {
    let list = get_json(
        send,
        "/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3D&limit=1",
    )
    .await;
    let shown = list["items"].as_array().map_or(0, Vec::len) as u64;
    shown + list["metadata"]["remainingItemCount"].as_u64().unwrap_or(0)
}

/// (upper bound, cumulative count) of the mutating-call latency buckets.
async fn mutating_buckets(send: &mut SendRequest<Full<Bytes>>) -> Vec<(f64, f64)> {
    let (code, body) = request(send, "GET", "/metrics", None).await;
    assert_eq!(code, 200, "GET /metrics");
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_bucket{") else {
            continue;
        };
        let mutating = ["POST", "PUT", "PATCH", "DELETE\""]
            .iter()
            .any(|v| rest.contains(&format!("verb=\"{}", v.trim_end_matches('"'))));
        if !mutating || rest.contains("DELETECOLLECTION") {
            continue;
        }
        let Some((labels, count)) = rest.rsplit_once("} ") else {
            continue;
        };
        let le = labels
            .rsplit_once("le=\"")
            .map(|(_, l)| l.trim_end_matches('"'));
        if let (Some(le), Ok(n)) = (le, count.trim().parse::<f64>()) {
            *sums.entry(le.to_string()).or_default() += n;
        }
    }
    let mut out: Vec<(f64, f64)> = sums
        .into_iter()
        .map(|(le, n)| (le.parse().unwrap_or(f64::INFINITY), n))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The 99th percentile of the calls between two bucket snapshots
/// (linear within a bucket, as Prometheus' histogram_quantile).
fn p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> (Duration, u64) {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
            (*le, n - b)
        })
        .collect();
    let total = delta.last().map_or(0.0, |x| x.1);
    if total == 0.0 {
        return (Duration::ZERO, 0);
    }
    let rank = total * 0.99;
    let mut prev = (0.0, 0.0);
    for (le, n) in &delta {
        if *n >= rank {
            if le.is_infinite() {
                return (Duration::from_secs_f64(prev.0), total as u64);
            }
            let within = if n - prev.1 > 0.0 {
                (rank - prev.1) / (n - prev.1)
            } else {
                1.0
            };
            let secs = prev.0 + (le - prev.0) * within;
            return (Duration::from_secs_f64(secs), total as u64);
        }
        prev = (*le, *n);
    }
    (Duration::ZERO, total as u64)
}

fn deployment(pods: usize) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "density"},
        "spec": {
            "replicas": pods,
            "selector": {"matchLabels": {"app": "density"}},
            "template": {
                "metadata": {"labels": {"app": "density"}},
                "spec": {"containers": [{"name": "pause", "image": "registry.local/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    })
    .to_string()
    .into_bytes()
}

async fn run(nodes: usize, pods: usize, smoke: bool) {
    let server = start_server(&[]);
    let pid = server.child.id().to_string();
    let tls = tls_config(&server.kubeconfig);
    let mut api = connect(server.port, tls).await;
    let token = std::fs::read_to_string(server.data_dir.join("server/token"))
        .expect("the server writes its join token");
    let agent_dir = common::tempdir();
    let agent = Agent(
        Command::new(common::NANOKUBE)
            .args(["agent", "--hollow", "--node-name", "density"])
            .args(["--hollow-nodes", &nodes.to_string()])
            .args(["--server", &format!("https://127.0.0.1:{}", server.port)])
            .args(["--token", token.trim()])
            .arg("--data-dir")
            .arg(agent_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the hollow agent"),
    );
    let started = Instant::now();
    while ready_nodes(&mut api).await < nodes {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{nodes} hollow nodes not Ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{nodes} hollow nodes Ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let cpu_before = cpu_secs(&pid);
    let metrics_before = mutating_buckets(&mut api).await;
    let (code, body) = request(
        &mut api,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        Some(deployment(pods)),
    )
    .await;
    assert_eq!(
        code,
        201,
        "create deployment: {}",
        String::from_utf8_lossy(&body)
    );
    let t0 = Instant::now();
    let limit = if smoke {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(900)
    };
    let mut all_scheduled = None;
    let all_running = loop {
        let d = get_json(
            &mut api,
            "/apis/apps/v1/namespaces/default/deployments/density",
        )
        .await;
        let created = d["status"]["replicas"].as_u64().unwrap_or(0);
        let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0);
        if all_scheduled.is_none() && created as usize >= pods && unscheduled(&mut api).await == 0 {
            all_scheduled = Some(t0.elapsed());
        }
        if ready as usize >= pods {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "only {ready}/{pods} pods Running after {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let scheduled_in = all_scheduled.unwrap_or(all_running);
    let cpu = cpu_secs(&pid) - cpu_before;
    let metrics_after = mutating_buckets(&mut api).await;
    let (p99, calls) = p99(&metrics_before, &metrics_after);
    let rss_mib = common::proc_rss_kib(pid.parse().unwrap_or(0)) as f64 / 1024.0;
    let rate = pods as f64 / scheduled_in.as_secs_f64().max(0.001);
    drop(agent);

    println!("density: {nodes} hollow nodes, a Deployment of {pods} pods");
    println!(
        "  all Running+Ready   {:>8.1} s   target ≤ {} s ({:.2}× of target)",
        all_running.as_secs_f64(),
        TARGET_ALL_RUNNING.as_secs(),
        all_running.as_secs_f64() / TARGET_ALL_RUNNING.as_secs_f64()
    );
    println!(
        "  scheduling          {rate:>8.0} pods/s   target ≥ {TARGET_PODS_PER_SEC} ({:.2}× of target)",
        rate / TARGET_PODS_PER_SEC
    );
    println!(
        "  mutating API p99    {:>8.1} ms   over {calls} calls; target ≤ {} ms ({:.2}× of target)",
        p99.as_secs_f64() * 1000.0,
        TARGET_P99.as_millis(),
        p99.as_secs_f64() / TARGET_P99.as_secs_f64()
    );
    println!(
        "  server RSS          {rss_mib:>8.1} MiB   target ≤ {TARGET_RSS_MIB} MiB ({:.2}× of target)",
        rss_mib / TARGET_RSS_MIB
    );
    println!("  server CPU          {cpu:>8.1} s during the run");
    assert!(calls > 0, "no mutating calls were recorded in /metrics");
}
