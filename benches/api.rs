//! The API server under load: 10k ConfigMaps created by 32 concurrent
//! clients while 200 watches follow, then full and paginated lists.
//!
//! `cargo bench --bench api` prints creates/s, create latency p50/p99, list
//! latencies, watch fan-out p99 and the server's RSS before and after, each
//! against its target, and the same creates as raw etcd-API puts on the
//! same server as a reference (what the datastore alone sustains).
//! `NANOKUBE_BENCH_SCALE=0.1` shrinks the counts. Under `cargo test
//! --all-targets` (no `--bench`) a smoke run at scale 0.02 checks it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const CLIENTS: usize = 32;
const WATCHES: usize = 200;
const WATCH_CONNECTIONS: usize = 10;

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
    etcd_port: u16,
    kubeconfig: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = common::tempdir();
    let port = common::free_port();
    let etcd_port = common::free_port();
    let data = dir.path().join("d");
    let kc = dir.path().join("kubeconfig.yaml");
    let child = Command::new(common::NANOKUBE)
        .args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
        .args(["--https-listen-port", &port.to_string()])
        .args([
            "--datastore-listen-address",
            &format!("127.0.0.1:{etcd_port}"),
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--write-kubeconfig")
        .arg(&kc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nanokube server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kc.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kubeconfig = std::fs::read_to_string(&kc).expect("read kubeconfig");
    Server {
        child,
        _dir: dir,
        port,
        etcd_port,
        kubeconfig,
    }
}

fn kubeconfig_field(kc: &str, key: &str) -> Vec<u8> {
    let line = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("{key} missing from kubeconfig"));
    base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .expect("base64 in kubeconfig")
}

fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Ok((next, block)) = x509_parser::pem::parse_x509_pem(rest) {
        out.push(block.contents);
        if next.len() == rest.len() || next.is_empty() {
            break;
        }
        rest = next;
    }
    out
}

fn tls_config(kc: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in pem_blocks(&kubeconfig_field(kc, "certificate-authority-data")) {
        roots.add(CertificateDer::from(der)).expect("ca cert");
    }
    let certs = pem_blocks(&kubeconfig_field(kc, "client-certificate-data"))
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key_pem = String::from_utf8(kubeconfig_field(kc, "client-key-data")).expect("utf-8 key");
    let key = rcgen::KeyPair::from_pem(&key_pem).expect("client key");
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client cert");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

async fn connect(port: u16, tls: Arc<rustls::ClientConfig>) -> SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("tls");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

async fn request(
    send: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, Bytes) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("https://127.0.0.1{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    send.ready().await.expect("connection ready");
    let resp = send.send_request(req).await.expect("send");
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (code, body)
}

fn configmap(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:05}","labels":{{"bench":"api"}}}},"data":{{"key":"value-{i}","config.yaml":"replicas: 3\nimage: registry.local/app:{i}\n"}}}}"#
    )
    .into_bytes()
}

/// CPU seconds (user + system) a process has used.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
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
    rt.block_on(run(n, watches));
}

async fn run(n: usize, watches: usize) {
    let server = start_server();
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
        assert_eq!(v["items"].as_array().map(Vec::len), Some(n), "list size");
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
        seen += v["items"].as_array().map(Vec::len).unwrap_or(0);
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
