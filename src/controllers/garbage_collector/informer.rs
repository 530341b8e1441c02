//! One list-then-watch loop per collection feeding the graph. Unlike the
//! generic source, a re-list also removes what vanished during the gap (a
//! missed deletion would leave a dependent forever).

use std::sync::Arc;

use super::{resource_id, Collector};
use crate::api::registry::Resource;
use crate::client::{self, EventKind, Followed};

pub fn spawn(
    gc: Arc<Collector>,
    source: usize,
    r: &'static Resource,
    on_synced: impl FnOnce() + Send + 'static,
) {
    let api_version = r.api_version();
    let kind = r.kind;
    let mut on_synced = Some(on_synced);
    let client = gc.client.clone();
    client::follow(client, resource_id(r), move |followed| {
        match followed {
            Followed::Listed(items) => {
                gc.change(|g, fx| g.replace(source, &api_version, kind, &items, fx));
                if let Some(f) = on_synced.take() {
                    f();
                }
            }
            Followed::Event { kind: k, object } => {
                let obj = &object;
                match k {
                    EventKind::Added | EventKind::Modified => {
                        gc.change(|g, fx| g.upsert(source, &api_version, kind, obj, fx))
                    }
                    EventKind::Deleted => {
                        gc.change(|g, fx| g.remove(crate::controllers::objects::uid(obj), fx))
                    }
                }
            }
        }
        true
    });
}
