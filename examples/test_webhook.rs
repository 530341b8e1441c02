//! A tiny admission webhook server for the node tests
//! (`tests/node/admission_webhooks.rs` packs it into an image):
//! `test_webhook <port> <cert.pem> <key.pem> [bind address]` serves HTTPS
//! (on 0.0.0.0 unless told) with
//! - `POST /validate`: refuses objects (or, on DELETE, old objects) labelled
//!   `deny=true` with the message "labelled deny", and CONNECT requests
//!   whose PodExecOptions command has the word `forbidden` with "command
//!   refused";
//! - `POST /mutate`: adds the label `mutated=yes` with a JSONPatch;
//! - `POST /mutate-observe`: sets the annotation `seen-mutated` to whether
//!   the object it was sent carried `mutated=yes` (a reinvoked webhook sees
//!   the later webhook's label);
//! - `POST /convert`: a ConversionReview between `v1` (`spec.hostPort:
//!   "host:port"`) and `v2` (`spec.host`, `spec.port`) of any group;
//!   `spec.hostPort: "fail"` makes it answer a Failure "cannot convert".
//!
//! Anything else is 404.

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
        "/validate" if request["operation"] == "CONNECT" => {
            let command = request.pointer("/object/command").and_then(Value::as_array);
            Some(
                if command.is_some_and(|c| c.iter().any(|w| w == "forbidden")) {
                    json!({"allowed": false, "status": {"code": 403, "message": "command refused"}})
                } else {
                    json!({"allowed": true})
                },
            )
        }
        "/validate" if request.get("object").is_none_or(Value::is_null) => {
            let old = request.pointer("/oldObject/metadata/labels/deny");
            Some(if old.and_then(Value::as_str) == Some("true") {
                json!({"allowed": false, "status": {"code": 403, "message": "labelled deny"}})
            } else {
                json!({"allowed": true})
            })
        }
        "/mutate-observe" => {
            let seen = labels
                .and_then(|l| l.get("mutated"))
                .and_then(Value::as_str)
                == Some("yes");
            let seen = if seen { "yes" } else { "no" };
            let annotations = request.pointer("/object/metadata/annotations");
            let patch = if annotations.is_some_and(Value::is_object) {
                json!([{"op": "add", "path": "/metadata/annotations/seen-mutated", "value": seen}])
            } else {
                json!([{"op": "add", "path": "/metadata/annotations", "value": {"seen-mutated": seen}}])
            };
            let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
            Some(json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}))
        }
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

/// Converts one object to `desired` (`group/v1` or `group/v2`).
fn convert(mut obj: Value, desired: &str) -> Result<Value, String> {
    let to_v2 = desired.ends_with("/v2");
    let spec = obj
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or("object has no spec")?;
    if to_v2 {
        if let Some(hp) = spec.remove("hostPort") {
            let hp = hp.as_str().unwrap_or_default().to_string();
            if hp == "fail" {
                return Err("cannot convert".into());
            }
            let (host, port) = hp.split_once(':').unwrap_or((hp.as_str(), "0"));
            spec.insert("host".into(), host.into());
            spec.insert("port".into(), port.parse::<i64>().unwrap_or(0).into());
        }
    } else if let Some(host) = spec.remove("host") {
        let port = spec.remove("port").and_then(|p| p.as_i64()).unwrap_or(0);
        let host = host.as_str().unwrap_or_default().to_string();
        spec.insert("hostPort".into(), format!("{host}:{port}").into());
    }
    obj["apiVersion"] = desired.into();
    Ok(obj)
}

fn conversion(review: &Value) -> Value {
    let request = review.get("request").cloned().unwrap_or(Value::Null);
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let objects = request["objects"].as_array().cloned().unwrap_or_default();
    let converted: Result<Vec<Value>, String> =
        objects.into_iter().map(|o| convert(o, desired)).collect();
    eprintln!("/convert to {desired} -> {}", converted.is_ok());
    let response = match converted {
        Ok(objects) => json!({
            "uid": request["uid"], "convertedObjects": objects,
            "result": {"status": "Success"},
        }),
        Err(message) => json!({
            "uid": request["uid"], "convertedObjects": [],
            "result": {"status": "Failure", "message": message},
        }),
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response})
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
    if path == "/convert" {
        return Ok(respond(200, conversion(&review).to_string().into_bytes()));
    }
    let request = review.get("request").cloned().unwrap_or(Value::Null);
    let Some(mut response) = decide(&path, &request) else {
        return Ok(respond(404, b"{}".to_vec()));
    };
    response["uid"] = request.get("uid").cloned().unwrap_or(Value::Null);
    eprintln!(
        "{path} {} {} -> allowed={}",
        request["operation"], request["name"], response["allowed"]
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
    let (port, cert, key, addr) = match args.as_slice() {
        [_, port, cert, key] => (port, cert, key, "0.0.0.0"),
        [_, port, cert, key, addr] => (port, cert, key, addr.as_str()),
        _ => return Err("usage: test_webhook <port> <cert.pem> <key.pem> [bind address]".into()),
    };
    let acceptor = tls(cert, key)?;
    let listener = TcpListener::bind(format!("{addr}:{port}"))
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
