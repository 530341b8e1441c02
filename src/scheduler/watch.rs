//! List-then-watch loops over the shared watch cache, each feeding the
//! scheduler's single loop through one channel (so its state needs no lock).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{self, EventKind, Followed, Local, ResourceId};

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

/// Follows one collection until the receiver is gone.
pub fn follow(client: Local, kind: Kind, tx: UnboundedSender<Msg>) {
    client::follow(client, kind.resource(), move |followed| {
        let msg = match followed {
            Followed::Listed(items) => Msg::Relist(kind, items),
            Followed::Event { kind: k, object } => {
                let change = match k {
                    EventKind::Added | EventKind::Modified => Change::Upsert,
                    EventKind::Deleted => Change::Deleted,
                };
                Msg::Event(kind, change, object)
            }
        };
        tx.send(msg).is_ok()
    });
}
