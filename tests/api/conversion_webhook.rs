//! CRD conversion webhooks with real kubectl 1.27 and 1.33: the example
//! webhook (`examples/test_webhook.rs`, built by `cargo build [--release]
//! --example test_webhook`) runs on loopback as a host process with a
//! certificate for 127.0.0.1; a CRD stores v1 (`spec.hostPort: "h:p"`) and
//! serves v2 (`spec.host`, `spec.port`) through it. Creates, gets, lists,
//! watches and patches at v2 convert; a refused conversion and a webhook
//! that is down give upstream's text while the storage version still reads.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::common::{both_versions, free_port, Kubectl, Proc};

both_versions!(objects_convert_through_the_webhook);

const V2: &str = "backends.v2.conv.example.com";
const V1: &str = "backends.v1.conv.example.com";

/// The webhook process; killed when dropped (also when the test fails).
struct Webhook {
    child: Option<Child>,
    port: u16,
    ca: String,
}

impl Webhook {
    fn start(dir: &Path) -> Webhook {
        let (ca, cert, key) = crate::common::webhook::serving_certificates("127.0.0.1");
        std::fs::create_dir_all(dir).expect("webhook dir");
        let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_file, cert).expect("write cert");
        std::fs::write(&key_file, key).expect("write key");
        let port = free_port();
        let log = std::fs::File::create(dir.join("webhook.log")).expect("webhook log");
        let child = Command::new(crate::common::webhook::example_binary())
            .arg(port.to_string())
            .arg(&cert_file)
            .arg(&key_file)
            .arg("127.0.0.1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start test_webhook");
        let hook = Webhook {
            child: Some(child),
            port,
            ca,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "test_webhook never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        hook
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn crd(hook: &Webhook) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&hook.ca);
    format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backends.conv.example.com
spec:
  group: conv.example.com
  scope: Namespaced
  names: {{plural: backends, singular: backend, kind: Backend}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig:
        url: https://127.0.0.1:{port}/convert
        caBundle: {ca}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              hostPort: {{type: string}}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              host: {{type: string}}
              port: {{type: integer}}
"#,
        port = hook.port
    )
}

fn backend(version: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: conv.example.com/{version}\nkind: Backend\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

/// Polls `cond` for up to 30 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn establish(k: &Kubectl<'_>, hook: &Webhook) {
    k.stdin_ok(&["apply", "-f", "-"], &crd(hook));
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=10s",
        "crd/backends.conv.example.com",
    ]);
    eventually("backends in discovery", || {
        k.run(&["get", V2]).status.success() && k.run(&["get", V1]).status.success()
    });
}

fn objects_convert_through_the_webhook(kubectl: &str) {
    let p = Proc::server();
    let k = p.kubectl(kubectl);
    let mut hook = Webhook::start(&p.data_dir.with_file_name("webhook"));

    // Definitions: upstream's texts for a webhook without a client.
    let bad = crd(&hook).replace("      clientConfig:\n", "      noClientConfig:\n");
    let err = k.stdin_err(&["create", "--validate=false", "-f", "-"], &bad);
    assert!(
        err.contains("spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"),
        "{err}"
    );
    establish(&k, &hook);

    // Created at v1 (storage: no call), read at v2.
    k.stdin_ok(
        &["create", "-f", "-"],
        &backend("v1", "b1", "{hostPort: \"db:5432\"}"),
    );
    let b1 = k.json(&["get", V2, "b1"]);
    assert_eq!(b1["apiVersion"], "conv.example.com/v2", "{b1}");
    assert_eq!(b1["spec"]["host"], "db", "{b1}");
    assert_eq!(b1["spec"]["port"], 5432, "{b1}");
    assert_eq!(b1["metadata"]["name"], "b1");

    // Created at v2: stored as v1 (read back at the storage version), the
    // answer in v2.
    let created = k.stdin_ok(
        &["create", "-o", "json", "-f", "-"],
        &backend("v2", "b2", "{host: web, port: 80}"),
    );
    let created: Value = serde_json::from_str(&created).expect("created object");
    assert_eq!(created["apiVersion"], "conv.example.com/v2", "{created}");
    assert_eq!(created["spec"]["port"], 80, "{created}");
    let b2 = k.json(&["get", V1, "b2"]);
    assert_eq!(b2["apiVersion"], "conv.example.com/v1", "{b2}");
    assert_eq!(b2["spec"]["hostPort"], "web:80", "{b2}");
    assert!(b2["spec"].get("host").is_none(), "{b2}");

    // Lists at v2: every item converted; the table too.
    let list = k.json(&["get", V2]);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    for item in items {
        assert_eq!(item["apiVersion"], "conv.example.com/v2", "{item}");
        assert!(item["spec"]["host"].is_string(), "{item}");
        assert!(item["spec"].get("hostPort").is_none(), "{item}");
    }
    assert!(k.ok(&["get", V2]).contains("b2"));

    // Watches at v2: the events carry v2 objects.
    let watched = p.curl(
        true,
        "GET",
        "/apis/conv.example.com/v2/namespaces/default/backends?watch=1&timeoutSeconds=2",
        None,
        &[],
    );
    assert_eq!(watched.status, 200, "{watched:?}");
    let events: Vec<Value> = watched
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a watch event"))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["type"], "ADDED", "{e}");
        assert_eq!(e["object"]["apiVersion"], "conv.example.com/v2", "{e}");
        assert!(e["object"]["spec"]["port"].is_i64(), "{e}");
    }

    // Patched at v2 while `kubectl get -w` follows v2: the change arrives
    // converted, and the v1 form follows.
    let out_file = p.data_dir.with_file_name("watch.out");
    let mut watcher = KillOnDrop(
        k.command(&["get", V2, "-w", "-o", "json"])
            .stdout(std::fs::File::create(&out_file).expect("watch output"))
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl get -w"),
    );
    let seen = |what: &str| {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .contains(what)
    };
    eventually("the watch lists b2", || seen("\"host\": \"web\""));
    k.ok(&[
        "patch",
        V2,
        "b1",
        "--type=merge",
        "-p",
        r#"{"spec":{"port":6543}}"#,
    ]);
    eventually("the watch shows the patch at v2", || seen("\"port\": 6543"));
    let _ = watcher.0.kill();
    assert!(
        !seen("hostPort"),
        "{}",
        std::fs::read_to_string(&out_file).unwrap_or_default()
    );
    let b1 = k.json(&["get", V1, "b1"]);
    assert_eq!(b1["spec"]["hostPort"], "db:6543", "{b1}");
    assert_eq!(b1["metadata"]["generation"], 2, "{b1}");

    // A refused conversion: upstream's 500 without a reason, for the
    // object and for any list it is in.
    k.stdin_ok(
        &["create", "-f", "-"],
        &backend("v1", "bad", "{hostPort: fail}"),
    );
    let want = "Error from server: conversion webhook for conv.example.com/v1, Kind=Backend failed: cannot convert";
    let err = k.err(&["get", V2, "bad"]);
    assert!(err.contains(want), "{err}");
    let err = k.err(&["get", V2, "-o", "json"]);
    assert!(err.contains(want), "{err}");
    let raw = p.curl(
        true,
        "GET",
        "/apis/conv.example.com/v2/namespaces/default/backends/bad",
        None,
        &[],
    );
    assert_eq!(raw.status, 500, "{raw:?}");
    let status = raw.json();
    assert!(status.get("reason").is_none(), "{status}");
    assert_eq!(
        status["message"],
        "conversion webhook for conv.example.com/v1, Kind=Backend failed: cannot convert"
    );
    // A watch ends at the event it cannot convert (upstream's encoder
    // error closes the stream), long before its timeout.
    let started = Instant::now();
    let watched = p.curl(
        true,
        "GET",
        "/apis/conv.example.com/v2/namespaces/default/backends?watch=1&timeoutSeconds=20",
        None,
        &[],
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{watched:?}");
    let names: Vec<String> = watched
        .body
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("a watch event");
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(names, ["b1", "b2"], "{watched:?}");
    k.ok(&["delete", V1, "bad"]);

    // The webhook down: other versions fail with the cause, the storage
    // version still reads.
    hook.stop();
    let err = k.err(&["get", V2, "b1"]);
    let port = hook.port;
    assert!(
        err.contains(&format!(
            "Error from server: conversion webhook for conv.example.com/v1, Kind=Backend failed: \
             Post \"https://127.0.0.1:{port}/convert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{err}"
    );
    let b1 = k.json(&["get", V1, "b1"]);
    assert_eq!(b1["spec"]["hostPort"], "db:6543", "{b1}");
    assert!(k.ok(&["get", V1]).contains("b2"));
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &backend("v2", "b3", "{host: x, port: 1}"),
    );
    assert!(
        err.contains("conversion webhook for conv.example.com/v2, Kind=Backend failed"),
        "{err}"
    );
    assert!(!k.run(&["get", V1, "b3"]).status.success());
    // A server-side dry run converts too (upstream's dry-run storage
    // encodes to the storage version).
    let err = k.stdin_err(
        &["create", "--dry-run=server", "-f", "-"],
        &backend("v2", "b3", "{host: x, port: 1}"),
    );
    assert!(
        err.contains("conversion webhook for conv.example.com/v2, Kind=Backend failed"),
        "{err}"
    );
    k.stdin_ok(
        &["create", "--dry-run=server", "-f", "-"],
        &backend("v1", "b3", "{hostPort: \"x:1\"}"),
    );
}
