//! Node heartbeats kept in memory (DESIGN decision 3: an idle cluster must
//! be quiet on disk). A node Lease renewal that changes nothing but
//! `spec.renewTime` is applied to the watch cache in place — reads see it
//! at once, with the same resourceVersion — and written to the datastore
//! at most every [`FLUSH_INTERVAL`]. No watch event is sent for a held
//! renewal: whoever tracks node health reads the Lease again when it would
//! expire (as upstream's node lifecycle controller notes when it *observed*
//! a renewal, a restart losing held renewals only restarts the grace period).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;

use super::{Store, StoreError};

/// Longest time a renewal stays in memory only.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(300);

struct Held {
    storage: String,
    suffix: String,
    object: Arc<Value>,
    mod_revision: i64,
}

#[derive(Default)]
pub struct Heartbeats {
    /// Datastore key → the renewal not yet written.
    held: Mutex<HashMap<String, Held>>,
}

impl Heartbeats {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `new` differs from `old` only in `spec.renewTime` (and the
/// resourceVersion).
pub fn only_renewal(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if let Some(s) = v.get_mut("spec").and_then(Value::as_object_mut) {
            s.remove("renewTime");
        }
        v
    };
    new.get("spec").and_then(|s| s.get("renewTime")).is_some() && strip(new) == strip(old)
}

impl Store {
    /// Holds a renewal of the object at `key` (stored at `mod_revision`):
    /// the cache shows it now, the datastore gets it at the next flush.
    pub fn hold_heartbeat(
        &self,
        storage: &str,
        suffix: &str,
        key: &str,
        object: Value,
        mod_revision: i64,
    ) {
        let Some(cache) = self.cache(storage) else {
            return;
        };
        let object = Arc::new(object);
        if !cache.replace_quietly(suffix, Arc::clone(&object), mod_revision) {
            return;
        }
        self.heartbeats.lock().insert(
            key.to_string(),
            Held {
                storage: storage.to_string(),
                suffix: suffix.to_string(),
                object,
                mod_revision,
            },
        );
    }

    /// Writes every held renewal still current in the cache.
    pub async fn flush_heartbeats(&self) {
        let held: Vec<(String, Held)> = self.heartbeats.lock().drain().collect();
        for (key, h) in held {
            let current = self.cache(&h.storage).and_then(|c| c.get(&h.suffix));
            // A real write since (or a delete) supersedes the held renewal.
            if !current.is_some_and(|c| Arc::ptr_eq(&c.object, &h.object)) {
                continue;
            }
            let mut obj = (*h.object).clone();
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let Ok(bytes) = serde_json::to_vec(&obj) else {
                continue;
            };
            match self.update(&key, bytes, h.mod_revision).await {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => tracing::warn!(key, error = %e, "cannot write a held lease renewal"),
            }
        }
    }
}

/// Flushes held renewals every [`FLUSH_INTERVAL`] while the store lives.
pub fn start_flusher(store: Weak<Store>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FLUSH_INTERVAL).await;
            let Some(store) = store.upgrade() else {
                return;
            };
            store.flush_heartbeats().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_renew_time_change_is_a_renewal() {
        let old = json!({"metadata": {"name": "n", "resourceVersion": "5"},
            "spec": {"holderIdentity": "n", "renewTime": "2026-01-01T00:00:00.000000Z"}});
        let mut new = old.clone();
        new["spec"]["renewTime"] = json!("2026-01-01T00:00:10.000000Z");
        new["metadata"]["resourceVersion"] = json!("");
        assert!(only_renewal(&new, &old));
        new["spec"]["holderIdentity"] = json!("other");
        assert!(!only_renewal(&new, &old));
    }
}
