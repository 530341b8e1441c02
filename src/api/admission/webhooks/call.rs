//! One webhook call: a JSON POST over HTTPS (HTTP/1.1), the server verified
//! against the configuration's caBundle under the name upstream uses
//! (`<service>.<namespace>.svc` or the URL's host), bounded by the
//! webhook's timeout. Errors read as Go's `Post "<url>": <cause>`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Answers larger than this are refused (upstream's request limit).
const MAX_ANSWER: usize = 3 * 1024 * 1024;

/// Where and how to send one call.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The URL as upstream names it in errors, with `?timeout=<n>s`.
    pub url: String,
    /// `host:port` to connect to (a pod IP, a cluster IP or the URL's host).
    pub connect: String,
    /// The name the serving certificate must carry.
    pub server_name: String,
    /// Path and query sent in the request line.
    pub path: String,
    /// Host header.
    pub host: String,
    pub ca_pem: Option<String>,
    pub timeout: Duration,
}

fn tls(ca_pem: Option<&str>) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pki::pem_certificates(ca_pem.unwrap_or("")) {
        roots
            .add(cert)
            .map_err(|e| format!("x509: invalid caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Go's `net.OpError` text for a failed dial.
fn dial_error(addr: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {addr}: connect: connection refused")
        }
        _ => format!("dial tcp {addr}: {e}"),
    }
}

async fn exchange(ep: &Endpoint, body: Vec<u8>) -> Result<Value, String> {
    let connector = tls(ep.ca_pem.as_deref())?;
    let name = ServerName::try_from(ep.server_name.clone())
        .map_err(|e| format!("invalid server name {}: {e}", ep.server_name))?;
    let tcp = TcpStream::connect(&ep.connect)
        .await
        .map_err(|e| dial_error(&ep.connect, &e))?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: failed to verify certificate: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = http::Request::post(&ep.path)
        .header(http::header::HOST, &ep.host)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let bytes = Limited::new(answer.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return Err(format!(
            "an error on the server ({:?}) has prevented the request from succeeding",
            text.trim()
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("received invalid webhook response: {e}"))
}

/// POSTs `body` and returns the decoded JSON answer, or the call error in
/// upstream's words (`Post "<url>": <cause>`).
pub(crate) async fn post(ep: &Endpoint, body: &Value) -> Result<Value, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    match tokio::time::timeout(ep.timeout, exchange(ep, bytes)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(cause)) => Err(format!("Post \"{}\": {cause}", ep.url)),
        Err(_) => Err(format!("Post \"{}\": context deadline exceeded", ep.url)),
    }
}
