//! Records core/v1 Events about objects, as client-go's event recorder:
//! fire and forget (a full buffer drops the event rather than blocking a
//! control loop), and a repeat of the same event on the same object bumps
//! `count` and `lastTimestamp` instead of writing a new Event.

use std::collections::HashMap;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Client, PatchType, ResourceId};

/// Events waiting to be written; more are dropped.
const BUFFER: usize = 1000;
/// Distinct (object, reason, message) remembered for aggregation.
const REMEMBERED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Pending {
    involved: Value,
    namespace: String,
    kind: EventType,
    reason: String,
    message: String,
}

/// Cheap to clone; all clones share one writer task.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
}

impl Recorder {
    /// `component` is the event source (e.g. "deployment-controller",
    /// "default-scheduler").
    pub fn new<C: Client>(client: C, component: &str) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(write_events(client, component.to_string(), rx));
        Recorder { tx }
    }

    /// Records an event about `obj` (any object with kind/apiVersion/metadata).
    fn event(&self, obj: &Value, kind: EventType, reason: &str, message: &str) {
        let meta = obj.get("metadata");
        let text = |m: Option<&Value>, k: &str| {
            m.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let ns = text(meta, "namespace");
        let involved = json!({
            "kind": text(Some(obj), "kind"),
            "apiVersion": text(Some(obj), "apiVersion"),
            "namespace": ns,
            "name": text(meta, "name"),
            "uid": text(meta, "uid"),
            "resourceVersion": text(meta, "resourceVersion"),
        });
        let pending = Pending {
            // Events about cluster-scoped objects live in "default", as upstream.
            namespace: if ns.is_empty() { "default".into() } else { ns },
            involved,
            kind,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        if self.tx.try_send(pending).is_err() {
            tracing::debug!(reason, "event buffer full; event dropped");
        }
    }

    pub fn normal(&self, obj: &Value, reason: &str, message: &str) {
        self.event(obj, EventType::Normal, reason, message)
    }

    pub fn warning(&self, obj: &Value, reason: &str, message: &str) {
        self.event(obj, EventType::Warning, reason, message)
    }
}

/// What makes two events the same: (object uid, type, reason, message).
type Aggregate = (String, &'static str, String, String);
/// Where the first of them went: (namespace, event name, count).
type Written = (String, String, i64);

async fn write_events<C: Client>(client: C, component: String, mut rx: mpsc::Receiver<Pending>) {
    let events = ResourceId::new("", "v1", "events");
    // (uid, type, reason, message) -> (namespace, event name, count)
    let mut seen: HashMap<Aggregate, Written> = HashMap::new();
    while let Some(p) = rx.recv().await {
        let uid = p.involved["uid"].as_str().unwrap_or("").to_string();
        let key = (uid, p.kind.as_str(), p.reason.clone(), p.message.clone());
        let now = crate::api::meta::now();
        if let Some((ns, name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": now});
            let ok = client
                .patch(&events, Some(ns), name, PatchType::Merge, &patch, None)
                .await
                .is_ok();
            if ok {
                continue;
            }
            // The event expired or was deleted: write it anew.
            seen.remove(&key);
        }
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        let obj_name = p.involved["name"].as_str().unwrap_or("event");
        let name = format!("{obj_name}.{:016x}", unique_suffix());
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": p.namespace},
            "involvedObject": p.involved,
            "reason": p.reason,
            "message": p.message,
            "type": p.kind.as_str(),
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        });
        match client.create(&events, Some(&p.namespace), event).await {
            Ok(_) => {
                seen.insert(key, (p.namespace, name, 1));
            }
            Err(e) => tracing::debug!(error = %e, "cannot record event"),
        }
    }
}

/// Nanoseconds since the epoch, made unique per process (upstream names
/// events `<object>.<hex nanos>`).
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let prev = LAST.fetch_max(now, Ordering::SeqCst);
    if prev >= now {
        LAST.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        now
    }
}
