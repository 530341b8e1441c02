//! Event sources: a list-then-watch loop over one collection of the shared
//! watch cache that hands every object it sees (and, on a resync, every
//! object again) to a callback, usually one that queues keys.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::client::{Client, EventStream, ListOptions, Local, ResourceId, WatchOptions};

/// What happened to an object, as a controller cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Seen at (re)list time or created.
    Added,
    Modified,
    Deleted,
    /// A periodic re-delivery of an unchanged object.
    Resync,
}

const RETRY: Duration = Duration::from_secs(1);

/// Follows `res` (all namespaces) until the runtime stops, calling
/// `on_change` for every object. `resync`, when set, re-delivers every
/// object at that interval so missed work is found again.
pub fn watch<F>(client: Local, res: ResourceId, resync: Option<Duration>, mut on_change: F)
where
    F: FnMut(Change, &Arc<Value>) + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let list = match client.list(&res, None, &ListOptions::default()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = res.plural, error = %e, "cannot list; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            for item in &list.items {
                on_change(Change::Added, item);
            }
            let mut rv = list.resource_version;
            let mut next_resync = resync.map(|d| tokio::time::Instant::now() + d);
            // Watch from rv until the watch cannot resume (410), then re-list.
            'watch: loop {
                let opts = WatchOptions {
                    resource_version: Some(rv.clone()),
                    ..Default::default()
                };
                let mut stream = match client.watch(&res, None, opts).await {
                    Ok(s) => s,
                    Err(e) => {
                        if !e.is_gone() {
                            tracing::warn!(resource = res.plural, error = %e, "cannot watch");
                            tokio::time::sleep(RETRY).await;
                        }
                        break 'watch;
                    }
                };
                loop {
                    let event = match next_resync {
                        Some(at) => tokio::select! {
                            e = stream.next() => e,
                            _ = tokio::time::sleep_until(at) => {
                                resync_all(&client, &res, &mut on_change).await;
                                next_resync = resync.map(|d| tokio::time::Instant::now() + d);
                                continue;
                            }
                        },
                        None => stream.next().await,
                    };
                    let event = match event {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => {
                            tracing::debug!(resource = res.plural, error = %e, "watch ended");
                            break 'watch;
                        }
                        None => continue 'watch,
                    };
                    let change = match event.kind.as_str() {
                        "ADDED" => Change::Added,
                        "MODIFIED" => Change::Modified,
                        "DELETED" => Change::Deleted,
                        "ERROR" => break 'watch,
                        _ => continue,
                    };
                    if let Some(v) = event
                        .object
                        .get("metadata")
                        .and_then(|m| m.get("resourceVersion"))
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    on_change(change, &event.object);
                }
            }
        }
    });
}

async fn resync_all<F>(client: &Local, res: &ResourceId, on_change: &mut F)
where
    F: FnMut(Change, &Arc<Value>),
{
    let opts = ListOptions {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    if let Ok(list) = client.list(res, None, &opts).await {
        for item in &list.items {
            on_change(Change::Resync, item);
        }
    }
}
