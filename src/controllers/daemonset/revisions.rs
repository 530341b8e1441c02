//! DaemonSet history (upstream `constructHistory`, `snapshot`,
//! `cleanupHistory`): the revision whose data is the DaemonSet's template
//! is the current one (renumbered to the newest on a rollback); the others
//! are old and pruned beyond `revisionHistoryLimit` unless a pod uses them.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{daemonsets, DaemonController, HASH_LABEL};
use crate::api::selector::LabelSelector;
use crate::client::Client;
use crate::controllers::objects::{self, name, namespace};
use crate::controllers::statefulset::history;
use crate::controllers::Error;

/// (current revision, old revisions).
pub async fn construct(
    ctl: &DaemonController,
    ds: &Value,
    selector: &LabelSelector,
) -> Result<(Arc<Value>, Vec<Arc<Value>>), Error> {
    let revisions = history::list_owned(&ctl.client, ds, selector).await?;
    let patch = history::template_patch(ds);
    let (mut current, old): (Vec<Arc<Value>>, Vec<Arc<Value>>) = revisions
        .into_iter()
        .partition(|r| r.get("data") == Some(&patch));
    let next = old.iter().map(|r| history::number(r)).max().unwrap_or(0) + 1;
    let cur = match current.len() {
        0 => snapshot(ctl, ds, patch, next).await?,
        _ => {
            // Duplicates of the current template: keep the newest.
            history::sort(&mut current);
            let keep = current.pop().unwrap_or_default();
            for dup in &current {
                history::delete(&ctl.client, dup).await?;
            }
            if history::number(&keep) < next {
                history::renumber(&ctl.client, &keep, next).await?
            } else {
                keep
            }
        }
    };
    Ok((cur, old))
}

/// Stores the DaemonSet's template as revision `number` named by its hash;
/// a different revision holding that name bumps `collisionCount`.
async fn snapshot(
    ctl: &DaemonController,
    ds: &Value,
    patch: Value,
    number: i64,
) -> Result<Arc<Value>, Error> {
    let collisions = ds.pointer("/status/collisionCount").and_then(Value::as_i64);
    let template = ds.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let hash = history::hash_template(&template, collisions);
    let mut labels: Map<String, Value> = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone().into());
    let mut rev = history::new_revision(
        ds,
        labels,
        ds.pointer("/metadata/annotations"),
        patch,
        number,
    );
    let rev_name = history::revision_name(name(ds), &hash);
    rev["metadata"]["name"] = rev_name.clone().into();
    let ns = Some(namespace(ds));
    let err = match ctl
        .client
        .create(&history::resource(), ns, rev.clone())
        .await
    {
        Ok(created) => return Ok(Arc::new(created)),
        Err(e) if e.is_already_exists() => e,
        Err(e) => return Err(e.into()),
    };
    let existing = ctl.client.get(&history::resource(), ns, &rev_name).await?;
    if history::equal_data(&existing, &rev) {
        return Ok(existing);
    }
    let fresh = ctl.client.get(&daemonsets(), ns, name(ds)).await?;
    let fresh_count = fresh
        .pointer("/status/collisionCount")
        .and_then(Value::as_i64);
    if fresh_count != collisions {
        return Err(Error::Invalid(format!(
            "found a stale collision count ({}, expected {}) of DaemonSet {:?} while processing; will retry until it is updated",
            collisions.unwrap_or(0),
            fresh_count.unwrap_or(0),
            name(ds)
        )));
    }
    let mut body = (*fresh).clone();
    body["status"]["collisionCount"] = json!(collisions.unwrap_or(0) + 1);
    ctl.client
        .update(&daemonsets(), ns, name(ds), body, Some("status"))
        .await?;
    tracing::info!(
        ds = name(ds),
        "hash collision for daemonset revision; bumped collisionCount"
    );
    Err(err.into())
}

/// Deletes the oldest old revisions beyond the limit whose hash no pod
/// carries.
pub async fn cleanup(
    ctl: &DaemonController,
    ds: &Value,
    mut old: Vec<Arc<Value>>,
    pods: &[Arc<Value>],
) -> Result<(), Error> {
    let limit = ds
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let mut to_kill = old.len().saturating_sub(limit);
    if to_kill == 0 {
        return Ok(());
    }
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| objects::labels(p)?.get(HASH_LABEL)?.as_str())
        .collect();
    history::sort(&mut old);
    for rev in &old {
        if to_kill == 0 {
            break;
        }
        let hash = objects::labels(rev)
            .and_then(|l| l.get(HASH_LABEL))
            .and_then(Value::as_str)
            .unwrap_or("");
        if live.contains(hash) {
            continue;
        }
        history::delete(&ctl.client, rev).await?;
        to_kill -= 1;
    }
    Ok(())
}
