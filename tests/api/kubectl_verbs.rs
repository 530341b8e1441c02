//! kubectl verbs that need no `explain`: `events` (with --for, --types and
//! -w), `wait` (condition, jsonpath, delete, timeout), `rollout` for
//! Deployments, DaemonSets and StatefulSets (status, history, undo,
//! restart; pause/resume only where upstream supports them), `top` without
//! metrics, with kubectl 1.27 and 1.33 against a server with a hollow node;
//! and clients asking for protobuf getting JSON.

use std::time::{Duration, Instant};

use crate::common::hollow::hollow_agent;
use crate::common::{Kubectl, LineReader, Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};

const WORKLOADS: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  serviceName: ss
  replicas: 2
  selector: {matchLabels: {app: ss}}
  template:
    metadata: {labels: {app: ss}}
    spec: {containers: [{name: c, image: busybox}]}
";

#[test]
fn events_wait_rollout_top_and_protobuf() {
    let server = Proc::server();
    let _node = hollow_agent(&server, 1, &[]);
    server
        .kubectl(KUBECTL_NEWEST)
        .stdin_ok(&["apply", "-f", "-"], WORKLOADS);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let k = server.kubectl(version);
        wait(&k, version);
        events(&server, &k, version);
        rollout(&k, version);
        let err = k.err(&["top", "pods"]);
        assert!(
            err.contains("Metrics API not available"),
            "{version}: {err}"
        );
    }
    protobuf(&server);
}

fn wait(k: &Kubectl<'_>, version: &str) {
    let out = k.ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=60s",
    ]);
    assert_eq!(out.trim(), "deployment.apps/web condition met", "{version}");
    let out = k.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod",
        "-l",
        "app=web",
        "--timeout=60s",
    ]);
    assert!(
        out.lines().count() >= 2 && out.lines().all(|l| l.ends_with("condition met")),
        "{version}: {out}"
    );
    let err = k.err(&[
        "wait",
        "--for=condition=Bogus",
        "deploy/web",
        "--timeout=1s",
    ]);
    assert!(
        err.contains("timed out waiting for the condition on deployments/web"),
        "{version}: {err}"
    );
    // --for=delete returns once the object is gone: a finalizer holds it
    // while kubectl starts waiting.
    let cm = format!("gone-{}", version.replace('.', "-"));
    k.stdin_ok(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {cm}, finalizers: [example.com/hold]}}\n"),
    );
    k.ok(&["delete", "configmap", &cm, "--wait=false"]);
    let reader = LineReader::spawn(&mut k.command(&[
        "wait",
        "--for=delete",
        &format!("cm/{cm}"),
        "--timeout=30s",
    ]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(k.ok(&["get", "configmap", &cm, "-o", "name"]).contains(&cm));
    k.ok(&[
        "patch",
        "configmap",
        &cm,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let line = reader.next_line(Duration::from_secs(30));
    assert_eq!(
        line.as_deref(),
        Some(format!("configmap/{cm} condition met").as_str()),
        "{version}: {}",
        reader.stderr()
    );
}

fn events(server: &Proc, k: &Kubectl<'_>, version: &str) {
    let out = k.ok(&["events", "--for", "deployment/web"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{version}: {out}"
    );
    assert!(
        out.contains("Deployment/web   Scaled up replica set web-"),
        "{version}: {out}"
    );
    let all = k.ok(&["events", "-A"]);
    assert!(all.contains("SuccessfulCreate"), "{version}: {all}");
    let out = k.run(&["events", "--types=Warning", "-n", "kube-public"]);
    assert!(out.status.success(), "{version}: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "No events found in kube-public namespace.",
        "{version}"
    );
    // -w prints the events a change causes.
    let reader = LineReader::spawn(&mut k.command(&["events", "-w", "--for", "deployment/web"]));
    reader.expect_lines(2, Duration::from_secs(30)); // header, the first scale-up
                                                     // Counts no earlier event names: 2 at creation, 4 then 5 here.
    let replicas = if version == KUBECTL_OLDEST { "4" } else { "5" };
    server
        .kubectl(version)
        .ok(&["scale", "deploy/web", &format!("--replicas={replicas}")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = reader
            .next_line(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| {
                panic!(
                    "{version}: events -w showed no scaling: {}",
                    reader.stderr()
                )
            });
        if line.contains("replica set web-") && line.contains(&format!(" to {replicas}")) {
            break;
        }
    }
}

fn rollout(k: &Kubectl<'_>, version: &str) {
    for (target, done) in [
        ("deploy/web", "deployment \"web\" successfully rolled out"),
        ("ds/ds", "daemon set \"ds\" successfully rolled out"),
        (
            "sts/ss",
            "partitioned roll out complete: 2 new pods have been updated...",
        ),
    ] {
        let status = |k: &Kubectl<'_>| {
            let out = k.ok(&["rollout", "status", target, "--timeout=90s"]);
            assert!(out.trim_end().ends_with(done), "{version} {target}: {out}");
        };
        status(k);
        let image = format!("c=busybox:{}", version.replace('.', "-"));
        k.ok(&["set", "image", target, &image]);
        status(k);
        let history = k.ok(&["rollout", "history", target]);
        assert!(
            history.contains("REVISION  CHANGE-CAUSE"),
            "{version} {target}: {history}"
        );
        let revisions: Vec<i64> = history
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert!(revisions.len() >= 2, "{version} {target}: {history}");
        let last = revisions[revisions.len() - 1];
        let detail = k.ok(&["rollout", "history", target, &format!("--revision={last}")]);
        assert!(detail.contains(&image[2..]), "{version} {target}: {detail}");
        let out = k.ok(&["rollout", "undo", target]);
        assert!(out.contains("rolled back"), "{version} {target}: {out}");
        status(k);
        let out = k.ok(&["rollout", "restart", target]);
        assert!(out.contains("restarted"), "{version} {target}: {out}");
        status(k);
        if target == "deploy/web" {
            assert!(k.ok(&["rollout", "pause", target]).contains("paused"));
            assert!(k.ok(&["rollout", "resume", target]).contains("resumed"));
            status(k);
        } else {
            let kind = if target == "ds/ds" {
                "daemonsets.apps \"ds\""
            } else {
                "statefulsets.apps \"ss\""
            };
            let err = k.err(&["rollout", "pause", target]);
            assert!(
                err.contains(&format!("{kind} pausing is not supported")),
                "{version} {target}: {err}"
            );
            let err = k.err(&["rollout", "resume", target]);
            assert!(
                err.contains(&format!("{kind} resuming is not supported")),
                "{version} {target}: {err}"
            );
        }
    }
}

/// Clients asking for protobuf get JSON, labelled as such (client-go
/// decodes by the answer's Content-Type), on every kind of path.
fn protobuf(server: &Proc) {
    for accept in [
        "application/vnd.kubernetes.protobuf",
        "application/vnd.kubernetes.protobuf, application/json",
        "application/vnd.kubernetes.protobuf;stream=watch",
    ] {
        for path in [
            "/api/v1/namespaces/default/pods",
            "/api/v1/namespaces/default/configmaps/kube-root-ca.crt",
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "/api/v1/nodes",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=1",
            "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1",
            "/api",
            "/apis/apps/v1",
        ] {
            let reply = server.curl(
                true,
                "GET",
                path,
                None,
                &["-H", &format!("Accept: {accept}")],
            );
            assert_eq!(reply.status, 200, "{accept} {path}: {reply:?}");
            assert_eq!(reply.content_type, "application/json", "{accept} {path}");
            if !path.contains("watch=1") {
                reply.json();
            }
        }
    }
    let missing = server.curl(
        true,
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        None,
        &["-H", "Accept: application/vnd.kubernetes.protobuf"],
    );
    assert_eq!(missing.status, 404, "{missing:?}");
    assert_eq!(missing.json()["reason"], "NotFound");
    // A Table asked for in protobuf comes as a JSON Table.
    let table = server.curl(
        true,
        "GET",
        "/api/v1/namespaces/default/pods",
        None,
        &[
            "-H",
            "Accept: application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
        ],
    );
    assert_eq!(table.status, 200, "{table:?}");
    assert_eq!(table.json()["kind"], "Table");
}
