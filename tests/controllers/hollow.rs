//! The join token, token authentication and hollow nodes (`nanokube agent
//! --hollow`): nodes register Ready, Leases renew, pods bound to them run,
//! finish and are deleted, and Nodes stay when the agent dies.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::hollow::*;
use crate::common::*;

fn sha256_file(path: &std::path::Path) -> String {
    let out = run_with_timeout(
        Command::new("sha256sum").arg(path),
        None,
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Runs the agent to its exit; returns (success, stderr).
fn agent_exit(args: &[&str]) -> (bool, String) {
    let out = run_with_timeout(
        Command::new(NANOKUBE).arg("agent").args(args),
        None,
        Duration::from_secs(30),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn curl_status(url: &str, token: &str) -> String {
    let header = format!("Authorization: Bearer {token}");
    let out = run_with_timeout(
        Command::new("curl").args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &header,
            url,
        ]),
        None,
        Duration::from_secs(20),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn token_file_cacerts_and_bearer_auth() {
    let server = Proc::server();
    let token = server_token(&server);
    let ca = server.data_dir.join("server/tls/server-ca.crt");
    let (hash, creds) = token
        .strip_prefix("K10")
        .and_then(|t| t.split_once("::"))
        .unwrap_or_else(|| panic!("token is not K10<hash>::<creds>: {token}"));
    assert_eq!(hash, sha256_file(&ca), "token CA hash");
    let secret = creds
        .strip_prefix("server:")
        .expect("creds are server:<secret>");
    assert!(secret.len() >= 32, "secret {secret:?} too short");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(token_path(&server))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let node_token = std::fs::read_to_string(server.data_dir.join("server/node-token")).unwrap();
    assert_eq!(node_token.trim(), token);
    assert!(
        !server.log().contains(secret),
        "the secret is in the log:\n{}",
        server.log()
    );

    // /cacerts: anonymous, the CA file byte for byte.
    let out = run_with_timeout(
        Command::new("curl").args(["-sk", &format!("{}/cacerts", server.api_url())]),
        None,
        Duration::from_secs(20),
    );
    assert_eq!(out.stdout, std::fs::read(&ca).unwrap());

    let nodes = format!("{}/api/v1/nodes", server.api_url());
    for ok in [token.clone(), secret.to_string(), format!("node:{secret}")] {
        assert_eq!(curl_status(&nodes, &ok), "200", "token {ok}");
    }
    for bad in ["wrong", "node:wrong", &format!("K10{hash}::server:wrong")] {
        assert_eq!(curl_status(&nodes, bad), "401", "token {bad}");
    }
}

#[test]
fn agent_refuses_bad_tokens_and_flags() {
    let server = Proc::server();
    let token = server_token(&server);
    let url = server.api_url();
    let (hash, _) = token.strip_prefix("K10").unwrap().split_once("::").unwrap();

    let wrong_secret = format!("K10{hash}::server:wrong");
    let (ok, err) = agent_exit(&["--hollow", "--server", &url, "--token", &wrong_secret]);
    assert!(!ok && err.contains("401"), "wrong secret: {err}");

    let other_hash = format!("K10{}::server:whatever", "0".repeat(64));
    let (ok, err) = agent_exit(&["--hollow", "--server", &url, "--token", &other_hash]);
    assert!(
        !ok && err.contains("man-in-the-middle"),
        "wrong CA hash: {err}"
    );
    assert_eq!(
        err.trim()
            .lines()
            .last()
            .map(|l| l.contains("man-in-the-middle")),
        Some(true)
    );

    let (ok, err) = agent_exit(&["--hollow", "--token", &token]);
    assert!(!ok && err.contains("--server"), "no server: {err}");
    // Without --hollow the agent joins as a real node (tests/node/agent_join.rs).

    // A server given --token uses that secret.
    let own = Proc::server_with(|_| vec!["--token".into(), "my-secret".into()]);
    assert!(server_token(&own).ends_with("::server:my-secret"));
}

fn lease_renew_times(server: &Proc, names: &[String]) -> Vec<String> {
    let list = kubectl(server).json(&["get", "leases", "-n", "kube-node-lease"]);
    names
        .iter()
        .map(|n| {
            let lease = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["metadata"]["name"] == n.as_str())
                .unwrap_or_else(|| panic!("no lease for {n}: {list}"));
            assert_eq!(lease["spec"]["holderIdentity"], n.as_str());
            assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
            assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
            lease["spec"]["renewTime"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn hollow_nodes_register_renew_idle_and_outlive_the_agent() {
    let server = Proc::server();
    let mut agent = hollow_agent(&server, 3, &["--hollow-cpu", "8"]);
    assert_eq!(agent.nodes, hollow_node_names(HOLLOW_PREFIX, 3));
    let node = kubectl(&server).json(&["get", "node", &agent.nodes[2]]);
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["node.kubernetes.io/instance-type"], "hollow");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/hostname"], agent.nodes[2].as_str());
    let status = &node["status"];
    assert_eq!(status["capacity"]["cpu"], "8");
    assert_eq!(status["allocatable"]["pods"], "110");
    assert_eq!(status["nodeInfo"]["kubeletVersion"], "v1.33.0-nanokube");
    assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    assert_eq!(status["addresses"][0]["type"], "InternalIP");

    // Leases renew every 10 s; between renewals nothing else is written:
    // the Nodes keep their resourceVersion (status goes out every 5 min).
    let mut before = lease_renew_times(&server, &agent.nodes);
    let mut node_versions = None;
    for round in 0..2 {
        let renewed = poll_until(Duration::from_secs(25), Duration::from_millis(500), || {
            let now = lease_renew_times(&server, &agent.nodes);
            now.iter().zip(&before).all(|(a, b)| a > b)
        });
        assert!(
            renewed,
            "leases did not renew (round {round}); agent stderr:\n{}",
            agent.log()
        );
        before = lease_renew_times(&server, &agent.nodes);
        let versions = node_resource_versions(&server, &agent.nodes);
        if let Some(earlier) = node_versions.replace(versions.clone()) {
            assert_eq!(
                earlier, versions,
                "an idle hollow node wrote more than its lease"
            );
        }
    }
    agent.assert_alive();

    // SIGTERM stops the agent cleanly; its Nodes stay, as a kubelet's do.
    let status = agent.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "agent exit {status}; stderr:\n{}",
        agent.log()
    );
    let ready = node_readiness(&server);
    for n in &agent.nodes {
        assert!(ready.contains_key(n), "node {n} vanished with the agent");
    }
}

fn node_resource_versions(server: &Proc, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let node = kubectl(server).json(&["get", "node", n]);
            node["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn pod_yaml(name: &str, node: &str, policy: &str, annotations: &[(&str, &str)]) -> String {
    let ann: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("{k}: {v:?}"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{{}}}\nspec:\n  \
         nodeName: {node}\n  restartPolicy: {policy}\n  containers:\n  - name: app\n    image: busybox\n",
        ann.join(", ")
    )
}

fn wait_pod(
    server: &Proc,
    name: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pod = kubectl(server).json(&["get", "pod", name]);
        if cond(&pod) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "pod {name} not {what}: {}",
            pod["status"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ready(pod: &serde_json::Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn pods_on_hollow_nodes_run_finish_and_delete() {
    let server = Proc::server();
    let agent = hollow_agent(
        &server,
        2,
        &["--node-name", "pods", "--hollow-run-seconds", "1"],
    );
    let node = &agent.nodes[1];
    let k = kubectl(&server);
    k.create_yaml(&pod_yaml("web", node, "Always", &[]));
    let created = Instant::now();
    k.create_yaml(&pod_yaml("slow", node, "Always", &[(READY_AFTER, "5")]));
    k.create_yaml(&pod_yaml("ok", node, "Never", &[(EXIT_CODE, "0")]));
    k.create_yaml(&pod_yaml("bad", node, "Never", &[(EXIT_CODE, "1")]));

    let web = wait_pod(&server, "web", "Running and Ready", |p| {
        p["status"]["phase"] == "Running" && ready(p)
    });
    let ip = web["status"]["podIP"].as_str().unwrap_or_default();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "podIP {ip:?}");
    assert_eq!(web["status"]["podIPs"][0]["ip"], ip);
    assert_eq!(web["status"]["hostIP"], "198.18.0.2");
    let cs = &web["status"]["containerStatuses"][0];
    assert_eq!(cs["imageID"], "hollow://busybox");
    assert!(cs["state"]["running"]["startedAt"].is_string());

    let slow = wait_pod(&server, "slow", "Running", |p| {
        p["status"]["phase"] == "Running"
    });
    if created.elapsed() < Duration::from_secs(4) {
        assert!(!ready(&slow), "ready before its 5 s: {}", slow["status"]);
    }
    wait_pod(&server, "slow", "Ready", ready);
    assert!(created.elapsed() >= Duration::from_secs(5));

    let ok = wait_pod(&server, "ok", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let t = &ok["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "Completed");
    let bad = wait_pod(&server, "bad", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    });
    let t = &bad["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (t["reason"].as_str(), t["exitCode"].as_i64()),
        (Some("Error"), Some(1))
    );

    let started = Instant::now();
    k.ok(&["delete", "pod", "web", "slow", "--timeout=20s"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "delete took {:?}",
        started.elapsed()
    );
    let left = k.ok(&["get", "pods", "-o", "name"]);
    assert!(!left.contains("pod/web"), "{left}");

    // Node loss: the agent dies; its Nodes and pods stay behind.
    let mut agent = agent;
    agent.kill();
    let ready = node_readiness(&server);
    assert!(
        agent.nodes.iter().all(|n| ready.contains_key(n)),
        "{ready:?}"
    );
    let ok = kubectl(&server).json(&["get", "pod", "ok"]);
    assert_eq!(ok["status"]["phase"], "Succeeded");
}

#[test]
fn a_restarted_agent_adopts_its_nodes_and_pods() {
    let server = Proc::server();
    let mut agent = hollow_agent(&server, 1, &["--node-name", "again"]);
    let node = agent.nodes[0].clone();
    let k = kubectl(&server);
    k.create_yaml(&pod_yaml("keep", &node, "Always", &[]));
    let before = wait_pod(&server, "keep", "Ready", ready);
    agent.kill();

    let _agent = hollow_agent(&server, 1, &["--node-name", "again"]);
    k.create_yaml(&pod_yaml("new", &node, "Always", &[]));
    let new = wait_pod(&server, "new", "Ready", ready);
    let after = kubectl(&server).json(&["get", "pod", "keep"]);
    assert_eq!(after["status"]["podIP"], before["status"]["podIP"]);
    assert_ne!(new["status"]["podIP"], before["status"]["podIP"]);
    // Already reported as it is: not written again.
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}
