//! Legacy Secret-based service-account tokens and the ServiceAccount
//! admission's existence check, with real kubectl against `nanokube
//! server --disable-agent`: a `kubernetes.io/service-account-token`
//! Secret gets a non-expiring token that authenticates as its account
//! (RBAC applies) until the Secret is deleted; Secrets of missing accounts
//! are deleted; a pod naming a missing account is refused as upstream.

use std::time::{Duration, Instant};

use crate::common::users::{kubectl_with, token_kubeconfig};
use crate::common::{b64_field, poll_until, Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};
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

fn token_secret(name: &str, account: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
           "metadata": {"name": name,
                        "annotations": {"kubernetes.io/service-account.name": account}}})
    .to_string()
}

/// The Secret once the token controller filled it (within 10 s).
fn filled_secret(server: &Proc, name: &str) -> Value {
    let k = server.kubectl(KUBECTL_NEWEST);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s: Value = k.json(&["get", "secret", name]);
        if !b64_field(&s["data"], "token").is_empty() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no token in secret {name}: {s}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gone(server: &Proc, what: &[&str]) -> bool {
    let k = server.kubectl(KUBECTL_NEWEST);
    poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let mut args = vec!["get"];
        args.extend(what);
        let out = k.run(&args);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
    })
}

#[test]
fn legacy_token_secret_authenticates_until_deleted() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.ok(&["create", "serviceaccount", "bot"]);
    let sa: Value = k.json(&["get", "sa", "bot"]);
    k.stdin_ok(&["create", "-f", "-"], &token_secret("bot-token", "bot"));
    let secret = filled_secret(&server, "bot-token");
    let token = b64_field(&secret["data"], "token");
    assert_eq!(b64_field(&secret["data"], "namespace"), "default");
    assert!(
        b64_field(&secret["data"], "ca.crt").starts_with("-----BEGIN CERTIFICATE-----"),
        "{secret}"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa["metadata"]["uid"]
    );
    let claims = payload(&token);
    assert_eq!(
        claims,
        json!({"iss": "kubernetes/serviceaccount",
               "sub": "system:serviceaccount:default:bot",
               "kubernetes.io/serviceaccount/namespace": "default",
               "kubernetes.io/serviceaccount/secret.name": "bot-token",
               "kubernetes.io/serviceaccount/service-account.name": "bot",
               "kubernetes.io/serviceaccount/service-account.uid": sa["metadata"]["uid"]}),
    );

    // Authenticated as the account, but it holds no rights yet.
    let cfg = token_kubeconfig(&server, &token, "legacy-bot");
    let (ok, out) = kubectl_with(&server, KUBECTL_NEWEST, &cfg, &["get", "pods"]);
    assert!(!ok);
    assert!(
        out.contains(
            "Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:default:bot\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{out}"
    );
    k.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "bot-reads",
        "--role=pod-reader",
        "--serviceaccount=default:bot",
    ]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let allowed = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            kubectl_with(&server, version, &cfg, &["get", "pods"]).0
        });
        assert!(allowed, "kubectl {version} get pods with the legacy token");
    }
    let (ok, out) = kubectl_with(
        &server,
        KUBECTL_NEWEST,
        &cfg,
        &["auth", "whoami", "-o", "json"],
    );
    assert!(ok, "{out}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:default:bot"
    );
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );

    // A token the Secret no longer holds is invalid at once.
    k.ok(&["delete", "secret", "bot-token"]);
    let (ok, out) = kubectl_with(&server, KUBECTL_NEWEST, &cfg, &["get", "pods"]);
    assert!(!ok);
    assert!(
        out.contains("error: You must be logged in to the server (Unauthorized)"),
        "{out}"
    );

    // An account's deletion takes its token Secrets with it.
    k.ok(&["create", "serviceaccount", "bot2"]);
    k.stdin_ok(&["create", "-f", "-"], &token_secret("bot2-token", "bot2"));
    let token2 = b64_field(&filled_secret(&server, "bot2-token")["data"], "token");
    k.ok(&["delete", "sa", "bot2"]);
    assert!(
        gone(&server, &["secret", "bot2-token"]),
        "bot2-token outlived bot2"
    );
    let cfg2 = token_kubeconfig(&server, &token2, "legacy-bot2");
    let (ok, out) = kubectl_with(&server, KUBECTL_NEWEST, &cfg2, &["get", "pods"]);
    assert!(!ok && out.contains("Unauthorized"), "{out}");

    // A Secret for an account that does not exist is deleted, as upstream.
    k.stdin_ok(
        &["create", "-f", "-"],
        &token_secret("ghost-token", "ghost"),
    );
    assert!(
        gone(&server, &["secret", "ghost-token"]),
        "ghost-token kept"
    );
}

#[test]
fn pods_naming_a_missing_account_are_refused() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    let pod = |ns: &str, account: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": ns},
               "spec": {"serviceAccountName": account,
                        "containers": [{"name": "c", "image": "busybox"}]}})
        .to_string()
    };
    let err = k.stdin_err(&["create", "-f", "-"], &pod("default", "nope"));
    assert!(
        err.contains(
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"p\" is forbidden: error looking up service account default/nope: serviceaccount \"nope\" not found"
        ),
        "{err}"
    );
    k.ok(&["create", "serviceaccount", "nope"]);
    k.stdin_ok(&["create", "-f", "-"], &pod("default", "nope"));

    // A brand-new namespace's `default` account may not exist yet: its
    // pods are admitted anyway (the controller creates it soon after).
    for i in 0..5 {
        let ns = format!("fresh-{i}");
        k.ok(&["create", "namespace", &ns]);
        k.stdin_ok(&["create", "-f", "-"], &pod(&ns, "default"));
    }
}
