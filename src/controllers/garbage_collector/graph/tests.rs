use super::*;
use serde_json::json;

fn obj(uid: &str, owners: &[(&str, bool)]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|(u, block)| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": format!("n-{u}"),
            "uid": u, "blockOwnerDeletion": block})
        })
        .collect();
    json!({"metadata": {"name": format!("n-{uid}"), "namespace": "ns", "uid": uid,
        "ownerReferences": refs}})
}

fn deleting(mut o: Value, finalizer: &str) -> Value {
    o["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    o["metadata"]["finalizers"] = json!([finalizer]);
    o
}

#[test]
fn unseen_owners_become_virtual_and_are_verified() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("child", &[("parent", false)]),
        &mut fx,
    );
    assert_eq!(fx.attempt_delete, vec!["parent".to_string()]);
    assert!(g.node("parent").is_some_and(Node::is_virtual));
    assert_eq!(g.dependents("parent"), vec!["child".to_string()]);
    let mut fx = Effects::default();
    g.upsert(0, "v1", "ConfigMap", &obj("parent", &[]), &mut fx);
    assert!(!g.node("parent").is_some_and(Node::is_virtual));
    assert_eq!(
        g.dependents("parent"),
        vec!["child".to_string()],
        "dependents are kept"
    );
    assert!(fx.attempt_delete.is_empty());
}

#[test]
fn deleting_an_owner_queues_its_dependents_and_marks_it_absent() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(0, "v1", "ConfigMap", &obj("parent", &[]), &mut fx);
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("a", &[("parent", false)]),
        &mut fx,
    );
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("b", &[("parent", false)]),
        &mut fx,
    );
    let mut fx = Effects::default();
    g.remove("parent", &mut fx);
    fx.attempt_delete.sort();
    assert_eq!(fx.attempt_delete, vec!["a".to_string(), "b".to_string()]);
    assert!(g.is_absent("parent"));
    // A new dependent of a known-absent owner is checked at once.
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("c", &[("parent", false)]),
        &mut fx,
    );
    assert_eq!(fx.attempt_delete, vec!["c".to_string()]);
    assert!(
        g.node("parent").is_none(),
        "no virtual node for an absent owner"
    );
}

#[test]
fn foreground_owner_waits_for_blocking_dependents_only() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(0, "v1", "ConfigMap", &obj("owner", &[]), &mut fx);
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("blocker", &[("owner", true)]),
        &mut fx,
    );
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("free", &[("owner", false)]),
        &mut fx,
    );
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &deleting(obj("owner", &[]), FOREGROUND),
        &mut fx,
    );
    fx.attempt_delete.sort();
    assert_eq!(fx.attempt_delete, vec!["blocker", "free", "owner"]);
    assert_eq!(g.blocking_dependents("owner"), vec!["blocker".to_string()]);
    // The same state again is no transition.
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &deleting(obj("owner", &[]), FOREGROUND),
        &mut fx,
    );
    assert!(fx.attempt_delete.is_empty());
    // The blocker going wakes the owner.
    let mut fx = Effects::default();
    g.remove("blocker", &mut fx);
    assert_eq!(fx.attempt_delete, vec!["owner".to_string()]);
    assert!(g.blocking_dependents("owner").is_empty());
}

#[test]
fn dropped_references_leave_the_owner_and_wake_it() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &deleting(obj("owner", &[]), FOREGROUND),
        &mut fx,
    );
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("dep", &[("owner", true), ("other", false)]),
        &mut fx,
    );
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &obj("dep", &[("other", false)]),
        &mut fx,
    );
    assert_eq!(fx.attempt_delete, vec!["owner".to_string()]);
    assert!(g.dependents("owner").is_empty());
    assert_eq!(g.dependents("other"), vec!["dep".to_string()]);
}

#[test]
fn orphan_finalizer_queues_the_owner_once() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &deleting(obj("owner", &[]), ORPHAN),
        &mut fx,
    );
    assert_eq!(fx.attempt_orphan, vec!["owner".to_string()]);
    let mut fx = Effects::default();
    g.upsert(
        0,
        "v1",
        "ConfigMap",
        &deleting(obj("owner", &[]), ORPHAN),
        &mut fx,
    );
    assert!(fx.attempt_orphan.is_empty());
}

#[test]
fn a_relist_removes_what_vanished_from_that_collection() {
    let mut g = Graph::default();
    let mut fx = Effects::default();
    g.upsert(0, "v1", "ConfigMap", &obj("owner", &[]), &mut fx);
    g.upsert(1, "v1", "Secret", &obj("dep", &[("owner", false)]), &mut fx);
    let mut fx = Effects::default();
    g.replace(0, "v1", "ConfigMap", &[], &mut fx);
    assert!(g.node("owner").is_none());
    assert!(g.node("dep").is_some(), "other collections are untouched");
    assert_eq!(fx.attempt_delete, vec!["dep".to_string()]);
}
