//! List, then watch from the list's resourceVersion, re-watching from the
//! last version seen when a watch ends and listing again when that version
//! is gone (410), as client-go's reflector does. Over the remote client, so
//! it works against any API server.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::client::{
    Client, ClientError, EventStream, ListOptions, Remote, ResourceId, WatchOptions,
};

/// What the handler is told.
pub enum Change {
    /// A full list: every object there is (after a start or a 410).
    Listed(Vec<Arc<Value>>),
    Upsert(Arc<Value>),
    Deleted(Arc<Value>),
}

/// The selectors of the list and watch.
#[derive(Clone, Default)]
pub struct Filter {
    pub labels: String,
    pub fields: String,
}

const RETRY: Duration = Duration::from_secs(2);
/// Watches end on the server's timeout or ours; client-go picks 5–10 min.
const WATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs forever (until the task is aborted).
pub async fn run(
    client: &Remote,
    res: &ResourceId,
    filter: &Filter,
    mut handle: impl FnMut(Change),
) {
    let Ok(label_selector) = crate::api::selector::LabelSelector::parse(&filter.labels) else {
        tracing::error!(selector = filter.labels, "bad label selector");
        return;
    };
    let Ok(field_selector) = crate::api::selector::FieldSelector::parse(&filter.fields) else {
        tracing::error!(selector = filter.fields, "bad field selector");
        return;
    };
    loop {
        let opts = ListOptions {
            label_selector: label_selector.clone(),
            field_selector: field_selector.clone(),
            ..Default::default()
        };
        let list = match client.list(res, None, &opts).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(resource = res.plural, error = %e, "list failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut rv = list.resource_version.clone();
        handle(Change::Listed(list.items));
        // Watch until the version we hold is gone, then list again.
        loop {
            let opts = WatchOptions {
                label_selector: label_selector.clone(),
                field_selector: field_selector.clone(),
                resource_version: Some(rv.clone()),
                allow_bookmarks: true,
                timeout: Some(WATCH_TIMEOUT),
                ..Default::default()
            };
            let mut watch = match client.watch(res, None, opts).await {
                Ok(w) => w,
                Err(e) if e.is_gone() => break,
                Err(e) => {
                    tracing::debug!(resource = res.plural, error = %e, "watch failed; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            match follow(&mut watch, &mut rv, &mut handle).await {
                Ok(()) => continue,
                Err(e) if e.is_gone() => break,
                Err(e) => {
                    tracing::debug!(resource = res.plural, error = %e, "watch ended");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// Hands over events until the watch ends; keeps `rv` at the last one.
async fn follow(
    watch: &mut impl EventStream,
    rv: &mut String,
    handle: &mut impl FnMut(Change),
) -> Result<(), ClientError> {
    while let Some(event) = watch.next().await {
        let event = event?;
        if let Some(v) = event.object["metadata"]["resourceVersion"].as_str() {
            *rv = v.to_string();
        }
        match event.kind.as_str() {
            "ADDED" | "MODIFIED" => handle(Change::Upsert(event.object)),
            "DELETED" => handle(Change::Deleted(event.object)),
            _ => {} // BOOKMARK: only its version counts
        }
    }
    Ok(())
}
