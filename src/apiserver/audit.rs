//! `--audit-log-path` / `--audit-level`: upstream audit.k8s.io/v1 `Event`s,
//! one JSON line each, for every request (RequestReceived, then
//! ResponseComplete; long-running requests — watches, logs, exec — get
//! ResponseStarted when the answer starts and ResponseComplete when it
//! ends). Requests never wait on the log: events go through a bounded
//! channel to one writer task, and what does not fit is dropped and
//! counted (`apiserver_audit_error_total`).

use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::codec::{self, Body};
use crate::api::authz::{Attributes, UserInfo};

/// Events queued for the writer before new ones are dropped.
const QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("unknown audit level {0:?} (expected None, Metadata, Request or RequestResponse)")]
    Level(String),
    #[error("opening the audit log {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

/// How much of each request is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn parse(text: &str) -> Result<Level, AuditError> {
        match text {
            "None" => Ok(Level::None),
            "Metadata" => Ok(Level::Metadata),
            "Request" => Ok(Level::Request),
            "RequestResponse" => Ok(Level::RequestResponse),
            other => Err(AuditError::Level(other.into())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

struct Sink {
    level: Level,
    tx: mpsc::Sender<Vec<u8>>,
    events: AtomicU64,
    dropped: AtomicU64,
}

impl Sink {
    fn send(&self, event: &Value) {
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        self.events.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The audit log of a server; the default records nothing.
#[derive(Clone, Default)]
pub struct Audit {
    sink: Option<Arc<Sink>>,
}

impl Audit {
    /// Opens (appends to) `path`, `-` being stdout, and starts the writer
    /// task; must run inside the runtime. Level None opens nothing.
    pub async fn open(path: &Path, level: &str) -> Result<Audit, AuditError> {
        let level = Level::parse(level)?;
        if level == Level::None {
            return Ok(Audit::default());
        }
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = if path == Path::new("-") {
            Box::new(tokio::io::stdout())
        } else {
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|source| AuditError::Open {
                    path: path.display().to_string(),
                    source,
                })?;
            Box::new(file)
        };
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            let mut failed = false;
            while let Some(line) = rx.recv().await {
                let mut batch = line;
                // Whatever else is queued goes out in the same write.
                while let Ok(more) = rx.try_recv() {
                    batch.extend_from_slice(&more);
                }
                let written = match out.write_all(&batch).await {
                    Ok(()) => out.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    if !failed {
                        tracing::warn!(error = %e, "writing the audit log failed");
                    }
                    failed = true;
                }
            }
        });
        tracing::info!(path = %path.display(), level = level.name(), "audit log open");
        Ok(Audit {
            sink: Some(Arc::new(Sink {
                level,
                tx,
                events: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            })),
        })
    }

    /// A record for a request that just arrived.
    pub fn begin(&self, uri: &http::Uri, headers: &HeaderMap, peer: IpAddr) -> Record {
        let sink = self.sink.clone();
        let mut rec = Record {
            id: uuid::Uuid::new_v4().to_string(),
            sink,
            ..Default::default()
        };
        if rec.sink.is_none() {
            return rec;
        }
        rec.received = Some(jiff::Timestamp::now());
        // HTTP/2 requests carry the whole URL; upstream records the path.
        rec.uri = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |p| p.to_string());
        rec.user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // X-Forwarded-For entries first, then the peer, as upstream.
        for v in headers.get_all("x-forwarded-for") {
            if let Ok(v) = v.to_str() {
                rec.source_ips.extend(
                    v.split(',')
                        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                        .map(|ip| ip.to_string()),
                );
            }
        }
        let peer = peer.to_string();
        if !rec.source_ips.contains(&peer) {
            rec.source_ips.push(peer);
        }
        rec
    }

    /// Upstream's audit counters, for /metrics.
    pub fn render_metrics(&self) -> String {
        let Some(s) = &self.sink else {
            return String::new();
        };
        format!(
            "# HELP apiserver_audit_event_total Counter of audit events generated and sent to the audit backend.\n# TYPE apiserver_audit_event_total counter\napiserver_audit_event_total {}\n# HELP apiserver_audit_error_total Counter of audit events that failed to be audited properly.\n# TYPE apiserver_audit_error_total counter\napiserver_audit_error_total{{plugin=\"log\"}} {}\n",
            s.events.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed)
        )
    }
}

/// What is known of one request, filled in as it is served.
#[derive(Default)]
pub struct Record {
    sink: Option<Arc<Sink>>,
    /// The `Audit-Id` of the request (also sent without an audit log).
    pub id: String,
    received: Option<jiff::Timestamp>,
    uri: String,
    user_agent: String,
    source_ips: Vec<String>,
    pub verb: String,
    pub user: Option<Arc<UserInfo>>,
    pub impersonated: Option<Arc<UserInfo>>,
    pub attrs: Option<Attributes>,
    /// ("allow" or "forbid", the authorizer's reason).
    pub decision: Option<(&'static str, String)>,
    /// Annotations admission added (PodSecurity's audit level).
    pub annotations: Vec<(String, String)>,
    request_object: Option<Value>,
    /// The error `Status` answered, if any.
    pub status: Option<Value>,
    received_sent: bool,
}

/// Upstream's MicroTime: always six fractional digits.
fn micro(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn user_json(u: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), u.name.clone().into());
    if !u.uid.is_empty() {
        m.insert("uid".into(), u.uid.clone().into());
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        m.insert("extra".into(), json!(u.extra));
    }
    Value::Object(m)
}

fn object_ref(a: &Attributes) -> Value {
    let mut m = Map::new();
    for (k, v) in [
        ("resource", &a.resource),
        ("namespace", &a.namespace),
        ("name", &a.name),
        ("apiGroup", &a.api_group),
        ("apiVersion", &a.api_version),
        ("subresource", &a.subresource),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), v.clone().into());
        }
    }
    Value::Object(m)
}

impl Record {
    fn level(&self) -> Level {
        self.sink.as_ref().map_or(Level::None, |s| s.level)
    }

    /// Keeps what the request asks for (verb, objectRef) when auditing.
    pub fn set_attributes(&mut self, attrs: &Attributes) {
        if self.sink.is_some() {
            self.attrs = Some(attrs.clone());
        }
    }

    /// Keeps the request body when the level records it; a create's
    /// objectRef gets the new object's name from it, as upstream. Only
    /// decoded when auditing.
    pub fn request_body(&mut self, content_type: Option<&str>, body: &Bytes) {
        if self.sink.is_none() || body.is_empty() {
            return;
        }
        let wants_name = self
            .attrs
            .as_ref()
            .is_some_and(|a| a.name.is_empty() && a.verb == "create" && a.subresource.is_empty());
        if self.level() < Level::Request && !wants_name {
            return;
        }
        let Ok(obj) = codec::decode(content_type, body) else {
            return;
        };
        if let Some(attrs) = self.attrs.as_mut().filter(|_| wants_name) {
            if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
                attrs.name = name.to_string();
            }
        }
        if self.level() >= Level::Request {
            self.request_object = Some(obj);
        }
    }

    fn event(&self, stage: &str, code: Option<u16>) -> Value {
        let level = self.level();
        let mut ev = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level.name(),
            "auditID": self.id,
            "stage": stage,
            "requestURI": self.uri,
            "verb": self.verb,
            "user": self.user.as_deref().map(user_json).unwrap_or_else(|| json!({})),
            "sourceIPs": self.source_ips,
            "userAgent": self.user_agent,
            "requestReceivedTimestamp": self.received.map(micro),
            "stageTimestamp": micro(jiff::Timestamp::now()),
        });
        if let Some(u) = &self.impersonated {
            ev["impersonatedUser"] = user_json(u);
        }
        if let Some(a) = self.attrs.as_ref().filter(|a| a.resource_request) {
            ev["objectRef"] = object_ref(a);
        }
        if let Some(code) = code {
            let mut status = json!({"metadata": {}, "code": code});
            if let Some(s) = &self.status {
                for k in ["status", "message", "reason", "details"] {
                    if let Some(v) = s.get(k) {
                        status[k] = v.clone();
                    }
                }
            }
            ev["responseStatus"] = status;
        }
        if let Some(obj) = &self.request_object {
            ev["requestObject"] = obj.clone();
        }
        let mut annotations = Map::new();
        if let Some((decision, reason)) = &self.decision {
            annotations.insert("authorization.k8s.io/decision".into(), json!(decision));
            annotations.insert("authorization.k8s.io/reason".into(), json!(reason));
        }
        for (k, v) in &self.annotations {
            annotations.insert(k.clone(), json!(v));
        }
        if !annotations.is_empty() {
            ev["annotations"] = Value::Object(annotations);
        }
        ev
    }

    /// The RequestReceived event (once).
    pub fn received(&mut self) {
        if let Some(sink) = self.sink.as_ref().filter(|_| !self.received_sent) {
            sink.send(&self.event("RequestReceived", None));
        }
        self.received_sent = true;
    }

    /// Sends the closing event(s) and tags the response with `Audit-Id`.
    /// A long-running answer gets ResponseStarted now and ResponseComplete
    /// when its body ends or is dropped.
    pub async fn finish(mut self, resp: Response<Body>, long_running: bool) -> Response<Body> {
        let mut resp = resp;
        if let Ok(v) = http::HeaderValue::from_str(&self.id) {
            resp.headers_mut().insert("audit-id", v);
        }
        let Some(sink) = self.sink.clone() else {
            return resp;
        };
        // Refused or public requests were not announced yet.
        self.received();
        let code = resp.status().as_u16();
        if long_running {
            sink.send(&self.event("ResponseStarted", Some(code)));
            self.request_object = None;
            let (parts, body) = resp.into_parts();
            let body = Completion {
                inner: body,
                pending: Some((self, code)),
            };
            return Response::from_parts(parts, BodyExt::boxed_unsync(body));
        }
        let mut ev = self.event("ResponseComplete", Some(code));
        if self.level() < Level::RequestResponse {
            sink.send(&ev);
            return resp;
        }
        // Short answers are whole in memory; read, record, rebuild.
        let (parts, body) = resp.into_parts();
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(never) => match never {},
        };
        if let Ok(obj) = serde_json::from_slice::<Value>(&bytes) {
            ev["responseObject"] = obj;
        }
        sink.send(&ev);
        Response::from_parts(parts, codec::full(bytes))
    }
}

/// A long-running body that sends ResponseComplete when it ends.
struct Completion {
    inner: Body,
    pending: Option<(Record, u16)>,
}

impl Completion {
    fn complete(&mut self) {
        if let Some((rec, code)) = self.pending.take() {
            if let Some(sink) = &rec.sink {
                sink.send(&rec.event("ResponseComplete", Some(code)));
            }
        }
    }
}

impl HttpBody for Completion {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.complete();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.complete();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_timestamps() {
        assert_eq!(Level::parse("Metadata").unwrap(), Level::Metadata);
        assert!(Level::parse("metadata").is_err());
        assert!(Level::Request > Level::Metadata);
        let ts: jiff::Timestamp = "2026-01-02T03:04:05.5Z".parse().unwrap();
        assert_eq!(micro(ts), "2026-01-02T03:04:05.500000Z");
    }

    #[tokio::test]
    async fn events_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, "Request").await.unwrap();
        let uri: http::Uri = "/api/v1/namespaces/a/configmaps".parse().unwrap();
        let mut rec = audit.begin(&uri, &HeaderMap::new(), [127, 0, 0, 1].into());
        rec.verb = "create".into();
        rec.request_body(None, &Bytes::from_static(b"{\"kind\":\"ConfigMap\"}"));
        rec.received();
        let resp = rec.finish(codec::raw(201, "{}".into(), "application/json"), false);
        let resp = resp.await;
        assert!(resp.headers().contains_key("audit-id"));
        let mut lines = Vec::new();
        for _ in 0..100 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            lines = text.lines().map(str::to_string).collect();
            if lines.len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(lines.len(), 2, "{lines:?}");
        let done: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(done["stage"], "ResponseComplete");
        assert_eq!(done["responseStatus"]["code"], 201);
        assert_eq!(done["requestObject"]["kind"], "ConfigMap");
        assert_eq!(done["sourceIPs"], json!(["127.0.0.1"]));
        assert!(render_has_counts(&audit));
    }

    /// The events in `path` once there are `n` of them.
    async fn lines(path: &Path, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let events: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} events in {}", path.display());
    }

    #[tokio::test]
    async fn responses_and_long_running_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, "RequestResponse").await.unwrap();
        let uri: http::Uri = "/api/v1/namespaces/a/configmaps/x".parse().unwrap();
        let rec = audit.begin(&uri, &HeaderMap::new(), [10, 0, 0, 1].into());
        let resp = rec
            .finish(
                codec::raw(200, "{\"kind\":\"ConfigMap\"}".into(), "application/json"),
                false,
            )
            .await;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{\"kind\":\"ConfigMap\"}");
        let events = lines(&path, 2).await;
        assert_eq!(events[1]["responseObject"]["kind"], "ConfigMap");

        let rec = audit.begin(&uri, &HeaderMap::new(), [10, 0, 0, 1].into());
        let resp = rec
            .finish(codec::raw(200, "stream".into(), "text/plain"), true)
            .await;
        let events = lines(&path, 4).await;
        assert_eq!(events[3]["stage"], "ResponseStarted");
        drop(resp);
        let events = lines(&path, 5).await;
        assert_eq!(events[4]["stage"], "ResponseComplete");
        assert_eq!(events[4]["auditID"], events[3]["auditID"]);
    }

    fn render_has_counts(a: &Audit) -> bool {
        a.render_metrics().contains("apiserver_audit_event_total 2")
    }
}
