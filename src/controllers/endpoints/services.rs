//! What the Endpoints and EndpointSlice controllers both watch: services
//! with selectors, and pods, queued as the services they match (before
//! and after a change, so a pod that stops matching leaves).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::{Local, ResourceId};
use crate::controllers::objects;
use crate::controllers::runtime::{self, Change, ObjectKey, WorkQueue};

/// Services are looked at again this often (a safety net; writes happen
/// only on change).
const SERVICE_RESYNC: Duration = Duration::from_secs(600);

pub fn services() -> ResourceId {
    ResourceId::new("", "v1", "services")
}

pub fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

/// The selector of a service that gets endpoints: set, non-empty, and
/// not an ExternalName service.
pub fn selector(svc: &Value) -> Option<&Map<String, Value>> {
    let spec = svc.get("spec")?;
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    spec.get("selector")?.as_object().filter(|m| !m.is_empty())
}

/// Whether `labels` carry every key and value of `sel`.
pub fn matches(sel: &Map<String, Value>, labels: Option<&Map<String, Value>>) -> bool {
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Selectors of the services per namespace, and the services each pod
/// matched when last seen.
#[derive(Default)]
struct Index {
    selectors: HashMap<String, HashMap<String, Map<String, Value>>>,
    pod_matches: HashMap<ObjectKey, Vec<String>>,
}

impl Index {
    fn on_service(&mut self, change: Change, svc: &Value) {
        let (ns, name) = (objects::namespace(svc), objects::name(svc));
        let services = self.selectors.entry(ns.to_string()).or_default();
        match selector(svc) {
            Some(sel) if change != Change::Deleted => {
                services.insert(name.to_string(), sel.clone());
            }
            _ => {
                services.remove(name);
            }
        }
    }

    /// The services to look at after a pod change.
    fn on_pod(&mut self, change: Change, pod: &Value) -> Vec<String> {
        let Some(key) = ObjectKey::of(pod) else {
            return Vec::new();
        };
        let now: Vec<String> = if change == Change::Deleted {
            Vec::new()
        } else {
            let labels = objects::labels(pod);
            self.selectors
                .get(&key.namespace)
                .map(|s| {
                    s.iter()
                        .filter(|(_, sel)| matches(sel, labels))
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = if now.is_empty() {
            self.pod_matches.remove(&key)
        } else {
            self.pod_matches.insert(key, now.clone())
        };
        let mut all = now;
        for s in before.unwrap_or_default() {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all
    }
}

/// Queues a service key on every change of the service and of the pods
/// it selects (before or after the change).
pub fn watch_services_and_pods(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>) {
    let index = Arc::new(Mutex::new(Index::default()));
    {
        let (q, index) = (Arc::clone(queue), Arc::clone(&index));
        runtime::watch(
            client.clone(),
            services(),
            Some(SERVICE_RESYNC),
            move |change, svc| {
                index
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .on_service(change, svc);
                if let Some(k) = ObjectKey::of(svc) {
                    q.add(k);
                }
            },
        );
    }
    let (q, index) = (Arc::clone(queue), index);
    runtime::watch(client.clone(), pods(), None, move |change, pod| {
        if change == Change::Resync {
            return;
        }
        let names = index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_pod(change, pod);
        let ns = objects::namespace(pod);
        for n in names {
            q.add(ObjectKey::new(ns, &n));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_queue_the_services_they_match_before_and_after() {
        let mut index = Index::default();
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}}});
        index.on_service(Change::Added, &svc);
        let pod = |app: &str| json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": app}}});
        assert_eq!(index.on_pod(Change::Added, &pod("web")), vec!["web"]);
        assert_eq!(
            index.on_pod(Change::Modified, &pod("db")),
            vec!["web"],
            "left the service"
        );
        assert!(index.on_pod(Change::Modified, &pod("db")).is_empty());
        assert!(index.pod_matches.is_empty());
        index.on_service(Change::Deleted, &svc);
        assert!(index.on_pod(Change::Modified, &pod("web")).is_empty());
    }

    #[test]
    fn external_name_and_selectorless_services_get_no_endpoints() {
        assert!(
            selector(&json!({"spec": {"selector": {"a": "b"}, "type": "ExternalName"}})).is_none()
        );
        assert!(selector(&json!({"spec": {"selector": {}}})).is_none());
        assert!(selector(&json!({"spec": {}})).is_none());
        assert!(selector(&json!({"spec": {"selector": {"a": "b"}}})).is_some());
    }
}
