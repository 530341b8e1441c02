//! The official Python `kubernetes` client against `nanokube server`:
//! list, create, patch, replace, delete and watch pods and deployments
//! (`tests/fixtures/python_client.py`).

use std::process::Command;

use crate::common::Proc;
use serde_json::{json, Value};

/// The `kubernetes` package version `python` imports, if it does.
fn kubernetes_version(python: &str) -> Option<String> {
    let out = crate::common::run_with_timeout(
        Command::new(python).args(["-c", "import kubernetes; print(kubernetes.__version__)"]),
        None,
        crate::common::CLIENT_TIMEOUT,
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The interpreters to run the script with: `python3` on PATH (required,
/// with the `kubernetes` package: the test fails, never skips, without it)
/// and `/usr/bin/python3` when it is another one that has the package
/// (Debian's python3-kubernetes is an older client generation).
fn interpreters() -> Vec<(String, String)> {
    crate::common::require_tool("python3", "python3");
    let path_version = kubernetes_version("python3").unwrap_or_else(|| {
        panic!(
            "the Python package `kubernetes` is not installed for python3 but this test \
             needs it: apt-get install -y python3-kubernetes (Debian), or pip install kubernetes"
        )
    });
    let mut all = vec![("python3".to_string(), path_version)];
    let which = crate::common::run_with_timeout(
        Command::new("python3").args(["-c", "import sys; print(sys.executable)"]),
        None,
        crate::common::CLIENT_TIMEOUT,
    );
    let exe = String::from_utf8_lossy(&which.stdout).trim().to_string();
    let system = "/usr/bin/python3";
    let same = std::fs::canonicalize(&exe).ok() == std::fs::canonicalize(system).ok();
    if !same && std::path::Path::new(system).exists() {
        if let Some(v) = kubernetes_version(system) {
            all.push((system.to_string(), v));
        }
    }
    all
}

#[test]
fn python_client_lists_creates_patches_deletes_and_watches() {
    for (python, version) in interpreters() {
        println!("{python}: kubernetes client {version}");
        run_script(&python, &version);
    }
}

fn run_script(python: &str, version: &str) {
    let p = Proc::server();
    let script = format!(
        "{}/tests/fixtures/python_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = crate::common::run_with_timeout(
        Command::new(python)
            .arg(&script)
            .arg(p.kubeconfig())
            // no proxies: the traffic stays on 127.0.0.1
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env("NO_PROXY", "127.0.0.1"),
        None,
        crate::common::CLIENT_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python_client.py ({python}, client {version}) failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\nserver stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        p.log()
    );
    let got: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("python_client.py printed no JSON ({e}):\n{stdout}"));
    println!("{python} (client {version}) saw: {got}");
    let ctx = format!("{python}, kubernetes client {version}");

    assert!(
        got["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.")),
        "{got}"
    );
    assert_eq!(
        got["namespaces"],
        json!([
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "py"
        ])
    );
    assert_eq!(got["pods_before"], json!([]));
    assert_eq!(
        got["pod_created"],
        json!({"phase": "Pending", "node": null, "restart_policy": "Always", "uid_len": 36})
    );
    assert_eq!(got["pod_labels"], json!({"app": "p1", "tier": "x"}));
    assert_eq!(got["pod_annotations"], json!({"a": "b"}));
    assert_eq!(got["pods_selected"], json!(["p1"]));
    assert_eq!(
        got["pods_after"],
        json!([]),
        "an unscheduled pod is deleted at once"
    );
    // The script's two changes, plus the scheduler's PodScheduled=False
    // status when it ran in between (no nodes here), in order.
    let events = got["pod_events"].as_array().cloned().unwrap_or_default();
    let modified = events.iter().filter(|e| e[0] == "MODIFIED").count();
    assert!(
        events.first() == Some(&json!(["ADDED", "p1"]))
            && events.last() == Some(&json!(["DELETED", "p1"]))
            && (2..=3).contains(&modified)
            && events.len() == modified + 2,
        "{ctx}: the watch from the list's resourceVersion (python sends watch=True): {events:?}"
    );
    assert_eq!(got["pod_read_after_delete"], 404);

    assert_eq!(
        got["deployment_created"],
        json!({"replicas": 1, "strategy": "RollingUpdate", "generation": 1})
    );
    assert_eq!(
        got["deployment_patched"],
        json!({"replicas": 3, "generation": 2})
    );
    assert_eq!(got["scale"], 2);
    assert_eq!(
        got["deployment_replaced"],
        json!({"image": "nginx:1.26", "replicas": 2})
    );
    // The script's three changes and the deployment controller's status
    // writes, between the creation and the deletion.
    let events = got["deployment_events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let modified = events.iter().filter(|e| e[0] == "MODIFIED").count();
    assert!(
        events.first() == Some(&json!(["ADDED", "web"]))
            && events.last() == Some(&json!(["DELETED", "web"]))
            && modified >= 3
            && events.len() == modified + 2,
        "{ctx}: {events:?}"
    );
    assert_eq!(got["quiet_watch"]["events"], 0);
    let secs = got["quiet_watch"]["seconds"].as_f64().unwrap();
    assert!(
        (0.9..5.0).contains(&secs),
        "{ctx}: a watch with timeout_seconds=1 lasted {secs} s"
    );
    assert_eq!(got["invalid"], json!({"status": 422, "reason": "Invalid"}));
}
