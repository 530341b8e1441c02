//! Adoption and release of dependents (upstream `ControllerRefManager`),
//! for any namespaced kind: pods and ControllerRevisions of StatefulSets
//! and DaemonSets.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::api::selector::LabelSelector;
use crate::client::{Client, ListOptions, Local, PatchType, ResourceId};
use crate::controllers::objects::{self, is_deleting, uid};
use crate::controllers::Error;

/// The objects of `res` in the owner's namespace that `owner` controls,
/// after adopting orphans that match `selector` and `member`, and
/// releasing owned ones that no longer match. Reads are consistent.
pub async fn claim(
    client: &Local,
    res: &ResourceId,
    owner: &Value,
    selector: &LabelSelector,
    member: impl Fn(&Value) -> bool,
) -> Result<Vec<Arc<Value>>, Error> {
    let list = client
        .list(
            res,
            Some(objects::namespace(owner)),
            &ListOptions::default(),
        )
        .await?;
    let owner_uid = uid(owner);
    let mut owned = Vec::new();
    for obj in list.items {
        let labels = objects::labels(&obj).cloned().unwrap_or_default();
        let matches = !selector.is_everything() && selector.matches(&labels) && member(&obj);
        match objects::controller_ref(&obj) {
            Some(r) if r.get("uid").and_then(Value::as_str) == Some(owner_uid) => {
                if matches || is_deleting(owner) {
                    owned.push(obj);
                } else {
                    release(client, res, &obj, owner_uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches && !is_deleting(owner) && !is_deleting(&obj) {
                    if let Some(adopted) = adopt(client, res, owner, &obj).await? {
                        owned.push(adopted);
                    }
                }
            }
        }
    }
    Ok(owned)
}

async fn adopt(
    client: &Local,
    res: &ResourceId,
    owner: &Value,
    obj: &Value,
) -> Result<Option<Arc<Value>>, Error> {
    let mut refs = objects::owner_references(obj).to_vec();
    refs.push(objects::controller_reference(owner));
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "uid": uid(obj),
        "resourceVersion": objects::meta_str(obj, "resourceVersion"),
    }});
    match patch_meta(client, res, obj, &patch).await {
        Ok(v) => Ok(Some(Arc::new(v))),
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn release(
    client: &Local,
    res: &ResourceId,
    obj: &Value,
    owner_uid: &str,
) -> Result<(), Error> {
    let refs: Vec<Value> = objects::owner_references(obj)
        .iter()
        .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
        .cloned()
        .collect();
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid(obj)}});
    match patch_meta(client, res, obj, &patch).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn patch_meta(
    client: &Local,
    res: &ResourceId,
    obj: &Value,
    patch: &Value,
) -> Result<Value, Error> {
    Ok(client
        .patch(
            res,
            Some(objects::namespace(obj)),
            objects::name(obj),
            PatchType::Merge,
            patch,
            None,
        )
        .await?)
}
