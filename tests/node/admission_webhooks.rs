//! Admission webhooks served by a pod: `examples/test_webhook.rs` (built by
//! `cargo test --all-targets`, or `cargo build --example test_webhook`)
//! packed with its shared libraries and a certificate for
//! `webhook.<ns>.svc` into an image, run behind a Service; the API server
//! calls it through the pod's endpoint. A validating webhook refuses with
//! its message, a mutating one adds a label; DELETE of a labelled
//! configmap and CONNECT (`kubectl exec`) are refused; an IfNeeded webhook
//! is reinvoked after a later one's change; a matchCondition skips a
//! webhook; and with the pod gone `failurePolicy: Ignore` lets a create
//! through while `Fail` refuses it with upstream's text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::agent::*;
use crate::common::images::{oci_image, Entry, ImageSpec};
use crate::common::*;

const NS: &str = "webhook-test";
const IMAGE: &str = "nanokube.test/webhook:1";
const VALIDATING: &str = "deny.nanokube.test";
const MUTATING: &str = "label.nanokube.test";

/// The shared libraries `ldd` lists for `bin`, as (path in the image, bytes).
fn libraries(bin: &Path) -> Vec<(String, Vec<u8>)> {
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .expect("run ldd");
    assert!(out.status.success(), "ldd {} failed", bin.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or
            // `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vdso has no file.
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| {
                let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
                (path.trim_start_matches('/').to_string(), data)
            })
        })
        .collect()
}

/// The image: the example, its libraries and the certificate.
fn webhook_image(dir: &Path, cert: &str, key: &str) -> PathBuf {
    let bin = crate::common::webhook::example_binary();
    let mut dirs: Vec<String> = vec!["tls".into(), "tmp".into()];
    let mut files = vec![
        Entry::File {
            path: "test_webhook".into(),
            mode: 0o755,
            data: std::fs::read(&bin).expect("read the example binary"),
        },
        Entry::File {
            path: "tls/tls.crt".into(),
            mode: 0o644,
            data: cert.as_bytes().to_vec(),
        },
        Entry::File {
            path: "tls/tls.key".into(),
            mode: 0o644,
            data: key.as_bytes().to_vec(),
        },
    ];
    for (path, data) in libraries(&bin) {
        let mut parent = Path::new(&path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
        files.push(Entry::File {
            path,
            mode: 0o755,
            data,
        });
    }
    dirs.sort();
    dirs.dedup();
    let mut entries: Vec<Entry> = dirs
        .into_iter()
        .map(|path| Entry::Dir { path, mode: 0o755 })
        .collect();
    entries.extend(files);
    oci_image(
        dir,
        &ImageSpec {
            name: IMAGE.into(),
            entries,
            entrypoint: vec!["/test_webhook".into()],
            cmd: vec!["8443".into(), "/tls/tls.crt".into(), "/tls/tls.key".into()],
            ..Default::default()
        },
    )
}

fn import(c: &Cluster, tar: &Path) {
    let out = std::process::Command::new(&**NANOKUBE)
        .args(["images", "--data-dir"])
        .arg(&c.data_dir)
        .arg("import")
        .arg(tar)
        .output()
        .expect("run nanokube images import");
    assert!(
        out.status.success(),
        "images import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn webhook_config(kind: &str, name: &str, path: &str, ca: &str, policy: &str) -> Value {
    webhook_config_with(kind, name, path, ca, policy, json!({}))
}

/// As [`webhook_config`], with the fields of `extra` replacing the hook's.
fn webhook_config_with(
    kind: &str,
    name: &str,
    path: &str,
    ca: &str,
    policy: &str,
    extra: Value,
) -> Value {
    let mut config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": policy,
            "timeoutSeconds": 5,
            "namespaceSelector": {"matchLabels": {"webhook-test": "yes"}},
            "clientConfig": {
                "service": {"namespace": NS, "name": "webhook", "path": path},
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"], "scope": "Namespaced"}],
        }],
    });
    if let (Some(hook), Some(extra)) = (config["webhooks"][0].as_object_mut(), extra.as_object()) {
        hook.extend(extra.clone());
    }
    config
}

fn rules(operation: &str, resource: &str) -> Value {
    json!([{"operations": [operation], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": [resource], "scope": "Namespaced"}])
}

fn ready_addresses(c: &Cluster) -> usize {
    let (code, ep) = c.api(
        "GET",
        &format!("/api/v1/namespaces/{NS}/endpoints/webhook"),
        None,
    );
    if code != 200 {
        return 0;
    }
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Creates a ConfigMap with kubectl `version`; its stderr when refused.
fn create_cm(c: &Cluster, version: &str, name: &str, labels: &str) -> Result<Value, String> {
    let manifest = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{NS}\",\"labels\":{labels}}}}}"
    );
    let out = c
        .kubectl_version(version)
        .run_stdin(&["create", "-o", "json", "-f", "-"], &manifest);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("created object"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn webhooks_served_by_a_pod() {
    let c = Cluster::start();
    let (ca, cert, key) =
        crate::common::webhook::serving_certificates(&format!("webhook.{NS}.svc"));
    let tar = webhook_image(&c.root.join("images"), &cert, &key);
    import(&c, &tar);
    c.apply_json(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"webhook-test": "yes"}}}));
    c.apply_json(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "webhook", "namespace": NS, "labels": {"app": "webhook"}},
        "spec": {"containers": [{
            "name": "webhook", "image": IMAGE, "imagePullPolicy": "Never",
            "ports": [{"containerPort": 8443}],
            "readinessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 1},
        }]},
    }));
    c.apply_json(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "webhook", "namespace": NS},
        "spec": {"selector": {"app": "webhook"}, "ports": [{"port": 443, "targetPort": 8443}]},
    }));
    c.wait_ready(NS, "webhook", true, POD_TIMEOUT);
    assert!(
        poll_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || ready_addresses(&c) == 1
        ),
        "the webhook service got no ready endpoint"
    );

    c.apply_json(&webhook_config(
        "ValidatingWebhookConfiguration",
        VALIDATING,
        "/validate",
        &ca,
        "Fail",
    ));
    c.apply_json(&webhook_config(
        "MutatingWebhookConfiguration",
        MUTATING,
        "/mutate",
        &ca,
        "Fail",
    ));
    // Configurations reach the admission chain through the watch cache.
    std::thread::sleep(Duration::from_millis(500));

    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let v = version.replace('.', "-");
        let err = create_cm(&c, version, &format!("denied-{v}"), r#"{"deny":"true"}"#)
            .expect_err("a configmap labelled deny=true is refused");
        assert!(
            err.contains(&format!(
                "admission webhook \"{VALIDATING}\" denied the request: labelled deny"
            )),
            "kubectl {version}: {err}"
        );
        let made = create_cm(&c, version, &format!("allowed-{v}"), r#"{"app":"x"}"#)
            .unwrap_or_else(|e| panic!("kubectl {version}: {e}\n{}", c.log()));
        assert_eq!(made["metadata"]["labels"]["mutated"], "yes", "{made}");
        assert_eq!(made["metadata"]["labels"]["app"], "x", "{made}");
    }

    delete_and_connect(&c, &ca);
    reinvocation_and_match_conditions(&c, &ca);

    // Without the pod: Ignore lets writes through, Fail refuses them.
    c.k()
        .ok(&["delete", "mutatingwebhookconfiguration", MUTATING]);
    c.k().ok(&[
        "delete",
        "pod",
        "-n",
        NS,
        "webhook",
        "--grace-period=0",
        "--force",
    ]);
    assert!(
        poll_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || ready_addresses(&c) == 0
        ),
        "the webhook's endpoint stayed"
    );
    c.apply_json(&webhook_config(
        "ValidatingWebhookConfiguration",
        VALIDATING,
        "/validate",
        &ca,
        "Ignore",
    ));
    std::thread::sleep(Duration::from_millis(500));
    create_cm(&c, KUBECTL_NEWEST, "ignored", r#"{"deny":"true"}"#)
        .expect("failurePolicy Ignore lets the create through");
    c.apply_json(&webhook_config(
        "ValidatingWebhookConfiguration",
        VALIDATING,
        "/validate",
        &ca,
        "Fail",
    ));
    std::thread::sleep(Duration::from_millis(500));
    let err = create_cm(&c, KUBECTL_NEWEST, "failed", r#"{"app":"y"}"#)
        .expect_err("failurePolicy Fail refuses the create");
    let want = format!(
        "Internal error occurred: failed calling webhook \"{VALIDATING}\": failed to call webhook: \
         Post \"https://webhook.{NS}.svc:443/validate?timeout=5s\": no endpoints available for service \"webhook\""
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("Error from server (InternalError)"), "{err}");
    c.k()
        .ok(&["delete", "validatingwebhookconfiguration", VALIDATING]);
    create_cm(&c, KUBECTL_NEWEST, "after", r#"{"app":"z"}"#).expect("no webhook, no refusal");
}

/// A DELETE webhook refuses deleting a configmap labelled deny=true (the
/// example's `/validate` looks at the old object); a CONNECT webhook on
/// pods/exec refuses a command with the word `forbidden` before the
/// upgrade and lets another through; one that fails (a validating webhook
/// answering with a patch) stops `kubectl exec` under `Fail`.
fn delete_and_connect(c: &Cluster, ca: &str) {
    const DELETE: &str = "delete.nanokube.test";
    const EXEC: &str = "exec.nanokube.test";
    const EXEC_BROKEN: &str = "exec-broken.nanokube.test";
    c.apply_json(&webhook_config_with(
        "ValidatingWebhookConfiguration",
        DELETE,
        "/validate",
        ca,
        "Fail",
        json!({"rules": rules("DELETE", "configmaps")}),
    ));
    c.apply_json(&webhook_config_with(
        "ValidatingWebhookConfiguration",
        EXEC,
        "/validate",
        ca,
        "Fail",
        json!({"rules": rules("CONNECT", "pods/exec")}),
    ));
    std::thread::sleep(Duration::from_millis(500));
    // Labelled after the create, which the CREATE webhook would refuse.
    create_cm(c, KUBECTL_NEWEST, "protected", r#"{"app":"p"}"#).expect("create");
    c.k()
        .ok(&["label", "configmap", "-n", NS, "protected", "deny=true"]);
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let k = c.kubectl_version(version);
        let err = k.err(&["delete", "configmap", "-n", NS, "protected"]);
        assert!(
            err.contains(&format!(
                "admission webhook \"{DELETE}\" denied the request: labelled deny"
            )),
            "kubectl {version}: {err}"
        );
        let err = k.err(&[
            "exec",
            "-n",
            NS,
            "webhook",
            "--",
            "/test_webhook",
            "forbidden",
        ]);
        assert!(
            err.contains(&format!(
                "admission webhook \"{EXEC}\" denied the request: command refused"
            )),
            "kubectl {version}: {err}"
        );
        // Allowed: the command runs (the server prints its usage and fails).
        let err = k.err(&["exec", "-n", NS, "webhook", "--", "/test_webhook"]);
        assert!(
            err.contains("usage: test_webhook"),
            "kubectl {version}: {err}"
        );
    }
    c.apply_json(&webhook_config_with(
        "ValidatingWebhookConfiguration",
        EXEC_BROKEN,
        "/mutate",
        ca,
        "Fail",
        json!({"rules": rules("CONNECT", "pods/exec")}),
    ));
    std::thread::sleep(Duration::from_millis(500));
    let err = c.kubectl_version(KUBECTL_NEWEST).err(&[
        "exec",
        "-n",
        NS,
        "webhook",
        "--",
        "/test_webhook",
    ]);
    assert!(
        err.contains(&format!(
            "failed calling webhook \"{EXEC_BROKEN}\": received invalid webhook response: \
             validating webhook may not return response.patch"
        )),
        "{err}"
    );
    c.k()
        .ok(&["label", "configmap", "-n", NS, "protected", "deny-"]);
    c.k().ok(&["delete", "configmap", "-n", NS, "protected"]);
    c.k().ok(&[
        "delete",
        "validatingwebhookconfiguration",
        DELETE,
        EXEC,
        EXEC_BROKEN,
    ]);
}

/// `/mutate-observe` (IfNeeded, first by name) sees the label `/mutate`
/// adds after it only when reinvoked; a matchCondition keeps "skip-me"
/// from the validating webhook although it is labelled deny=true.
fn reinvocation_and_match_conditions(c: &Cluster, ca: &str) {
    const OBSERVE: &str = "a-observe.nanokube.test";
    for (policy, seen) in [("IfNeeded", "yes"), ("Never", "no")] {
        c.apply_json(&webhook_config_with(
            "MutatingWebhookConfiguration",
            OBSERVE,
            "/mutate-observe",
            ca,
            "Fail",
            json!({"reinvocationPolicy": policy}),
        ));
        std::thread::sleep(Duration::from_millis(500));
        let made = create_cm(
            c,
            KUBECTL_NEWEST,
            &format!("observed-{seen}"),
            r#"{"app":"o"}"#,
        )
        .unwrap_or_else(|e| panic!("{policy}: {e}"));
        assert_eq!(
            made["metadata"]["annotations"]["seen-mutated"], seen,
            "{policy}: {made}"
        );
        assert_eq!(made["metadata"]["labels"]["mutated"], "yes", "{made}");
    }
    c.k()
        .ok(&["delete", "mutatingwebhookconfiguration", OBSERVE]);
    c.apply_json(&webhook_config_with(
        "ValidatingWebhookConfiguration",
        VALIDATING,
        "/validate",
        ca,
        "Fail",
        json!({"matchConditions": [
            {"name": "not-skip-me", "expression": "object.metadata.name != \"skip-me\""},
        ]}),
    ));
    std::thread::sleep(Duration::from_millis(500));
    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let name = format!("skip-me-{}", version.replace('.', "-"));
        let err = create_cm(c, version, &name, r#"{"deny":"true"}"#)
            .expect_err("other names still go to the webhook");
        assert!(err.contains("labelled deny"), "kubectl {version}: {err}");
    }
    create_cm(c, KUBECTL_NEWEST, "skip-me", r#"{"deny":"true"}"#)
        .expect("the match condition skips the webhook for skip-me");
    // A condition that does not compile is refused with upstream's text.
    let bad = webhook_config_with(
        "ValidatingWebhookConfiguration",
        "bad.nanokube.test",
        "/validate",
        ca,
        "Fail",
        json!({"matchConditions": [{"name": "bad", "expression": "nope"}]}),
    );
    let err = c.k().stdin_err(&["create", "-f", "-"], &bad.to_string());
    assert!(
        err.contains("webhooks[0].matchConditions[0].expression: Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'"),
        "{err}"
    );
}
