//! Server-side apply with real kubectl (1.27 and 1.33): managedFields on
//! every write, apply by two field managers with upstream's conflict text,
//! `--force-conflicts` moving ownership, `--show-managed-fields`, and the
//! move from client-side to server-side apply.

use crate::common::{both_versions, Proc};
use serde_json::Value;

both_versions!(
    two_managers_conflict_and_force,
    client_side_then_server_side,
    deployment_conflict_names_the_field,
    custom_resource_list_map
);

fn configmap(name: &str, data: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n"
    );
    for (k, v) in data {
        s.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    s
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["operation"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fields_of<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .map(|e| &e["fieldsV1"])
        .unwrap_or_else(|| panic!("no entry of {manager}: {obj}"))
}

fn two_managers_conflict_and_force(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    let a = configmap("cm", &[("k", "1"), ("j", "x")]);
    assert_eq!(
        k.stdin_ok(
            &["apply", "--server-side", "--field-manager", "a", "-f", "-"],
            &a
        ),
        "configmap/cm serverside-applied\n"
    );
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "cm", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(managers(&cm), [("a".to_string(), "Apply".to_string())]);
    assert_eq!(
        fields_of(&cm, "a")["f:data"],
        serde_json::json!({"f:j": {}, "f:k": {}})
    );

    let b = configmap("cm", &[("k", "2")]);
    let err = k.stdin_err(
        &["apply", "--server-side", "--field-manager", "b", "-f", "-"],
        &b,
    );
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "a": .data.k"#),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");

    k.stdin_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "b",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &b,
    );
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "cm", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(cm["data"]["k"], "2");
    assert_eq!(cm["data"]["j"], "x");
    assert_eq!(
        fields_of(&cm, "a")["f:data"],
        serde_json::json!({"f:j": {}})
    );
    assert_eq!(
        fields_of(&cm, "b")["f:data"],
        serde_json::json!({"f:k": {}})
    );

    let shown = k.ok(&["get", "cm", "cm", "-o", "yaml", "--show-managed-fields"]);
    assert!(
        shown.contains("manager: a") && shown.contains("manager: b"),
        "{shown}"
    );
    assert!(shown.contains("operation: Apply"), "{shown}");
    let hidden = k.ok(&["get", "cm", "cm", "-o", "yaml"]);
    assert!(!hidden.contains("managedFields"), "{hidden}");

    // A manager that stops applying a field it alone owns removes it.
    let a2 = configmap("cm", &[("k", "2")]);
    k.stdin_ok(
        &["apply", "--server-side", "--field-manager", "a", "-f", "-"],
        &a2,
    );
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "cm", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert!(cm["data"].get("j").is_none(), "{cm}");
    assert_eq!(cm["data"]["k"], "2");
}

fn client_side_then_server_side(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    assert_eq!(
        k.stdin_ok(&["apply", "-f", "-"], &configmap("csa", &[("x", "1")])),
        "configmap/csa created\n"
    );
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "csa", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(
        managers(&cm),
        [(
            "kubectl-client-side-apply".to_string(),
            "Update".to_string()
        )]
    );
    // A changed value: kubectl's own manager may take what its client-side
    // apply set.
    let dbg = k.run_stdin(
        &["apply", "--server-side", "-v=8", "-f", "-"],
        &configmap("csa", &[("x", "2"), ("z", "3")]),
    );
    eprintln!("DEBUG {}", String::from_utf8_lossy(&dbg.stderr));
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "csa", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(cm["data"]["x"], "2");
    assert_eq!(cm["data"]["z"], "3");
    assert!(
        managers(&cm).contains(&("kubectl".to_string(), "Apply".to_string())),
        "{cm}"
    );
    // And back to client-side apply, then an edit by label: every write is
    // recorded.
    k.stdin_ok(
        &["apply", "-f", "-"],
        &configmap("csa", &[("x", "4"), ("z", "3")]),
    );
    k.ok(&["label", "cm", "csa", "l=v"]);
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "cm", "csa", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(cm["data"]["x"], "4");
    let labels = &fields_of(&cm, "kubectl-label")["f:metadata"]["f:labels"];
    assert!(labels.get("f:l").is_some(), "{cm}");
}

fn deployment_conflict_names_the_field(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    let deploy = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: app\n        image: nginx\n"
        )
    };
    k.stdin_ok(
        &["apply", "--server-side", "--field-manager", "a", "-f", "-"],
        &deploy(1),
    );
    let err = k.stdin_err(
        &["apply", "--server-side", "--field-manager", "b", "-f", "-"],
        &deploy(2),
    );
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#),
        "{err}"
    );
    // kubectl scale is an Update through the scale subresource; a later
    // apply of the old count conflicts with it.
    k.ok(&["scale", "deployment", "web", "--replicas=3"]);
    let err = k.stdin_err(
        &["apply", "--server-side", "--field-manager", "a", "-f", "-"],
        &deploy(1),
    );
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"")
            && err.contains(".spec.replicas"),
        "{err}"
    );
}

/// The API answers without kubectl: options validation, the upsert's 201
/// and the conflict Status with its causes.
#[test]
fn status_answers_over_http() {
    let p = Proc::server();
    let path = "/api/v1/namespaces/default/configmaps/h";
    let apply = ["-H", "Content-Type: application/apply-patch+yaml"];
    let body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"h"},"data":{"k":"1"}}"#;
    let r = p.curl(true, "PATCH", path, Some(body), &apply);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(
        r.json()["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );
    let r = p.curl(
        true,
        "PATCH",
        &format!("{path}?fieldManager=a"),
        Some(body),
        &apply,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let created = r.json();
    assert_eq!(created["metadata"]["managedFields"][0]["manager"], "a");
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );

    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: h\ndata:\n  k: \"2\"\n";
    let r = p.curl(
        true,
        "PATCH",
        &format!("{path}?fieldManager=b"),
        Some(yaml),
        &apply,
    );
    assert_eq!(r.status, 409, "{r:?}");
    let s = r.json();
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(
        s["message"],
        r#"Apply failed with 1 conflict: conflict with "a": .data.k"#
    );
    assert_eq!(
        s["details"]["causes"],
        serde_json::json!([{"type": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".data.k"}])
    );
    let r = p.curl(
        true,
        "PATCH",
        &format!("{path}?fieldManager=b&force=true"),
        Some(yaml),
        &apply,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["data"]["k"], "2");

    let merge = ["-H", "Content-Type: application/merge-patch+json"];
    let r = p.curl(
        true,
        "PATCH",
        &format!("{path}?force=true"),
        Some(b"{}"),
        &merge,
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(
        r.json()["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch"#
    );
}

const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.ssa.example.com
spec:
  group: ssa.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              items:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    size: {type: integer}
"#;

fn widget(items: &[(&str, u32)]) -> String {
    let mut s = String::from(
        "apiVersion: ssa.example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\nspec:\n  items:\n",
    );
    for (name, size) in items {
        s.push_str(&format!("  - name: {name}\n    size: {size}\n"));
    }
    s
}

/// A custom resource's `x-kubernetes-list-type: map` merges items of two
/// managers by key and names the item in conflicts.
fn custom_resource_list_map(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    k.stdin_ok(&["apply", "-f", "-"], WIDGET_CRD);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.ssa.example.com",
        "--timeout=30s",
    ]);
    let mut applied = false;
    for _ in 0..50 {
        let out = k.run_stdin(
            &["apply", "--server-side", "--field-manager", "a", "-f", "-"],
            &widget(&[("alpha", 1)]),
        );
        if out.status.success() {
            applied = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(applied, "the custom resource was never served");
    k.stdin_ok(
        &["apply", "--server-side", "--field-manager", "b", "-f", "-"],
        &widget(&[("beta", 2)]),
    );
    let w: Value =
        serde_json::from_str(&k.ok(&["get", "widget", "w", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    let names: Vec<&str> = w["spec"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"], "{w}");
    assert!(
        fields_of(&w, "b")["f:spec"]["f:items"]
            .get("k:{\"name\":\"beta\"}")
            .is_some(),
        "{w}"
    );
    let err = k.stdin_err(
        &["apply", "--server-side", "--field-manager", "b", "-f", "-"],
        &widget(&[("alpha", 5), ("beta", 2)]),
    );
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "a": .spec.items[name="alpha"].size"#
        ),
        "{err}"
    );
}
