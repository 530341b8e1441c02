//! Test support: a loopback HTTP(S) server with fixed routes, and targets.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Target;
use crate::agent::cri::Cri;

/// A target whose pod IP is loopback and whose CRI socket does not exist.
pub fn target() -> Target {
    Target {
        cri: Cri::new("/nonexistent/nanokube-probes-test.sock").unwrap(),
        container_id: "c0ffee".into(),
        pod_ip: Some(IpAddr::from([127, 0, 0, 1])),
        host_ip: None,
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

pub struct HttpServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpServer {
    pub fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.path.clone())
            .collect()
    }
}

fn req_path(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or_default()
}

fn answer(port: u16, path: &str) -> (u16, Option<String>, Vec<u8>) {
    match path {
        "/ok" | "/rel/b" => (200, None, b"fine".to_vec()),
        "/fail" => (500, None, b"broken".to_vec()),
        "/same" => (302, Some("/ok".into()), Vec::new()),
        "/abs-same" => (301, Some(format!("http://127.0.0.1:{port}/ok")), Vec::new()),
        "/other" => (
            302,
            Some("http://other.invalid/x".into()),
            b"moved".to_vec(),
        ),
        "/loop" => (302, Some("/loop".into()), Vec::new()),
        "/rel/a" => (302, Some("b".into()), Vec::new()),
        "/big" => (200, None, vec![b'x'; 1 << 20]),
        _ => (404, None, Vec::new()),
    }
}

async fn handle(
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers: req.headers().clone(),
    });
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let (status, location, body) = answer(port, req_path(&path));
    let mut resp = Response::builder().status(status);
    if let Some(location) = location {
        resp = resp.header("location", location);
    }
    Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
}

fn tls_acceptor() -> TlsAcceptor {
    let key = rcgen::generate_simple_self_signed(vec!["pod.invalid".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], der.into())
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Serves the routes of [`answer`] on 127.0.0.1 (HTTPS with a self-signed
/// certificate when `tls`).
pub async fn serve_http(tls: bool) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let acceptor = tls.then(tls_acceptor);
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(port, seen.clone(), req));
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    HttpServer { port, seen }
}
