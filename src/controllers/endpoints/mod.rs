//! The Endpoints controller (upstream's): one Endpoints object per
//! service with a selector, same name, listing the selected pods' ready
//! and not-ready addresses with the service's ports resolved on each pod.
//! Written only when the subsets or labels change; deleted with the
//! service. `pods.rs` and `services.rs` are shared with EndpointSlices.

pub mod pods;
pub mod services;
mod subsets;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::objects;
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, ListOptions, Local, ResourceId};
use pods::{HEADLESS_LABEL, TRIGGER_TIME};

const WORKERS: usize = 4;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    services::watch_services_and_pods(&ctx.client, &queue);
    {
        // A deleted Endpoints of a live service is made again.
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), endpoints(), None, move |change, ep| {
            if change == Change::Deleted {
                if let Some(k) = ObjectKey::of(ep) {
                    q.add(k);
                }
            }
        });
    }
    let reconciler = Arc::new(EndpointsController {
        client: ctx.client.clone(),
    });
    runtime::run("endpoints", queue, reconciler, WORKERS);
}

fn endpoints() -> ResourceId {
    ResourceId::new("", "v1", "endpoints")
}

/// The pods in `ns` carrying every label of `sel` (a consistent read).
pub async fn selected_pods(
    client: &Local,
    ns: &str,
    sel: &Map<String, Value>,
) -> Result<Vec<Arc<Value>>, Error> {
    let selector = LabelSelector::from_json(&json!({"matchLabels": sel}))
        .map_err(|e| Error::Invalid(format!("invalid selector: {e}")))?;
    let opts = ListOptions {
        label_selector: selector,
        ..Default::default()
    };
    Ok(client.list(&services::pods(), Some(ns), &opts).await?.items)
}

struct EndpointsController {
    client: Local,
}

impl Reconciler for EndpointsController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let svc = match self
            .client
            .get(&services::services(), key.ns(), &key.name)
            .await
        {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return self.delete(key).await,
            Err(e) => return Err(e.into()),
        };
        // Services without a selector have endpoints managed by others.
        let Some(sel) = services::selector(&svc) else {
            return Ok(Action::Done);
        };
        let pods = selected_pods(&self.client, &key.namespace, sel).await?;
        let mut subsets = subsets::desired(&svc, &pods);
        let current = match self.client.get(&endpoints(), key.ns(), &key.name).await {
            Ok(c) => Some(c),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let truncated = subsets::truncate(&mut subsets);
        let labels = desired_labels(&svc);
        if let Some(cur) = &current {
            if unchanged(cur, &subsets, &labels, truncated) {
                return Ok(Action::Done);
            }
        }
        let used: Vec<&Value> = pods.iter().map(|p| p.as_ref()).collect();
        let mut ep = match &current {
            Some(c) => c.as_ref().clone(),
            None => json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": key.name, "namespace": key.namespace}}),
        };
        let meta = &mut ep["metadata"];
        meta["labels"] = Value::Object(labels);
        let mut annotations = meta
            .get("annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        annotations.insert(TRIGGER_TIME.into(), json!(pods::trigger_time(&svc, &used)));
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), json!("truncated"));
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        meta["annotations"] = Value::Object(annotations);
        ep["subsets"] = Value::Array(subsets);
        tracing::debug!(service = %key, "writing endpoints");
        let result = match current {
            Some(_) => {
                self.client
                    .update(&endpoints(), key.ns(), &key.name, ep, None)
                    .await
            }
            None => self.client.create(&endpoints(), key.ns(), ep).await,
        };
        match result {
            Ok(_) => Ok(Action::Done),
            // A namespace being deleted refuses new objects.
            Err(e) if e.code() == Some(403) || e.is_already_exists() => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

impl EndpointsController {
    async fn delete(&self, key: &ObjectKey) -> Result<Action, Error> {
        match self
            .client
            .delete(&endpoints(), key.ns(), &key.name, &DeleteOptions::default())
            .await
        {
            Ok(()) => Ok(Action::Done),
            Err(e) if e.is_not_found() => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

/// The service's labels, plus the headless label for headless services.
fn desired_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = objects::labels(svc).cloned().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    if pods::is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels
}

fn unchanged(cur: &Value, subsets: &[Value], labels: &Map<String, Value>, truncated: bool) -> bool {
    let empty = Vec::new();
    let cur_subsets = cur
        .get("subsets")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let cur_labels = objects::labels(cur).cloned().unwrap_or_default();
    cur_subsets.as_slice() == subsets
        && &cur_labels == labels
        && objects::annotation(cur, OVER_CAPACITY).is_some() == truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_services_label_their_endpoints() {
        let svc = json!({"metadata": {"labels": {"app": "db"}}, "spec": {"clusterIP": "None"}});
        let labels = desired_labels(&svc);
        assert_eq!(labels.get(HEADLESS_LABEL), Some(&json!("")));
        assert_eq!(labels.get("app"), Some(&json!("db")));
        let ep = json!({"metadata": {"labels": labels.clone()}, "subsets": []});
        assert!(unchanged(&ep, &[], &labels, false));
        assert!(!unchanged(&ep, &[json!({})], &labels, false));
    }
}
