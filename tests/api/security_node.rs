//! The Node authorizer and NodeRestriction admission with real kubectl and
//! a kubelet's client certificate (`system:node:n1` in `system:nodes`,
//! signed by the server's client CA): the node updates its own Node and
//! Lease, reads only the secrets and configmaps its pods use (following
//! pods as they come and go), and is refused everything else with
//! upstream's messages.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::users::user_kubeconfig;
use crate::common::{
    kubectl_path, poll_until, run_with_timeout, Proc, KUBECTL_NEWEST, KUBECTL_OLDEST,
};
use serde_json::json;

/// kubectl `version` as the user of kubeconfig `cfg`: (success, stdout + stderr).
fn kubectl_as(server: &Proc, version: &str, cfg: &PathBuf, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(kubectl_path(version));
    cmd.arg("--kubeconfig")
        .arg(cfg)
        .arg("--cache-dir")
        .arg(
            server
                .data_dir
                .with_file_name(format!("nodecache-{version}")),
        )
        .args(args)
        .env_remove("KUBECONFIG");
    let out = run_with_timeout(&mut cmd, None, crate::common::CLIENT_TIMEOUT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn allowed(server: &Proc, cfg: &PathBuf, args: &[&str]) -> String {
    let (ok, out) = kubectl_as(server, KUBECTL_NEWEST, cfg, args);
    assert!(ok, "kubectl {args:?} as the node failed:\n{out}");
    out
}

/// Asserts kubectl fails with exactly `message` after `Error from server (Forbidden): `.
fn forbidden(server: &Proc, version: &str, cfg: &PathBuf, args: &[&str], message: &str) {
    let (ok, out) = kubectl_as(server, version, cfg, args);
    assert!(
        !ok,
        "kubectl {version} {args:?} as the node succeeded:\n{out}"
    );
    let want = format!("Error from server (Forbidden): {message}");
    assert!(
        out.lines().any(|l| l == want),
        "kubectl {version} {args:?}: expected\n{want}\ngot:\n{out}"
    );
}

/// A kubelet's status write: GET the object at `path`, let `change` edit
/// it, PUT it to `path/status` (`kubectl replace --raw`).
fn put_status(
    server: &Proc,
    version: &str,
    cfg: &PathBuf,
    path: &str,
    change: impl Fn(&mut serde_json::Value),
) -> (bool, String) {
    let (ok, out) = kubectl_as(server, version, cfg, &["get", "--raw", path]);
    assert!(ok, "GET {path} as the node: {out}");
    let mut obj: serde_json::Value = serde_json::from_str(&out).unwrap();
    change(&mut obj);
    let file = server.data_dir.with_file_name("status.json");
    std::fs::write(&file, obj.to_string()).unwrap();
    let status = format!("{path}/status");
    kubectl_as(
        server,
        version,
        cfg,
        &["replace", "--raw", &status, "-f", file.to_str().unwrap()],
    )
}

fn node(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}).to_string()
}

/// A pod bound to `node` (no scheduler or kubelet runs) using `secret` as
/// a volume and `configmap` through an environment variable.
fn pod(name: &str, node: &str, secret: &str, configmap: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "c", "image": "busybox",
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": configmap, "key": "k"}}}],
                "volumeMounts": [{"name": "s", "mountPath": "/s"}],
            }],
            "volumes": [{"name": "s", "secret": {"secretName": secret}}],
        },
    })
    .to_string()
}

fn no_relationship(kind: &str, verb: &str, name: &str) -> String {
    format!(
        "{kind} \"{name}\" is forbidden: User \"system:node:n1\" cannot {verb} resource \"{kind}\" \
         in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    )
}

#[test]
fn node_reaches_only_its_own_objects() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    for n in ["n1", "n2"] {
        k.stdin_ok(&["create", "-f", "-"], &node(n));
    }
    for (kind, name) in [("secret", "s1"), ("secret", "s2"), ("secret", "s3")] {
        k.ok(&["create", kind, "generic", name, "--from-literal=k=v"]);
    }
    for name in ["c1", "c2"] {
        k.ok(&["create", "configmap", name, "--from-literal=k=v"]);
    }
    k.stdin_ok(&["create", "-f", "-"], &pod("p1", "n1", "s1", "c1"));
    k.stdin_ok(&["create", "-f", "-"], &pod("p2", "n2", "s2", "c2"));
    let n1 = user_kubeconfig(&server, "system:node:n1", &["system:nodes"]);

    // Its own Node status, and not another node's (GET, then PUT of the
    // status subresource, as a kubelet does).
    let ready = |node: &mut serde_json::Value| {
        node["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
            "reason": "KubeletReady", "message": "kubelet is posting ready status"}]);
    };
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let (ok, out) = put_status(&server, version, &n1, "/api/v1/nodes/n1", ready);
        assert!(ok, "kubectl {version} put own node status: {out}");
        let (ok, out) = put_status(&server, version, &n1, "/api/v1/nodes/n2", ready);
        assert!(!ok, "kubectl {version} put n2 status as n1: {out}");
        assert!(
            out.contains(
                "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
            ),
            "kubectl {version}: {out}"
        );
    }
    let ready = k.ok(&[
        "get",
        "node",
        "n1",
        "-o",
        "jsonpath={.status.conditions[0].reason}",
    ]);
    assert_eq!(ready, "KubeletReady");

    // Its own labels within the kubelet's set; not reserved ones, not taints.
    allowed(
        &server,
        &n1,
        &[
            "label",
            "node",
            "n1",
            "example.com/pool=a",
            "kubernetes.io/os=linux",
        ],
    );
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["label", "node", "n1", "node-role.kubernetes.io/worker=true"],
        "nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/worker",
    );
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["taint", "node", "n1", "dedicated=x:NoSchedule"],
        "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints",
    );

    // Secrets and configmaps: only those its pods use; never lists.
    let value = allowed(
        &server,
        &n1,
        &["get", "secret", "s1", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(value, "dg==");
    allowed(&server, &n1, &["get", "configmap", "c1"]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        forbidden(
            &server,
            version,
            &n1,
            &["get", "secret", "s2"],
            &no_relationship("secrets", "get", "s2"),
        );
    }
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["get", "configmap", "c2"],
        &no_relationship("configmaps", "get", "c2"),
    );
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["get", "secrets"],
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" \
         in the namespace \"default\": No Object name found",
    );
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["delete", "secret", "s1"],
        "secrets \"s1\" is forbidden: User \"system:node:n1\" cannot delete resource \"secrets\" in API group \"\" \
         in the namespace \"default\": can only read resources of this type",
    );

    // The graph follows pods: a new pod on n1 opens s3, its deletion closes it.
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["get", "secret", "s3"],
        &no_relationship("secrets", "get", "s3"),
    );
    k.stdin_ok(&["create", "-f", "-"], &pod("p3", "n1", "s3", "c1"));
    let opened = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        kubectl_as(&server, KUBECTL_NEWEST, &n1, &["get", "secret", "s3"]).0
    });
    assert!(opened, "a pod bound to n1 using s3 did not let n1 read s3");
    k.ok(&["delete", "pod", "p3", "--grace-period=0", "--force"]);
    let closed = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        !kubectl_as(&server, KUBECTL_NEWEST, &n1, &["get", "secret", "s3"]).0
    });
    assert!(closed, "n1 still reads s3 after its pod is gone");
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["get", "secret", "s3"],
        &no_relationship("secrets", "get", "s3"),
    );

    // Pods: status and deletion of its own only; no regular pods.
    let seen = |pod: &mut serde_json::Value| pod["status"]["message"] = json!("seen");
    let (ok, out) = put_status(
        &server,
        KUBECTL_NEWEST,
        &n1,
        "/api/v1/namespaces/default/pods/p1",
        seen,
    );
    assert!(ok, "put status of its own pod: {out}");
    let (ok, out) = put_status(
        &server,
        KUBECTL_NEWEST,
        &n1,
        "/api/v1/namespaces/default/pods/p2",
        seen,
    );
    assert!(
        !ok && out.contains(
            "pods \"p2\" is forbidden: node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
        ),
        "{out}"
    );
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["delete", "pod", "p2"],
        "pods \"p2\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set to itself",
    );
    let plain = run_with_timeout(
        std::process::Command::new(kubectl_path(KUBECTL_NEWEST))
            .arg("--kubeconfig")
            .arg(&n1)
            .args(["create", "-f", "-"])
            .env_remove("KUBECONFIG"),
        Some(pod("p4", "n1", "s1", "c1").as_bytes()),
        crate::common::CLIENT_TIMEOUT,
    );
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        err.contains(
            "pods \"p4\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, \
             node \"n1\" can only create mirror pods"
        ),
        "{err}"
    );

    // Tokens only bound to a pod on the node; evictions only of its pods.
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["create", "token", "default"],
    );
    assert!(
        !ok && out.contains(
            "failed to create token: serviceaccounts \"default\" is forbidden: node requested token not bound to a pod"
        ),
        "{out}"
    );
    let uid = |pod: &str| k.ok(&["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]);
    let bound = |pod: &str, uid: &str| {
        let args = [
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            &format!("--bound-object-name={pod}"),
            &format!("--bound-object-uid={uid}"),
        ];
        kubectl_as(
            &server,
            KUBECTL_NEWEST,
            &n1,
            &args.iter().map(|s| s.as_ref()).collect::<Vec<&str>>(),
        )
    };
    let (ok, out) = bound("p1", &uid("p1"));
    assert!(
        ok && out.trim().split('.').count() == 3,
        "token bound to p1: {out}"
    );
    let (ok, out) = bound("p2", &uid("p2"));
    assert!(
        !ok && out.contains(
            "serviceaccounts \"default\" is forbidden: node requested token bound to a pod scheduled on a different node"
        ),
        "{out}"
    );
    let eviction = server.data_dir.with_file_name("eviction.json");
    std::fs::write(
        &eviction,
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
               "metadata": {"name": "p2", "namespace": "default"}})
        .to_string(),
    )
    .unwrap();
    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/p2/eviction",
            "-f",
            eviction.to_str().unwrap(),
        ],
        "pods \"p2\" is forbidden: node n1 can only evict pods with spec.nodeName set to itself",
    );

    // Its own Lease in kube-node-lease, no other.
    let lease = |name: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": name, "namespace": "kube-node-lease"},
               "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}})
        .to_string()
    };
    let create_lease = |name: &str| {
        run_with_timeout(
            std::process::Command::new(kubectl_path(KUBECTL_NEWEST))
                .arg("--kubeconfig")
                .arg(&n1)
                .args(["create", "-f", "-"])
                .env_remove("KUBECONFIG"),
            Some(lease(name).as_bytes()),
            crate::common::CLIENT_TIMEOUT,
        )
    };
    let own = create_lease("n1");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let other = create_lease("n2");
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success()
            && err.contains(
                "leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the same name as the requesting node"
            ),
        "{err}"
    );

    forbidden(
        &server,
        KUBECTL_NEWEST,
        &n1,
        &["get", "lease", "n2", "-n", "kube-node-lease"],
        "leases.coordination.k8s.io \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"leases\" \
         in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": \
         can only access node lease with the same name as the requesting node",
    );
    allowed(
        &server,
        &n1,
        &["get", "lease", "n1", "-n", "kube-node-lease"],
    );

    // Not a node without the group: the Node authorizer has no opinion.
    let pretender = user_kubeconfig(&server, "system:node:n1", &["pretenders"]);
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &pretender,
        &["get", "secret", "s1"],
    );
    assert!(!ok && out.contains("Forbidden"), "{out}");
    assert!(!out.contains("relationship"), "{out}");
}
