//! What the benchmarks share: a server process, an HTTP/2 client with the
//! admin credentials, and process figures.
// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::common;

pub struct Server {
    pub data_dir: PathBuf,
    pub child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
    pub etcd_port: u16,
    pub kubeconfig: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nanokube server --disable-agent` on loopback with `extra` flags.
pub fn start_server(extra: &[&str]) -> Server {
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
        .args(extra)
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
        data_dir: data,
        child,
        _dir: dir,
        port,
        etcd_port,
        kubeconfig,
    }
}

pub fn kubeconfig_field(kc: &str, key: &str) -> Vec<u8> {
    let line = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("{key} missing from kubeconfig"));
    base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .expect("base64 in kubeconfig")
}

pub fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
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

pub fn tls_config(kc: &str) -> Arc<rustls::ClientConfig> {
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

pub async fn connect(port: u16, tls: Arc<rustls::ClientConfig>) -> SendRequest<Full<Bytes>> {
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

pub async fn request(
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

/// CPU seconds (user + system) a process has used.
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
