//! The HTTPS client: kubectl's REST paths and JSON over one HTTP/2
//! connection (opened on first use, reopened when it dropped) shared by
//! every request and watch, so it works against nanokube's API server and a
//! real kube-apiserver alike.

// Nothing in the binary connects over HTTPS yet (the agent will).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{uri::Authority, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::{net::TcpStream, sync::Mutex, time::timeout};
use tokio_rustls::TlsConnector;

use super::{Client, ClientError, Event, EventStream, ObjectList, PatchType, ResourceId};
use crate::api::{DeleteOptions, ListOptions, WatchOptions};

type Result<T, E = ClientError> = std::result::Result<T, E>;
type Sender = http2::SendRequest<Full<Bytes>>;
/// A request body and its content type.
type Payload = Option<(Bytes, &'static str)>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Pings find a dead peer under a silent watch long before TCP would.
const PING_EVERY: Duration = Duration::from_secs(30);
/// No watch event is this large: past it the stream is garbage.
const MAX_LINE: usize = 64 << 20;

#[derive(Clone)]
pub struct RemoteConfig {
    /// e.g. "https://10.0.0.1:6443"
    pub server: String,
    /// PEM of the CA that signed the server certificate
    pub ca_pem: String,
    /// Client certificate + key (PEM), or a bearer token, or both
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
    pub token: Option<String>,
}

impl RemoteConfig {
    /// From a kubeconfig's current context: the `*-data` fields (base64,
    /// as in the kubeconfigs nanokube, k3s and kubeadm write) and `token`.
    pub fn from_kubeconfig(text: &str) -> Result<Self> {
        let doc: Value = serde_saphyr::from_str(text).map_err(config_err)?;
        let current = text_field(&doc, "current-context").unwrap_or_default();
        let context = entry(&doc, "contexts", &current, "context")?;
        let cluster_name = text_field(context, "cluster").unwrap_or_default();
        let cluster = entry(&doc, "clusters", &cluster_name, "cluster")?;
        // A context without a user connects anonymously.
        let user = match text_field(context, "user") {
            Some(name) => entry(&doc, "users", &name, "user")?.clone(),
            None => Value::Null,
        };
        let ca_pem = pem_field(cluster, "certificate-authority-data")?;
        Ok(RemoteConfig {
            server: text_field(cluster, "server").ok_or_else(|| config_err("no server"))?,
            ca_pem: ca_pem.ok_or_else(|| config_err("no certificate-authority-data"))?,
            client_cert_pem: pem_field(&user, "client-certificate-data")?,
            client_key_pem: pem_field(&user, "client-key-data")?,
            token: text_field(&user, "token").filter(|t| !t.is_empty()),
        })
    }
}

fn config_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(format!("client configuration: {e}"))
}

fn text_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `field` of the element named `name` of the kubeconfig's `list`.
fn entry<'a>(doc: &'a Value, list: &str, name: &str, field: &str) -> Result<&'a Value> {
    let all = doc.get(list).and_then(Value::as_array);
    let found = all.and_then(|l| l.iter().find(|e| e["name"] == name));
    let missing = || config_err(format!("kubeconfig has no {list} entry {name:?}"));
    found.and_then(|e| e.get(field)).ok_or_else(missing)
}

/// A base64 PEM field.
fn pem_field(v: &Value, key: &str) -> Result<Option<String>> {
    let Some(data) = text_field(v, key) else {
        return Ok(None);
    };
    let bytes = STANDARD.decode(data.trim()).ok();
    let pem = bytes.and_then(|b| String::from_utf8(b).ok());
    pem.map(Some)
        .ok_or_else(|| config_err(format!("{key} is no base64 PEM")))
}

/// PKCS#8 (ours), PKCS#1 and SEC1 (kubeadm's) keys.
fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    crate::pki::pem_private_key(pem)
        .ok_or_else(|| config_err("no private key in the client key PEM"))
}

fn tls_config(c: &RemoteConfig) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pki::pem_certificates(&c.ca_pem) {
        roots.add(cert).map_err(config_err)?;
    }
    if roots.is_empty() {
        return Err(config_err("no CA certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_root_certificates(roots);
    let mut config = match (&c.client_cert_pem, &c.client_key_pem) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(crate::pki::pem_certificates(cert), private_key(key)?)
            .map_err(config_err)?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(config_err("a client certificate goes with its key")),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[derive(Clone)]
pub struct Remote(Arc<Inner>);

struct Inner {
    authority: Authority,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    /// Path of the server URL (a proxy may serve the API under one).
    prefix: String,
    tls: TlsConnector,
    auth: Option<HeaderValue>,
    /// The shared connection, numbered so that a failed request drops the
    /// connection it used and never a newer one.
    conn: Mutex<(u64, Option<Sender>)>,
}

impl Remote {
    pub fn new(config: RemoteConfig) -> Result<Self> {
        let uri: Uri = config.server.parse().map_err(config_err)?;
        let authority = match (uri.scheme_str(), uri.authority()) {
            (Some("https"), Some(a)) => a.clone(),
            _ => return Err(config_err(format!("{:?} is no https URL", config.server))),
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string()).map_err(config_err)?;
        let token = config.token.as_deref().filter(|t| !t.is_empty());
        let auth = token.map(|t| HeaderValue::try_from(format!("Bearer {t}")));
        let mut auth = auth.transpose().map_err(config_err)?;
        auth.iter_mut().for_each(|a| a.set_sensitive(true));
        Ok(Remote(Arc::new(Inner {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(443),
            authority,
            server_name,
            prefix: uri.path().trim_end_matches('/').to_string(),
            tls: TlsConnector::from(Arc::new(tls_config(&config)?)),
            auth,
            conn: Mutex::new((0, None)),
        })))
    }

    /// TCP, TLS, HTTP/2; the connection then runs on a task of its own.
    async fn dial(&self) -> Result<Sender> {
        let i = &self.0;
        let tcp = TcpStream::connect((i.host.as_str(), i.port))
            .await
            .map_err(transport)?;
        let _ = tcp.set_nodelay(true); // small requests should not wait on Nagle
        let tls = i
            .tls
            .connect(i.server_name.clone(), tcp)
            .await
            .map_err(transport)?;
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(PING_EVERY);
        let (sender, conn) = builder
            .handshake(TokioIo::new(tls))
            .await
            .map_err(transport)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("api server connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// The shared connection and its number, opened if there is none or it
    /// closed. The lock is held while dialing: concurrent first requests
    /// wait for the one connection.
    async fn sender(&self) -> Result<(u64, Sender)> {
        let mut conn = self.0.conn.lock().await;
        if let Some(s) = conn.1.as_ref().filter(|s| !s.is_closed()) {
            return Ok((conn.0, s.clone()));
        }
        let dialed = timeout(CONNECT_TIMEOUT, self.dial()).await;
        let sender = dialed.map_err(|_| late("connecting", CONNECT_TIMEOUT))??;
        *conn = (conn.0 + 1, Some(sender.clone()));
        Ok((conn.0, sender))
    }

    /// Sends a request; again on a new connection when it failed before
    /// leaving, or at any point for the idempotent verbs.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: &Payload,
    ) -> Result<Response<Incoming>> {
        let i = &self.0;
        let idempotent = matches!(*method, Method::GET | Method::PUT | Method::DELETE);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (id, mut sender) = self.sender().await?;
            // HTTP/2 takes :scheme and :authority from an absolute URI.
            let uri = format!("https://{}{}{path}", i.authority, i.prefix);
            let mut req = Request::builder().method(method.clone()).uri(uri);
            req = req
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, "nanokube");
            if let Some(auth) = &i.auth {
                req = req.header(AUTHORIZATION, auth.clone());
            }
            if let Some((_, content_type)) = body {
                req = req.header(CONTENT_TYPE, *content_type);
            }
            let data = body.as_ref().map(|b| b.0.clone()).unwrap_or_default();
            let req = req.body(Full::new(data)).map_err(transport)?;
            let mut err = match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            let mut conn = i.conn.lock().await;
            if conn.0 == id {
                conn.1 = None;
            }
            let unsent = err.take_message().is_some();
            if attempt >= 2 || !(unsent || idempotent) {
                return Err(transport(err.into_error()));
            }
        }
    }

    /// The body of a 2xx answer; else the error the answer tells.
    async fn open(&self, method: &Method, path: &str, body: &Payload) -> Result<Incoming> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.into_body());
        }
        Err(failure(status, &read(resp.into_body()).await?))
    }

    /// A JSON request answered with a JSON object.
    async fn object(
        &self,
        method: Method,
        path: String,
        body: Option<(&Value, &'static str)>,
    ) -> Result<Value> {
        let body = match body {
            Some((v, content_type)) => json_body(v, content_type)?,
            None => None,
        };
        parse(&self.call(method, path, body).await?)
    }

    /// A JSON answer from a path outside the resource API (nanokube's own
    /// endpoints, such as `secrets-encrypt`).
    pub async fn request_json(&self, method: Method, path: &str) -> Result<Value> {
        self.object(method, path.to_string(), None).await
    }

    /// As [`Remote::request_json`], sending `body` as JSON.
    pub async fn request_json_body(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Value> {
        let body = Some((body, "application/json"));
        self.object(method, path.to_string(), body).await
    }

    /// A JSON object POSTed to a path outside the resource API (such as
    /// `node-credentials`), answered with a JSON object.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let body = Some((body, "application/json"));
        self.object(Method::POST, path.to_string(), body).await
    }

    /// A whole exchange, within the request timeout.
    async fn call(&self, method: Method, path: String, body: Payload) -> Result<Bytes> {
        let run = async { read(self.open(&method, &path, &body).await?).await };
        let what = format!("{method} {path}");
        timeout(REQUEST_TIMEOUT, run)
            .await
            .map_err(|_| late(&what, REQUEST_TIMEOUT))?
    }
}

async fn read(body: Incoming) -> Result<Bytes> {
    Ok(body.collect().await.map_err(transport)?.to_bytes())
}

fn late(what: &str, limit: Duration) -> ClientError {
    ClientError::Transport(format!("{what}: no answer within {}s", limit.as_secs()))
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

fn parse(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

fn json_body(v: &Value, content_type: &'static str) -> Result<Payload> {
    let bytes = serde_json::to_vec(v).map_err(|e| ClientError::Decode(e.to_string()))?;
    Ok(Some((bytes.into(), content_type)))
}

/// A non-2xx answer: its `Status`, or what client-go makes of a bare code.
fn failure(status: StatusCode, body: &[u8]) -> ClientError {
    let found = parse(body).ok().filter(|v| v["kind"] == "Status");
    let text = String::from_utf8_lossy(&body[..body.len().min(256)]);
    let fallback = || json!({"message": format!("the server answered {status}: {text}")});
    let mut err = ClientError::from_status(status.as_u16(), &found.unwrap_or_else(fallback));
    if let ClientError::Api { reason, .. } = &mut err {
        if reason.is_empty() {
            // "Not Found" -> "NotFound", "Conflict", ... as upstream names them.
            *reason = status
                .canonical_reason()
                .unwrap_or("Unknown")
                .replace(' ', "");
        }
    }
    err
}

/// `/api/v1[/namespaces/<ns>]/<plural>` or `/apis/<group>/<version>/...`.
fn collection_path(res: &ResourceId, ns: Option<&str>) -> String {
    let (v, plural) = (segment(&res.version), segment(&res.plural));
    let base = match res.group.as_str() {
        "" => format!("/api/{v}"),
        group => format!("/apis/{}/{v}", segment(group)),
    };
    match ns {
        Some(ns) => format!("{base}/namespaces/{}/{plural}", segment(ns)),
        None => format!("{base}/{plural}"),
    }
}

type Sub<'a> = Option<&'a str>;

fn object_path(res: &ResourceId, ns: Option<&str>, name: &str, sub: Sub) -> Result<String> {
    // An empty name would address the collection: a delete would empty it.
    if name.is_empty() {
        let status = json!({"reason": "BadRequest", "message": "resource name may not be empty"});
        return Err(ClientError::from_status(400, &status));
    }
    let path = format!("{}/{}", collection_path(res, ns), segment(name));
    Ok(sub.map_or_else(|| path.clone(), |sub| format!("{path}/{sub}")))
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn segment(s: &str) -> String {
    let keep = |b: &u8| b.is_ascii_alphanumeric() || b"-._~".contains(b);
    let mut out = String::new();
    for b in s.as_bytes() {
        match keep(b) {
            true => out.push(char::from(*b)),
            false => out += &format!("%{b:02X}"),
        }
    }
    out
}

/// `?k=v&...` of the pairs that have a value.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()));
    let q = q.finish();
    match q.is_empty() {
        true => q,
        false => format!("?{q}"),
    }
}

fn list_query(o: &ListOptions) -> String {
    let (labels, fields) = (o.label_selector.to_string(), o.field_selector.to_string());
    let limit = Some(o.limit).filter(|l| *l > 0).map(|l| l.to_string());
    query(&[
        ("labelSelector", &labels),
        ("fieldSelector", &fields),
        (
            "resourceVersion",
            o.resource_version.as_deref().unwrap_or(""),
        ),
        ("resourceVersionMatch", &o.resource_version_match),
        ("limit", limit.as_deref().unwrap_or("")),
        ("continue", o.continue_token.as_deref().unwrap_or("")),
    ])
}

fn watch_query(o: &WatchOptions) -> String {
    let (labels, fields) = (o.label_selector.to_string(), o.field_selector.to_string());
    let secs = o.timeout.map(|t| t.as_secs().max(1).to_string());
    let flag = |on: bool| if on { "true" } else { "" };
    // kube-apiserver takes sendInitialEvents with this match only.
    let initial = o.send_initial_events;
    query(&[
        ("watch", "true"),
        ("labelSelector", &labels),
        ("fieldSelector", &fields),
        (
            "resourceVersion",
            o.resource_version.as_deref().unwrap_or(""),
        ),
        (
            "resourceVersionMatch",
            if initial { "NotOlderThan" } else { "" },
        ),
        ("allowWatchBookmarks", flag(o.allow_bookmarks)),
        ("sendInitialEvents", flag(initial)),
        ("timeoutSeconds", secs.as_deref().unwrap_or("")),
    ])
}

fn delete_body(o: &DeleteOptions) -> Value {
    let (uid, rv) = (&o.precondition_uid, &o.precondition_resource_version);
    let pre = (uid.is_some() || rv.is_some()).then(|| json!({"uid": uid, "resourceVersion": rv}));
    let mut v = json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "dryRun": o.dry_run.then_some(["All"]),
        "gracePeriodSeconds": o.grace_period_seconds,
        "propagationPolicy": o.propagation_policy,
        "preconditions": pre,
    });
    // Unset options are left out, as upstream clients do.
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// A list answer. kube-apiserver leaves kind and apiVersion out of the
/// items; the local client's items carry them, so they are put back.
fn object_list(mut list: Value) -> Result<ObjectList> {
    let text = |p: &str| list.pointer(p).and_then(Value::as_str).map(str::to_string);
    let kind = text("/kind").unwrap_or_default();
    let kind = kind.strip_suffix("List").unwrap_or(&kind).to_string();
    let api_version = text("/apiVersion").unwrap_or_default();
    let resource_version = text("/metadata/resourceVersion").unwrap_or_default();
    let continue_token = text("/metadata/continue").filter(|t| !t.is_empty());
    let items = match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(ClientError::Decode("list items are no array".into())),
    };
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        if let Some(o) = item.as_object_mut() {
            o.entry("kind").or_insert_with(|| kind.as_str().into());
            o.entry("apiVersion")
                .or_insert_with(|| api_version.as_str().into());
        }
        out.push(Arc::new(item));
    }
    let items = out;
    Ok(ObjectList {
        items,
        resource_version,
        continue_token,
    })
}

const JSON: &str = "application/json";

impl Client for Remote {
    type Watch = RemoteWatch;

    async fn get(&self, res: &ResourceId, ns: Option<&str>, name: &str) -> Result<Arc<Value>> {
        let path = object_path(res, ns, name, None)?;
        Ok(Arc::new(self.object(Method::GET, path, None).await?))
    }

    async fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        o: &ListOptions,
    ) -> Result<ObjectList> {
        let path = collection_path(res, ns) + &list_query(o);
        object_list(self.object(Method::GET, path, None).await?)
    }

    async fn create(&self, res: &ResourceId, ns: Option<&str>, obj: Value) -> Result<Value> {
        let path = collection_path(res, ns);
        self.object(Method::POST, path, Some((&obj, JSON))).await
    }

    async fn create_subresource(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: Value,
    ) -> Result<Value> {
        let path = object_path(res, ns, name, Some(sub))?;
        self.object(Method::POST, path, Some((&obj, JSON))).await
    }

    async fn update(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        sub: Sub<'_>,
    ) -> Result<Value> {
        let path = object_path(res, ns, name, sub)?;
        self.object(Method::PUT, path, Some((&obj, JSON))).await
    }

    async fn patch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        sub: Sub<'_>,
    ) -> Result<Value> {
        let path = object_path(res, ns, name, sub)?;
        let body = Some((patch, patch_type.content_type()));
        self.object(Method::PATCH, path, body).await
    }

    async fn delete(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        o: &DeleteOptions,
    ) -> Result<()> {
        let path = object_path(res, ns, name, None)?;
        let body = json_body(&delete_body(o), JSON)?;
        // The answer (the object, or a Status) tells nothing more.
        self.call(Method::DELETE, path, body).await.map(drop)
    }

    async fn watch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        o: WatchOptions,
    ) -> Result<RemoteWatch> {
        let path = collection_path(res, ns) + &watch_query(&o);
        // Only the head is timed: the body lasts as long as the watch.
        let head = timeout(REQUEST_TIMEOUT, self.open(&Method::GET, &path, &None));
        let late = |_| late(&format!("watch {path}"), REQUEST_TIMEOUT);
        let body = head.await.map_err(late)??;
        Ok(RemoteWatch {
            body,
            lines: Lines::default(),
            ended: false,
        })
    }
}

/// A watch answer, read one JSON event per line.
pub struct RemoteWatch {
    body: Incoming,
    lines: Lines,
    ended: bool,
}

impl EventStream for RemoteWatch {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(line) = self.lines.next_line() {
                return Some(parse_event(&line));
            }
            if self.ended {
                return None;
            }
            let pushed = match self.body.frame().await {
                // An unfinished last line is dropped: the answer was cut off.
                None => {
                    self.ended = true;
                    Ok(())
                }
                Some(Err(e)) => Err(transport(e)),
                Some(Ok(frame)) => frame.into_data().map_or(Ok(()), |d| self.lines.push(&d)),
            };
            if let Err(e) = pushed {
                self.ended = true;
                return Some(Err(e));
            }
        }
    }
}

/// Splits a byte stream into lines, whatever the frame boundaries.
#[derive(Default)]
struct Lines {
    buf: BytesMut,
    /// Bytes at the start of `buf` known to hold no newline.
    scanned: usize,
}

impl Lines {
    fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > MAX_LINE {
            return Err(ClientError::Decode(format!(
                "watch event over {MAX_LINE} bytes"
            )));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next non-blank line, without its newline.
    fn next_line(&mut self) -> Option<Bytes> {
        while let Some(i) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
            let line = self.buf.split_to(self.scanned + i + 1).freeze();
            self.scanned = 0;
            if !line.trim_ascii().is_empty() {
                return Some(line.slice(..line.len() - 1));
            }
        }
        self.scanned = self.buf.len();
        None
    }
}

/// `{"type": ..., "object": ...}`; an ERROR event carries a Status.
fn parse_event(line: &[u8]) -> Result<Event> {
    let mut v = parse(line)?;
    let kind = v.get("type").and_then(Value::as_str).map(str::to_string);
    let (Some(kind), Some(object)) = (kind, v.get_mut("object").map(Value::take)) else {
        return Err(ClientError::Decode(
            "watch event without type or object".into(),
        ));
    };
    if kind == "ERROR" {
        let code = object
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok());
        return Err(ClientError::from_status(code.unwrap_or(500), &object));
    }
    Ok(Event {
        kind,
        object: Arc::new(object),
    })
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
