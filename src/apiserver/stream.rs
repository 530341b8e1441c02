//! `pods/{name}/log`, `exec`, `attach` and `portforward`: the API server
//! finds the pod's container and node and proxies to that node's kubelet
//! over HTTPS (verified against the server CA, authenticated with the
//! kubelet client certificate), as upstream's pod subresources do. Logs
//! stream through chunk by chunk; the others are HTTP/1.1 upgrades copied
//! both ways (see `upgrade.rs`), except kubectl 1.30+'s WebSocket
//! protocols, which the API server speaks itself (see `translate/`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::codec::{self, Body, Output};
use super::route::ResourcePath;
use super::translate;
use super::upgrade;
use super::Server;
use crate::api::validation::FieldCause;
use crate::api::ApiError;

/// The kubelet's port when a node does not report one.
const DEFAULT_KUBELET_PORT: u16 = 10250;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket subprotocols the runtime's streaming server (containerd 1.6)
/// speaks, passed through untouched. kubectl 1.30+ offers
/// `v5.channel.k8s.io` (exec, attach) and `SPDY/3.1+portforward.k8s.io`
/// (port-forward), which the runtime does not speak: those are
/// translated here (`translate/`). Anything else is refused with an HTTP
/// error, on which kubectl falls back to SPDY/3.1.
const EXEC_WEBSOCKET: &[&str] = &[
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
const PORTFORWARD_WEBSOCKET: &[&str] = &[
    "portforward.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// Whether the request is for a streaming subresource of a pod.
pub fn handles(p: &ResourcePath) -> bool {
    p.group.is_empty()
        && p.version == "v1"
        && p.plural == "pods"
        && p.namespace.is_some()
        && p.name.is_some()
        && !p.watch_prefix
        && matches!(
            p.subresource.as_deref(),
            Some("log" | "exec" | "attach" | "portforward")
        )
}

/// Every value of every query parameter, in order (`command` repeats).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Upstream's boolean query parameters.
fn flag(q: &[(String, String)], key: &str) -> bool {
    first(q, key)
        .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "f" | "false"))
}

fn invalid(name: &str, field: &str, value: &str, detail: &str) -> ApiError {
    ApiError::Invalid {
        group: String::new(),
        kind: "PodLogOptions".into(),
        name: name.into(),
        causes: vec![FieldCause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
            field: field.into(),
        }],
    }
}

fn int_param(q: &[(String, String)], key: &str) -> Result<Option<i64>, ApiError> {
    match first(q, key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("invalid value for {key}: {v:?} is not an integer"))
        }),
    }
}

/// The kubelet's query for a log request, validated as upstream does.
fn log_query(pod: &str, q: &[(String, String)]) -> Result<String, ApiError> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for key in ["follow", "previous", "timestamps"] {
        if flag(q, key) {
            out.append_pair(key, "true");
        }
    }
    let since_seconds = int_param(q, "sinceSeconds")?;
    let since_time = first(q, "sinceTime").filter(|v| !v.is_empty());
    if since_seconds.is_some() && since_time.is_some() {
        return Err(invalid(
            pod,
            "sinceSeconds",
            "\"\"",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if let Some(s) = since_seconds {
        if s < 1 {
            return Err(invalid(
                pod,
                "sinceSeconds",
                &s.to_string(),
                "must be greater than 0",
            ));
        }
        out.append_pair("sinceSeconds", &s.to_string());
    }
    if let Some(t) = since_time {
        let ts: jiff::Timestamp = t
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid value for sinceTime: {t:?}")))?;
        out.append_pair("sinceTime", &ts.to_string());
    }
    if let Some(n) = int_param(q, "tailLines")? {
        if n < 0 {
            return Err(invalid(
                pod,
                "tailLines",
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        out.append_pair("tailLines", &n.to_string());
    }
    if let Some(n) = int_param(q, "limitBytes")? {
        if n < 1 {
            return Err(invalid(
                pod,
                "limitBytes",
                &n.to_string(),
                "must be greater than 0",
            ));
        }
        out.append_pair("limitBytes", &n.to_string());
    }
    if let Some(s) = first(q, "stream").filter(|v| !v.is_empty()) {
        out.append_pair("stream", s);
    }
    Ok(out.finish())
}

/// The kubelet's query for exec and attach (upstream's parameter names).
fn exec_query(q: &[(String, String)], with_command: bool) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (ours, theirs) in [
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ] {
        if flag(q, ours) {
            out.append_pair(theirs, "1");
        }
    }
    if with_command {
        for (_, c) in q.iter().filter(|(k, _)| k == "command") {
            out.append_pair("command", c);
        }
    }
    out.finish()
}

/// The kubelet's query for port-forward: one `port` per requested port.
fn portforward_query(q: &[(String, String)]) -> Result<String, ApiError> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (_, v) in q.iter().filter(|(k, _)| k == "ports") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => {
                    out.append_pair("port", &n.to_string());
                }
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid port {p:?}: must be between 1 and 65535, inclusive"
                    )))
                }
            }
        }
    }
    Ok(out.finish())
}

fn names(containers: Option<&Value>) -> Vec<String> {
    containers
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is for: the one asked for (which must exist),
/// else the only one, else the default-container annotation.
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let spec = pod.get("spec");
    let containers = names(spec.and_then(|s| s.get("containers")));
    let init = names(spec.and_then(|s| s.get("initContainers")));
    let ephemeral = names(spec.and_then(|s| s.get("ephemeralContainers")));
    if let Some(c) = asked.filter(|c| !c.is_empty()) {
        if containers
            .iter()
            .chain(&init)
            .chain(&ephemeral)
            .any(|n| n == c)
        {
            return Ok(c.to_string());
        }
        return Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {name}"
        )));
    }
    if let [only] = containers.as_slice() {
        return Ok(only.clone());
    }
    if containers.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a container"
        )));
    }
    let annotated = pod
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        .filter(|c| containers.iter().any(|n| n == c));
    if let Some(c) = annotated {
        return Ok(c.to_string());
    }
    let mut message = format!(
        "a container name must be specified for pod {name}, choose one of: [{}]",
        containers.join(" ")
    );
    if !init.is_empty() {
        message.push_str(&format!(
            " or one of the init containers: [{}]",
            init.join(" ")
        ));
    }
    Err(ApiError::BadRequest(message))
}

/// Where a node's kubelet listens: its InternalIP (else ExternalIP, else
/// Hostname, else the node name) and the port it reported.
fn kubelet_address(node: &Value, node_name: &str) -> (String, u16) {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let of_type = |t: &str| {
        addresses
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some(t))
            .find_map(|a| a.get("address").and_then(Value::as_str))
            .map(str::to_string)
    };
    let host = of_type("InternalIP")
        .or_else(|| of_type("ExternalIP"))
        .or_else(|| of_type("Hostname"))
        .unwrap_or_else(|| node_name.to_string());
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    (host, port)
}

/// A `Status` carrying what the kubelet answered (its body is text).
fn kubelet_status(code: StatusCode, text: &str) -> Response<Body> {
    let reason = match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "",
    };
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": text.trim(), "reason": reason,
        "code": code.as_u16(),
    });
    codec::respond(code.as_u16(), &status, Output::Json)
}

/// Not reaching the kubelet: a 500 without a reason, as upstream's
/// (kubectl prints `Error from server: error dialing backend: ...`).
fn backend_error(text: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": text, "code": 500,
    });
    codec::respond(500, &status, Output::Json)
}

/// A TLS connection to a kubelet.
async fn dial(
    tls: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    };
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?,
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let connect = TlsConnector::from(tls).connect(name, tcp);
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| format!("tls handshake with {addr}: i/o timeout"))?
        .map_err(|e| format!("tls handshake with {addr}: {e}"))
}

/// Serves one streaming request (authentication already done).
pub async fn handle(
    server: &Server,
    req: Request<Incoming>,
    p: &ResourcePath,
    user: Option<Arc<crate::api::UserInfo>>,
) -> Result<Response<Body>, ApiError> {
    let (Some(ns), Some(name), Some(sub)) = (
        p.namespace.as_deref(),
        p.name.as_deref(),
        p.subresource.as_deref(),
    ) else {
        return Err(ApiError::NoRoute);
    };
    let reg = &*server.api.registry();
    let pods = reg.find("", "v1", "pods").ok_or(ApiError::NoRoute)?;
    let nodes = reg.find("", "v1", "nodes").ok_or(ApiError::NoRoute)?;
    let q = query_pairs(req.uri().query());
    let is_log = sub == "log";
    if is_log && req.method() != http::Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    if !is_log && !matches!(*req.method(), http::Method::GET | http::Method::POST) {
        return Err(ApiError::MethodNotAllowed);
    }
    let Some(tls) = server.kubelet.clone() else {
        return Err(ApiError::BadRequest(format!(
            "{sub} for pods is served by the node agent, which is not running in this server"
        )));
    };
    // Options are checked before the pod is looked at, as upstream.
    let query = match sub {
        "log" => log_query(name, &q)?,
        "exec" => exec_query(&q, true),
        "attach" => exec_query(&q, false),
        _ => portforward_query(&q)?,
    };
    if !is_log {
        // Admission (CONNECT) before the pod is looked at, as upstream.
        let user = user.as_deref();
        server
            .api
            .admit_connect(pods, sub, ns, name, &q, user)
            .await?;
    }
    let pod = server.api.get(pods, Some(ns), name).await?;
    // Pod and container names are DNS labels: nothing to escape.
    let path = match sub {
        "portforward" => format!("/portForward/{ns}/{name}"),
        _ => {
            let container = pick_container(&pod, name, first(&q, "container"))?;
            let endpoint = if is_log { "containerLogs" } else { sub };
            format!("/{endpoint}/{ns}/{name}/{container}")
        }
    };
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        if is_log {
            // Upstream answers an unscheduled pod's log with nothing.
            return Ok(codec::raw(200, bytes::Bytes::new(), "text/plain"));
        }
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    // Some(tunnelled protocols) when the WebSocket is answered here
    // (empty for exec/attach) rather than passed to the kubelet.
    let mut translation: Option<Vec<String>> = None;
    if !is_log {
        if !upgrade::is_upgrade(req.headers()) {
            return Err(ApiError::BadRequest("Upgrade request required".into()));
        }
        if upgrade::is_websocket(req.headers()) {
            let supported = if sub == "portforward" {
                PORTFORWARD_WEBSOCKET
            } else {
                EXEC_WEBSOCKET
            };
            let offered = upgrade::websocket_protocols(req.headers());
            translation = if sub == "portforward" {
                Some(translate::tunnel_protocols(&offered)).filter(|p| !p.is_empty())
            } else {
                translate::wants_exec_translation(&offered).then(Vec::new)
            };
            if translation.is_none()
                && !offered.is_empty()
                && !offered.iter().any(|o| supported.contains(&o.as_str()))
            {
                return Err(ApiError::BadRequest(format!(
                    "websocket subprotocols {offered:?} are not served by this node's container runtime (it speaks {supported:?}); use SPDY/3.1"
                )));
            }
        }
    }
    let node = server.api.get(nodes, None, node_name).await?;
    let (host, port) = kubelet_address(&node, node_name);
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let authority = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    tracing::debug!(%authority, %target, "proxying to the kubelet");
    let io = match dial(tls, &host, port).await {
        Ok(io) => io,
        Err(e) => return Ok(backend_error(&format!("error dialing backend: {e}"))),
    };
    let result = match translation {
        _ if is_log => upgrade::get(io, &target, &authority)
            .await
            .map_err(|e| e.to_string()),
        Some(protocols) if sub == "portforward" => {
            translate::tunnel(req, io, &target, &authority, &protocols)
                .await
                .map_err(|e| e.to_string())
        }
        Some(_) => {
            let streams = translate::Streams {
                stdin: flag(&q, "stdin"),
                stdout: flag(&q, "stdout"),
                stderr: flag(&q, "stderr"),
                tty: flag(&q, "tty"),
            };
            translate::exec(req, io, &target, &authority, streams)
                .await
                .map_err(|e| e.to_string())
        }
        None => upgrade::forward(req, io, &target, &authority)
            .await
            .map_err(|e| e.to_string()),
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Ok(backend_error(&format!("error talking to the kubelet: {e}"))),
    };
    // A failed upgrade goes back as the kubelet wrote it (clients show its
    // text); a failed log request becomes a Status, as upstream's checker.
    if is_log && !resp.status().is_success() {
        let code = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_string();
        return Ok(kubelet_status(code, &text));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        query_pairs(Some(s))
    }

    #[test]
    fn only_pod_streaming_subresources_are_taken() {
        let p = |s: &str| match super::super::route::parse(s) {
            super::super::route::Route::Resource(p) => p,
            other => panic!("{other:?}"),
        };
        assert!(handles(&p("/api/v1/namespaces/a/pods/b/log")));
        assert!(handles(&p("/api/v1/namespaces/a/pods/b/portforward")));
        assert!(!handles(&p("/api/v1/namespaces/a/pods/b/status")));
        assert!(!handles(&p("/api/v1/namespaces/a/pods/b")));
        assert!(!handles(&p("/apis/x/v1/namespaces/a/pods/b/exec")));
    }

    #[test]
    fn exec_query_keeps_every_command_word() {
        let got = exec_query(
            &q("command=sh&command=-c&command=echo%20a%26b&container=c&stdin=true&stdout=true&stderr=false&tty=1"),
            true,
        );
        assert_eq!(
            got,
            "input=1&output=1&tty=1&command=sh&command=-c&command=echo+a%26b"
        );
        assert_eq!(exec_query(&q("stdout=true&command=x"), false), "output=1");
    }

    #[test]
    fn log_query_is_validated_and_renamed() {
        let got = log_query(
            "p",
            &q("follow=true&tailLines=10&timestamps=true&container=c"),
        )
        .unwrap();
        assert_eq!(got, "follow=true&timestamps=true&tailLines=10");
        let got = log_query("p", &q("sinceTime=2024-01-02T03:04:05Z&limitBytes=5")).unwrap();
        assert_eq!(got, "sinceTime=2024-01-02T03%3A04%3A05Z&limitBytes=5");
        let err = log_query("p", &q("sinceSeconds=0")).unwrap_err();
        assert_eq!(err.code(), 422);
        assert!(err.to_string().contains("must be greater than 0"), "{err}");
        assert!(log_query("p", &q("sinceSeconds=5&sinceTime=2024-01-02T03:04:05Z")).is_err());
        assert!(log_query("p", &q("tailLines=-1")).is_err());
        assert!(log_query("p", &q("tailLines=x")).is_err());
    }

    #[test]
    fn ports_repeat_or_come_comma_separated() {
        assert_eq!(
            portforward_query(&q("ports=80,8080&ports=9")).unwrap(),
            "port=80&port=8080&port=9"
        );
        assert!(portforward_query(&q("ports=0")).is_err());
        assert!(portforward_query(&q("ports=http")).is_err());
    }

    #[test]
    fn containers_default_as_upstream() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "a");
        assert_eq!(pick_container(&one, "p", Some("")).unwrap(), "a");
        let err = pick_container(&one, "p", Some("b")).unwrap_err();
        assert_eq!(err.to_string(), "container b is not valid for pod p");
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                   "initContainers": [{"name": "i"}]}});
        assert_eq!(pick_container(&two, "p", Some("i")).unwrap(), "i");
        let err = pick_container(&two, "p", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let mut annotated = two.clone();
        annotated["metadata"] =
            json!({"annotations": {"kubectl.kubernetes.io/default-container": "b"}});
        assert_eq!(pick_container(&annotated, "p", None).unwrap(), "b");
    }

    #[test]
    fn kubelet_address_prefers_internal_ip_and_reported_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"},
                          {"type": "InternalIP", "address": "10.0.0.7"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(kubelet_address(&node, "n1"), ("10.0.0.7".into(), 12345));
        assert_eq!(kubelet_address(&json!({}), "n1"), ("n1".into(), 10250));
    }
}
