//! Applying one object of a manifest, and deleting one it no longer has.
//!
//! Apply is kubectl's client-side apply with a JSON merge patch: the
//! object as last applied is kept in the annotation `nanokube.io/applied`
//! (as kubectl's last-applied-configuration and k3s's
//! `objectset.rio.cattle.io/applied`), and the patch sets what the file
//! says, nulls what it said last time and no longer does, and leaves
//! everything else — status, allocated cluster IPs and node ports, fields
//! other controllers or users set — as the server has it. Lists are
//! replaced whole (merge patch), but only when the live list does not
//! already hold what the file says: defaults the server filled into list
//! items do not make an unchanged object look changed. An object that
//! already matches gets no write at all.

use serde_json::{Map, Value};

use super::parse::ObjectRef;
use super::{APPLIED, OWNER};
use crate::api::patch::PatchType;
use crate::api::{Api, ApiError, DeleteOptions, Resource, WriteOptions};

/// The largest last-applied record kept on an object.
const MAX_APPLIED: usize = 128 * 1024;

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// The served resource, namespace and name of `obj`, with the namespace
/// defaulted to "default" (and dropped for cluster-scoped kinds).
pub fn resolve(api: &Api, obj: &Value) -> Result<(&'static Resource, ObjectRef), String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = text(obj.get("apiVersion"));
    let kind = text(obj.get("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err("an object has no apiVersion or kind".into());
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let r = api
        .registry()
        .all()
        .iter()
        .copied()
        .find(|r| {
            r.group == group && r.version == version && r.kind == kind && r.has_verb("create")
        })
        .ok_or_else(|| format!("no matches for kind \"{kind}\" in version \"{api_version}\""))?;
    let meta = obj.get("metadata");
    let name = text(meta.and_then(|m| m.get("name")));
    if name.is_empty() {
        return Err(format!("a {kind} has no metadata.name"));
    }
    let namespace = r.namespaced.then(|| {
        Some(text(meta.and_then(|m| m.get("namespace"))))
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".into())
    });
    Ok((
        r,
        ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        },
    ))
}

/// Creates `obj` or brings the live object to it (see the module comment).
pub async fn apply(
    api: &Api,
    file: &str,
    r: &'static Resource,
    id: &ObjectRef,
    obj: &Value,
) -> Result<Change, ApiError> {
    let desired = desired(file, id, obj);
    let ns = id.namespace.as_deref();
    let opts = WriteOptions::default();
    let live = match api.get(r, ns, &id.name).await {
        Ok(live) => live,
        Err(ApiError::NotFound { .. }) => {
            match api.create(r, ns, desired.clone(), &opts).await {
                Ok(_) => return Ok(Change::Created),
                // Created meanwhile by someone else: adopt it below.
                Err(ApiError::AlreadyExists { .. }) => api.get(r, ns, &id.name).await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let last: Option<Value> = annotation(&live, APPLIED).and_then(|s| serde_json::from_str(s).ok());
    let mut patch = merge_patch(last.as_ref(), &desired, &live);
    if last.is_some() && annotation(&desired, APPLIED).is_none() {
        // A stale record would wrongly drop fields later: remove it.
        let p = patch.get_or_insert_with(|| serde_json::json!({}));
        p["metadata"]["annotations"][APPLIED] = Value::Null;
    }
    let Some(patch) = patch else {
        return Ok(Change::Unchanged);
    };
    let body = serde_json::to_vec(&patch).map_err(|e| ApiError::internal(e.to_string()))?;
    api.patch(r, ns, &id.name, PatchType::Merge, &body, None, &opts)
        .await?;
    Ok(Change::Updated)
}

/// Deletes the object `id` if `file` still owns it (another file or a
/// user may have taken it over since). Missing objects are fine.
pub async fn delete(api: &Api, file: &str, id: &ObjectRef) -> Result<bool, ApiError> {
    let Ok((r, _)) = resolve(
        api,
        &serde_json::json!({
            "apiVersion": id.api_version, "kind": id.kind, "metadata": {"name": id.name}
        }),
    ) else {
        // The kind is no longer served: nothing of it can exist.
        return Ok(false);
    };
    let ns = id.namespace.as_deref();
    let live = match api.get(r, ns, &id.name).await {
        Ok(live) => live,
        Err(ApiError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if annotation(&live, OWNER) != Some(file) {
        tracing::info!(file, kind = %id.kind, name = %id.name, "object no longer owned by the manifest; left in place");
        return Ok(false);
    }
    let opts = DeleteOptions {
        propagation_policy: Some("Background".into()),
        precondition_uid: crate::api::meta::uid(&live).map(str::to_string),
        ..Default::default()
    };
    match api.delete(r, ns, &id.name, &opts).await {
        Ok(_) => Ok(true),
        Err(ApiError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file's object as it should be stored: namespace set, owner and
/// last-applied annotations added.
fn desired(file: &str, id: &ObjectRef, obj: &Value) -> Value {
    let mut obj = obj.clone();
    let meta = crate::api::meta::meta_mut(&mut obj);
    match &id.namespace {
        Some(ns) => meta.insert("namespace".into(), ns.clone().into()),
        None => meta.remove("namespace"),
    };
    let applied = obj.to_string();
    let meta = crate::api::meta::meta_mut(&mut obj);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(a) = annotations.as_object_mut() {
        a.insert(OWNER.into(), file.into());
        // Annotations may hold 256 KiB in all (upstream's limit): a large
        // object goes without, and so without removal of fields dropped
        // from the file (kubectl apply fails on such objects instead).
        if applied.len() <= MAX_APPLIED {
            a.insert(APPLIED.into(), applied.into());
        }
    }
    obj
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The JSON merge patch taking `live` to `desired`, given what was applied
/// `last` time; None when `live` already is what the file says.
pub fn merge_patch(last: Option<&Value>, desired: &Value, live: &Value) -> Option<Value> {
    let (Some(want), Some(have)) = (desired.as_object(), live.as_object()) else {
        return (!covers(desired, live)).then(|| desired.clone());
    };
    let last = last.and_then(Value::as_object);
    let mut patch = Map::new();
    for (k, d) in want {
        if d.is_null() {
            continue;
        }
        let l = have.get(k);
        let prev = last.and_then(|m| m.get(k));
        match (d, l) {
            (Value::Object(_), Some(lv @ Value::Object(_))) => {
                if let Some(p) = merge_patch(prev, d, lv) {
                    patch.insert(k.clone(), p);
                }
            }
            _ => {
                let stale = d.is_array() && prev.is_some_and(|p| p != d);
                if stale || !l.is_some_and(|l| covers(d, l)) {
                    patch.insert(k.clone(), d.clone());
                }
            }
        }
    }
    // What the file said last time and no longer says is removed.
    for k in last.into_iter().flat_map(|m| m.keys()) {
        if !want.contains_key(k) && have.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Whether `have` holds everything `want` says (extra fields the server
/// added are fine; list lengths must match).
fn covers(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| v.is_null() || h.get(k).is_some_and(|hv| covers(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| covers(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == have,
    }
}
