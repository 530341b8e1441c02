//! PodSpec defaults shared by pods and every pod template (deployments,
//! replica sets, stateful sets, daemon sets, jobs, cron jobs, replication
//! controllers, pod templates): upstream's `SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probe, volume and env defaulting in
//! `pkg/apis/core/v1/defaults.go`.

use serde_json::{json, Value};

use super::json::{child, default, default_str, each_mut, existing, Obj};

/// The keys of a container list in a PodSpec.
pub(super) const CONTAINER_LISTS: [&str; 3] =
    ["initContainers", "containers", "ephemeralContainers"];

/// Defaults of a PodTemplateSpec (`{metadata, spec}`) held under `key`.
pub(super) fn default_template_at(parent: &mut Obj, key: &str) {
    if let Some(spec) = existing(parent, key).and_then(|t| child(t, "spec")) {
        default_pod_spec(spec);
    }
}

/// SetDefaults_PodSpec plus everything nested inside a PodSpec.
pub(super) fn default_pod_spec(spec: &mut Obj) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "securityContext", json!({}));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    // The v1 conversion keeps the deprecated serviceAccount field in step
    // with serviceAccountName, in both directions.
    let account = [spec.get("serviceAccountName"), spec.get("serviceAccount")]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string));
    if let Some(account) = account {
        default_str(spec, "serviceAccountName", &account);
        default_str(spec, "serviceAccount", &account);
    }
    for list in CONTAINER_LISTS {
        for c in each_mut(spec, list) {
            default_container(c);
        }
    }
    for volume in each_mut(spec, "volumes") {
        default_volume(volume);
    }
}

/// SetDefaults_Container and the defaults of its nested structs.
fn default_container(c: &mut Obj) {
    if c.get("imagePullPolicy")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let policy = pull_policy(c.get("image").and_then(Value::as_str).unwrap_or(""));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // ResourceRequirements is a struct in v1, so it always serializes.
    default(c, "resources", json!({}));
    for port in each_mut(c, "ports") {
        default_str(port, "protocol", "TCP");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lifecycle) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lifecycle, hook) {
                default_handler(h);
            }
        }
    }
    for env in each_mut(c, "env") {
        if let Some(from) = existing(env, "valueFrom") {
            default_field_refs(from);
        }
    }
}

/// SetDefaults_HTTPGetAction inside a probe or lifecycle handler.
fn default_handler(h: &mut Obj) {
    if let Some(get) = existing(h, "httpGet") {
        default_str(get, "path", "/");
        default_str(get, "scheme", "HTTP");
    }
}

/// ObjectFieldSelector apiVersion and the always-serialized divisor.
fn default_field_refs(from: &mut Obj) {
    if let Some(f) = existing(from, "fieldRef") {
        default_str(f, "apiVersion", "v1");
    }
    if let Some(r) = existing(from, "resourceFieldRef") {
        default(r, "divisor", json!("0"));
    }
}

/// `:latest` or no tag pulls always; a pinned tag or digest only if absent.
pub(super) fn pull_policy(image: &str) -> &'static str {
    if image.is_empty() || image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// SetDefaults_Volume and the defaults of each volume source.
fn default_volume(v: &mut Obj) {
    if v.keys().all(|k| k == "name") {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, source) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = existing(v, "hostPath") {
        default(h, "type", json!(""));
    }
    if let Some(items) = existing(v, "downwardAPI") {
        for item in each_mut(items, "items") {
            default_field_refs(item);
        }
    }
    if let Some(p) = existing(v, "projected") {
        for source in each_mut(p, "sources") {
            if let Some(t) = existing(source, "serviceAccountToken") {
                default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = existing(source, "downwardAPI") {
                for item in each_mut(d, "items") {
                    default_field_refs(item);
                }
            }
        }
    }
    let claim_spec = existing(v, "ephemeral")
        .and_then(|e| existing(e, "volumeClaimTemplate"))
        .and_then(|t| existing(t, "spec"));
    if let Some(spec) = claim_spec {
        default_str(spec, "volumeMode", "Filesystem");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(spec: Value) -> Value {
        let mut spec = spec;
        if let Some(m) = spec.as_object_mut() {
            default_pod_spec(m);
        }
        spec
    }

    #[test]
    fn pod_spec_gets_upstream_defaults() {
        let spec = defaulted(json!({"containers": [{"name": "a", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "volumes": [{"name": "v"}, {"name": "c", "configMap": {"name": "x"}}],
            "serviceAccountName": "sa"}));
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["serviceAccount"], "sa");
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!({"containers": "x", "volumes": [1, null]}),
            json!({"containers": [null, 3]}),
        ] {
            defaulted(junk);
        }
        let mut m = serde_json::Map::new();
        m.insert("template".into(), json!("nope"));
        default_template_at(&mut m, "template");
        assert_eq!(m["template"], "nope");
    }
}
