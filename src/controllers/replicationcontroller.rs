//! The ReplicationController controller: the ReplicaSet loop with a
//! map-of-labels selector (core/v1's older form).

use serde_json::{json, Value};

use super::replicaset::{start_kind, Kind};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::ResourceId;

pub fn start(ctx: &Ctx) {
    start_kind(
        ctx,
        Kind {
            resource: ResourceId::new("", "v1", "replicationcontrollers"),
            kind: "ReplicationController",
            component: "replication-controller",
            selector,
        },
    );
}

/// `spec.selector` is a plain label map; it defaults to the template's
/// labels (the API fills that in at creation).
fn selector(rc: &Value) -> Result<LabelSelector, Error> {
    let labels = rc
        .get("spec")
        .and_then(|s| s.get("selector"))
        .cloned()
        .unwrap_or(json!({}));
    LabelSelector::from_json(&json!({ "matchLabels": labels }))
        .map_err(|e| Error::Invalid(format!("invalid selector: {e}")))
}
