//! A tiny admission webhook server for the node tests
//! (`tests/node/admission_webhooks.rs` packs it into an image):
//! `test_webhook <port> <cert.pem> <key.pem>` serves HTTPS with
//! `POST /validate` (refuses objects labelled `deny=true` with the message
//! "labelled deny") and `POST /mutate` (adds the label `mutated=yes` with a
//! JSONPatch). Anything else is 404.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

type Answer = http::Response<Full<Bytes>>;

fn respond(status: u16, body: Vec<u8>) -> Answer {
    let mut answer = http::Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// The `response` part of the AdmissionReview for one path.
fn decide(path: &str, request: &Value) -> Option<Value> {
    let labels = request.pointer("/object/metadata/labels");
    match path {
        "/validate" => Some(
            if labels.and_then(|l| l.get("deny")).and_then(Value::as_str) == Some("true") {
                json!({"allowed": false, "status": {"code": 403, "message": "labelled deny"}})
            } else {
                json!({"allowed": true})
            },
        ),
        "/mutate" => {
            let patch = if labels.is_some_and(Value::is_object) {
                json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            };
            let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
            Some(json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}))
        }
        _ => None,
    }
}

async fn handle(req: http::Request<Incoming>) -> Result<Answer, Infallible> {
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(respond(400, b"{}".to_vec())),
    };
    let Ok(review) = serde_json::from_slice::<Value>(&body) else {
        return Ok(respond(400, b"{}".to_vec()));
    };
    let request = review.get("request").cloned().unwrap_or(Value::Null);
    let Some(mut response) = decide(&path, &request) else {
        return Ok(respond(404, b"{}".to_vec()));
    };
    response["uid"] = request.get("uid").cloned().unwrap_or(Value::Null);
    eprintln!(
        "{path} {} -> allowed={}",
        request["name"], response["allowed"]
    );
    let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(respond(200, answer.to_string().into_bytes()))
}

fn tls(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("read {p}: {e}"));
    let certs = rustls_pemfile(&read(cert)?, "CERTIFICATE")?
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    let key = rustls_pemfile(&read(key)?, "PRIVATE KEY")?
        .into_iter()
        .next()
        .ok_or("no PRIVATE KEY in the key file")?;
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key.into())
        .map_err(|e| e.to_string())?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The DER of every `label` PEM block (no extra crate for PEM).
fn rustls_pemfile(pem: &[u8], label: &str) -> Result<Vec<Vec<u8>>, String> {
    let text = String::from_utf8_lossy(pem);
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after.find(&end).ok_or("unterminated PEM block")?;
        let b64: String = after[..stop].split_whitespace().collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| e.to_string())?,
        );
        rest = &after[stop + end.len()..];
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, cert, key] = args.as_slice() else {
        return Err("usage: test_webhook <port> <cert.pem> <key.pem>".into());
    };
    let acceptor = tls(cert, key)?;
    let listener = TcpListener::bind(format!("0.0.0.0:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("serving on {port}");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(stream) = acceptor.accept(tcp).await {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                    .await;
            }
        });
    }
}
