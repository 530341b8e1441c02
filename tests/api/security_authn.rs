//! Authentication, authorization enforcement, impersonation and the audit
//! log with real kubectl and curl against `nanokube server`: no or bad
//! credentials are a bare 401, health and version stay public, static
//! token users work, RBAC refusals are upstream's 403, `--as` needs the
//! `impersonate` verb, and `--audit-log-path` writes audit.k8s.io/v1 events.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::users::{kubectl_with as kubectl_as, token_kubeconfig, user_kubeconfig};
use crate::common::{Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};
use serde_json::{json, Value};

const TOKENS: &str = "\
tok-admin-0123456789,tina,1001,\"system:masters\"
tok-bob-0123456789,bob,1002
";

fn unauthorized() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
}

fn token_server(extra: &[&str]) -> Proc {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Proc::server_with(move |data_dir| {
        let file = data_dir.with_file_name("tokens.csv");
        std::fs::write(&file, TOKENS).unwrap();
        let mut args = vec![
            "--token-auth-file".to_string(),
            file.to_string_lossy().into_owned(),
        ];
        args.extend(extra);
        args
    })
}

#[test]
fn credentials_are_checked_and_health_stays_public() {
    let server = token_server(&[]);
    // No credential: 401 on resources and discovery, health and version served.
    for path in [
        "/api/v1/pods",
        "/api",
        "/apis/apps/v1/deployments",
        "/metrics",
    ] {
        let r = server.curl(false, "GET", path, None, &[]);
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_eq!(r.json(), unauthorized(), "{path}");
    }
    for path in ["/healthz", "/livez", "/readyz", "/readyz/ping", "/version"] {
        let r = server.curl(false, "GET", path, None, &[]);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    assert_eq!(
        server.curl(false, "GET", "/version", None, &[]).json()["major"],
        "1"
    );
    // Bad credentials of every kind: the same bare 401, never why.
    for header in [
        "Authorization: Bearer tok-nobody",
        "Authorization: Bearer a.b.c",
        "Authorization: Bearer ",
        "Authorization: Basic dGluYTpwdw==",
        "Authorization: Negotiate abc",
    ] {
        let r = server.curl(false, "GET", "/api/v1/pods", None, &["-H", header]);
        assert_eq!(r.status, 401, "{header}: {r:?}");
        assert_eq!(r.json(), unauthorized(), "{header}");
    }
    // A bad credential is refused even on health paths, as upstream.
    let r = server.curl(
        false,
        "GET",
        "/healthz",
        None,
        &["-H", "Authorization: Bearer tok-nobody"],
    );
    assert_eq!(r.status, 401, "{r:?}");

    // Static token users, with kubectl old and new.
    let admin = token_kubeconfig(&server, "tok-admin-0123456789", "tina");
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let (ok, out) = kubectl_as(
            &server,
            version,
            &admin,
            &["get", "namespaces", "-o", "name"],
        );
        assert!(ok && out.contains("namespace/default"), "{version}: {out}");
    }
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &admin,
        &["auth", "whoami", "-o", "json"],
    );
    assert!(ok, "{out}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "tina", "{who}");
    assert_eq!(who["status"]["userInfo"]["uid"], "1001", "{who}");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );

    // bob is authenticated but RBAC grants him nothing here: upstream's 403.
    let bob = token_kubeconfig(&server, "tok-bob-0123456789", "bob");
    let (ok, out) = kubectl_as(&server, KUBECTL_NEWEST, &bob, &["get", "pods"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{out}"
    );
    let (ok, out) = kubectl_as(&server, KUBECTL_NEWEST, &bob, &["get", "--raw", "/api"]);
    assert!(
        ok && out.contains("APIVersions"),
        "discovery for bob: {out}"
    );
    let bob_raw = |path: &str| {
        server.curl(
            false,
            "GET",
            path,
            None,
            &["-H", "Authorization: Bearer tok-bob-0123456789"],
        )
    };
    let r = bob_raw("/apis/apps/v1/namespaces/a/deployments/web");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"web\" is forbidden: User \"bob\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"a\"",
               "reason": "Forbidden",
               "details": {"name": "web", "group": "apps", "kind": "deployments"},
               "code": 403})
    );
    let r = bob_raw("/metrics");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.json()["message"],
        "forbidden: User \"bob\" cannot get path \"/metrics\""
    );
}

#[test]
fn anonymous_requests_reach_rbac_when_allowed() {
    let server = Proc::server_with(|_| vec!["--anonymous-auth=true".into()]);
    let r = server.curl(false, "GET", "/api/v1/namespaces", None, &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
               "reason": "Forbidden", "details": {"kind": "namespaces"}, "code": 403})
    );
    for path in ["/healthz", "/readyz", "/version"] {
        assert_eq!(
            server.curl(false, "GET", path, None, &[]).status,
            200,
            "{path}"
        );
    }
    // A bad credential is still a 401, not anonymous.
    let r = server.curl(
        false,
        "GET",
        "/api/v1/namespaces",
        None,
        &["-H", "Authorization: Bearer nope"],
    );
    assert_eq!(r.status, 401, "{r:?}");
}

#[test]
fn impersonation_needs_the_impersonate_verb() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&["create", "namespace", "a"]);
    k.ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "a",
    ]);
    // The admin may impersonate anyone; alice's own rights then apply.
    let out = k.ok(&["get", "pods", "-n", "a", "--as=alice"]);
    assert!(!out.contains("forbidden"), "{out}");
    let err = k.err(&["delete", "pod", "web", "-n", "a", "--as=alice"]);
    assert!(
        err.contains("pods \"web\" is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"a\""),
        "{err}"
    );
    let err = k.err(&["get", "pods", "-n", "default", "--as=alice"]);
    assert!(
        err.contains("User \"alice\" cannot list resource \"pods\""),
        "{err}"
    );
    let out = k.ok(&[
        "auth",
        "whoami",
        "--as=alice",
        "--as-group=dev",
        "-o",
        "json",
    ]);
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "alice", "{who}");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["dev", "system:authenticated"])
    );
    // A service account name impersonates the account with its groups.
    let out = k.ok(&[
        "auth",
        "whoami",
        "--as=system:serviceaccount:a:robot",
        "-o",
        "json",
    ]);
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:a",
            "system:authenticated"
        ])
    );

    // carol (a client-certificate user) holds no impersonate right. Like
    // upstream's, kubectl's discovery shows the 403 only as "unknown";
    // `get --raw` (no discovery) shows the message.
    let carol = user_kubeconfig(&server, "carol", &["dev"]);
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &carol,
        &["get", "pods", "--as=alice"],
    );
    assert!(
        !ok && out.contains("Error from server (Forbidden)"),
        "{out}"
    );
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &carol,
        &["get", "--raw", "/api/v1/namespaces/a/pods", "--as=alice"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("users \"alice\" is forbidden: User \"carol\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{out}"
    );
    // Granted impersonation of alice only, carol may act as alice only.
    k.ok(&[
        "create",
        "clusterrole",
        "impersonate-alice",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=alice",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "carol-imp",
        "--clusterrole=impersonate-alice",
        "--user=carol",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out) = kubectl_as(
            &server,
            KUBECTL_NEWEST,
            &carol,
            &["get", "pods", "-n", "a", "--as=alice"],
        );
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "carol as alice: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &carol,
        &["get", "--raw", "/api/v1/namespaces/a/pods", "--as=bob"],
    );
    assert!(!ok && out.contains("users \"bob\" is forbidden"), "{out}");
    let (ok, out) = kubectl_as(
        &server,
        KUBECTL_NEWEST,
        &carol,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/a/pods",
            "--as=alice",
            "--as-group=system:masters",
        ],
    );
    assert!(
        !ok && out.contains("groups \"system:masters\" is forbidden: User \"carol\" cannot impersonate resource \"groups\""),
        "{out}"
    );
}

/// The audit events in `path`, waiting until `done` holds for them.
fn audit_events(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            // The last line may be half written.
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn audit_log_records_requests_without_secrets() {
    let server = Proc::server_with(|d| {
        vec![
            "--audit-log-path".into(),
            d.with_file_name("audit.log").to_string_lossy().into_owned(),
        ]
    });
    let log = server.data_dir.with_file_name("audit.log");
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=hunter2-plain",
    ]);
    let headers = server.data_dir.with_file_name("watch-headers");
    let watch = server.curl(
        true,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        None,
        &["-D", headers.to_str().unwrap()],
    );
    assert_eq!(watch.status, 200, "{watch:?}");
    let audit_id = std::fs::read_to_string(&headers)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("audit-id:")
                .then(|| l[9..].trim().to_string())
        })
        .expect("an Audit-Id header");
    assert_eq!(
        server.curl(false, "GET", "/api/v1/pods", None, &[]).status,
        401
    );

    let events = audit_events(&log, |evs| {
        evs.iter()
            .any(|e| e["auditID"] == audit_id.as_str() && e["stage"] == "ResponseComplete")
            && evs.iter().any(|e| e["responseStatus"]["code"] == 401)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("hunter2"), "secret data in the audit log");
    assert!(
        !text.contains("aHVudGVyMi1wbGFpbg"),
        "secret data (base64) in the audit log"
    );

    let creates: Vec<&Value> = events
        .iter()
        .filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "secrets")
        .collect();
    let stages: Vec<&str> = creates.iter().filter_map(|e| e["stage"].as_str()).collect();
    assert_eq!(
        stages,
        ["RequestReceived", "ResponseComplete"],
        "{creates:?}"
    );
    assert_eq!(creates[0]["auditID"], creates[1]["auditID"]);
    let done = creates[1];
    assert_eq!(done["kind"], "Event");
    assert_eq!(done["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(done["level"], "Metadata");
    assert_eq!(
        done["requestURI"]
            .as_str()
            .map(|u| u.starts_with("/api/v1/namespaces/default/secrets")),
        Some(true),
        "{done}"
    );
    assert_eq!(done["user"]["username"], "system:admin");
    assert_eq!(
        done["user"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(
        done["objectRef"],
        json!({"resource": "secrets", "namespace": "default", "name": "s1", "apiVersion": "v1"})
    );
    assert_eq!(done["responseStatus"], json!({"metadata": {}, "code": 201}));
    assert_eq!(done["sourceIPs"], json!(["127.0.0.1"]));
    assert!(
        done["userAgent"].as_str().unwrap().starts_with("kubectl"),
        "{done}"
    );
    assert_eq!(
        done["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert!(done.get("requestObject").is_none() && done.get("responseObject").is_none());
    for key in ["requestReceivedTimestamp", "stageTimestamp"] {
        let ts = done[key].as_str().unwrap();
        // Upstream MicroTime: 2026-01-02T03:04:05.123456Z
        assert_eq!(ts.len(), 27, "{key} {ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{key} {ts}");
    }

    // The watch: ResponseStarted when it began, ResponseComplete at its end.
    let stages: Vec<&str> = events
        .iter()
        .filter(|e| e["auditID"] == audit_id.as_str())
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert_eq!(
        stages,
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    );
    let w = events
        .iter()
        .find(|e| e["auditID"] == audit_id.as_str())
        .unwrap();
    assert_eq!(w["verb"], "watch");
    // The refused request is recorded with its 401 and no user.
    let refused = events
        .iter()
        .find(|e| e["responseStatus"]["code"] == 401)
        .unwrap();
    assert_eq!(refused["user"], json!({}));
    assert_eq!(refused["responseStatus"]["reason"], "Unauthorized");

    // PodSecurity's audit level lands in the pod create's audit event.
    k.stdin_ok(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: audited\n  labels:\n    pod-security.kubernetes.io/audit: restricted\n",
    );
    k.stdin_ok(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\n  namespace: audited\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    );
    let is_pod_create = |e: &Value| {
        e["verb"] == "create"
            && e["objectRef"]["resource"] == "pods"
            && e["stage"] == "ResponseComplete"
    };
    let events = audit_events(&log, |evs| evs.iter().any(is_pod_create));
    let pod = events
        .iter()
        .find(|e| is_pod_create(e))
        .expect("the pod create's event");
    let annotations = &pod["annotations"];
    assert_eq!(
        annotations["pod-security.kubernetes.io/enforce-policy"], "privileged:latest",
        "{pod}"
    );
    let violations = annotations["pod-security.kubernetes.io/audit-violations"]
        .as_str()
        .unwrap_or_default();
    assert!(
        violations.starts_with(
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
        ),
        "{pod}"
    );
}

#[test]
fn bad_token_file_stops_the_server() {
    let mut server = Proc::spawn_server_with(|d| {
        let file = d.with_file_name("bad-tokens.csv");
        std::fs::write(&file, "only-a-token,no-uid\n").unwrap();
        vec![
            "--token-auth-file".into(),
            file.to_string_lossy().into_owned(),
        ]
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = "must have at least 3 columns (token, user name, user uid), found 2";
    while !server.log().contains(want) {
        assert!(
            Instant::now() < deadline,
            "no clear error:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log().contains("bad-tokens.csv"), "{}", server.log());
    let status = server.terminate(Duration::from_secs(10));
    assert!(!status.success(), "{status}");
}

#[test]
fn exec_upgrades_need_create_as_upstream() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&["create", "namespace", "a"]);
    k.ok(&[
        "create",
        "role",
        "exec-get",
        "--verb=get",
        "--resource=pods,pods/exec,pods/log",
        "-n",
        "a",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "dave-exec-get",
        "--role=exec-get",
        "--user=dave",
        "-n",
        "a",
    ]);
    let as_dave =
        |path: &str| server.curl(true, "GET", path, None, &["-H", "Impersonate-User: dave"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // get on pods/exec is not enough for the GET upgrade: it needs create.
    loop {
        let r = as_dave("/api/v1/namespaces/a/pods/web/exec?command=ls&stdout=1");
        if r.status == 403
            && r.json()["message"]
                == "pods \"web\" is forbidden: User \"dave\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"a\""
        {
            assert_eq!(r.json()["details"], json!({"name": "web", "kind": "pods"}));
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // pods/log is a read: authorized, then the pod is not there.
    let r = as_dave("/api/v1/namespaces/a/pods/web/log");
    assert_eq!(r.status, 404, "{r:?}");
    // and nothing in namespace default.
    let r = as_dave("/api/v1/namespaces/default/pods/web/log");
    assert_eq!(r.status, 403, "{r:?}");
}
