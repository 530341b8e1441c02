//! List-then-watch loops over the shared watch cache, each feeding the
//! scheduler's single loop through one channel (so its state needs no lock).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{Client, EventStream, ListOptions, Local, ResourceId, WatchOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pods,
    Nodes,
    PriorityClasses,
    Namespaces,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Pods,
        Kind::Nodes,
        Kind::PriorityClasses,
        Kind::Namespaces,
    ];

    fn resource(self) -> ResourceId {
        match self {
            Kind::Pods => ResourceId::new("", "v1", "pods"),
            Kind::Nodes => ResourceId::new("", "v1", "nodes"),
            Kind::PriorityClasses => ResourceId::new("scheduling.k8s.io", "v1", "priorityclasses"),
            Kind::Namespaces => ResourceId::new("", "v1", "namespaces"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Upsert,
    Deleted,
}

/// What the scheduler loop receives.
#[derive(Debug)]
pub enum Msg {
    /// A full (re)list: everything not in it is gone.
    Relist(Kind, Vec<Arc<Value>>),
    Event(Kind, Change, Arc<Value>),
    /// A binding was written.
    Bound(String),
    /// A binding failed; the pod goes back to the queue.
    BindFailed(String, String),
}

const RETRY: Duration = Duration::from_secs(1);

/// Follows one collection until the receiver is gone.
pub fn follow(client: Local, kind: Kind, tx: UnboundedSender<Msg>) {
    let res = kind.resource();
    tokio::spawn(async move {
        loop {
            let list = match client.list(&res, None, &ListOptions::default()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = res.plural, error = %e, "scheduler cannot list; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if tx.send(Msg::Relist(kind, list.items)).is_err() {
                return;
            }
            let mut rv = list.resource_version;
            // Watch from rv; re-watch when a stream ends, re-list on 410.
            'watch: loop {
                let opts = WatchOptions {
                    resource_version: Some(rv.clone()),
                    ..Default::default()
                };
                let mut stream = match client.watch(&res, None, opts).await {
                    Ok(s) => s,
                    Err(e) => {
                        if !e.is_gone() {
                            tracing::warn!(resource = res.plural, error = %e, "scheduler cannot watch");
                            tokio::time::sleep(RETRY).await;
                        }
                        break 'watch;
                    }
                };
                loop {
                    let event = match stream.next().await {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => {
                            tracing::debug!(resource = res.plural, error = %e, "watch ended");
                            break 'watch;
                        }
                        None => continue 'watch,
                    };
                    let change = match event.kind.as_str() {
                        "ADDED" | "MODIFIED" => Change::Upsert,
                        "DELETED" => Change::Deleted,
                        "ERROR" => break 'watch,
                        _ => continue,
                    };
                    if let Some(v) = event
                        .object
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    if tx.send(Msg::Event(kind, change, event.object)).is_err() {
                        return;
                    }
                }
            }
        }
    });
}
