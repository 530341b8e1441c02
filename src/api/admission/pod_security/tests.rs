//! Expected texts are upstream's (pod-security-admission policy tests and
//! the messages kubectl users see).

use serde_json::{json, Value};

use super::namespace::prioritize;
use super::*;

fn detail(level: Level, pod: &Value) -> String {
    let meta = pod.get("metadata").unwrap_or(&Value::Null);
    forbidden_detail(&evaluate(level, meta, &pod["spec"]))
}

fn spec(spec: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn plain_pod_under_each_level() {
    let pod = spec(json!({"containers": [{"name": "c", "image": "busybox"}]}));
    assert_eq!(detail(Level::Privileged, &pod), "");
    assert_eq!(detail(Level::Baseline, &pod), "");
    assert_eq!(
        detail(Level::Restricted, &pod),
        "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn hardened_pod_passes_restricted() {
    let pod = spec(json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "v", "emptyDir": {}}, {"name": "t", "projected": {"sources": []}}]
    }));
    assert_eq!(detail(Level::Restricted, &pod), "");
}

#[test]
fn privileged_pod_under_restricted_lists_baseline_first() {
    let pod = spec(json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]}));
    let text = detail(Level::Restricted, &pod);
    assert!(
        text.starts_with(
            "privileged (container \"c\" must not set securityContext.privileged=true), \
             allowPrivilegeEscalation != false"
        ),
        "{text}"
    );
}

#[test]
fn baseline_checks_details() {
    let pod = json!({
        "metadata": {"name": "p", "annotations": {
            "container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {
            "hostNetwork": true, "hostIPC": true,
            "securityContext": {
                "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                "seccompProfile": {"type": "Unconfined"},
                "seLinuxOptions": {"type": "spc_t"}},
            "initContainers": [{"name": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
            "containers": [
                {"name": "a", "ports": [{"containerPort": 1, "hostPort": 9090}, {"containerPort": 2, "hostPort": 10}],
                 "securityContext": {"capabilities": {"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]},
                                     "procMount": "Unmasked",
                                     "windowsOptions": {"hostProcess": true}}}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]
        }
    });
    assert_eq!(
        detail(Level::Baseline, &pod),
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to \
         \"container.apparmor.security.beta.kubernetes.io/c=\\\"unconfined\\\"\"), \
         host namespaces (hostNetwork=true, hostIPC=true), \
         hostPort (containers \"i\", \"a\" use hostPorts 10, 8080, 9090), \
         procMount (container \"a\" must not set securityContext.procMount to \"Unmasked\"), \
         seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"), \
         forbidden sysctls (kernel.msgmax), \
         hostProcess (container \"a\" must not set securityContext.windowsOptions.hostProcess=true), \
         non-default capabilities (container \"a\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add), \
         hostPath volumes (volume \"h\"), \
         seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
}

#[test]
fn restricted_replaces_the_overlapping_checks() {
    let pod = spec(json!({
        "securityContext": {"runAsNonRoot": false, "runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "c", "securityContext": {
            "allowPrivilegeEscalation": false, "runAsUser": 0,
            "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "x", "path": "/"}}]
    }));
    assert_eq!(
        detail(Level::Restricted, &pod),
        "unrestricted capabilities (container \"c\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add), \
         restricted volume types (volumes \"h\", \"n\" use restricted volume types \"hostPath\", \"nfs\"), \
         runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false), \
         runAsUser=0 (pod and container \"c\" must not set runAsUser=0), \
         seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
}

#[test]
fn windows_pods_skip_linux_only_checks() {
    let pod = spec(
        json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
                          "containers": [{"name": "c"}]}),
    );
    assert_eq!(detail(Level::Restricted, &pod), "");
}

#[test]
fn labels_parse_like_upstream() {
    let (p, causes) = policy(Some(&json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.30",
        "pod-security.kubernetes.io/warn": "baseline"
    })));
    assert!(causes.is_empty());
    assert_eq!(p.enforce.to_string(), "restricted:v1.30");
    assert_eq!(p.warn.to_string(), "baseline:latest");
    assert_eq!(p.audit.to_string(), "privileged:latest");

    let (p, causes) = policy(Some(&json!({
        "pod-security.kubernetes.io/enforce": "strict",
        "pod-security.kubernetes.io/warn": "nope",
        "pod-security.kubernetes.io/audit-version": "1.2"
    })));
    assert_eq!(
        p.enforce.level,
        Level::Restricted,
        "a bad enforce level fails closed"
    );
    assert_eq!(
        p.warn.level,
        Level::Privileged,
        "a bad warn level fails open"
    );
    let summaries: Vec<String> = causes.iter().map(FieldCause::summary).collect();
    assert_eq!(
        summaries,
        [
            "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted",
            "metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: \"1.2\": must be \"latest\" or \"v1.x\"",
            "metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"nope\": must be one of privileged, baseline, restricted",
        ]
    );
    assert!(valid_version("v1.0") && valid_version("v1.33") && !valid_version("v1.05"));
}

#[test]
fn only_image_and_seccomp_changes_are_significant() {
    let old = spec(json!({"containers": [{"name": "c", "image": "a"}]}));
    let mut relabeled = old.clone();
    relabeled["metadata"]["labels"] = json!({"x": "y"});
    assert!(!significant_pod_update(&relabeled, &old));
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("b");
    assert!(significant_pod_update(&new_image, &old));
    let mut debug = old.clone();
    debug["spec"]["ephemeralContainers"] = json!([{"name": "d", "image": "a"}]);
    assert!(significant_pod_update(&debug, &old));
}

#[test]
fn prioritize_puts_one_pod_per_controller_first() {
    let owned = |name: &str, uid: &str| json!({"metadata": {"name": name, "ownerReferences": [{"uid": uid, "controller": true}]}});
    let (a1, a2, b, free) = (
        owned("a1", "A"),
        owned("a2", "A"),
        owned("b", "B"),
        spec(json!({})),
    );
    let order: Vec<&str> = prioritize(vec![&a1, &a2, &b, &free])
        .into_iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["a1", "b", "p", "a2"]);
}

#[test]
fn probes_and_hooks_must_not_name_a_host() {
    let probe = |host: &str| json!({"httpGet": {"port": 80, "host": host}});
    let pod = spec(json!({"containers": [
        {"name": "b", "livenessProbe": probe("10.0.0.1"),
         "lifecycle": {"preStop": {"tcpSocket": {"port": 1, "host": "example.com"}}}},
        {"name": "a", "readinessProbe": probe("10.0.0.1")},
        {"name": "ok", "startupProbe": probe("")}]}));
    assert_eq!(
        detail(Level::Baseline, &pod),
        "probe or lifecycle host (containers \"a\", \"b\" use probe or lifecycle hosts \"10.0.0.1\", \"example.com\")"
    );
}
