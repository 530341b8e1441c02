//! Cluster DNS under load: a real node (`nanokube server` with its agent)
//! holding 1,000 Services with an EndpointSlice of 5 endpoints each; UDP
//! clients on the node ask for service names at the cluster DNS address.
//!
//! `cargo bench --bench dns` prints, each as a ratio of its target:
//! - queries/s for service names, closed loop, 4 clients (≥ 20,000);
//! - p99 latency of those queries (≤ 2 ms);
//! - the DNS's memory: the server's RSS minus the RSS of a reference
//!   cluster started with `--disable dns` holding the same objects
//!   (≤ 5 MB, the DNS share of the 10 MB for DNS and proxy).
//!
//! Under `cargo test --all-targets` a smoke run (20 services, 0.3 s of
//! load) checks that it works.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use serde_json::json;

use common::agent::Cluster;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use support::{connect, percentile, request, tls_config};

const QPS: f64 = 20_000.0;
const P99: Duration = Duration::from_millis(2);
const MEMORY_MB: f64 = 5.0;
const CLIENTS: usize = 4;
const ENDPOINTS: usize = 5;

fn main() {
    let Some((smoke, scale)) = common::bench_mode(0.0) else {
        return;
    };
    let services = if smoke {
        20
    } else {
        ((1000.0 * scale) as usize).max(1)
    };
    let load = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(services, load, smoke));
}

fn rss_mb(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Services `svc-<i>` without selectors, each with one slice of fake
/// ready endpoints in the cluster CIDR (nothing is ever sent to them).
async fn populate(c: &Cluster, services: usize) {
    let kc = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let send = connect(c.server.api_port.expect("api port"), tls_config(&kc)).await;
    let prefix = c.cluster_cidr.trim_end_matches(".0.0/16").to_string();
    let post = |mut send: SendRequest<Full<Bytes>>, path: &'static str, obj: serde_json::Value| async move {
        let (code, body) =
            request(&mut send, "POST", path, Some(obj.to_string().into_bytes())).await;
        assert_eq!(code, 201, "POST {path}: {}", String::from_utf8_lossy(&body));
    };
    let ids: Vec<usize> = (0..services).collect();
    for chunk in ids.chunks(32) {
        let mut batch = Vec::new();
        for &i in chunk {
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80}]}});
            let endpoints: Vec<_> = (0..ENDPOINTS)
                .map(|e| {
                    let n = i * ENDPOINTS + e;
                    json!({"addresses": [format!("{prefix}.{}.{}", n / 250, n % 250 + 2)],
                           "conditions": {"ready": true}})
                })
                .collect();
            let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("svc-{i}-x"), "namespace": "default",
                             "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints});
            batch.push(post(
                send.clone(),
                "/api/v1/namespaces/default/services",
                svc,
            ));
            batch.push(post(
                send.clone(),
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                slice,
            ));
        }
        futures::future::join_all(batch).await;
    }
}

fn query(id: u16, name: &Name) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.to_vec().expect("query")
}

/// Asks until the name of the last service answers (the index has it).
fn wait_indexed(dns: SocketAddr, services: usize) {
    let name =
        Name::from_ascii(format!("svc-{}.default.svc.cluster.local.", services - 1)).unwrap();
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        s.send_to(&query(1, &name), dns).unwrap();
        if let Ok(n) = s.recv(&mut buf) {
            if Message::from_vec(&buf[..n]).is_ok_and(|m| m.answers().len() == 1) {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "dns never knew {name}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `CLIENTS` closed-loop UDP clients for `load`: (answers, latencies).
fn hammer(dns: SocketAddr, services: usize, load: Duration) -> (usize, Vec<Duration>) {
    let names: Vec<Name> = (0..services)
        .map(|i| Name::from_ascii(format!("svc-{i}.default.svc.cluster.local.")).unwrap())
        .collect();
    let names = std::sync::Arc::new(names);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let names = names.clone();
            std::thread::spawn(move || {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.connect(dns).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let packets: Vec<Vec<u8>> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| query((i as u16).wrapping_add(t as u16 * 7919), n))
                    .collect();
                let mut lat = Vec::new();
                let mut buf = [0u8; 1500];
                let end = Instant::now() + load;
                let mut i = t * 97;
                while Instant::now() < end {
                    let p = &packets[i % packets.len()];
                    i += 1;
                    let t0 = Instant::now();
                    s.send(p).unwrap();
                    match s.recv(&mut buf) {
                        Ok(n) if n > 12 && buf[..2] == p[..2] => lat.push(t0.elapsed()),
                        _ => lat.push(Duration::from_millis(500)),
                    }
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().expect("client thread"));
    }
    (all.len(), all)
}

async fn run(services: usize, load: Duration, smoke: bool) {
    let cluster = Cluster::start();
    let reference = Cluster::start_with(&["--disable", "dns"]);
    populate(&cluster, services).await;
    populate(&reference, services).await;
    let dns: SocketAddr = format!("{}:53", cluster.service_cidr.replace(".0.0/16", ".0.10"))
        .parse()
        .unwrap();
    wait_indexed(dns, services);

    let t0 = Instant::now();
    let (answered, mut lat) = tokio::task::spawn_blocking(move || hammer(dns, services, load))
        .await
        .expect("load");
    let secs = t0.elapsed().as_secs_f64();
    lat.sort();
    let qps = answered as f64 / secs;
    let p99 = percentile(&lat, 0.99);
    let p50 = percentile(&lat, 0.50);

    tokio::time::sleep(Duration::from_secs(if smoke { 1 } else { 5 })).await;
    let memory = rss_mb(cluster.pid()) - rss_mb(reference.pid());

    println!("dns: {services} services x {ENDPOINTS} endpoints, {CLIENTS} UDP clients on the node, {load:?}");
    println!(
        "  queries/s        {qps:>10.0}   target >= {QPS:.0}   ratio {:.2}",
        qps / QPS
    );
    println!(
        "  p99 latency      {:>10.3} ms (p50 {:.3} ms)   target <= {} ms   ratio {:.2}",
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        P99.as_millis(),
        p99.as_secs_f64() / P99.as_secs_f64()
    );
    println!(
        "  memory (vs --disable dns) {memory:>6.1} MB   target <= {MEMORY_MB} MB   ratio {:.2}",
        memory / MEMORY_MB
    );
    assert!(answered > 0, "no answers");
    reference.shutdown();
    cluster.shutdown();
}
