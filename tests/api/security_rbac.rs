//! RBAC with real kubectl (1.27 and 1.33): client-certificate users bound
//! to the default roles, `auth can-i` (SelfSubjectAccessReview, rules
//! review, impersonated), `auth whoami`, escalation prevention, the
//! aggregation controller and a service-account token limited to its Role.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::users::{token_kubeconfig, user_kubeconfig};
use crate::common::{kubectl_path, run_with_timeout, Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};
use serde_json::json;

/// kubectl `version` with kubeconfig `cfg` (its own discovery cache).
fn kubectl_as(server: &Proc, version: &str, cfg: &Path, args: &[&str]) -> Output {
    let file = cfg.file_name().unwrap().to_string_lossy().to_string();
    let mut cmd = std::process::Command::new(kubectl_path(version));
    cmd.arg("--kubeconfig")
        .arg(cfg)
        .arg("--cache-dir")
        .arg(
            server
                .data_dir
                .with_file_name(format!("cache-{file}-{version}")),
        )
        .args(args)
        .env_remove("KUBECONFIG");
    run_with_timeout(&mut cmd, None, crate::common::CLIENT_TIMEOUT)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(server: &Proc, version: &str, cfg: &Path, args: &[&str]) -> String {
    let out = kubectl_as(server, version, cfg, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(server: &Proc, version: &str, cfg: &Path, args: &[&str]) -> String {
    let out = kubectl_as(server, version, cfg, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `auth can-i <check>` answers yes for `cfg` (bindings reach
/// the authorizer through the watch cache).
fn wait_can(server: &Proc, cfg: &Path, check: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut args = vec!["auth", "can-i"];
    args.extend_from_slice(check);
    loop {
        let out = kubectl_as(server, KUBECTL_NEWEST, cfg, &args);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never allowed {check:?}: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn admin_apply(server: &Proc, yaml: &str) {
    server
        .kubectl(KUBECTL_NEWEST)
        .stdin_ok(&["apply", "-f", "-"], yaml);
}

fn setup_namespaces(server: &Proc) {
    let k = server.kubectl(KUBECTL_NEWEST);
    k.namespace("a");
    k.namespace("b");
    for ns in ["a", "b"] {
        k.ok(&["run", "web", "-n", ns, "--image=busybox", "--restart=Never"]);
    }
}

#[test]
fn view_user_reads_only_its_namespace() {
    let server = Proc::server();
    setup_namespaces(&server);
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "-n",
        "a",
        "--clusterrole=view",
        "--user=alice",
    ]);
    let alice = user_kubeconfig(&server, "alice", &["dev"]);
    wait_can(&server, &alice, &["list", "pods", "-n", "a"]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let pods = ok(
            &server,
            version,
            &alice,
            &["get", "pods", "-n", "a", "-o", "name"],
        );
        assert_eq!(pods.trim(), "pod/web", "{version}");
        let err = refused(
            &server,
            version,
            &alice,
            &["delete", "pod", "web", "-n", "a"],
        );
        assert!(
            err.contains(
                "Error from server (Forbidden): pods \"web\" is forbidden: User \"alice\" \
                 cannot delete resource \"pods\" in API group \"\" in the namespace \"a\""
            ),
            "{version}: {err}"
        );
        let err = refused(&server, version, &alice, &["get", "pods", "-n", "b"]);
        assert!(
            err.contains(
                "Error from server (Forbidden): pods is forbidden: User \"alice\" cannot \
                 list resource \"pods\" in API group \"\" in the namespace \"b\""
            ),
            "{version}: {err}"
        );
        // The admin asks on alice's behalf (impersonation + SSAR): admin's verbs.
        let out = k.run(&[
            "auth",
            "can-i",
            "create",
            "deployments",
            "--as=alice",
            "-n",
            "a",
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no", "{out:?}");
        let yes = ok(
            &server,
            version,
            &alice,
            &["auth", "can-i", "watch", "deployments.apps", "-n", "a"],
        );
        assert_eq!(yes.trim(), "yes");

        let who = ok(&server, version, &alice, &["auth", "whoami", "-o", "json"]);
        let who: serde_json::Value = serde_json::from_str(&who).unwrap();
        assert_eq!(who["status"]["userInfo"]["username"], "alice", "{version}");
        let groups = who["status"]["userInfo"]["groups"].as_array().unwrap();
        assert!(groups.contains(&json!("dev")), "{who}");
        assert!(groups.contains(&json!("system:authenticated")), "{who}");
        let table = ok(&server, version, &alice, &["auth", "whoami"]);
        assert!(
            table.contains("Username") && table.contains("alice"),
            "{table}"
        );
    }

    // `auth can-i --list`: the view role's resources plus the basic ones,
    // as upstream prints them.
    let list = ok(
        &server,
        KUBECTL_NEWEST,
        &alice,
        &["auth", "can-i", "--list", "-n", "a"],
    );
    let lines: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ]
    );
    let row = |resource: &str| {
        lines
            .iter()
            .find(|l| l.first() == Some(&resource))
            .unwrap_or_else(|| panic!("no {resource} row in\n{list}"))
            .clone()
    };
    assert_eq!(row("pods"), ["pods", "[]", "[]", "[get", "list", "watch]"]);
    assert_eq!(
        row("deployments.apps"),
        ["deployments.apps", "[]", "[]", "[get", "list", "watch]"]
    );
    assert_eq!(
        row("selfsubjectaccessreviews.authorization.k8s.io"),
        [
            "selfsubjectaccessreviews.authorization.k8s.io",
            "[]",
            "[]",
            "[create]"
        ]
    );
    assert!(
        lines.iter().any(|l| l == &["[/api/*]", "[]", "[get]"]),
        "{list}"
    );
    assert!(
        !list.contains("secrets"),
        "view does not read secrets:\n{list}"
    );
    // In namespace b alice holds only the cluster-wide basics.
    let list_b = ok(
        &server,
        KUBECTL_NEWEST,
        &alice,
        &["auth", "can-i", "--list", "-n", "b"],
    );
    assert!(!list_b.contains("pods"), "{list_b}");

    // The aggregation controller: a new role labelled aggregate-to-view
    // extends view (and through it edit and admin).
    admin_apply(
        &server,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: podtemplates-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- apiGroups: [""]
  resources: [podtemplates]
  verbs: [get, list]
"#,
    );
    wait_can(&server, &alice, &["list", "podtemplates", "-n", "a"]);
    let edit = k.json(&["get", "clusterrole", "admin", "-o", "json"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut admin_rules = edit["rules"].to_string();
    while !admin_rules.contains("podtemplates") {
        assert!(
            Instant::now() < deadline,
            "admin never aggregated podtemplates: {admin_rules}"
        );
        std::thread::sleep(Duration::from_millis(100));
        admin_rules = k.json(&["get", "clusterrole", "admin", "-o", "json"])["rules"].to_string();
    }
}

#[test]
fn escalation_is_refused() {
    let server = Proc::server();
    setup_namespaces(&server);
    // bob may manage Roles and RoleBindings in a, and read pods, no more.
    admin_apply(
        &server,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: role-manager, namespace: a}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, get, list, update, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-manager, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-manager}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#,
    );
    let bob = user_kubeconfig(&server, "bob", &["dev"]);
    wait_can(&server, &bob, &["create", "roles", "-n", "a"]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let err = refused(
            &server,
            version,
            &bob,
            &[
                "create",
                "role",
                "deleter",
                "-n",
                "a",
                "--verb=get,delete",
                "--resource=pods",
            ],
        );
        assert!(
            err.contains(
                "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"bob\" \
                 (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC \
                 permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], \
                 Verbs:[\"delete\"]}"
            ),
            "{version}: {err}"
        );
        // Binding a role bob does not hold (admin) needs `bind`.
        let err = refused(
            &server,
            version,
            &bob,
            &[
                "create",
                "rolebinding",
                "bob-admin",
                "-n",
                "a",
                "--clusterrole=admin",
                "--user=bob",
            ],
        );
        assert!(
            err.contains(
                "rolebindings.rbac.authorization.k8s.io \"bob-admin\" is forbidden: user \"bob\""
            ) && err.contains("is attempting to grant RBAC permissions not currently held:"),
            "{version}: {err}"
        );
    }
    // Within his rights: a reader role and a binding to it.
    ok(
        &server,
        KUBECTL_NEWEST,
        &bob,
        &[
            "create",
            "role",
            "reader",
            "-n",
            "a",
            "--verb=get,list",
            "--resource=pods",
        ],
    );
    ok(
        &server,
        KUBECTL_NEWEST,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-reader",
            "-n",
            "a",
            "--role=reader",
            "--user=carol",
        ],
    );
    // `bind` on one ClusterRole, granted in a namespace, lets bob bind it there.
    admin_apply(
        &server,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: edit-binder, namespace: a}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [edit]
  verbs: [bind]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-binder, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: edit-binder}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#,
    );
    wait_can(&server, &bob, &["bind", "clusterroles/edit", "-n", "a"]);
    ok(
        &server,
        KUBECTL_NEWEST,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-edit",
            "-n",
            "a",
            "--clusterrole=edit",
            "--user=carol",
        ],
    );
    // The admin (system:masters) may grant anything.
    server.kubectl(KUBECTL_NEWEST).ok(&[
        "create",
        "role",
        "deleter",
        "-n",
        "a",
        "--verb=delete",
        "--resource=pods",
    ]);
}

#[test]
fn service_account_token_gets_only_its_role() {
    let server = Proc::server();
    setup_namespaces(&server);
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&["create", "serviceaccount", "reader", "-n", "a"]);
    k.ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "a",
        "--verb=get,list",
        "--resource=pods",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "reader",
        "-n",
        "a",
        "--role=pod-reader",
        "--serviceaccount=a:reader",
    ]);
    let token = k
        .ok(&["create", "token", "reader", "-n", "a"])
        .trim()
        .to_string();
    let cfg = token_kubeconfig(&server, &token, "reader");
    wait_can(&server, &cfg, &["list", "pods", "-n", "a"]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let pods = ok(
            &server,
            version,
            &cfg,
            &["get", "pods", "-n", "a", "-o", "name"],
        );
        assert_eq!(pods.trim(), "pod/web");
        let err = refused(&server, version, &cfg, &["get", "secrets", "-n", "a"]);
        assert!(
            err.contains(
                "secrets is forbidden: User \"system:serviceaccount:a:reader\" cannot list \
                 resource \"secrets\" in API group \"\" in the namespace \"a\""
            ),
            "{err}"
        );
        refused(&server, version, &cfg, &["get", "pods", "-n", "b"]);
        refused(&server, version, &cfg, &["delete", "pod", "web", "-n", "a"]);
    }
    let list = ok(
        &server,
        KUBECTL_NEWEST,
        &cfg,
        &["auth", "can-i", "--list", "-n", "a"],
    );
    let resources: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|r| !r.starts_with('['))
        .collect();
    assert_eq!(
        resources,
        [
            "selfsubjectreviews.authentication.k8s.io",
            "selfsubjectaccessreviews.authorization.k8s.io",
            "selfsubjectrulesreviews.authorization.k8s.io",
            "pods",
        ],
        "{list}"
    );
}

#[test]
fn subject_access_reviews_answer_for_others() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.namespace("a");
    k.ok(&[
        "create",
        "rolebinding",
        "dave-edit",
        "-n",
        "a",
        "--clusterrole=edit",
        "--user=dave",
    ]);
    let sar = |body: serde_json::Value| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = k.stdin_ok(&["create", "-f", "-", "-o", "json"], &body.to_string());
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            if v["status"]["allowed"] == true || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let v = sar(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "dave", "resourceAttributes": {"namespace": "a", "verb": "delete", "resource": "pods"}}}),
    );
    assert_eq!(v["status"]["allowed"], true, "{v}");
    let v = k.stdin_ok(
        &["create", "-f", "-", "-o", "json"],
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "a"},
            "spec": {"user": "dave", "resourceAttributes": {"namespace": "a", "verb": "create", "resource": "roles", "group": "rbac.authorization.k8s.io"}}})
        .to_string(),
    );
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["status"]["allowed"], false, "{v}");
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "a"},
            "spec": {"user": "dave", "resourceAttributes": {"namespace": "b", "verb": "get", "resource": "pods"}}})
        .to_string(),
    );
    assert!(err.contains("must match metadata.namespace"), "{err}");
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})
        .to_string(),
    );
    assert!(
        err.contains("at least one of user or group must be specified"),
        "{err}"
    );
}
