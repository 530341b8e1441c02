//! The API server under load: 10k ConfigMaps created by 32 concurrent
//! clients while 200 watches follow, then full and paginated lists.
//!
//! `cargo bench --bench api` prints creates/s, create latency p50/p99, list
//! latencies, watch fan-out p99 and the server's RSS before and after, each
//! against its target, and the same creates as raw etcd-API puts on the
//! same server as a reference (what the datastore alone sustains).
//! `NANOKUBE_BENCH_SCALE=0.1` shrinks the counts. Under `cargo test
//! --all-targets` (no `--bench`) a smoke run at scale 0.02 checks it works.
//!
//! Then authorization's cost (`authz.rs`): the p50 latency of creates and
//! gets on a server with `--authorization-mode AlwaysAllow` against one with
//! the default `Node,RBAC`, as the admin and as a user bound to `edit`
//! (target ratio ≤ 1.05). `-- --authz-only` runs just that part.

#[path = "api/authz.rs"]
mod authz;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;

use support::{connect, cpu_secs, ms, percentile, request, start_server, tls_config};

const CLIENTS: usize = 32;
const WATCHES: usize = 200;
const WATCH_CONNECTIONS: usize = 10;

/// The benchmark's ConfigMaps in a list (the namespace also holds its
/// kube-root-ca.crt).
fn bench_items(list: &serde_json::Value) -> usize {
    list["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|i| i["metadata"]["labels"]["bench"] == "api")
            .count()
    })
}

fn configmap(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:05}","labels":{{"bench":"api"}}}},"data":{{"key":"value-{i}","config.yaml":"replicas: 3\nimage: registry.local/app:{i}\n"}}}}"#
    )
    .into_bytes()
}

/// Start times of creates by object name, shared with the watchers.
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

async fn watcher(
    mut send: SendRequest<Full<Bytes>>,
    rv: String,
    expect: usize,
    sent: Sent,
) -> Vec<Duration> {
    let req = http::Request::builder()
        .uri(format!(
            "https://127.0.0.1/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&labelSelector=bench%3Dapi"
        ))
        .body(Full::new(Bytes::new()))
        .expect("watch request");
    send.ready().await.expect("ready");
    let resp = send.send_request(req).await.expect("watch");
    assert_eq!(resp.status().as_u16(), 200, "watch refused");
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut lat = Vec::with_capacity(expect);
    while lat.len() < expect {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            // Only the name matters; a substring scan keeps the bench's CPU low.
            let text = String::from_utf8_lossy(&line);
            if let Some(start) = text.find("\"name\":\"cm-") {
                let name = &text[start + 8..start + 16];
                if let Some(t) = sent.lock().expect("sent map").get(name) {
                    lat.push(now.duration_since(*t));
                }
            }
        }
    }
    lat
}

async fn raw_puts(etcd_port: u16, n: usize) -> f64 {
    let per = n.div_ceil(CLIENTS);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut client = common::connect(&format!("127.0.0.1:{etcd_port}")).await;
            for i in c * per..((c + 1) * per).min(n) {
                client
                    .put(format!("/bench/raw/{i:05}"), configmap(i), None)
                    .await
                    .expect("raw put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("raw put task");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let Some((smoke, scale)) = common::bench_mode(0.02) else {
        return;
    };
    let n = ((10_000.0 * scale) as usize).max(100);
    let watches = std::env::var("NANOKUBE_BENCH_WATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 20 } else { WATCHES });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if !std::env::args().any(|a| a == "--authz-only") {
        rt.block_on(run(n, watches));
    }
    rt.block_on(authz::overhead(if smoke {
        20
    } else {
        (1000.0 * scale) as usize
    }));
}

async fn run(n: usize, watches: usize) {
    let server = start_server(&[]);
    let pid = server.child.id() as i32;
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = common::proc_rss_kib(pid);

    let (_, list) = request(
        &mut control,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&list).expect("list json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let sent: Sent = Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let mut watch_tasks = Vec::new();
    for c in 0..WATCH_CONNECTIONS {
        let conn = connect(server.port, tls.clone()).await;
        for _ in 0..watches / WATCH_CONNECTIONS + usize::from(c < watches % WATCH_CONNECTIONS) {
            watch_tasks.push(tokio::spawn(watcher(
                conn.clone(),
                rv.clone(),
                n,
                sent.clone(),
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let per = n.div_ceil(CLIENTS);
    let (server_cpu0, bench_cpu0) = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let tls = tls.clone();
        let sent = sent.clone();
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(port, tls).await;
            let mut lat = Vec::with_capacity(per);
            for i in c * per..((c + 1) * per).min(n) {
                let t = Instant::now();
                sent.lock()
                    .expect("sent map")
                    .insert(format!("cm-{i:05}"), t);
                let (code, body) = request(
                    &mut conn,
                    "POST",
                    "/api/v1/namespaces/default/configmaps",
                    Some(configmap(i)),
                )
                .await;
                assert_eq!(
                    code,
                    201,
                    "create failed: {}",
                    String::from_utf8_lossy(&body)
                );
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut create_lat = Vec::with_capacity(n);
    for t in tasks {
        create_lat.extend(t.await.expect("create task"));
    }
    let create_secs = start.elapsed().as_secs_f64();
    create_lat.sort();
    let mut fanout = Vec::new();
    let watch_deadline = Duration::from_secs(120);
    for t in watch_tasks {
        match tokio::time::timeout(watch_deadline, t).await {
            Ok(Ok(l)) => {
                assert_eq!(l.len(), n, "a watcher missed events");
                fanout.extend(l);
            }
            _ => panic!("a watcher did not receive every event within {watch_deadline:?}"),
        }
    }
    fanout.sort();
    let server_cpu = cpu_secs(&pid.to_string()) - server_cpu0;
    let bench_cpu = cpu_secs("self") - bench_cpu0;

    let mut full = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let (code, body) = request(
            &mut control,
            "GET",
            "/api/v1/namespaces/default/configmaps",
            None,
        )
        .await;
        full.push(t.elapsed());
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("list json");
        assert_eq!(bench_items(&v), n, "list size");
    }
    full.sort();
    let t = Instant::now();
    let mut cont = String::new();
    let mut pages = 0;
    let mut seen = 0;
    loop {
        let path = format!("/api/v1/namespaces/default/configmaps?limit=500&continue={cont}");
        let (code, body) = request(&mut control, "GET", &path, None).await;
        assert_eq!(code, 200, "page: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("page json");
        pages += 1;
        seen += bench_items(&v);
        match v["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    let paged = t.elapsed();
    assert_eq!(seen, n, "paginated list size");
    let rss_loaded = common::proc_rss_kib(pid);
    let raw = raw_puts(server.etcd_port, n).await;

    let creates = n as f64 / create_secs;
    let p99 = percentile(&create_lat, 0.99);
    let row = |what: &str, value: String, target: &str, ok: bool| {
        println!(
            "{what:<34} {value:>14}   target {target:<10} {}",
            if ok { "ok" } else { "MISSED" }
        );
    };
    println!("API benchmark: {n} ConfigMaps, {CLIENTS} clients, {watches} watches");
    row(
        "creates/s",
        format!("{creates:.0}"),
        ">= 1000",
        creates >= 1000.0,
    );
    row(
        "create latency p50",
        ms(percentile(&create_lat, 0.5)),
        "",
        true,
    );
    row(
        "create latency p99",
        ms(p99),
        "<= 50 ms",
        p99 <= Duration::from_millis(50),
    );
    row(
        "list all (best of 3)",
        ms(full[0]),
        "<= 300 ms",
        full[0] <= Duration::from_millis(300),
    );
    row(
        &format!("list paginated by 500 ({pages} pages)"),
        ms(paged),
        "",
        true,
    );
    row("watch fan-out p50", ms(percentile(&fanout, 0.5)), "", true);
    row("watch fan-out p99", ms(percentile(&fanout, 0.99)), "", true);
    row(
        "server RSS idle",
        format!("{:.1} MB", rss_idle as f64 / 1024.0),
        "<= 40 MB",
        rss_idle <= 40 * 1024,
    );
    row(
        "server RSS with objects + watches",
        format!("{:.1} MB", rss_loaded as f64 / 1024.0),
        "<= 120 MB",
        rss_loaded <= 120 * 1024,
    );
    println!("cpu during creates and fan-out: server {server_cpu:.1} s, benchmark client {bench_cpu:.1} s (2 cores shared)");
    println!("reference: raw etcd-API puts of the same bodies on the same server: {raw:.0}/s; API creates/raw puts = {:.2}", creates / raw);
}
