//! The API server under conflicts, compaction and bad input: optimistic
//! concurrency (409), watches at compacted revisions (410), broken YAML,
//! unknown kinds, invalid names (422), oversized bodies (413), wrong content
//! types (415), missing credentials (401); and how fast it becomes ready.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Proc, KUBECTL_NEWEST};
use serde_json::{json, Value};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn ready_within_a_second_of_spawn() {
    let start = Instant::now();
    let mut p = Proc::spawn_server_with(|_| Vec::new());
    let mut first_200 = None;
    while start.elapsed() < Duration::from_secs(30) {
        p.assert_alive();
        if p.readyz() == Some(200) {
            first_200 = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = first_200.unwrap_or_else(|| panic!("never ready; stderr:\n{}", p.log()));
    println!("nanokube server answered /readyz 200 after {took:?}");
    // 1 s is the goal (release build); debug builds get some slack
    let limit = if cfg!(debug_assertions) { 3 } else { 1 };
    assert!(
        took <= Duration::from_secs(limit),
        "/readyz answered 200 only after {took:?}"
    );
    // the health endpoints answer anonymously, like upstream's
    for path in ["/readyz", "/livez", "/healthz"] {
        let r = p.curl(false, "GET", path, None, &[]);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    let r = p.curl(false, "GET", "/readyz?verbose", None, &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.ends_with("readyz check passed\n"), "{}", r.body);
    assert!(r.body.contains("[+]ping ok\n"), "{}", r.body);
}

#[test]
fn unauthenticated_requests_get_401() {
    let p = Proc::server();
    let unauthorized = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401
    });
    for (method, path) in [
        ("GET", "/api/v1/namespaces"),
        ("GET", "/api"),
        ("GET", "/apis"),
        ("DELETE", "/api/v1/namespaces/default"),
    ] {
        let r = p.curl(false, method, path, None, &[]);
        assert_eq!(r.status, 401, "{method} {path}: {r:?}");
        assert_eq!(r.json(), unauthorized, "{method} {path}");
    }
    // /version is public, as the health endpoints (issue 7)
    assert_eq!(p.curl(false, "GET", "/version", None, &[]).status, 200);
    // with a body (which the server need not read): still a clean 401, every
    // time (over HTTP/2, answering before reading the body must not reset
    // the stream under the client)
    for _ in 0..10 {
        let r = p.curl(
            false,
            "POST",
            CM_PATH,
            Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#),
            &["-H", "Content-Type: application/json"],
        );
        assert_eq!(r.status, 401, "{r:?}");
    }
    // kubectl without a client certificate, with a token the server does not know
    let creds = p.creds();
    let empty = p.data_dir.with_file_name("empty-kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let out = crate::common::run_with_timeout(
        Command::new(crate::common::kubectl_path(KUBECTL_NEWEST))
            .arg("--kubeconfig")
            .arg(&empty)
            .arg("--server")
            .arg(p.api_url())
            .arg("--certificate-authority")
            .arg(&creds.ca)
            // Without any credential kubectl would prompt for a user name;
            // an unknown bearer token is what a stranger sends.
            .args(["--token", "not-a-valid-token"])
            .args(["get", "namespaces"]),
        None,
        crate::common::CLIENT_TIMEOUT,
    );
    assert!(!out.status.success());
    // kubectl 1.33 words the reason after its discovery retries
    // ("the server has asked for the client to provide credentials"),
    // older ones print "(Unauthorized)".
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: You must be logged in to the server ("),
        "{stderr}"
    );
    // with the certificate it works
    let r = p.curl(true, "GET", "/api/v1/namespaces/default", None, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["metadata"]["name"], "default");
}

#[test]
fn concurrent_updates_with_one_resource_version_conflict() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    k.configmap("default", "race", &[("n", "0")], &[]);
    let current = p.curl(true, "GET", &format!("{CM_PATH}/race"), None, &[]);
    assert_eq!(current.status, 200);
    let mut obj = current.json();
    obj["data"]["n"] = json!("1");
    let body = serde_json::to_vec(&obj).unwrap();
    let put = || {
        p.curl(
            true,
            "PUT",
            &format!("{CM_PATH}/race"),
            Some(&body),
            &["-H", "Content-Type: application/json"],
        )
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(put);
        let b = s.spawn(put);
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [200, 409], "{a:?}\n{b:?}");
    let conflict = if a.status == 409 { &a } else { &b };
    assert_eq!(
        conflict.json(),
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Operation cannot be fulfilled on configmaps \"race\": the object has been \
                        modified; please apply your changes to the latest version and try again",
            "reason": "Conflict",
            "details": {"name": "race", "kind": "configmaps"},
            "code": 409
        })
    );
    let winner = if a.status == 200 { &a } else { &b };
    let winner = winner.json();
    assert_ne!(
        winner["metadata"]["resourceVersion"],
        obj["metadata"]["resourceVersion"]
    );
    assert_eq!(k.json(&["get", "cm", "race"])["data"], json!({"n": "1"}));

    // the same with `kubectl replace` twice from one file
    let file = p.data_dir.with_file_name("race.json");
    let mut stale = k.json(&["get", "cm", "race"]);
    stale["data"]["n"] = json!("2");
    std::fs::write(&file, serde_json::to_vec(&stale).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(k.ok(&["replace", "-f", file]), "configmap/race replaced\n");
    let err = k.err(&["replace", "-f", file]);
    assert_eq!(
        err,
        format!(
            "Error from server (Conflict): error when replacing \"{file}\": Operation cannot be \
             fulfilled on configmaps \"race\": the object has been modified; please apply your \
             changes to the latest version and try again\n"
        )
    );
    // an update without a resourceVersion is unconditional
    stale["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    stale["data"]["n"] = json!("3");
    let r = p.curl(
        true,
        "PUT",
        &format!("{CM_PATH}/race"),
        Some(&serde_json::to_vec(&stale).unwrap()),
        &["-H", "Content-Type: application/json"],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["data"], json!({"n": "3"}));
}

#[test]
fn watch_at_compacted_revision_is_gone() {
    crate::common::require_etcdctl();
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    k.configmap("default", "hist", &[("n", "0")], &[]);
    let old_rv = k.json(&["get", "cm", "hist"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 1..=5 {
        let patch = format!(r#"{{"data":{{"n":"{n}"}}}}"#);
        k.ok(&["patch", "cm", "hist", "-p", &patch]);
    }
    let rev = crate::common::etcdctl(&p.unix_endpoint(), &["get", "/x", "-w", "json"], None);
    let rev: Value = serde_json::from_slice(&rev.stdout).expect("etcdctl get -w json");
    let rev = rev["header"]["revision"].as_i64().unwrap().to_string();
    let out = crate::common::etcdctl(&p.unix_endpoint(), &["compact", &rev], None);
    assert!(out.status.success(), "etcdctl compact: {out:?}");

    let url = format!("{CM_PATH}?watch=1&resourceVersion={old_rv}");
    let out = k.run(&["get", "--raw", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // upstream: 200 and one ERROR event carrying a 410 Expired Status
        let event: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("watch printed no JSON event ({e}): {stdout:?}"));
        assert_eq!(event["type"], "ERROR", "{stdout}");
        let status = &event["object"];
        assert_eq!(status["kind"], "Status", "{stdout}");
        assert_eq!(status["code"], 410, "{stdout}");
        assert_eq!(status["reason"], "Expired", "{stdout}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("too old resource version: {old_rv} (")),
            "{stdout}"
        );
    } else {
        // also handled by clients (nanokube does this): an HTTP 410 Gone
        assert!(
            stderr.starts_with(&format!(
                "Error from server (Expired): too old resource version: {old_rv} ("
            )),
            "{stderr}"
        );
    }
    // a list-then-watch (what kubectl and informers do) still works
    let watch = k.background(&["get", "cm", "-w", "-o", "name"]);
    assert_eq!(
        watch.expect_lines(2, Duration::from_secs(20)),
        ["configmap/hist", "configmap/kube-root-ca.crt"]
    );
    k.ok(&["patch", "cm", "hist", "-p", r#"{"data":{"n":"6"}}"#]);
    assert_eq!(
        watch.expect_lines(1, Duration::from_secs(20)),
        ["configmap/hist"]
    );
    // and a GET at the compacted resourceVersion lists the current state
    let list = k.ok(&[
        "get",
        "--raw",
        &format!("{CM_PATH}?resourceVersion={old_rv}"),
    ]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["items"][0]["data"], json!({"n": "6"}));
}

#[test]
fn bad_input_is_rejected_clearly() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);

    // broken YAML never reaches the server
    let err = k.stdin_err(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: [ConfigMap\n  :: ::\n",
    );
    assert!(
        err.starts_with("error: error parsing STDIN: error converting YAML to JSON: yaml: "),
        "{err}"
    );
    // an unknown kind
    let err = k.stdin_err(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Bogus\nmetadata:\n  name: x\n",
    );
    assert!(
        err.starts_with(
            "error: resource mapping not found for name: \"x\" namespace: \"\" from \"STDIN\": \
             no matches for kind \"Bogus\" in version \"v1\""
        ),
        "{err}"
    );
    let err = k.err(&["get", "bogus"]);
    assert_eq!(
        err,
        "error: the server doesn't have a resource type \"bogus\"\n"
    );

    // an invalid name: 422 with the DNS-1123 message
    let dns1123 = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                   characters, '-' or '.', and must start and end with an alphanumeric \
                   character (e.g. 'example.com', regex used for validation is \
                   '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let err = k.err(&["create", "cm", "Bad_Name"]);
    assert_eq!(
        err,
        format!(
            "error: failed to create configmap: ConfigMap \"Bad_Name\" is invalid: \
             metadata.name: Invalid value: \"Bad_Name\": {dns1123}\n"
        )
    );
    let r = p.curl(
        true,
        "POST",
        CM_PATH,
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#),
        &["-H", "Content-Type: application/json"],
    );
    assert_eq!(r.status, 422, "{r:?}");
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["name"], "Bad_Name");
    assert_eq!(status["details"]["kind"], "ConfigMap");
    assert_eq!(
        status["details"]["causes"],
        json!([{
            "reason": "FieldValueInvalid",
            "message": format!("Invalid value: \"Bad_Name\": {dns1123}"),
            "field": "metadata.name"
        }])
    );

    // a body over 3 MiB: 413
    let big = "x".repeat(3 * 1024 * 1024 + 1);
    let body = serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"big": big}
    }))
    .unwrap();
    let r = p.curl(
        true,
        "POST",
        CM_PATH,
        Some(&body),
        &["-H", "Content-Type: application/json"],
    );
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(500)]);
    let status = r.json();
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(
        status["message"],
        "Request entity too large: limit is 3145728"
    );
    let file = p.data_dir.with_file_name("big.json");
    std::fs::write(&file, &body).unwrap();
    let err = k.err(&["create", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("Request entity too large: limit is 3145728"),
        "{}",
        &err[..err.len().min(500)]
    );

    // a body that is not JSON, YAML or protobuf: 415
    let r = p.curl(
        true,
        "POST",
        CM_PATH,
        Some(b"name=x"),
        &["-H", "Content-Type: text/plain"],
    );
    assert_eq!(r.status, 415, "{r:?}");
    let status = r.json();
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert!(
        status["message"].as_str().unwrap_or_default().starts_with(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml"
        ),
        "{status}"
    );
    // JSON that is not an object of this kind: 400
    let r = p.curl(
        true,
        "POST",
        CM_PATH,
        Some(b"{not json"),
        &["-H", "Content-Type: application/json"],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["reason"], "BadRequest");
    // an unknown path: 404 Status
    let r = p.curl(true, "GET", "/api/v1/nosuchthings", None, &[]);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["reason"], "NotFound");

    // nothing of that was stored, and the server is still fine
    // (only the root CA every namespace gets)
    let stored = k.ok(&["get", "cm", "-o", "name"]);
    assert!(
        stored.lines().all(|l| l == "configmap/kube-root-ca.crt"),
        "{stored}"
    );
    assert_eq!(p.readyz(), Some(200));
    k.ok(&["create", "-f", &fixture("pod.yaml")]);
    assert_eq!(k.ok(&["get", "pod", "-o", "name"]), "pod/p\n");
}
