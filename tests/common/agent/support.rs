//! Manifests, readers of pod and node JSON, plain HTTP to pods, and the
//! parallel scenario runner.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::images::BUSYBOX;

// ---------------------------------------------------------------------------
// Manifests

/// A container of the local busybox image (never pulled) running `script`
/// with `sh -c`.
pub fn busybox_container(name: &str, script: &str) -> Value {
    serde_json::json!({
        "name": name,
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    })
}

/// A Pod with `spec`.
pub fn pod_manifest(ns: &str, name: &str, spec: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

// ---------------------------------------------------------------------------
// Reading pod and node JSON

/// The status of condition `kind` of a pod.
pub fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a str> {
    node_condition(pod, kind)
}

/// The status of condition `kind` of a node (or any object with
/// `status.conditions`).
pub fn node_condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// The status of container `name` (app, init or ephemeral); Null if none.
pub fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    for list in [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ] {
        if let Some(s) = pod["status"][list]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
        {
            return s;
        }
    }
    &NULL
}

/// `restartCount` of container `name` (0 when not reported).
pub fn restart_count(pod: &Value, name: &str) -> i64 {
    container_status(pod, name)["restartCount"]
        .as_i64()
        .unwrap_or(0)
}

/// Phase Running and every container reported running.
pub fn is_running(pod: &Value) -> bool {
    let spec_count = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let statuses = pod["status"]["containerStatuses"].as_array();
    pod["status"]["phase"] == "Running"
        && statuses.is_some_and(|s| {
            s.len() == spec_count && s.iter().all(|c| c["state"]["running"].is_object())
        })
}

/// `status.podIP`, parsed.
pub fn pod_ip(pod: &Value) -> IpAddr {
    pod["status"]["podIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("pod has no podIP: {}", pod["status"]))
}

// ---------------------------------------------------------------------------
// Plain HTTP to pods (their addresses are the test's own)

/// `GET path` over HTTP/1.0 to `addr`; (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let timeout = Duration::from_secs(3);
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header from {addr}: {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}: {head:?}"))?;
    Ok((code, body.to_string()))
}

/// Retries [`http_get`] until it answers 200 or `timeout` passes.
pub fn wait_http(addr: SocketAddr, path: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match http_get(addr, path) {
            Ok((200, body)) => return body,
            Ok((code, body)) => format!("status {code}: {body}"),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            panic!("GET http://{addr}{path} did not answer 200 within {timeout:?}: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------

/// A named scenario for [`run_scenarios`].
pub type Scenario<'a> = (&'static str, Box<dyn FnOnce() + Send + 'a>);

/// Runs scenarios against one cluster in parallel threads (named after
/// them, so their panics say which failed); fails listing every failed one.
pub fn run_scenarios(scenarios: Vec<Scenario<'_>>) {
    let failed = try_scenarios(scenarios);
    assert!(
        failed.is_empty(),
        "scenarios failed: {failed:?} (their panic messages are printed above)"
    );
}

/// Like [`run_scenarios`] but returns the names of the failed scenarios,
/// so a test can go on with later (sequential) steps.
pub fn try_scenarios(scenarios: Vec<Scenario<'_>>) -> Vec<&'static str> {
    std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .into_iter()
            .map(|(name, f)| {
                let h = std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn_scoped(s, f)
                    .expect("spawn scenario thread");
                (name, h)
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, h)| h.join().is_err().then_some(name))
            .collect()
    })
}
