//! A real pod's service-account token: the ServiceAccount admission adds
//! the `kube-api-access-*` projected volume, the kubelet fills it through
//! TokenRequest (token bound to the pod), and the token it mounted
//! authenticates against the API server (from the test, over loopback)
//! until the pod is deleted.

use crate::common::agent::*;
use serde_json::{json, Value};

const NS: &str = "default";
const DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn bearer_status(c: &Cluster, token: &str) -> u16 {
    let header = format!("Authorization: Bearer {token}");
    c.server
        .curl(
            false,
            "GET",
            "/api/v1/namespaces/default/pods",
            None,
            &["-H", &header],
        )
        .status
}

#[test]
fn mounted_token_authenticates_as_the_pod() {
    let c = Cluster::start();
    c.apply_json(&pod_manifest(
        NS,
        "tok",
        json!({"containers": [busybox_container("main", "exec sleep 3600")],
               "terminationGracePeriodSeconds": 1}),
    ));
    let pod: Value = c.wait_running(NS, "tok", POD_TIMEOUT);
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();

    let token = c.exec_ok(NS, "tok", None, &["cat", &format!("{DIR}/token")]);
    let token = token.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "not a jwt: {token}");
    let ns = c.exec_ok(NS, "tok", None, &["cat", &format!("{DIR}/namespace")]);
    assert_eq!(ns.trim(), NS);
    let ca = c.exec_ok(NS, "tok", None, &["cat", &format!("{DIR}/ca.crt")]);
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");

    // Without a grant the account may not list pods (RBAC); with a Role
    // bound to it, it may (once the binding reaches the authorizer).
    assert_eq!(bearer_status(&c, &token), 403);
    c.apply_json(
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
    );
    c.apply_json(
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "default-pod-reader", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}]}),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while bearer_status(&c, &token) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the role never applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                        "spec": {"token": token}});
    let (code, r) = c.api(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&review),
    );
    assert_eq!(code, 201, "{r}");
    let user = &r["status"]["user"];
    assert_eq!(
        user["username"], "system:serviceaccount:default:default",
        "{r}"
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/node-name"],
        json!([c.node])
    );

    c.delete_pod(NS, "tok");
    c.wait_gone(NS, "tok", POD_TIMEOUT);
    assert_eq!(bearer_status(&c, &token), 401);
    c.shutdown();
}
