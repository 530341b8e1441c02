//! Follows this node's own Node (field selector `metadata.name`): its
//! podCIDR, conditions changed by others (check and report at once), and
//! its deletion (the status loop stops: as upstream, a kubelet registers
//! only when it starts).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch as channel;

use super::register::nodes;
use super::{conditions, Shared};
use crate::api::selector::FieldSelector;
use crate::client::{follow_selected, Client, EventKind, Followed};

pub fn start<C: Client + Clone>(client: C, shared: Arc<Shared>, stop: channel::Receiver<bool>) {
    let fields = match FieldSelector::parse(&format!("metadata.name={}", shared.name)) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the node");
            return;
        }
    };
    // Whether this follow has seen the Node: only then does a list
    // without it mean it was deleted (not that it was not created yet).
    let mut known = false;
    follow_selected(client, nodes(), fields, move |change| {
        match change {
            Followed::Listed(items) => match items.into_iter().next() {
                Some(node) => {
                    known = true;
                    present(&shared, node);
                }
                None if known => shared.flag(|f| f.deleted = f.registered.is_some()),
                None => {}
            },
            Followed::Event {
                kind: EventKind::Deleted,
                object,
            } => gone(&shared, &object),
            Followed::Event { object, .. } => {
                known = true;
                present(&shared, object);
            }
        }
        !*stop.borrow()
    });
}

fn present(shared: &Shared, node: Arc<Value>) {
    let foreign = shared
        .sent_conditions()
        .is_some_and(|ours| conditions::changed_by_others(&node["status"]["conditions"], &ours));
    shared.seen(node);
    if foreign {
        tracing::debug!(
            node = shared.name,
            "node conditions changed by others; reporting"
        );
        shared.flag(|f| f.report = true);
    }
}

fn gone(shared: &Shared, node: &Value) {
    let uid = node["metadata"]["uid"].as_str().unwrap_or_default();
    shared.flag(|f| {
        if f.registered.as_deref() == Some(uid) {
            f.deleted = true;
        }
    });
}
