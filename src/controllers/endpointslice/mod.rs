//! The EndpointSlice controller (upstream's): for every service with a
//! selector, `discovery.k8s.io/v1` EndpointSlices named `<service>-xxxxx`
//! holding the selected pods (ready, serving, terminating), at most 100
//! per slice, owned by the service. Slices are updated in place and
//! written only when they change. The `kubernetes` service has no
//! selector; its slice is kept by the API bootstrap.

mod plan;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::endpoints::pods::{self, HEADLESS_LABEL, TRIGGER_TIME};
use super::endpoints::{selected_pods, services};
use super::objects;
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, ListOptions, Local, ResourceId};

const WORKERS: usize = 4;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    services::watch_services_and_pods(&ctx.client, &queue);
    {
        // Our slices changed or deleted by someone else are put right.
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), slices(), None, move |_, slice| {
            let labels = objects::labels(slice);
            let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            if label(MANAGED_BY_LABEL) == Some(CONTROLLER_NAME) {
                if let Some(svc) = label(SERVICE_NAME_LABEL) {
                    q.add(ObjectKey::new(objects::namespace(slice), svc));
                }
            }
        });
    }
    let reconciler = Arc::new(SliceController {
        client: ctx.client.clone(),
    });
    runtime::run("endpointslice", queue, reconciler, WORKERS);
}

fn slices() -> ResourceId {
    ResourceId::new("discovery.k8s.io", "v1", "endpointslices")
}

struct SliceController {
    client: Local,
}

impl Reconciler for SliceController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let svc = match self
            .client
            .get(&services::services(), key.ns(), &key.name)
            .await
        {
            Ok(s) => s,
            // Owned slices go with the service (garbage collector).
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(sel) = services::selector(&svc) else {
            return Ok(Action::Done);
        };
        if objects::is_deleting(&svc) {
            return Ok(Action::Done);
        }
        let pods = selected_pods(&self.client, &key.namespace, sel).await?;
        let zones = self.zones().await?;
        let address_type = pods::ip_family(&svc);
        let existing = self.owned_slices(key).await?;
        let mut current: Vec<plan::SliceContent> = Vec::new();
        let mut stale = Vec::new();
        for s in &existing {
            if s.get("addressType").and_then(Value::as_str) == Some(address_type) {
                current.push((
                    objects::name(s).to_string(),
                    list(s, "ports"),
                    list(s, "endpoints"),
                ));
            } else {
                stale.push(objects::name(s).to_string());
            }
        }
        let mut plan = plan::plan(&current, plan::desired(&svc, &pods, &zones));
        plan.delete.extend(stale);
        let labels = desired_labels(&svc);
        let used: Vec<&Value> = pods.iter().map(|p| p.as_ref()).collect();
        let trigger = pods::trigger_time(&svc, &used);
        for (name, ports, endpoints) in plan.keep {
            let Some(cur) = existing.iter().find(|s| objects::name(s) == name) else {
                continue;
            };
            if list(cur, "ports") == ports
                && list(cur, "endpoints") == endpoints
                && objects::labels(cur) == Some(&labels)
                && objects::is_controlled_by(cur, objects::uid(&svc))
            {
                continue;
            }
            let mut body = cur.as_ref().clone();
            body["ports"] = Value::Array(ports);
            body["endpoints"] = Value::Array(endpoints);
            set_meta(&mut body, &svc, &labels, &trigger);
            tracing::debug!(service = %key, slice = name, "updating endpointslice");
            match self
                .client
                .update(&slices(), key.ns(), &name, body, None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        for (ports, endpoints) in plan.create {
            let mut body = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": format!("{}-", key.name), "namespace": key.namespace},
                "addressType": address_type, "endpoints": endpoints, "ports": ports});
            set_meta(&mut body, &svc, &labels, &trigger);
            tracing::debug!(service = %key, "creating endpointslice");
            match self.client.create(&slices(), key.ns(), body).await {
                Ok(_) => {}
                // A namespace being deleted refuses new objects.
                Err(e) if e.code() == Some(403) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        for name in plan.delete {
            match self
                .client
                .delete(&slices(), key.ns(), &name, &DeleteOptions::default())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Done)
    }
}

impl SliceController {
    /// Slices of the service managed by this controller (a consistent read).
    async fn owned_slices(&self, key: &ObjectKey) -> Result<Vec<Arc<Value>>, Error> {
        let selector = LabelSelector::parse(&format!(
            "{SERVICE_NAME_LABEL}={},{MANAGED_BY_LABEL}={CONTROLLER_NAME}",
            key.name
        ))
        .map_err(|e| Error::Invalid(format!("invalid selector: {e}")))?;
        let opts = ListOptions {
            label_selector: selector,
            ..Default::default()
        };
        Ok(self.client.list(&slices(), key.ns(), &opts).await?.items)
    }

    /// Node name → topology zone, from the cache.
    async fn zones(&self) -> Result<HashMap<String, String>, Error> {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let nodes = self
            .client
            .list(&ResourceId::new("", "v1", "nodes"), None, &opts)
            .await?;
        Ok(nodes
            .items
            .iter()
            .filter_map(|n| {
                let zone = objects::labels(n)?.get(plan::ZONE_LABEL)?.as_str()?;
                Some((objects::name(n).to_string(), zone.to_string()))
            })
            .collect())
    }
}

fn list(obj: &Value, field: &str) -> Vec<Value> {
    obj.get(field)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The service's labels (reserved ones dropped) plus the slice labels
/// (upstream setEndpointSliceLabels).
fn desired_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = objects::labels(svc).cloned().unwrap_or_default();
    for reserved in [SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL] {
        labels.remove(reserved);
    }
    labels.insert(SERVICE_NAME_LABEL.into(), json!(objects::name(svc)));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    if pods::is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels
}

fn set_meta(slice: &mut Value, svc: &Value, labels: &Map<String, Value>, trigger: &str) {
    let meta = &mut slice["metadata"];
    meta["labels"] = Value::Object(labels.clone());
    if !meta.get("annotations").is_some_and(Value::is_object) {
        meta["annotations"] = json!({});
    }
    meta["annotations"][TRIGGER_TIME] = json!(trigger);
    let mut owner = objects::controller_reference(svc);
    owner["apiVersion"] = json!("v1");
    owner["kind"] = json!("Service");
    meta["ownerReferences"] = json!([owner]);
}
