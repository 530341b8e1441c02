//! Service-account tokens with real kubectl against `nanokube server
//! --disable-agent`: `kubectl create token` (TokenRequest), the token as
//! the only credential of a kubeconfig, TokenReview, bound tokens dying
//! with their pod or account, and the 401 every bad token gets.

use std::time::{Duration, Instant};

use crate::common::users::{kubectl_with as with_token, token_kubeconfig};
use crate::common::{Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};
use serde_json::{json, Value};

/// The JSON payload of a JWT (panics on anything else).
fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a jwt has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("json payload")
}

/// The raw answer to `GET /api` with `Authorization: Bearer <token>`.
fn bearer_get(server: &Proc, token: &str) -> crate::common::HttpReply {
    let header = format!("Authorization: Bearer {token}");
    server.curl(false, "GET", "/api", None, &["-H", &header])
}

fn assert_unauthorized(server: &Proc, token: &str, what: &str) {
    let reply = bearer_get(server, token);
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    let v = reply.json();
    assert_eq!(
        v,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        "{what}"
    );
}

/// Waits for the service account controller's `default` account.
fn wait_default_account(server: &Proc, ns: &str) {
    let k = server.kubectl(KUBECTL_NEWEST);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !k.run(&["get", "sa", "default", "-n", ns]).status.success() {
        assert!(
            Instant::now() < deadline,
            "no default service account in {ns}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn review(server: &Proc, token: &str, audiences: &[&str]) -> Value {
    let k = server.kubectl(KUBECTL_NEWEST);
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                      "spec": {"token": token, "audiences": audiences}});
    let out = k.stdin_ok(&["create", "-f", "-", "-o", "json"], &body.to_string());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn create_token_authenticates_kubectl_and_reviews() {
    let server = Proc::server();
    wait_default_account(&server, "default");
    let k = server.kubectl(KUBECTL_NEWEST);
    let token = k.ok(&["create", "token", "default"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let claims = payload(&token);
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(
        claims["aud"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "default");

    // The token alone (no client certificate) is a working credential.
    let cfg = token_kubeconfig(&server, &token, "sa");
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let (ok, out) = with_token(&server, version, &cfg, &["get", "--raw", "/api"]);
        assert!(ok, "kubectl {version} with the token: {out}");
        assert!(out.contains("APIVersions"), "{out}");
    }
    // Listing namespaces takes a grant (RBAC), as upstream.
    let (ok, out) = with_token(
        &server,
        KUBECTL_NEWEST,
        &cfg,
        &["get", "namespaces", "-o", "name"],
    );
    assert!(!ok && out.contains("(Forbidden)"), "{out}");
    k.ok(&[
        "create",
        "clusterrole",
        "ns-reader",
        "--verb=get,list",
        "--resource=namespaces",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "default-ns-reader",
        "--clusterrole=ns-reader",
        "--serviceaccount=default:default",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, out) = with_token(
            &server,
            KUBECTL_NEWEST,
            &cfg,
            &["get", "namespaces", "-o", "name"],
        );
        if ok {
            assert!(out.contains("namespace/default"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let r = review(&server, &token, &[]);
    assert_eq!(r["kind"], "TokenReview");
    assert_eq!(r["status"]["authenticated"], true, "{r}");
    let user = &r["status"]["user"];
    assert_eq!(user["username"], "system:serviceaccount:default:default");
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let sa_uid = k.ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(user["uid"], sa_uid.trim());
    assert_eq!(
        r["status"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );

    // --duration sets the lifetime; below 10 minutes is refused as upstream.
    let short = k.ok(&["create", "token", "default", "--duration=10m"]);
    let c = payload(short.trim());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    let err = k.err(&["create", "token", "default", "--duration=5m"]);
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let err = k.err(&["create", "token", "missing"]);
    assert!(
        err.contains("serviceaccounts \"missing\" not found"),
        "{err}"
    );

    // Bad tokens: all a bare 401, and TokenReview says why not.
    let other = k.ok(&["create", "token", "default", "--audience", "vault"]);
    let other = other.trim();
    assert_eq!(payload(other)["aud"], json!(["vault"]));
    assert_unauthorized(&server, other, "wrong audience");
    let r = review(&server, other, &["vault"]);
    assert_eq!(r["status"]["authenticated"], true, "{r}");
    assert_eq!(r["status"]["audiences"], json!(["vault"]));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut evil = payload(&token);
    evil["sub"] = "system:serviceaccount:kube-system:default".into();
    evil["kubernetes.io"]["namespace"] = "kube-system".into();
    {
        use base64::Engine;
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&evil).unwrap());
    }
    let tampered = parts.join(".");
    assert_unauthorized(&server, &tampered, "tampered");
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    assert_unauthorized(
        &server,
        &String::from_utf8(flipped).unwrap(),
        "bad signature",
    );
    for junk in ["abc", "a.b.c", "", "..", &"x".repeat(5000)] {
        assert_unauthorized(&server, junk, &format!("junk of {} bytes", junk.len()));
    }
    let r = review(&server, &tampered, &[]);
    assert!(
        r["status"].get("authenticated").is_none_or(|a| a == false),
        "{r}"
    );
    assert!(
        r["status"]["error"]
            .as_str()
            .unwrap()
            .starts_with("[invalid bearer token"),
        "{r}"
    );
    let (ok, out) = with_token(
        &server,
        KUBECTL_NEWEST,
        &token_kubeconfig(&server, &tampered, "bad"),
        &["get", "--raw", "/api"],
    );
    assert!(!ok && out.contains("Unauthorized"), "{out}");
}

#[test]
fn bound_tokens_die_with_their_pod_and_account() {
    let server = Proc::server();
    wait_default_account(&server, "default");
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&["run", "p", "--image=busybox", "--restart=Never"]);
    let pod: Value = k.json(&["get", "pod", "p", "-o", "json"]);
    // The ServiceAccount admission plugin's projected volume and mounts.
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let vols = pod["spec"]["volumes"].as_array().expect("volumes");
    let vol = vols
        .iter()
        .find(|v| v["name"].as_str().unwrap().starts_with("kube-api-access-"))
        .unwrap_or_else(|| panic!("no kube-api-access volume: {pod}"));
    assert_eq!(
        vol["projected"]["sources"],
        json!([{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
               {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
               {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0],
        json!({"name": vol["name"], "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();

    // An account that opts out: its pods get no token unless they ask.
    let quiet = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "quiet"}, "automountServiceAccountToken": false});
    k.stdin_ok(&["create", "-f", "-"], &quiet.to_string());
    for (name, own) in [("q1", Value::Null), ("q2", json!(true))] {
        let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"serviceAccountName": "quiet", "automountServiceAccountToken": own,
                                "containers": [{"name": "c", "image": "busybox"}]}});
        k.stdin_ok(&["create", "-f", "-"], &p.to_string());
        let got: Value = k.json(&["get", "pod", name, "-o", "json"]);
        let mounted = got["spec"]["volumes"].as_array().is_some_and(|v| {
            v.iter()
                .any(|v| v["name"].as_str().unwrap().starts_with("kube-api-access-"))
        });
        assert_eq!(mounted, own == json!(true), "{got}");
        assert_eq!(
            got["spec"]["containers"][0]["volumeMounts"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            mounted
        );
    }

    let bind = [
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "p",
    ];
    let token = k.ok(&bind).trim().to_string();
    let claim = &payload(&token)["kubernetes.io"];
    assert_eq!(claim["pod"], json!({"name": "p", "uid": uid}));
    assert_eq!(bearer_get(&server, &token).status, 200);
    let r = review(&server, &token, &[]);
    let extra = &r["status"]["user"]["extra"];
    assert_eq!(
        extra["authentication.kubernetes.io/pod-name"],
        json!(["p"]),
        "{r}"
    );
    assert_eq!(
        extra["authentication.kubernetes.io/pod-uid"],
        json!([uid]),
        "{r}"
    );

    let err = k.err(&[&bind[..], &["--bound-object-uid", "nope"]].concat());
    assert!(err.contains("does not match the UID in record"), "{err}");
    let err = k.err(&[
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "gone",
    ]);
    assert!(err.contains("pods \"gone\" not found"), "{err}");

    k.ok(&[
        "delete",
        "pod",
        "p",
        "--grace-period=0",
        "--force",
        "--wait=true",
    ]);
    assert_unauthorized(&server, &token, "token of a deleted pod");

    k.ok(&["create", "serviceaccount", "robot"]);
    let robot = k.ok(&["create", "token", "robot"]).trim().to_string();
    assert_eq!(bearer_get(&server, &robot).status, 200);
    k.ok(&["delete", "serviceaccount", "robot"]);
    assert_unauthorized(&server, &robot, "token of a deleted account");
    // Recreated under the same name: a new uid, the old token stays dead.
    k.ok(&["create", "serviceaccount", "robot"]);
    assert_unauthorized(&server, &robot, "token of a recreated account");
}
