//! One list-then-watch loop per collection feeding the graph. Unlike the
//! generic source, a re-list also removes what vanished during the gap (a
//! missed deletion would leave a dependent forever).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{resource_id, Collector};
use crate::api::registry::Resource;
use crate::client::{Client, EventStream, ListOptions, WatchOptions};

const RETRY: Duration = Duration::from_secs(1);

pub fn spawn(
    gc: Arc<Collector>,
    source: usize,
    r: &'static Resource,
    on_synced: impl FnOnce() + Send + 'static,
) {
    let res = resource_id(r);
    let api_version = r.api_version();
    let kind = r.kind;
    tokio::spawn(async move {
        let mut on_synced = Some(on_synced);
        loop {
            let list = match gc.client.list(&res, None, &ListOptions::default()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = r.plural, error = %e, "garbage collector cannot list; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            gc.change(|g, fx| g.replace(source, &api_version, kind, &list.items, fx));
            if let Some(f) = on_synced.take() {
                f();
            }
            let mut rv = list.resource_version;
            'watch: loop {
                let opts = WatchOptions {
                    resource_version: Some(rv.clone()),
                    allow_bookmarks: true,
                    ..Default::default()
                };
                let mut stream = match gc.client.watch(&res, None, opts).await {
                    Ok(s) => s,
                    Err(e) => {
                        if !e.is_gone() {
                            tracing::warn!(resource = r.plural, error = %e, "garbage collector cannot watch");
                            tokio::time::sleep(RETRY).await;
                        }
                        break 'watch;
                    }
                };
                loop {
                    let event = match stream.next().await {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => {
                            tracing::debug!(resource = r.plural, error = %e, "watch ended");
                            break 'watch;
                        }
                        None => continue 'watch,
                    };
                    if event.kind == "ERROR" {
                        break 'watch;
                    }
                    if let Some(v) = event
                        .object
                        .get("metadata")
                        .and_then(|m| m.get("resourceVersion"))
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    let obj = &event.object;
                    match event.kind.as_str() {
                        "ADDED" | "MODIFIED" => {
                            gc.change(|g, fx| g.upsert(source, &api_version, kind, obj, fx))
                        }
                        "DELETED" => {
                            gc.change(|g, fx| g.remove(crate::controllers::objects::uid(obj), fx))
                        }
                        _ => {}
                    }
                }
            }
        }
    });
}
