//! Patches as kubectl sends them (client-side `apply` three-way patches,
//! `edit`, `set image`, `rollout restart`, `label`, `scale`, `debug`), and
//! the objects upstream makes of them.

use serde_json::{json, Value};

use super::{apply, PatchType};

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn patch(def: &str, kind: PatchType, live: &Value, patch: Value) -> Value {
    match apply(Some(def), live, kind, patch.to_string().as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("patch failed: {e}"),
    }
}

fn smp(def: &str, live: &Value, p: Value) -> Value {
    patch(def, PatchType::Strategic, live, p)
}

/// A live Deployment as the API server stores it: defaulted fields, an env
/// var injected by someone else, a second container.
fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {LAST_APPLIED: "{}"},
                     "finalizers": ["example.com/keep"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.0", "imagePullPolicy": "IfNotPresent",
                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                                 {"name": "INJECTED", "value": "x"}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                        {"name": "side", "image": "busybox", "imagePullPolicy": "Always"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "restartPolicy": "Always"
                }
            }
        }
    })
}

fn container<'a>(obj: &'a Value, name: &str) -> &'a Value {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn apply_changes_image_port_and_removes_one_env_var() {
    // `kubectl apply` after editing the manifest: new image, port 80 ->
    // 8080, env B removed (the three-way patch kubectl computes).
    let p = json!({
        "metadata": {"annotations": {LAST_APPLIED: "{\"new\":true}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 8080}],
                "env": [{"$patch": "delete", "name": "B"}],
                "image": "nginx:1.1",
                "name": "app",
                "ports": [{"containerPort": 8080}, {"$patch": "delete", "containerPort": 80}]
            }]
        }}}
    });
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    let app = container(&out, "app");
    assert_eq!(app["image"], "nginx:1.1");
    assert_eq!(
        app["imagePullPolicy"], "IfNotPresent",
        "untouched fields stay"
    );
    assert_eq!(app["ports"], json!([{"containerPort": 8080}]));
    assert_eq!(
        app["env"],
        json!([{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "x"}])
    );
    assert_eq!(
        app["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data"}])
    );
    assert_eq!(
        container(&out, "side"),
        &live_deployment()["spec"]["template"]["spec"]["containers"][1]
    );
    assert_eq!(
        out["metadata"]["annotations"][LAST_APPLIED],
        "{\"new\":true}"
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/keep"]));
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn apply_changes_the_value_of_one_env_var() {
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                        "env": [{"name": "B", "value": "3"}], "name": "app"}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    let env = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "INJECTED", "value": "x"}]);
    assert_eq!(container(&out, "app")["env"], env);
}

#[test]
fn apply_adds_a_container_in_manifest_order() {
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "metrics"}, {"name": "side"}],
        "containers": [{"name": "metrics", "image": "prom:1", "ports": [{"containerPort": 9100}]}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    let names: Vec<&Value> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, [&json!("app"), &json!("metrics"), &json!("side")]);
}

#[test]
fn apply_switches_deployment_strategy_with_retain_keys() {
    let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // Without the directive the union keeps its other member, as upstream.
    let out = smp(
        DEPLOYMENT,
        &live_deployment(),
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
}

#[test]
fn apply_switches_a_volume_source_with_retain_keys() {
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "data"}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn apply_drops_a_whole_field_removed_from_the_manifest() {
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [{"env": null, "name": "app"}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    assert!(container(&out, "app").get("env").is_none());
}

#[test]
fn edit_deletes_a_container_and_a_volume() {
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$patch": "delete", "name": "side"}],
        "volumes": [{"$patch": "delete", "name": "data"}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(out["spec"]["template"]["spec"]["volumes"], json!([]));
}

#[test]
fn set_image_and_rollout_restart() {
    // `kubectl set image deployment/web side=busybox:2` (two-way patch).
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [{"image": "busybox:2", "name": "side"}]
    }}}});
    let out = smp(DEPLOYMENT, &live_deployment(), p);
    assert_eq!(container(&out, "side")["image"], "busybox:2");
    assert_eq!(container(&out, "app")["image"], "nginx:1.0");
    // `kubectl rollout restart deployment/web`.
    let at = "2025-01-01T00:00:00Z";
    let p = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
    let out = smp(DEPLOYMENT, &out, p);
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        at
    );
    assert_eq!(out["spec"]["template"]["metadata"]["labels"]["app"], "web");
}

#[test]
fn label_annotate_and_scale_are_merge_patches() {
    let live = live_deployment();
    let out = patch(
        DEPLOYMENT,
        PatchType::Merge,
        &live,
        json!({"metadata": {"labels": {"tier": "fe"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
    let out = patch(
        DEPLOYMENT,
        PatchType::Merge,
        &out,
        json!({"metadata": {"labels": {"tier": null}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({}));
    let out = patch(
        DEPLOYMENT,
        PatchType::Merge,
        &out,
        json!({"spec": {"replicas": 5}}),
    );
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["spec"]["template"], live["spec"]["template"]);
}

#[test]
fn finalizers_and_owner_references_merge() {
    let live = live_deployment();
    let out = smp(
        DEPLOYMENT,
        &live,
        json!({"metadata": {"finalizers": ["example.com/b"]}}),
    );
    // New scalars go before the live ones they do not follow (upstream order).
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["example.com/b", "example.com/keep"])
    );
    let out = smp(
        DEPLOYMENT,
        &out,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/keep"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/b"]));
    let owner = |uid: &str| json!({"apiVersion": "v1", "kind": "X", "name": uid, "uid": uid});
    let out = smp(
        DEPLOYMENT,
        &out,
        json!({"metadata": {"ownerReferences": [owner("u1")]}}),
    );
    let out = smp(
        DEPLOYMENT,
        &out,
        json!({"metadata": {"ownerReferences": [owner("u2")]}}),
    );
    assert_eq!(
        out["metadata"]["ownerReferences"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn service_ports_merge_by_port() {
    let live = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5", "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}});
    let p = json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}],
                            "ports": [{"port": 80, "targetPort": 8080}]}});
    let out = smp("io.k8s.api.core.v1.Service", &live, p);
    assert_eq!(
        out["spec"]["ports"][0],
        json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080})
    );
    assert_eq!(out["spec"]["ports"][1]["targetPort"], 443);
    assert_eq!(out["spec"]["clusterIP"], "10.0.0.5");
}

#[test]
fn node_status_conditions_and_taints() {
    let live = json!({"spec": {"podCIDRs": ["10.1.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}});
    let p = json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}]}});
    let out = smp("io.k8s.api.core.v1.Node", &live, p);
    // Taints have no patch strategy: replaced.
    assert_eq!(
        out["spec"]["taints"],
        json!([{"key": "b", "effect": "NoExecute"}])
    );
    assert_eq!(
        out["status"]["conditions"][0],
        json!({"type": "Ready", "status": "False", "reason": "KubeletDown"})
    );
    assert_eq!(out["status"]["conditions"][1]["type"], "MemoryPressure");
}

#[test]
fn debug_adds_an_ephemeral_container() {
    let live = json!({"spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    let p = json!({"spec": {"ephemeralContainers": [{"name": "debugger-abc", "image": "busybox", "stdin": true}]}});
    let out = smp("io.k8s.api.core.v1.Pod", &live, p);
    assert_eq!(
        out["spec"]["ephemeralContainers"][0]["name"],
        "debugger-abc"
    );
    let p =
        json!({"spec": {"ephemeralContainers": [{"name": "debugger-def", "image": "busybox"}]}});
    let out = smp("io.k8s.api.core.v1.Pod", &out, p);
    assert_eq!(
        out["spec"]["ephemeralContainers"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn cronjob_containers_merge_deep_down() {
    let live = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "job", "image": "a", "env": [{"name": "X", "value": "1"}]}]}}}}}});
    let p = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "job", "env": [{"name": "Y", "value": "2"}]}]}}}}}});
    let out = smp("io.k8s.api.batch.v1.CronJob", &live, p);
    let env = &out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().map(Vec::len), Some(2));
}

#[test]
fn statefulset_claim_templates_are_replaced() {
    let live = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}});
    let p = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "c"}}]}});
    let out = smp("io.k8s.api.apps.v1.StatefulSet", &live, p);
    assert_eq!(
        out["spec"]["volumeClaimTemplates"],
        json!([{"metadata": {"name": "c"}}])
    );
}

/// kubectl apply dropping one of a webhook's matchConditions: the three-way
/// patch merges `webhooks` by name and, inside, `matchConditions` by name.
#[test]
fn apply_removes_one_match_condition() {
    let def = "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration";
    let live = json!({
        "metadata": {"name": "smp"},
        "webhooks": [{"name": "a.example.test", "sideEffects": "None",
                      "matchConditions": [{"name": "one", "expression": "true"},
                                          {"name": "two", "expression": "true"}]}]
    });
    let patched = smp(
        def,
        &live,
        json!({
            "$setElementOrder/webhooks": [{"name": "a.example.test"}],
            "webhooks": [{"$setElementOrder/matchConditions": [{"name": "one"}],
                          "matchConditions": [{"$patch": "delete", "name": "two"}],
                          "name": "a.example.test"}]
        }),
    );
    assert_eq!(
        patched["webhooks"][0]["matchConditions"],
        json!([{"name": "one", "expression": "true"}])
    );
    assert_eq!(patched["webhooks"][0]["sideEffects"], "None");
}
