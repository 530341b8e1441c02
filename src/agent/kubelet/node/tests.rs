//! The node against the in-process API (no containerd: the CRI socket does
//! not exist, so the runtime reads as down until the test says otherwise).

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::api::{Api, ServiceNetwork};
use crate::client::{Local, PatchType, ResourceId};
use crate::datastore::{SqliteBackend, SqliteOptions};

async fn local() -> (Local, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
    let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
        .await
        .unwrap();
    api.bootstrap("127.0.0.1".parse().unwrap(), 6443)
        .await
        .unwrap();
    (Local::new(api), dir)
}

fn settings(agent_dir: &std::path::Path) -> NodeSettings {
    NodeSettings {
        name: "Test-Node".into(),
        node_ip: Some("10.99.0.1".parse().unwrap()),
        labels: vec!["team=a".into()],
        taints: vec!["dedicated=x:NoSchedule".into()],
        max_pods: 42,
        kube_reserved: Some("cpu=100m,memory=100Mi".into()),
        system_reserved: None,
        kubelet_port: 10250,
        server_role: true,
        agent_dir: agent_dir.to_path_buf(),
        image_gc_high: 85,
        image_gc_low: 80,
        eviction_hard: None,
        protected_images: vec![],
    }
}

fn down() -> RuntimeStatus {
    RuntimeStatus {
        healthy: Err("connection refused".into()),
        version: "containerd://1.6.20".into(),
    }
}

/// Polls `get` until `ok` holds (10 s at most).
async fn until<F, Fut>(what: &str, mut get: F, ok: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Value>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = get().await;
        if let Some(v) = v.filter(|v| ok(v)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready(node: &Value) -> &Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn registers_reports_follows_and_adopts() {
    let (client, _db) = local().await;
    let agent = tempfile::tempdir().unwrap();
    let nodes = ResourceId::new("", "v1", "nodes");
    let leases = ResourceId::new("coordination.k8s.io", "v1", "leases");
    let cri = Cri::new("unix:///nonexistent/nanokube-test/cri.sock").unwrap();
    let (rt_tx, rt_rx) = channel::channel(down());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = start(
        client.clone(),
        settings(agent.path()),
        cri.clone(),
        rt_rx,
        async {
            let _ = stop_rx.await;
        },
    )
    .await
    .unwrap();
    assert_eq!(handle.shared.name, "test-node");
    assert_eq!(handle.allocatable().pods, 42);
    let get = || async {
        client
            .get(&nodes, None, "test-node")
            .await
            .ok()
            .map(|n| (*n).clone())
    };
    let node = until("a first report", get, |n| ready(n)["status"] == "False").await;
    let msg = ready(&node)["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("container runtime is down: connection refused"),
        "{msg}"
    );
    assert!(msg.contains("container runtime network not ready"), "{msg}");
    assert_eq!(node["metadata"]["labels"]["team"], "a");
    assert_eq!(
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    assert_eq!(node["spec"]["taints"][0]["key"], "dedicated");
    assert_eq!(node["status"]["capacity"]["pods"], "42");
    assert_eq!(node["status"]["addresses"][0]["address"], "10.99.0.1");
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"],
        "containerd://1.6.20"
    );
    assert_eq!(node["status"]["conditions"].as_array().unwrap().len(), 4);
    let lease = client
        .get(&leases, Some("kube-node-lease"), "test-node")
        .await
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "test-node");
    assert_eq!(
        lease["metadata"]["ownerReferences"][0]["uid"],
        node["metadata"]["uid"]
    );

    // Runtime and network come up: Ready.
    rt_tx
        .send(RuntimeStatus {
            healthy: Ok(()),
            version: "containerd://1.6.20".into(),
        })
        .unwrap();
    handle.set_network_ready(Ok(()));
    let node = until("Ready", get, |n| ready(n)["status"] == "True").await;
    assert_eq!(ready(&node)["reason"], "KubeletReady");

    // The IPAM controller assigns a podCIDR.
    let mut cidr = handle.pod_cidr();
    let patch = json!({"spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}});
    client
        .patch(&nodes, None, "test-node", PatchType::Merge, &patch, None)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), cidr.wait_for(|c| c.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handle.pod_cidr().borrow().as_deref(), Some("10.42.7.0/24"));

    // The lifecycle controller marks it Unknown: the node answers at once.
    let mut unknown = node.clone();
    let conds = unknown["status"]["conditions"].as_array_mut().unwrap();
    for c in conds.iter_mut().filter(|c| c["type"] == "Ready") {
        c["status"] = json!("Unknown");
        c["reason"] = json!("NodeStatusUnknown");
    }
    let status = json!({"status": {"conditions": unknown["status"]["conditions"]}});
    client
        .patch(
            &nodes,
            None,
            "test-node",
            PatchType::Merge,
            &status,
            Some("status"),
        )
        .await
        .unwrap();
    let node = until("Ready again", get, |n| ready(n)["reason"] == "KubeletReady").await;
    assert_eq!(ready(&node)["status"], "True");

    // Idle: nothing but the Lease is written.
    let rv = |n: &Value| n["metadata"]["resourceVersion"].clone();
    let before = rv(&node);
    handle.report();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = client.get(&nodes, None, "test-node").await.unwrap();
    assert_eq!(rv(&after), before, "an unchanged status is not written");

    // A restarted kubelet adopts the Node: podCIDR, taints and others' labels stay.
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = settings(agent.path());
    s.taints.clear();
    s.labels = vec!["team=b".into()];
    let label = json!({"metadata": {"labels": {"owner": "ops"}}});
    client
        .patch(&nodes, None, "test-node", PatchType::Merge, &label, None)
        .await
        .unwrap();
    let (_rt_tx2, rt_rx2) = channel::channel(down());
    let handle2 = start(client.clone(), s, cri, rt_rx2, std::future::pending())
        .await
        .unwrap();
    let node = until("re-adoption", get, |n| {
        n["metadata"]["labels"]["team"] == "b"
    })
    .await;
    assert_eq!(node["metadata"]["labels"]["owner"], "ops");
    assert_eq!(node["spec"]["podCIDR"], "10.42.7.0/24");
    assert_eq!(node["spec"]["taints"][0]["key"], "dedicated");
    let mut cidr = handle2.pod_cidr();
    tokio::time::timeout(Duration::from_secs(10), cidr.wait_for(|c| c.is_some()))
        .await
        .unwrap()
        .unwrap();
    until("not ready again", get, |n| ready(n)["status"] == "False").await;
}

#[test]
fn bad_settings_are_refused_with_clear_errors() {
    let dir = std::path::Path::new("/tmp");
    let err = |f: &dyn Fn(&mut NodeSettings)| {
        let mut s = settings(dir);
        f(&mut s);
        run::prepare(&s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(
        err(&|s| s.name = "under_score".into()).starts_with("invalid node name \"under_score\"")
    );
    assert!(err(&|s| s.taints = vec!["k=v:Never".into()]).contains("--node-taint"));
    assert!(err(&|s| s.labels = vec!["nokey".into()]).contains("--node-label"));
    assert!(err(&|s| s.kube_reserved = Some("cpu=lots".into())).contains("--kube-reserved"));
    assert!(err(&|s| s.image_gc_low = 90).contains("--image-gc-low-threshold"));
    assert!(
        err(&|s| s.eviction_hard = Some("nodefs.available<0%".into())).contains("--eviction-hard")
    );
    assert!(err(&|s| s.node_ip = Some("127.0.0.1".parse().unwrap())).contains("loopback"));
    assert_eq!(err(&|_| {}), "");
}
