//! Custom resources: how long a new CustomResourceDefinition takes to be
//! served, and server-side apply of 1,000 custom resources (schema with
//! defaults and a CEL rule) by 8 concurrent clients, against the same
//! applies of ConfigMaps in the same run (a built-in kind as reference).
//!
//! A real-world definition (the Prometheus operator's `prometheuses`, 830 KB
//! of YAML, tests/fixtures/crds/) is timed the same way, applied
//! server-side as its project documents.
//!
//! `cargo bench --bench crd` prints them against their targets (served
//! ≤ 1 s, 1,000 applies ≤ 5 s). `NANOKUBE_BENCH_SCALE=0.1` shrinks the
//! counts. Under `cargo test --all-targets` a smoke run at scale 0.05
//! checks it works.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;

use support::{connect, request, start_server, tls_config};

const CLIENTS: usize = 8;

const CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.bench.example.com"},
  "spec": {
    "group": "bench.example.com",
    "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {
        "type": "object",
        "properties": {"spec": {
          "type": "object",
          "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas"}],
          "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer", "default": 100},
            "image": {"type": "string"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"],
                                "properties": {"name": {"type": "string"},
                                               "port": {"type": "integer"}}}}
          }
        }}
      }}
    }]
  }
}"#;

fn widget(i: usize) -> Vec<u8> {
    format!(
        "apiVersion: bench.example.com/v1\nkind: Widget\nmetadata:\n  name: w-{i:05}\nspec:\n  replicas: {}\n  image: registry.local/app:{i}\n  ports:\n  - name: http\n    port: 80\n  - name: metrics\n    port: 9090\n",
        i % 10
    )
    .into_bytes()
}

fn configmap(i: usize) -> Vec<u8> {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\ndata:\n  replicas: \"{}\"\n  image: registry.local/app:{i}\n",
        i % 10
    )
    .into_bytes()
}

/// One server-side apply; returns the status code.
async fn apply(send: &mut SendRequest<Full<Bytes>>, path: &str, body: Vec<u8>) -> u16 {
    let req = http::Request::builder()
        .method("PATCH")
        .uri(format!("https://127.0.0.1{path}?fieldManager=bench"))
        .header("content-type", "application/apply-patch+yaml")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    send.ready().await.expect("connection ready");
    let resp = send.send_request(req).await.expect("send");
    let code = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    code
}

/// `n` applies over `CLIENTS` connections; the wall time.
async fn apply_all(
    port: u16,
    tls: std::sync::Arc<rustls::ClientConfig>,
    n: usize,
    path_of: fn(usize) -> String,
    body_of: fn(usize) -> Vec<u8>,
) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut send = connect(port, tls).await;
            for i in (c..n).step_by(CLIENTS) {
                let code = apply(&mut send, &path_of(i), body_of(i)).await;
                assert!(code == 200 || code == 201, "apply {i} answered {code}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    start.elapsed()
}

fn main() {
    let Some((_smoke, scale)) = common::bench_mode(0.05) else {
        return;
    };
    let n = ((1000.0 * scale) as usize).max(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let server = start_server(&[]);
    let tls = tls_config(&server.kubeconfig);
    let mut control = connect(server.port, tls.clone()).await;
    let ready = Instant::now();
    while request(&mut control, "GET", "/readyz", None).await.0 != 200 {
        assert!(
            ready.elapsed() < Duration::from_secs(10),
            "server never ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let start = Instant::now();
    let (code, body) = request(
        &mut control,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(CRD.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let list = "/apis/bench.example.com/v1/namespaces/default/widgets";
    while request(&mut control, "GET", list, None).await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "widgets never served"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let served = start.elapsed();

    let real_world = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/crds/prometheus-operator/monitoring.coreos.com_prometheuses.yaml"
    ))
    .expect("the prometheuses fixture");
    let real_world_kb = real_world.len() / 1000;
    let start = Instant::now();
    let code = apply(
        &mut control,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/prometheuses.monitoring.coreos.com",
        real_world,
    )
    .await;
    assert_eq!(code, 201, "the prometheuses definition applies");
    let prometheuses = "/apis/monitoring.coreos.com/v1/namespaces/default/prometheuses";
    while request(&mut control, "GET", prometheuses, None).await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "prometheuses never served"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let real_world_served = start.elapsed();

    let widgets = apply_all(
        server.port,
        tls.clone(),
        n,
        |i| format!("/apis/bench.example.com/v1/namespaces/default/widgets/w-{i:05}"),
        widget,
    )
    .await;
    let configmaps = apply_all(
        server.port,
        tls.clone(),
        n,
        |i| format!("/api/v1/namespaces/default/configmaps/cm-{i:05}"),
        configmap,
    )
    .await;
    let (code, body) = request(&mut control, "GET", list, None).await;
    assert_eq!(code, 200);
    let listed: serde_json::Value = serde_json::from_slice(&body).expect("a list");
    let items = listed["items"].as_array().map_or(0, Vec::len);
    assert_eq!(items, n, "every widget stored");
    assert_eq!(listed["items"][0]["spec"]["maxReplicas"], 100, "defaulted");

    let target_apply = 5.0 * n as f64 / 1000.0;
    println!("custom resources: a definition, then {n} server-side applies by {CLIENTS} clients");
    println!(
        "  definition → served      {:7.3} s   target   1.0 s   ratio {:.2}",
        served.as_secs_f64(),
        served.as_secs_f64() / 1.0
    );
    println!(
        "  {real_world_kb} KB prometheuses → served {:5.3} s   target   1.0 s   ratio {:.2}",
        real_world_served.as_secs_f64(),
        real_world_served.as_secs_f64() / 1.0
    );
    println!(
        "  {n} custom resources    {:7.3} s   target {:5.1} s   ratio {:.2}   ({:.0} applies/s)",
        widgets.as_secs_f64(),
        target_apply,
        widgets.as_secs_f64() / target_apply,
        n as f64 / widgets.as_secs_f64()
    );
    println!(
        "  {n} ConfigMaps (reference) {:7.3} s   custom/built-in ratio {:.2}",
        configmaps.as_secs_f64(),
        widgets.as_secs_f64() / configmaps.as_secs_f64()
    );
}
