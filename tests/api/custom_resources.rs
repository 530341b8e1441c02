//! CustomResourceDefinitions with real kubectl 1.27 and 1.33: a definition
//! with a structural schema, a CEL rule, defaults, printer columns, status
//! and scale subresources, short names and categories; objects validated,
//! defaulted and pruned as upstream; `explain`; deleting the definition
//! removes its objects.

use std::time::{Duration, Instant};

use crate::common::{both_versions, header_columns, Kubectl, Proc};

both_versions!(
    schema_defaults_pruning_columns_and_scale,
    definitions_come_and_go_with_their_objects,
    garbage_collection_follows_custom_owners
);

const WIDGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The desired widget.
            x-kubernetes-validations:
            - rule: "self.replicas <= self.maxReplicas"
              message: "replicas must not exceed maxReplicas"
            properties:
              replicas: {type: integer, minimum: 0, maximum: 100}
              maxReplicas: {type: integer, default: 10}
              color: {type: string, enum: [red, blue], default: red}
          status:
            type: object
            properties:
              replicas: {type: integer}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

/// Polls `cond` for up to 30 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Applies the definition and waits until kubectl can use it.
fn establish(k: &Kubectl<'_>) {
    k.stdin_ok(&["apply", "-f", "-"], WIDGETS);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=10s",
        "crd/widgets.example.com",
    ]);
    eventually("widgets in discovery", || {
        k.run(&["get", "widgets"]).status.success()
    });
}

fn schema_defaults_pruning_columns_and_scale(kubectl: &str) {
    let p = Proc::server();
    let k = p.kubectl(kubectl);
    let started = Instant::now();
    establish(&k);
    println!("definition served after {:?}", started.elapsed());

    // Defaults fill in; the printer columns show them.
    k.stdin_ok(&["apply", "-f", "-"], &widget("w1", "{replicas: 3}"));
    let w = k.json(&["get", "widget", "w1"]);
    assert_eq!(w["spec"]["color"], "red");
    assert_eq!(w["spec"]["maxReplicas"], 10);
    assert_eq!(w["metadata"]["generation"], 1);
    let table = k.ok(&["get", "wd"]);
    assert_eq!(
        header_columns(&table),
        ["NAME", "REPLICAS", "COLOR", "READY"],
        "{table}"
    );
    assert!(table
        .lines()
        .nth(1)
        .is_some_and(|l| l.contains("w1") && l.contains(" 3 ") && l.contains("red")));
    // Categories: `get all` lists widgets.
    assert!(k.ok(&["get", "all"]).contains("widget.example.com/w1"));

    // Schema violations: upstream's field errors, word for word.
    let err = k.stdin_err(
        &["apply", "-f", "-"],
        &widget("bad", "{replicas: 300, color: pink}"),
    );
    assert!(
        err.contains("The Widget \"bad\" is invalid")
            && err.contains(r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#)
            && err.contains(
                "spec.replicas: Invalid value: 300: spec.replicas in body should be less than or equal to 100"
            ),
        "{err}"
    );
    let err = k.stdin_err(&["apply", "-f", "-"], &widget("bad", "{replicas: \"x\"}"));
    assert!(
        err.contains(r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#),
        "{err}"
    );
    // The CEL rule.
    let err = k.stdin_err(&["apply", "-f", "-"], &widget("bad", "{replicas: 20}"));
    assert!(
        err.contains(r#"The Widget "bad" is invalid: spec: Invalid value: "object": replicas must not exceed maxReplicas"#),
        "{err}"
    );
    assert!(k.run(&["get", "widget", "bad"]).status.code() != Some(0));

    // Unknown fields: refused under kubectl's strict validation, pruned
    // without it.
    let unknown = widget("unk", "{replicas: 1, bogus: 1}");
    let err = k.stdin_err(&["apply", "-f", "-"], &unknown);
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{err}"
    );
    k.stdin_ok(&["apply", "--validate=false", "-f", "-"], &unknown);
    let w = k.json(&["get", "widget", "unk"]);
    assert!(w["spec"].get("bogus").is_none(), "{w}");
    assert_eq!(w["spec"]["replicas"], 1);

    // Status only through the subresource; the main resource ignores it.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":9}}"#,
    ]);
    assert!(k.json(&["get", "widget", "w1"])["status"]["replicas"].is_null());
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":3,"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    let table = k.ok(&["get", "wd", "w1"]);
    assert!(table.contains("True"), "{table}");

    // Scale through the scale subresource.
    k.ok(&["scale", "widget", "w1", "--replicas=5"]);
    let w = k.json(&["get", "widget", "w1"]);
    assert_eq!(w["spec"]["replicas"], 5);
    assert_eq!(w["metadata"]["generation"], 2);
    let scale: serde_json::Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
    ]))
    .expect("a Scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["replicas"], 3);

    // explain reads the schema from OpenAPI v3.
    let explained = k.ok(&["explain", "widget.spec"]);
    for want in [
        "KIND:",
        "Widget",
        "The desired widget.",
        "maxReplicas",
        "color",
    ] {
        assert!(
            explained.contains(want),
            "{want} missing from:\n{explained}"
        );
    }
}

fn definitions_come_and_go_with_their_objects(kubectl: &str) {
    let p = Proc::server();
    let k = p.kubectl(kubectl);
    establish(&k);
    let crd = k.json(&["get", "crd", "widgets.example.com"]);
    let conditions = crd["status"]["conditions"].to_string();
    assert!(
        conditions.contains(r#""type":"NamesAccepted""#),
        "{conditions}"
    );
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    k.stdin_ok(&["apply", "-f", "-"], &widget("a", "{replicas: 1}"));
    k.ok(&["create", "namespace", "other"]);
    k.stdin_ok(
        &["apply", "-n", "other", "-f", "-"],
        &widget("b", "{replicas: 1}"),
    );
    assert_eq!(
        k.ok(&["get", "widgets", "-A", "-o", "name"])
            .lines()
            .count(),
        2
    );

    // The definition's name must be <plural>.<group>.
    let bad_name = WIDGETS.replace("name: widgets.example.com", "name: gadgets.example.com");
    let err = k.stdin_err(&["apply", "-f", "-"], &bad_name);
    assert!(
        err.contains(r#"metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group"#),
        "{err}"
    );

    // Deleting the definition deletes its objects, then the definition.
    k.ok(&["delete", "crd", "widgets.example.com", "--timeout=20s"]);
    eventually("widgets to stop being served", || {
        !k.run(&["get", "widgets.example.com", "-A"])
            .status
            .success()
    });
    // Re-created, it starts empty.
    establish(&k);
    assert_eq!(k.ok(&["get", "widgets", "-A", "-o", "name"]).trim(), "");
}

/// `metadata.ownerReferences` naming one owner.
fn owned_by(api_version: &str, kind: &str, name: &str, uid: &str) -> String {
    format!(
        "ownerReferences: [{{apiVersion: {api_version}, kind: {kind}, name: {name}, uid: {uid}}}]"
    )
}

fn garbage_collection_follows_custom_owners(kubectl: &str) {
    let p = Proc::server();
    let k = p.kubectl(kubectl);
    establish(&k);
    // A ConfigMap owned by a custom resource.
    k.stdin_ok(&["apply", "-f", "-"], &widget("owner", "{replicas: 1}"));
    let owner = k.json(&["get", "widget", "owner"]);
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    k.stdin_ok(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dep\n  {}\ndata: {{a: b}}\n",
            owned_by("example.com/v1", "Widget", "owner", &uid)
        ),
    );
    // A custom resource owned by a ConfigMap.
    k.ok(&["create", "configmap", "cm-owner", "--from-literal=a=b"]);
    let cm = k.json(&["get", "configmap", "cm-owner"]);
    let cm_uid = cm["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    k.stdin_ok(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: wdep\n  {}\nspec: {{replicas: 1}}\n",
            owned_by("v1", "ConfigMap", "cm-owner", &cm_uid)
        ),
    );
    k.ok(&["delete", "widget", "owner"]);
    eventually("the ConfigMap owned by a widget to be collected", || {
        !k.run(&["get", "configmap", "dep"]).status.success()
    });
    k.ok(&["delete", "configmap", "cm-owner"]);
    eventually("the widget owned by a ConfigMap to be collected", || {
        !k.run(&["get", "widget", "wdep"]).status.success()
    });
}
