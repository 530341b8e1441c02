//! The remote client against a tiny in-process HTTPS server (rustls +
//! hyper, certificates made here with rcgen) that records what it receives
//! and answers canned JSON.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex as StdMutex;

use futures::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, StreamBody};
use hyper::body::Frame;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::server::WebPkiClientVerifier;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::api::selector::{FieldSelector, LabelSelector};

/// CA, then (certificate, key) PEMs of the server and of a client.
type Pki = (String, (String, String), (String, String));

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: &[&str]| {
        let key = KeyPair::generate().unwrap();
        let p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        (
            p.unwrap().signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    (ca_pem, leaf(&["localhost"]), leaf(&[]))
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    content_type: String,
    auth: String,
    body: String,
    /// DER of the client certificate, if one was presented.
    cert: Vec<u8>,
    h2: bool,
}

#[derive(Default)]
struct Shared {
    seen: StdMutex<Vec<Seen>>,
    conns: AtomicUsize,
    /// Requests to a path with "flaky" in it; the first one kills its
    /// connection without an answer.
    flaky: AtomicUsize,
}

struct Server {
    port: u16,
    shared: Arc<Shared>,
    pki: Pki,
}

impl Server {
    fn config(&self, cert: bool, token: Option<&str>) -> RemoteConfig {
        RemoteConfig {
            server: format!("https://localhost:{}", self.port),
            ca_pem: self.pki.0.clone(),
            client_cert_pem: cert.then(|| self.pki.2 .0.clone()),
            client_key_pem: cert.then(|| self.pki.2 .1.clone()),
            token: token.map(str::to_string),
        }
    }

    fn client(&self) -> Remote {
        Remote::new(self.config(true, None)).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn reply(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": reason, "message": format!("it says {reason}")})
}

/// The watch answer: three events, a blank line, an ERROR event.
fn watch_text() -> String {
    let ev = |t: &str, rv: &str| {
        let obj = json!({"kind": "Pod", "metadata": {"name": "a", "resourceVersion": rv}});
        json!({"type": t, "object": obj}).to_string() + "\n"
    };
    let error = json!({"type": "ERROR", "object": status(410, "Expired")});
    ev("ADDED", "1") + &ev("MODIFIED", "2") + "\n" + &ev("DELETED", "3") + &error.to_string() + "\n"
}

/// Cut at odd places: mid-line, and two lines in one frame.
fn watch_body() -> Body {
    let text = Bytes::from(watch_text());
    let first = text.iter().position(|b| *b == b'\n').unwrap();
    let cuts = [
        0,
        1,
        7,
        first + 3,
        text.len() - 40,
        text.len() - 1,
        text.len(),
    ];
    let chunks: Vec<Bytes> = cuts.windows(2).map(|w| text.slice(w[0]..w[1])).collect();
    let frames = futures::stream::iter(chunks).then(|c| async move {
        // Separate writes, so they travel as separate DATA frames.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, Infallible>(Frame::data(c))
    });
    StreamBody::new(frames).boxed_unsync()
}

fn answer(method: &Method, path: &str, query: &str, body: &str) -> Response<Body> {
    let watch = query.contains("watch=true");
    let ok = |v: Value| reply(200, v.to_string());
    match (method.as_str(), path) {
        ("GET", "/api/v1/namespaces/default/pods") if query.contains("resourceVersion=old") => {
            reply(410, status(410, "Expired").to_string())
        }
        ("GET", "/api/v1/namespaces/default/pods") if watch => Response::new(watch_body()),
        ("GET", "/api/v1/namespaces/default/pods/p1") => ok(json!({"metadata": {"name": "p1"}})),
        ("GET", "/api/v1/namespaces/default/pods/broken") => reply(502, "boom"),
        ("GET", "/apis/apps/v1/deployments") => {
            let last = query.contains("continue=t%2B1");
            let (name, token) = if last { ("d2", "") } else { ("d1", "t+1") };
            ok(json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
                "metadata": {"resourceVersion": "42", "continue": token},
                "items": [{"metadata": {"name": name}}]}))
        }
        ("POST", _) => {
            let mut obj: Value = serde_json::from_str(body).unwrap();
            if obj["metadata"]["name"] == "taken" {
                return reply(409, status(409, "AlreadyExists").to_string());
            }
            obj["metadata"]["uid"] = json!("u1");
            reply(201, obj.to_string())
        }
        ("PUT", _) => reply(409, status(409, "Conflict").to_string()),
        ("PATCH", _) => ok(json!({"patched": path})),
        ("DELETE", _) => ok(json!({"kind": "Status", "status": "Success"})),
        (_, p) if p.contains("flaky") => ok(json!({})),
        _ => reply(404, status(404, "NotFound").to_string()),
    }
}

/// Records the request, then answers it or (first flaky one) kills the
/// connection; with `one_shot` every connection ends after one answer.
async fn handle(
    sh: Arc<Shared>,
    cert: Vec<u8>,
    kill: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = String::from_utf8(read(body).await.unwrap().to_vec()).unwrap();
    let header = |h| {
        parts
            .headers
            .get(h)
            .map_or("", |v| v.to_str().unwrap())
            .to_string()
    };
    let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or(""));
    sh.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.path_and_query().unwrap().to_string(),
        content_type: header(CONTENT_TYPE),
        auth: header(AUTHORIZATION),
        body: body.clone(),
        cert,
        h2: parts.version == http::Version::HTTP_2,
    });
    if path.contains("flaky") && sh.flaky.fetch_add(1, SeqCst) == 0 {
        kill.notify_one();
        futures::future::pending::<()>().await;
    }
    Ok(answer(&parts.method, path, query, &body))
}

fn server_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(crate::pki::pem_certificates(&pki.0)[0].clone())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = verifier.allow_unauthenticated().build().unwrap();
    let key = PrivatePkcs8KeyDer::from(KeyPair::from_pem(&pki.1 .1).unwrap().serialize_der());
    let config =
        rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
    let config = config.unwrap().with_client_cert_verifier(verifier);
    let mut config = config
        .with_single_cert(crate::pki::pem_certificates(&pki.1 .0), key.into())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn serve(one_shot: bool) -> Server {
    let pki = pki();
    let acceptor = TlsAcceptor::from(server_tls(&pki));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server {
        port: listener.local_addr().unwrap().port(),
        shared: Arc::default(),
        pki,
    };
    let shared = server.shared.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            shared.conns.fetch_add(1, SeqCst);
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let cert = cert.map(|c| c.to_vec()).unwrap_or_default();
            let (sh, kill) = (shared.clone(), Arc::new(Notify::new()));
            let killer = kill.clone();
            let svc = hyper::service::service_fn(move |req| {
                handle(sh.clone(), cert.clone(), killer.clone(), req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let before = shared.seen.lock().unwrap().len();
            let sh = shared.clone();
            tokio::spawn(async move {
                let served_one = async {
                    if !one_shot {
                        futures::future::pending::<()>().await;
                    }
                    while sh.seen.lock().unwrap().len() == before {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                // Dropping the connection closes it without a GOAWAY.
                tokio::select! {
                    _ = builder.serve_connection(TokioIo::new(tls), svc) => {}
                    _ = kill.notified() => {}
                    _ = served_one => {}
                }
            });
        }
    });
    server
}

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

fn deployments() -> ResourceId {
    ResourceId::new("apps", "v1", "deployments")
}

#[tokio::test]
async fn get_over_h2_with_client_certificate_or_token() {
    let s = serve(false).await;
    let pod = s
        .client()
        .get(&pods(), Some("default"), "p1")
        .await
        .unwrap();
    assert_eq!(pod["metadata"]["name"], "p1");
    let c = Remote::new(s.config(false, Some("sekret"))).unwrap();
    c.get(&pods(), Some("default"), "p1").await.unwrap();
    let seen = s.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", "/api/v1/namespaces/default/pods/p1")
    );
    assert!(seen[0].h2, "ALPN h2 expected");
    assert_eq!(
        seen[0].cert,
        crate::pki::pem_certificates(&s.pki.2 .0)[0].to_vec()
    );
    assert_eq!(
        (seen[0].auth.as_str(), seen[1].auth.as_str()),
        ("", "Bearer sekret")
    );
    assert!(seen[1].cert.is_empty());
}

#[tokio::test]
async fn failures_map_to_status() {
    let s = serve(false).await;
    let c = s.client();
    let e = c.get(&pods(), Some("default"), "nope").await.unwrap_err();
    assert!(
        e.is_not_found() && e.to_string() == "it says NotFound",
        "{e:?}"
    );
    let e = c.get(&pods(), Some("default"), "broken").await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Api { code: 502, reason, .. } if reason == "BadGateway"),
        "{e:?}"
    );
    let taken = json!({"metadata": {"name": "taken"}});
    let e = c
        .create(&deployments(), Some("default"), taken)
        .await
        .unwrap_err();
    assert!(e.is_already_exists() && !e.is_conflict(), "{e:?}");
    let e = c
        .update(&deployments(), Some("ns"), "d1", json!({}), Some("status"))
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e:?}");
    // No request at all for an empty name: a DELETE would hit the collection.
    let e = c
        .delete(&pods(), Some("default"), "", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(400));
    let seen = s.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3].method, "PUT");
    assert_eq!(
        seen[3].uri,
        "/apis/apps/v1/namespaces/ns/deployments/d1/status"
    );
}

#[tokio::test]
async fn create_posts_json_and_returns_the_201_body() {
    let s = serve(false).await;
    let d1 = json!({"metadata": {"name": "d1"}});
    let out = s
        .client()
        .create(&deployments(), Some("default"), d1.clone())
        .await
        .unwrap();
    assert_eq!(out["metadata"]["uid"], "u1");
    let seen = &s.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.content_type.as_str()),
        ("POST", "application/json")
    );
    assert_eq!(seen.uri, "/apis/apps/v1/namespaces/default/deployments");
    assert_eq!(serde_json::from_str::<Value>(&seen.body).unwrap(), d1);
}

#[tokio::test]
async fn list_pages_with_continue_and_items_get_their_kind() {
    let s = serve(false).await;
    let c = s.client();
    let mut opts = ListOptions {
        label_selector: LabelSelector::parse("app=web").unwrap(),
        field_selector: FieldSelector::parse("metadata.name=d1").unwrap(),
        limit: 1,
        ..Default::default()
    };
    let first = c.list(&deployments(), None, &opts).await.unwrap();
    assert_eq!(
        (
            first.resource_version.as_str(),
            first.continue_token.as_deref()
        ),
        ("42", Some("t+1"))
    );
    assert_eq!(
        (&first.items[0]["kind"], &first.items[0]["apiVersion"]),
        (&json!("Deployment"), &json!("apps/v1"))
    );
    opts.continue_token = first.continue_token;
    let last = c.list(&deployments(), None, &opts).await.unwrap();
    assert_eq!(
        (&last.items[0]["metadata"]["name"], last.continue_token),
        (&json!("d2"), None)
    );
    let uris: Vec<String> = s.seen().into_iter().map(|r| r.uri).collect();
    let q = "/apis/apps/v1/deployments?labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dd1&limit=1";
    assert_eq!(uris, [q.to_string(), format!("{q}&continue=t%2B1")]);
}

#[tokio::test]
async fn patches_carry_their_content_type() {
    let s = serve(false).await;
    let (c, pods, patch) = (s.client(), pods(), json!({"a": 1}));
    for t in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
        let out = c
            .patch(&pods, Some("default"), "p1", t, &patch, Some("status"))
            .await;
        assert_eq!(
            out.unwrap()["patched"],
            "/api/v1/namespaces/default/pods/p1/status"
        );
    }
    let types: Vec<String> = s.seen().into_iter().map(|r| r.content_type).collect();
    let prefixes = ["json-patch", "merge-patch", "strategic-merge-patch"];
    assert_eq!(types, prefixes.map(|p| format!("application/{p}+json")));
    assert!(s
        .seen()
        .iter()
        .all(|r| r.method == "PATCH" && r.body == r#"{"a":1}"#));
}

#[tokio::test]
async fn delete_sends_delete_options() {
    let s = serve(false).await;
    let opts = DeleteOptions {
        dry_run: true,
        propagation_policy: Some("Foreground".into()),
        precondition_uid: Some("u1".into()),
        ..Default::default()
    };
    let ns = ResourceId::new("", "v1", "namespaces");
    s.client().delete(&ns, None, "team a", &opts).await.unwrap();
    let seen = &s.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("DELETE", "/api/v1/namespaces/team%20a")
    );
    let want = json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"],
        "propagationPolicy": "Foreground", "preconditions": {"uid": "u1", "resourceVersion": null}});
    assert_eq!(serde_json::from_str::<Value>(&seen.body).unwrap(), want);
}

#[tokio::test]
async fn watch_reassembles_lines_across_frames() {
    let s = serve(false).await;
    let rv = Some("7".into());
    let opts = WatchOptions {
        resource_version: rv,
        allow_bookmarks: true,
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let mut w = s
        .client()
        .watch(&pods(), Some("default"), opts)
        .await
        .unwrap();
    for (kind, rv) in [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "3")] {
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(
            (e.kind.as_str(), &e.object["metadata"]["resourceVersion"]),
            (kind, &json!(rv))
        );
    }
    let e = w.next().await.unwrap().unwrap_err();
    assert!(e.is_gone() && e.to_string() == "it says Expired", "{e:?}");
    assert!(w.next().await.is_none() && w.next().await.is_none());
    let q = "watch=true&resourceVersion=7&allowWatchBookmarks=true&timeoutSeconds=30";
    assert_eq!(
        s.seen()[0].uri,
        format!("/api/v1/namespaces/default/pods?{q}")
    );
    // A watch the server refuses up front.
    let opts = WatchOptions {
        resource_version: Some("old".into()),
        ..Default::default()
    };
    let e = s
        .client()
        .watch(&pods(), Some("default"), opts)
        .await
        .err()
        .unwrap();
    assert!(e.is_gone(), "{e:?}");
}

#[tokio::test]
async fn one_connection_for_concurrent_requests() {
    let s = serve(false).await;
    let (c, res) = (s.client(), pods());
    let gets = (0..20).map(|_| c.get(&res, Some("default"), "p1"));
    assert!(futures::future::join_all(gets)
        .await
        .iter()
        .all(Result::is_ok));
    assert_eq!(s.shared.conns.load(SeqCst), 1);
}

#[tokio::test]
async fn reconnects_after_the_server_closed_the_connection() {
    let s = serve(true).await;
    let c = s.client();
    for pause in [100, 100, 0, 0] {
        c.get(&pods(), Some("default"), "p1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    assert_eq!(s.seen().len(), 4);
    assert!(s.shared.conns.load(SeqCst) >= 3);
}

#[tokio::test]
async fn only_idempotent_requests_are_sent_again() {
    let s = serve(false).await;
    let (c, flaky) = (s.client(), ResourceId::new("", "v1", "flaky"));
    c.get(&flaky, None, "x").await.unwrap();
    assert_eq!((s.seen().len(), s.shared.conns.load(SeqCst)), (2, 2));
    s.shared.flaky.store(0, SeqCst);
    let e = c.create(&flaky, None, json!({})).await.unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert_eq!(
        s.seen().len(),
        3,
        "a POST that may have been applied is not sent again"
    );
}

#[tokio::test]
async fn transport_and_configuration_errors() {
    let s = serve(false).await;
    let cfg = RemoteConfig {
        server: "https://127.0.0.1:1".into(),
        ..s.config(true, None)
    };
    let e = Remote::new(cfg)
        .unwrap()
        .get(&pods(), None, "x")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    // A server certificate from another CA is refused.
    let cfg = RemoteConfig {
        ca_pem: pki().0,
        ..s.config(true, None)
    };
    let e = Remote::new(cfg)
        .unwrap()
        .get(&pods(), None, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Transport(m) if m.contains("certificate")),
        "{e:?}"
    );
    for server in ["http://localhost:1", "localhost:6443", "https://"] {
        let cfg = RemoteConfig {
            server: server.into(),
            ..s.config(true, None)
        };
        assert!(Remote::new(cfg).is_err(), "{server}");
    }
    assert!(Remote::new(RemoteConfig {
        client_key_pem: None,
        ..s.config(true, None)
    })
    .is_err());
    assert!(Remote::new(RemoteConfig {
        ca_pem: "x".into(),
        ..s.config(true, None)
    })
    .is_err());
}

#[test]
fn lines_survive_every_split() {
    let text = watch_text();
    let want: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    for cut in 0..=text.len() {
        for second in cut..=text.len() {
            let (mut lines, mut got) = (Lines::default(), Vec::new());
            for part in [&text[..cut], &text[cut..second], &text[second..]] {
                lines.push(part.as_bytes()).unwrap();
                while let Some(l) = lines.next_line() {
                    got.push(String::from_utf8(l.to_vec()).unwrap());
                }
            }
            assert_eq!(got, want, "cut at {cut} and {second}");
        }
    }
}

#[test]
fn events_paths_and_queries() {
    let e = parse_event(br#"{"type":"BOOKMARK","object":{"metadata":{}}}"#).unwrap();
    assert_eq!(e.kind, "BOOKMARK");
    let e = parse_event(br#"{"type":"ERROR","object":{"code":500,"reason":"InternalError"}}"#);
    assert_eq!(e.unwrap_err().code(), Some(500));
    assert!(matches!(
        parse_event(b"{\"type\":\"ADDED\""),
        Err(ClientError::Decode(_))
    ));
    assert!(matches!(
        parse_event(br#"{"type":"ADDED"}"#),
        Err(ClientError::Decode(_))
    ));
    assert_eq!(collection_path(&pods(), None), "/api/v1/pods");
    let path = object_path(&deployments(), Some("a/b"), "x?y", Some("scale")).unwrap();
    assert_eq!(
        path,
        "/apis/apps/v1/namespaces/a%2Fb/deployments/x%3Fy/scale"
    );
    assert_eq!(list_query(&ListOptions::default()), "");
    let w = WatchOptions {
        send_initial_events: true,
        ..Default::default()
    };
    let want = "?watch=true&resourceVersionMatch=NotOlderThan&sendInitialEvents=true";
    assert_eq!(watch_query(&w), want);
    let o = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    assert_eq!(
        delete_body(&o),
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    );
}

#[test]
fn kubeconfig_current_context() {
    let (ca, _, (cert, key)) = pki();
    let b64 = |s: &str| STANDARD.encode(s);
    let text = format!(
        "apiVersion: v1
clusters:
- name: other
  cluster: {{server: 'https://10.9.9.9:6443', certificate-authority-data: eA==}}
- name: main
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: {}
contexts:
- {{name: a, context: {{cluster: other, user: nobody}}}}
- {{name: b, context: {{cluster: main, user: admin}}}}
current-context: b
users:
- name: admin
  user: {{client-certificate-data: {}, client-key-data: {}, token: abc}}
",
        b64(&ca),
        b64(&cert),
        b64(&key),
    );
    let c = RemoteConfig::from_kubeconfig(&text).unwrap();
    assert_eq!(
        (c.server.as_str(), c.ca_pem.as_str()),
        ("https://127.0.0.1:6443", ca.as_str())
    );
    assert_eq!(
        (c.client_cert_pem.as_ref(), c.client_key_pem.as_ref()),
        (Some(&cert), Some(&key))
    );
    assert_eq!(c.token.as_deref(), Some("abc"));
    assert!(Remote::new(c).is_ok());
    // Context a names a user that is not there; context c does not exist.
    let e = RemoteConfig::from_kubeconfig(&text.replace("context: b", "context: a")).err();
    assert!(e.unwrap().to_string().contains("nobody"));
    assert!(RemoteConfig::from_kubeconfig(&text.replace("context: b", "context: c")).is_err());
    assert!(RemoteConfig::from_kubeconfig(&text.replace(&b64(&ca), "!!")).is_err());
    assert!(RemoteConfig::from_kubeconfig("[1, 2").is_err());
}

/// The whole way: this client against nanokube's own API server.
#[tokio::test]
async fn against_the_nanokube_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        crate::datastore::SqliteBackend::open(&dir.path().join("state.db"), Default::default());
    let network = crate::api::ServiceNetwork::parse("10.43.0.0/16").unwrap();
    let api = crate::api::Api::open(db.unwrap(), network).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    api.bootstrap([127, 0, 0, 1].into(), port).await.unwrap();
    // The client is under test, not RBAC: its certificate names no group.
    api.set_authorization_modes(vec![crate::api::authz::Mode::AlwaysAllow]);
    let pki = pki();
    let server = crate::apiserver::Server::new(api, format!("127.0.0.1:{port}"));
    let stop = futures::future::pending::<()>();
    tokio::spawn(crate::apiserver::serve(
        server,
        server_tls(&pki),
        listener,
        stop,
    ));
    let (ca, _, (cert, key)) = pki;
    let server = format!("https://localhost:{port}");
    let c = Remote::new(RemoteConfig {
        server,
        ca_pem: ca,
        client_cert_pem: Some(cert),
        client_key_pem: Some(key),
        token: None,
    })
    .unwrap();

    let cms = ResourceId::new("", "v1", "configmaps");
    let list = c
        .list(&cms, Some("default"), &ListOptions::default())
        .await
        .unwrap();
    let opts = WatchOptions {
        resource_version: Some(list.resource_version),
        ..Default::default()
    };
    let mut w = c.watch(&cms, Some("default"), opts).await.unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}});
    let created = c.create(&cms, Some("default"), cm.clone()).await.unwrap();
    assert!(c
        .create(&cms, Some("default"), cm)
        .await
        .unwrap_err()
        .is_already_exists());
    let patch = json!({"data": {"k": "2"}});
    c.patch(&cms, Some("default"), "a", PatchType::Merge, &patch, None)
        .await
        .unwrap();
    // A replace from the stale object conflicts.
    let e = c
        .update(&cms, Some("default"), "a", created, None)
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e:?}");
    assert_eq!(
        c.get(&cms, Some("default"), "a").await.unwrap()["data"]["k"],
        "2"
    );
    let list = c
        .list(&cms, Some("default"), &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (list.items.len(), &list.items[0]["kind"]),
        (1, &json!("ConfigMap"))
    );
    c.delete(&cms, Some("default"), "a", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(c
        .get(&cms, Some("default"), "a")
        .await
        .unwrap_err()
        .is_not_found());
    for want in ["ADDED", "MODIFIED", "DELETED"] {
        let e = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .unwrap();
        assert_eq!(e.unwrap().unwrap().kind, want);
    }
}
