//! Event sources: a list-then-watch loop over one collection of the shared
//! watch cache that hands every object it sees (and, on a resync, every
//! object again) to a callback, usually one that queues keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::client::{self, Client, EventKind, Followed, ListOptions, Local, ResourceId};

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

/// Follows `res` (all namespaces) until the runtime stops, calling
/// `on_change` for every object. `resync`, when set, re-delivers every
/// object at that interval so missed work is found again.
pub fn watch<F>(client: Local, res: ResourceId, resync: Option<Duration>, on_change: F)
where
    F: FnMut(Change, &Arc<Value>) + Send + 'static,
{
    let on_change = Arc::new(Mutex::new(on_change));
    if let Some(every) = resync {
        let (client, res, on_change) = (client.clone(), res.clone(), Arc::clone(&on_change));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                resync_all(&client, &res, &on_change).await;
            }
        });
    }
    client::follow(client, res, move |followed| {
        let mut on_change = on_change.lock().unwrap_or_else(|p| p.into_inner());
        match followed {
            Followed::Listed(items) => {
                for item in &items {
                    on_change(Change::Added, item);
                }
            }
            Followed::Event { kind, object } => {
                let change = match kind {
                    EventKind::Added => Change::Added,
                    EventKind::Modified => Change::Modified,
                    EventKind::Deleted => Change::Deleted,
                };
                on_change(change, &object);
            }
        }
        true
    });
}

async fn resync_all<F>(client: &Local, res: &ResourceId, on_change: &Mutex<F>)
where
    F: FnMut(Change, &Arc<Value>),
{
    let opts = ListOptions {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    if let Ok(list) = client.list(res, None, &opts).await {
        let mut on_change = on_change.lock().unwrap_or_else(|p| p.into_inner());
        for item in &list.items {
            on_change(Change::Resync, item);
        }
    }
}
