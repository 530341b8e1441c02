//! Namespace lifecycle: when a namespace is deleted, delete everything in
//! it, then remove the `kubernetes` finalizer so the namespace goes too
//! (upstream's namespace controller).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{
    Client, ClientError, DeleteOptions, EventStream, ListOptions, Local, ResourceId, WatchOptions,
};

const FINALIZER: &str = "kubernetes";
/// How long to wait before looking again at a namespace that still has content.
const RETRY: Duration = Duration::from_secs(1);

pub async fn run(client: Local) {
    let namespaces = ResourceId::new("", "v1", "namespaces");
    loop {
        let mut watch = match client
            .watch(&namespaces, None, WatchOptions::default())
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "namespace controller cannot watch namespaces");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut terminating: BTreeSet<String> = BTreeSet::new();
        loop {
            let wait = if terminating.is_empty() {
                Duration::from_secs(3600)
            } else {
                RETRY
            };
            match tokio::time::timeout(wait, watch.next()).await {
                Ok(Some(Ok(event))) => {
                    let name = event
                        .object
                        .get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(Value::as_str);
                    let deleting = event
                        .object
                        .get("metadata")
                        .and_then(|m| m.get("deletionTimestamp"))
                        .is_some();
                    if let Some(name) = name {
                        if event.kind != "DELETED" && deleting {
                            terminating.insert(name.to_string());
                        } else {
                            terminating.remove(name);
                        }
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "namespace watch error");
                    break;
                }
                Ok(None) => break,
                Err(_) => {}
            }
            let pending: Vec<String> = terminating.iter().cloned().collect();
            for ns in pending {
                match cleanup(&client, &ns).await {
                    Ok(true) => {
                        terminating.remove(&ns);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(namespace = ns, error = %e, "namespace cleanup failed; will retry")
                    }
                }
            }
        }
    }
}

/// Deletes what is left in `ns`; finalizes it once empty. Returns whether
/// the namespace is done.
async fn cleanup(client: &Local, ns: &str) -> Result<bool, ClientError> {
    let mut remaining = 0usize;
    for res in client.namespaced_storage_resources() {
        let list = client.list(&res, Some(ns), &ListOptions::default()).await?;
        for item in list.items {
            remaining += 1;
            let Some(name) = item
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let deleting = item
                .get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some();
            if deleting {
                continue;
            }
            let opts = DeleteOptions {
                propagation_policy: Some("Background".into()),
                ..Default::default()
            };
            match client.delete(&res, Some(ns), name, &opts).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let namespaces = ResourceId::new("", "v1", "namespaces");
    let current = match client.get(&namespaces, None, ns).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(true),
        Err(e) => return Err(e),
    };
    let finalizers: Vec<Value> = current
        .get("spec")
        .and_then(|s| s.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter(|v| v.as_str() != Some(FINALIZER))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut body = (*current).clone();
    body["spec"] = json!({"finalizers": finalizers});
    match client
        .update(&namespaces, None, ns, body, Some("finalize"))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}
