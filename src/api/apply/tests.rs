//! Unit tests of field sets, their FieldsV1 encoding, types and Update
//! tracking.

use serde_json::{json, Value};

use super::fieldset::{fields, path_string, Element, Set};
use super::managed::{self, Entry, Operation};
use super::types::{ListType, Node};
use super::{manager_name, track, Target};

pub(super) const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
pub(super) const CONFIGMAP: &str = "io.k8s.api.core.v1.ConfigMap";

pub(super) fn target(definition: &'static str, api_version: &'static str) -> Target<'static> {
    Target {
        definition: Some(definition),
        custom: None,
        api_version,
        has_status: definition == DEPLOYMENT,
        subresource: None,
    }
}

pub(super) fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(super) fn entry<'a>(list: &'a [Value], manager: &str) -> Option<&'a Value> {
    list.iter().find(|e| e["manager"] == manager)
}

#[test]
fn fields_v1_encodes_members_and_nodes() {
    let mut s = Set::default();
    s.insert(&fields(&["data", "a"]));
    s.insert(&fields(&["data"]));
    s.insert(&fields(&["metadata", "labels", "app"]));
    assert_eq!(
        s.to_fields_v1(),
        json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
}

#[test]
fn fields_v1_round_trips() {
    let v = json!({
        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}},
        "f:metadata": {"f:finalizers": {"v:\"x\"": {}}},
        "f:status": {"f:list": {"i:0": {}}}
    });
    let s = Set::from_fields_v1(&v).unwrap();
    assert_eq!(s.to_fields_v1(), v);
    assert!(s.has(&[
        Element::Field("spec".into()),
        Element::Field("containers".into()),
        Element::key(vec![("name".into(), json!("app"))]),
    ]));
}

#[test]
fn fields_v1_rejects_bad_elements() {
    assert!(Set::from_fields_v1(&json!({"x:y": {}})).is_err());
    assert!(Set::from_fields_v1(&json!({"f:a": 1})).is_err());
    assert!(Set::from_fields_v1(&json!([])).is_err());
}

#[test]
fn keys_are_sorted_json() {
    let k = Element::key(vec![
        ("protocol".into(), json!("TCP")),
        ("containerPort".into(), json!(80)),
    ]);
    assert_eq!(
        k,
        Element::Key(r#"{"containerPort":80,"protocol":"TCP"}"#.into())
    );
    let mut p = fields(&["spec", "ports"]);
    p.push(k);
    p.push(Element::Field("name".into()));
    assert_eq!(
        path_string(&p),
        r#".spec.ports[containerPort=80,protocol="TCP"].name"#
    );
    assert_eq!(path_string(&[Element::value(&json!("a"))]), r#"[="a"]"#);
}

#[test]
fn set_algebra() {
    let mut a = Set::default();
    a.insert(&fields(&["x", "a"]));
    a.insert(&fields(&["x", "b"]));
    let mut b = Set::default();
    b.insert(&fields(&["x", "b"]));
    b.insert(&fields(&["y"]));
    let d = a.difference(&b);
    assert_eq!(d.paths(), vec![fields(&["x", "a"])]);
    assert_eq!(a.intersection(&b).paths(), vec![fields(&["x", "b"])]);
    assert_eq!(a.union(&b).paths().len(), 3);
    assert!(a.difference(&a).is_empty());
}

#[test]
fn builtin_list_types_follow_the_tables() {
    let root = Node::root(Some(DEPLOYMENT), None);
    let pod = root.field("spec").field("template").field("spec");
    let containers = pod.field("containers");
    assert_eq!(containers.list, ListType::Map(vec!["name".into()]));
    let c = containers.item();
    assert_eq!(
        c.field("ports").list,
        ListType::Map(vec!["containerPort".into(), "protocol".into()])
    );
    assert_eq!(c.field("args").list, ListType::Atomic);
    assert_eq!(
        root.field("metadata").field("finalizers").list,
        ListType::Set
    );
    assert!(root.field("spec").field("selector").atomic_map);
}

#[test]
fn custom_schema_markers() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                  "items": {"type": "object"}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "blob": {"type": "object", "x-kubernetes-map-type": "atomic"}
    }}}});
    let root = Node::root(None, Some(&schema));
    let spec = root.field("spec");
    assert_eq!(spec.field("items").list, ListType::Map(vec!["id".into()]));
    assert_eq!(spec.field("tags").list, ListType::Set);
    assert!(spec.field("blob").atomic_map);
    assert_eq!(spec.field("other").list, ListType::Atomic);
}

#[test]
fn items_without_keys_make_the_list_atomic() {
    let root = Node::root(Some(DEPLOYMENT), None);
    let containers = root
        .field("spec")
        .field("template")
        .field("spec")
        .field("containers");
    assert!(containers.item_elements(&[json!({"image": "x"})]).is_none());
    assert!(containers
        .item_elements(&[json!({"name": "a"}), json!({"name": "a"})])
        .is_none());
    // A defaulted key field keys the item by its default.
    let ports = containers.item().field("ports");
    let e = ports
        .item_elements(&[json!({"containerPort": 80})])
        .unwrap();
    assert_eq!(
        e[0],
        Element::Key(r#"{"containerPort":80,"protocol":"TCP"}"#.into())
    );
}

#[test]
fn manager_from_user_agent() {
    assert_eq!(manager_name(Some("a"), Some("kubectl/v1.33"), "x"), "a");
    assert_eq!(
        manager_name(
            None,
            Some("kubectl/v1.27.16 (linux/amd64) kubernetes/abc"),
            "x"
        ),
        "kubectl"
    );
    assert_eq!(manager_name(Some(""), None, "nanokube"), "nanokube");
}

#[test]
fn create_records_an_update_entry() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "d", "labels": {"a": "b"}}, "data": {"k": "v"}});
    track(&t, None, &mut obj, "kubectl-create", "2026-01-01T00:00:00Z");
    let list = entries(&obj);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["manager"], "kubectl-create");
    assert_eq!(list[0]["operation"], "Update");
    assert_eq!(list[0]["apiVersion"], "v1");
    assert_eq!(list[0]["fieldsType"], "FieldsV1");
    assert_eq!(list[0]["time"], "2026-01-01T00:00:00Z");
    assert_eq!(
        list[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
}

#[test]
fn update_moves_changed_fields_to_the_writer() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"metadata": {"name": "c"}, "data": {"k": "v", "j": "w"}});
    track(&t, None, &mut obj, "a", "2026-01-01T00:00:00Z");
    let old = obj.clone();
    let mut new = old.clone();
    new["data"]["k"] = json!("changed");
    track(&t, Some(&old), &mut new, "b", "2026-01-01T00:00:01Z");
    let list = entries(&new);
    assert_eq!(
        entry(&list, "b").unwrap()["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
    assert_eq!(
        entry(&list, "a").unwrap()["fieldsV1"],
        json!({"f:data": {".": {}, "f:j": {}}})
    );
}

#[test]
fn removed_fields_leave_every_manager_and_empty_entries_go() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
    track(&t, None, &mut obj, "a", "2026-01-01T00:00:00Z");
    let old = obj.clone();
    let mut new = json!({"metadata": {"name": "c", "managedFields": old["metadata"]["managedFields"].clone()}});
    track(&t, Some(&old), &mut new, "b", "2026-01-01T00:00:01Z");
    // "a" owned data and data.k, both gone; "b" changed nothing it can own.
    assert!(new["metadata"].get("managedFields").is_none(), "{new}");
}

#[test]
fn no_change_keeps_entries_and_times() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
    track(&t, None, &mut obj, "a", "2026-01-01T00:00:00Z");
    let old = obj.clone();
    let mut new = old.clone();
    new["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    track(&t, Some(&old), &mut new, "a", "2027-01-01T00:00:00Z");
    assert_eq!(new, old);
}

#[test]
fn one_update_entry_per_manager_with_latest_time() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"metadata": {"name": "c"}, "data": {"k": "1"}});
    track(&t, None, &mut obj, "a", "2026-01-01T00:00:00Z");
    let old = obj.clone();
    let mut new = old.clone();
    new["data"]["x"] = json!("2");
    track(&t, Some(&old), &mut new, "a", "2026-01-01T00:00:05Z");
    let list = entries(&new);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["time"], "2026-01-01T00:00:05Z");
    assert_eq!(
        list[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}, "f:x": {}}})
    );
}

#[test]
fn list_map_items_are_owned_by_key() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut obj = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "a", "args": ["x"]}]}}}});
    track(&t, None, &mut obj, "m", "2026-01-01T00:00:00Z");
    assert_eq!(
        entries(&obj)[0]["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn status_writes_record_the_subresource_and_only_status() {
    let mut t = target(DEPLOYMENT, "apps/v1");
    t.subresource = Some("status");
    let old = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}});
    let mut new =
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
    track(&t, Some(&old), &mut new, "ctrl", "2026-01-01T00:00:00Z");
    let list = entries(&new);
    assert_eq!(list[0]["subresource"], "status");
    assert_eq!(list[0]["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn provided_managed_fields_replace_the_live_ones() {
    let t = target(CONFIGMAP, "v1");
    let mut obj = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
    track(&t, None, &mut obj, "a", "2026-01-01T00:00:00Z");
    let old = obj.clone();
    let mut new = old.clone();
    new["metadata"]["managedFields"][0]["manager"] = json!("renamed");
    track(&t, Some(&old), &mut new, "b", "2026-01-01T00:00:01Z");
    let list = entries(&new);
    assert!(entry(&list, "renamed").is_some());
    assert!(entry(&list, "a").is_none());
}

#[test]
fn update_entries_are_capped_into_ancient_changes() {
    let mut list: Vec<Entry> = (0..12)
        .map(|i| {
            let mut set = Set::default();
            set.insert(&fields(&["data", &format!("k{i}")]));
            Entry {
                manager: format!("m{i:02}"),
                operation: Operation::Update,
                api_version: "v1".into(),
                time: Some(format!("2026-01-01T00:00:{i:02}Z")),
                subresource: String::new(),
                set,
            }
        })
        .collect();
    managed::tidy(&mut list);
    assert_eq!(list.len(), 10);
    let ancient = list
        .iter()
        .find(|e| e.manager == managed::ANCIENT_CHANGES)
        .unwrap();
    assert_eq!(ancient.set.paths().len(), 3);
    assert_eq!(ancient.time.as_deref(), Some("2026-01-01T00:00:02Z"));
}

#[test]
fn entries_sort_apply_first_then_time() {
    let e = |m: &str, op, t: &str| Entry {
        manager: m.into(),
        operation: op,
        api_version: "v1".into(),
        time: Some(t.into()),
        subresource: String::new(),
        set: Set::default(),
    };
    let mut list = vec![
        e("u2", Operation::Update, "2026-01-01T00:00:02Z"),
        e("u1", Operation::Update, "2026-01-01T00:00:01Z"),
        e("a", Operation::Apply, "2026-01-01T00:00:09Z"),
    ];
    let v = managed::encode(&mut list);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "u1", "u2"]);
}
