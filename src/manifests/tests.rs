use serde_json::json;

use super::apply::merge_patch;
use super::parse;
use super::state::object_name;

#[test]
fn multi_document_yaml_lists_and_empty_documents() {
    let text = "---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n\
                - {apiVersion: v1, kind: Namespace, metadata: {name: c}}\n";
    let objs = parse::objects("x.yaml", text.as_bytes()).unwrap();
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Secret", "Namespace"]);
    let json = br#"{"apiVersion":"v1","kind":"ConfigMapList","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}]}"#;
    assert_eq!(parse::objects("x.json", json).unwrap().len(), 1);
}

#[test]
fn bad_files_are_errors_not_panics() {
    assert!(parse::objects("x.yaml", b"a: [unclosed").is_err());
    assert!(parse::objects("x.yaml", b"- just\n- a list\n").is_err());
    assert!(parse::objects("x.json", b"{").is_err());
    assert!(parse::objects("x.yaml", &[0xff, 0xfe]).is_err());
    assert!(parse::is_manifest("a.yml") && parse::is_manifest("d/a.json"));
    assert!(!parse::is_manifest("a.yaml.skip") && !parse::is_manifest("a.txt"));
}

#[test]
fn state_names_are_valid_and_distinct() {
    let a = object_name("a_b.yaml");
    let b = object_name("a-b.yaml");
    assert_ne!(a, b);
    for n in [
        a,
        b,
        object_name(&"X".repeat(300)),
        object_name("sub/dir/Über.yaml"),
    ] {
        assert!(n.len() <= 63, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n}"
        );
    }
}

#[test]
fn matching_object_needs_no_patch() {
    let desired = json!({"metadata": {"name": "s", "labels": {"a": "1"}},
                         "spec": {"ports": [{"port": 53, "protocol": "UDP"}]}});
    // The server added defaults, status and allocated fields.
    let live = json!({"metadata": {"name": "s", "uid": "u", "labels": {"a": "1", "x": "y"}},
                      "spec": {"clusterIP": "10.43.0.10",
                               "ports": [{"port": 53, "protocol": "UDP", "targetPort": 53}]},
                      "status": {}});
    assert_eq!(merge_patch(Some(&desired), &desired, &live), None);
    assert_eq!(merge_patch(None, &desired, &live), None);
}

#[test]
fn changes_and_removals_are_patched_server_fields_kept() {
    let last = json!({"metadata": {"labels": {"a": "1", "gone": "x"}},
                      "data": {"k": "v", "old": "o"},
                      "spec": {"ports": [{"port": 53, "name": "dns"}]}});
    let desired = json!({"metadata": {"labels": {"a": "2"}},
                         "data": {"k": "v"},
                         "spec": {"ports": [{"port": 53}]}});
    let live = json!({"metadata": {"labels": {"a": "1", "gone": "x", "user": "u"}},
                      "data": {"k": "v", "old": "o"},
                      "spec": {"clusterIP": "1.2.3.4",
                               "ports": [{"port": 53, "name": "dns", "protocol": "TCP"}]}});
    let patch = merge_patch(Some(&last), &desired, &live).unwrap();
    assert_eq!(
        patch,
        json!({"metadata": {"labels": {"a": "2", "gone": null}},
               "data": {"old": null},
               "spec": {"ports": [{"port": 53}]}})
    );
}
