//! Webhooks served in process over HTTPS on 127.0.0.1 (a CA and a
//! serving certificate made here), called through the real write path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{Api, ApiError, ServiceNetwork, WriteOptions};
use crate::datastore::{SqliteBackend, SqliteOptions};

/// Answers one review request body with the `response` part.
pub(super) type Handler = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

pub(super) struct Server {
    pub port: u16,
    pub ca_pem: String,
    pub calls: Arc<AtomicUsize>,
    pub last: Arc<std::sync::Mutex<Value>>,
}

fn certificates() -> (String, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], der.into())
        .unwrap();
    (ca.pem(), config)
}

pub(super) async fn serve(delay: Duration, handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ca_pem, config) = certificates();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(std::sync::Mutex::new(Value::Null));
    let (c, l) = (calls.clone(), last.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, handler, c, l) =
                (acceptor.clone(), handler.clone(), c.clone(), l.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let (handler, c, l) = (handler.clone(), c.clone(), l.clone());
                        async move {
                            let path = req.uri().to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let review: Value = serde_json::from_slice(&body).unwrap();
                            c.fetch_add(1, Ordering::SeqCst);
                            *l.lock().unwrap() = json!({"path": path, "review": review.clone()});
                            tokio::time::sleep(delay).await;
                            let mut response = handler(&review);
                            response["uid"] = review["request"]["uid"].clone();
                            let kind = review["kind"].clone();
                            let api_version = review["apiVersion"].clone();
                            let answer = json!({"apiVersion": api_version, "kind": kind, "response": response});
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from(serde_json::to_vec(&answer).unwrap()),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Server {
        port,
        ca_pem,
        calls,
        last,
    }
}

/// Denies objects labelled `deny=true`, as the integration test's server.
pub(super) fn deny_labelled(review: &Value) -> Value {
    if review["request"]["object"]["metadata"]["labels"]["deny"] == "true" {
        json!({"allowed": false, "status": {"code": 403, "message": "labelled deny"}})
    } else {
        json!({"allowed": true})
    }
}

pub(super) fn add_label(key: &'static str, value: &'static str) -> Handler {
    Arc::new(move |review: &Value| {
        let has_labels = review["request"]["object"]["metadata"]["labels"].is_object();
        let patch = if has_labels {
            json!([{"op": "add", "path": format!("/metadata/labels/{key}"), "value": value}])
        } else {
            json!([{"op": "add", "path": "/metadata/labels", "value": {key: value}}])
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        json!({"allowed": true, "patchType": "JSONPatch", "patch": b64})
    })
}

pub(super) async fn api() -> (Arc<Api>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
    let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
        .await
        .unwrap();
    api.bootstrap("127.0.0.1".parse().unwrap(), 6443)
        .await
        .unwrap();
    (api, dir)
}

pub(super) fn hook(name: &str, url: String, ca_pem: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {
            "url": url,
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        },
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
    });
    if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
        h.extend(extra.clone());
    }
    h
}

pub(super) async fn configure(api: &Api, plural: &str, name: &str, hooks: Vec<Value>) {
    let kind = if plural.starts_with("mutating") {
        "MutatingWebhookConfiguration"
    } else {
        "ValidatingWebhookConfiguration"
    };
    let r = api
        .registry()
        .find("admissionregistration.k8s.io", "v1", plural)
        .unwrap();
    let obj = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "webhooks": hooks});
    api.create(r, None, obj, &WriteOptions::default())
        .await
        .unwrap();
    api.store.sync().await.unwrap();
}

pub(super) async fn create_cm(api: &Api, name: &str, labels: Value) -> Result<Value, ApiError> {
    let r = api.registry().find("", "v1", "configmaps").unwrap();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}});
    api.create(r, Some("default"), obj, &WriteOptions::default())
        .await
}

#[tokio::test]
async fn validating_webhook_denies_with_its_message() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(deny_labelled)).await;
    let url = format!("https://127.0.0.1:{}/validate", server.port);
    configure(
        &api,
        "validatingwebhookconfigurations",
        "deny",
        vec![hook("deny.example.com", url, &server.ca_pem, json!({}))],
    )
    .await;
    let err = create_cm(&api, "bad", json!({"deny": "true"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.to_string(),
        "admission webhook \"deny.example.com\" denied the request: labelled deny"
    );
    create_cm(&api, "good", json!({"app": "x"})).await.unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
    let last = server.last.lock().unwrap().clone();
    assert_eq!(last["path"], "/validate?timeout=10s");
    let req = &last["review"]["request"];
    assert_eq!(last["review"]["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(req["namespace"], "default");
    assert_eq!(req["name"], "good");
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(req["object"]["metadata"]["labels"]["app"], "x");
    assert_eq!(req["dryRun"], false);
    // Secrets are not in the rules: no call.
    let r = api.registry().find("", "v1", "secrets").unwrap();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"deny": "true"}}});
    api.create(r, Some("default"), secret, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn mutating_webhooks_run_in_name_order_on_each_others_result() {
    let (api, _dir) = api().await;
    let first = serve(Duration::ZERO, add_label("mutated", "yes")).await;
    // The second adds its label only when it sees the first one's.
    let inner = add_label("second", "saw-first");
    let second = serve(
        Duration::ZERO,
        Arc::new(move |review: &Value| {
            if review["request"]["object"]["metadata"]["labels"]["mutated"] == "yes" {
                inner(review)
            } else {
                json!({"allowed": true})
            }
        }),
    )
    .await;
    let url = |s: &Server| format!("https://127.0.0.1:{}/mutate", s.port);
    configure(
        &api,
        "mutatingwebhookconfigurations",
        "b-second",
        vec![hook(
            "second.example.com",
            url(&second),
            &second.ca_pem,
            json!({}),
        )],
    )
    .await;
    configure(
        &api,
        "mutatingwebhookconfigurations",
        "a-first",
        vec![hook(
            "first.example.com",
            url(&first),
            &first.ca_pem,
            json!({}),
        )],
    )
    .await;
    let out = create_cm(&api, "m", Value::Null).await.unwrap();
    assert_eq!(out["metadata"]["labels"]["mutated"], "yes");
    assert_eq!(out["metadata"]["labels"]["second"], "saw-first");
}

#[tokio::test]
async fn failure_policy_decides_when_the_webhook_is_down() {
    let (api, _dir) = api().await;
    // A port nobody listens on: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}/validate");
    configure(
        &api,
        "validatingwebhookconfigurations",
        "ignored",
        vec![hook(
            "ignored.example.com",
            url.clone(),
            "",
            json!({"failurePolicy": "Ignore"}),
        )],
    )
    .await;
    create_cm(&api, "through", Value::Null).await.unwrap();
    configure(
        &api,
        "validatingwebhookconfigurations",
        "failing",
        vec![hook("failing.example.com", url, "", json!({}))],
    )
    .await;
    let err = create_cm(&api, "refused", Value::Null).await.unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.to_string(),
        format!(
            "Internal error occurred: failed calling webhook \"failing.example.com\": failed to call webhook: \
             Post \"https://127.0.0.1:{port}/validate?timeout=10s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
}

#[tokio::test]
async fn a_slow_webhook_times_out() {
    let (api, _dir) = api().await;
    let server = serve(Duration::from_secs(5), Arc::new(deny_labelled)).await;
    let url = format!("https://127.0.0.1:{}/slow", server.port);
    configure(
        &api,
        "validatingwebhookconfigurations",
        "slow",
        vec![hook(
            "slow.example.com",
            url,
            &server.ca_pem,
            json!({"timeoutSeconds": 1}),
        )],
    )
    .await;
    let start = Instant::now();
    let err = create_cm(&api, "x", Value::Null).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.code(), 500);
    assert!(
        err.to_string().ends_with(&format!(
            "Post \"https://127.0.0.1:{}/slow?timeout=1s\": context deadline exceeded",
            server.port
        )),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_ca_is_a_call_failure() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(deny_labelled)).await;
    let (other_ca, _) = certificates();
    let url = format!("https://127.0.0.1:{}/validate", server.port);
    configure(
        &api,
        "validatingwebhookconfigurations",
        "x",
        vec![hook("x.example.com", url, &other_ca, json!({}))],
    )
    .await;
    let err = create_cm(&api, "x", Value::Null).await.unwrap_err();
    assert!(err.to_string().contains("failed to call webhook"), "{err}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn object_selector_limits_the_calls() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(deny_labelled)).await;
    let url = format!("https://127.0.0.1:{}/validate", server.port);
    let extra = json!({"objectSelector": {"matchLabels": {"checked": "yes"}}});
    configure(
        &api,
        "validatingwebhookconfigurations",
        "sel",
        vec![hook("sel.example.com", url, &server.ca_pem, extra)],
    )
    .await;
    create_cm(&api, "unchecked", json!({"deny": "true"}))
        .await
        .unwrap();
    let err = create_cm(&api, "checked", json!({"deny": "true", "checked": "yes"})).await;
    assert!(err.is_err());
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn conversion_webhook_converts() {
    let (api, _dir) = api().await;
    let server = serve(
        Duration::ZERO,
        Arc::new(|review: &Value| {
            let desired = review["request"]["desiredAPIVersion"].clone();
            let objects: Vec<Value> = review["request"]["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    o["apiVersion"] = desired.clone();
                    o
                })
                .collect();
            json!({"convertedObjects": objects, "result": {"status": "Success"}})
        }),
    )
    .await;
    let crd = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
    "conversionReviewVersions": ["v1"],
    "clientConfig": {
        "url": format!("https://127.0.0.1:{}/convert", server.port),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&server.ca_pem),
    }}}}});
    let objects =
        vec![json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "a"}})];
    let crd = &crd["spec"]["conversion"]["webhook"];
    let out = super::convert(&api, crd, objects, "example.com/v2")
        .await
        .unwrap();
    assert_eq!(out[0]["apiVersion"], "example.com/v2");
    assert_eq!(out[0]["metadata"]["name"], "a");
    // Already at the desired version: no call.
    let same = vec![json!({"apiVersion": "example.com/v2", "kind": "Thing"})];
    super::convert(&api, crd, same, "example.com/v2")
        .await
        .unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    // Nobody listening: upstream's text.
    let webhook = json!({"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://127.0.0.1:1/c"}});
    let objects = vec![json!({"apiVersion": "example.com/v1", "kind": "Thing"})];
    let err = super::convert(&api, &webhook, objects, "example.com/v2")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("conversion webhook for example.com/v1, Kind=Thing failed: Post \"https://127.0.0.1:1/c?timeout=30s\""),
        "{err}"
    );
}
