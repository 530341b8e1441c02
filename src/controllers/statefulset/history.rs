//! ControllerRevisions, shared by the StatefulSet and DaemonSet controllers
//! (upstream `pkg/controller/history`): a revision stores the owner's pod
//! template as the strategic merge patch `{"spec":{"template":{…,
//! "$patch":"replace"}}}` that `kubectl rollout undo` applies, a revision
//! number, the template's labels and a controller reference.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::claim;
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, Local, PatchType, ResourceId};
use crate::controllers::hash::{fnv1, fnv1a, safe_encode, FNV_OFFSET};
use crate::controllers::objects::{self, name, namespace};
use crate::controllers::Error;

/// The label upstream `NewControllerRevision` puts on StatefulSet revisions.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

pub fn resource() -> ResourceId {
    ResourceId::new("apps", "v1", "controllerrevisions")
}

/// Upstream `HashControllerRevision`: FNV-1 over the raw data and the
/// decimal collision count.
pub fn hash_revision(data: &Value, collision_count: Option<i64>) -> String {
    let mut bytes = canonical_json(data).into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv1(&bytes).to_string())
}

/// Upstream `ComputeHash` of a pod template (DaemonSets). Upstream hashes
/// the Go struct dump; we hash its canonical JSON: same alphabet and
/// length, not bit-identical names.
pub fn hash_template(template: &Value, collision_count: Option<i64>) -> String {
    let mut hash = fnv1a(FNV_OFFSET, canonical_json(template).as_bytes());
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        hash = fnv1a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

/// JSON as Go's `json.Marshal` writes a map: sorted keys, no spaces,
/// `<`, `>` and `&` escaped.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    let quoted = Value::String(s.to_string()).to_string();
    out.push_str(
        &quoted
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    );
}

/// The revision data of an owner: its pod template as a replacing patch.
/// Go encodes the template's `metadata.creationTimestamp` as null, so
/// upstream revisions (and kubectl's comparison) carry it too.
pub fn template_patch(owner: &Value) -> Value {
    let mut template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
        t.insert("$patch".into(), "replace".into());
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision stores (its patch without the directive).
pub fn template_of(revision: &Value) -> Value {
    let mut template = revision
        .pointer("/data/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        t.remove("$patch");
        if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("creationTimestamp");
        }
    }
    template
}

pub fn number(revision: &Value) -> i64 {
    revision
        .get("revision")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Upstream `SortControllerRevisions`: by number, then age, then name.
pub fn sort(revisions: &mut [Arc<Value>]) {
    revisions.sort_by(|a, b| {
        (
            number(a),
            objects::meta_str(a, "creationTimestamp"),
            name(a),
        )
            .cmp(&(
                number(b),
                objects::meta_str(b, "creationTimestamp"),
                name(b),
            ))
    });
}

/// Whether two revisions store the same template (upstream `EqualRevision`).
pub fn equal_data(a: &Value, b: &Value) -> bool {
    a.get("data") == b.get("data")
}

/// Upstream `ControllerRevisionName`: the owner's name (at most 223
/// characters) and the hash.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// A new revision of `owner` (not yet created).
pub fn new_revision(
    owner: &Value,
    labels: Map<String, Value>,
    annotations: Option<&Value>,
    data: Value,
    number: i64,
) -> Value {
    let mut meta = json!({
        "namespace": namespace(owner),
        "labels": labels,
        "ownerReferences": [objects::controller_reference(owner)],
    });
    if let Some(a) = annotations.filter(|a| a.as_object().is_some_and(|m| !m.is_empty())) {
        meta["annotations"] = a.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": data,
        "revision": number,
    })
}

/// The revisions `owner` controls, adopting orphans its selector matches
/// and releasing those it no longer matches (ClaimControllerRevisions).
pub async fn list_owned(
    client: &Local,
    owner: &Value,
    selector: &LabelSelector,
) -> Result<Vec<Arc<Value>>, Error> {
    let mut owned = claim::claim(client, &resource(), owner, selector, |_| true).await?;
    sort(&mut owned);
    Ok(owned)
}

/// Creates `revision` under the name its hash gives; when another
/// revision holds that name, bumps `collision_count` and tries the next
/// hash (upstream `CreateControllerRevision`). An equal revision of the
/// same owner under that name is returned as is.
pub async fn create_sts_revision(
    client: &Local,
    owner: &Value,
    revision: &Value,
    collision_count: &mut i64,
) -> Result<Arc<Value>, Error> {
    let data = revision.get("data").cloned().unwrap_or(Value::Null);
    let ns = namespace(owner);
    loop {
        let hash = hash_revision(&data, Some(*collision_count));
        let mut body = revision.clone();
        body["metadata"]["name"] = revision_name(name(owner), &hash).into();
        body["metadata"]["labels"][HASH_LABEL] = hash.into();
        let rev_name = objects::name(&body).to_string();
        match client.create(&resource(), Some(ns), body).await {
            Ok(created) => return Ok(Arc::new(created)),
            Err(e) if e.is_already_exists() => {
                let existing = client.get(&resource(), Some(ns), &rev_name).await?;
                if objects::is_controlled_by(&existing, objects::uid(owner))
                    && equal_data(&existing, revision)
                {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Gives an existing revision a new number (a rollback to it).
pub async fn renumber(client: &Local, revision: &Value, number: i64) -> Result<Arc<Value>, Error> {
    if self::number(revision) == number {
        return Ok(Arc::new(revision.clone()));
    }
    let patch = json!({"revision": number});
    let updated = client
        .patch(
            &resource(),
            Some(namespace(revision)),
            name(revision),
            PatchType::Merge,
            &patch,
            None,
        )
        .await?;
    Ok(Arc::new(updated))
}

pub async fn delete(client: &Local, revision: &Value) -> Result<(), Error> {
    let opts = DeleteOptions {
        precondition_uid: Some(objects::uid(revision).to_string()),
        ..Default::default()
    };
    match client
        .delete(
            &resource(),
            Some(namespace(revision)),
            name(revision),
            &opts,
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::hash::ALPHANUMS;

    #[test]
    fn canonical_json_sorts_keys_and_escapes_as_go() {
        let v = json!({"b": 1, "a": {"z": "<&>", "y": [true, null]}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":[true,null],"z":"\u003c\u0026\u003e"},"b":1}"#
        );
    }

    #[test]
    fn patches_replace_the_template_and_round_trip() {
        let sts = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let patch = template_patch(&sts);
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        assert!(patch["spec"]["template"]["metadata"]["creationTimestamp"].is_null());
        assert!(patch["spec"].get("replicas").is_none());
        let rev = json!({"data": patch});
        assert_eq!(template_of(&rev), sts["spec"]["template"]);
    }

    #[test]
    fn revision_hashes_depend_on_data_and_collisions() {
        let a = json!({"spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}});
        let b = json!({"spec": {"template": {"spec": {"containers": [{"image": "b"}]}}}});
        let ha = hash_revision(&a, Some(0));
        assert_eq!(ha, hash_revision(&a, Some(0)));
        assert_ne!(ha, hash_revision(&b, Some(0)));
        assert_ne!(ha, hash_revision(&a, Some(1)));
        assert!(ha.bytes().all(|c| ALPHANUMS.contains(&c) && ha.len() <= 10));
        assert_ne!(hash_template(&a, None), hash_template(&a, Some(1)));
        assert_eq!(revision_name("web", "abc"), "web-abc");
    }

    #[test]
    fn revisions_sort_by_number_then_age() {
        let r = |n: i64, t: &str, name: &str| {
            Arc::new(json!({"revision": n,
                "metadata": {"name": name, "creationTimestamp": t}}))
        };
        let mut revs = vec![
            r(2, "2024-01-01T00:00:00Z", "b"),
            r(1, "2024-01-02T00:00:00Z", "c"),
            r(1, "2024-01-01T00:00:00Z", "a"),
        ];
        sort(&mut revs);
        let names: Vec<&str> = revs.iter().map(|r| name(r)).collect();
        assert_eq!(names, ["a", "c", "b"]);
    }
}
