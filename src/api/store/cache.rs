//! The watch cache of one storage prefix: current objects, a ring of recent
//! events, and the live watchers. One mutex guards all three so a watcher
//! registers atomically with respect to events (no gaps, no duplicates).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;

/// Recent events kept per prefix for watches that resume from a revision.
const HISTORY: usize = 1024;
/// Events a watcher may fall behind by before it is cut off (it re-watches).
const WATCHER_QUEUE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change as watchers see it. For deletes `object` is the last state,
/// with the delete's revision as its resourceVersion.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub revision: i64,
    /// Namespace of the object ("" when cluster-scoped).
    pub namespace: String,
    pub object: Arc<Value>,
    pub previous: Option<Arc<Value>>,
    /// `object` as JSON, made once for every watcher that sends it as is.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub object: Arc<Value>,
}

struct WatcherSlot {
    namespace: Option<String>,
    tx: mpsc::Sender<Arc<CacheEvent>>,
}

struct Inner {
    /// Keyed by the key after the prefix: `ns/name` or `name`.
    objects: BTreeMap<String, Stored>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Every event after this revision is in `history`.
    history_start: i64,
    /// The revision of the last event applied here.
    last_applied: i64,
    watchers: Vec<WatcherSlot>,
}

pub struct Cache {
    inner: Mutex<Inner>,
}

/// Why a watch could not start from the revision asked for.
pub struct TooOld {
    pub oldest: i64,
}

/// A watcher's registration: the backlog to send first, then the live feed.
pub struct Subscription {
    pub backlog: Vec<Arc<CacheEvent>>,
    /// The revision the initial state reflects.
    pub revision: i64,
    pub rx: mpsc::Receiver<Arc<CacheEvent>>,
}

impl Cache {
    pub fn new(start_revision: i64) -> Self {
        Cache {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_start: start_revision,
                last_applied: 0,
                watchers: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single map/deque call), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Initial fill, before any watcher exists.
    pub fn load(&self, suffix: String, object: Value) {
        let stored = Stored {
            object: Arc::new(object),
        };
        self.lock().objects.insert(suffix, stored);
    }

    /// Applies a committed put (`object` is None for a delete) and fans it out.
    pub fn apply(&self, suffix: &str, namespace: &str, object: Option<Value>, revision: i64) {
        let mut inner = self.lock();
        let event = match object {
            Some(obj) => {
                let object = Arc::new(obj);
                let stored = Stored {
                    object: object.clone(),
                };
                let previous = inner.objects.insert(suffix.to_string(), stored);
                CacheEvent {
                    kind: if previous.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    revision,
                    namespace: namespace.to_string(),
                    object,
                    previous: previous.map(|p| p.object),
                    encoded: Default::default(),
                }
            }
            None => {
                let Some(previous) = inner.objects.remove(suffix) else {
                    return;
                };
                let mut last = (*previous.object).clone();
                super::set_resource_version(&mut last, revision);
                CacheEvent {
                    kind: EventType::Deleted,
                    revision,
                    namespace: namespace.to_string(),
                    object: Arc::new(last),
                    previous: Some(previous.object),
                    encoded: Default::default(),
                }
            }
        };
        let event = Arc::new(event);
        inner.last_applied = revision;
        if inner.history.len() >= HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.history_start = old.revision;
            }
        }
        inner.history.push_back(event.clone());
        // A watcher that cannot keep up is dropped; its client re-watches.
        inner.watchers.retain(|w| {
            if w.namespace.as_deref().is_some_and(|ns| ns != namespace) {
                return !w.tx.is_closed();
            }
            w.tx.try_send(event.clone()).is_ok()
        });
    }

    /// Objects under `namespace` (all when None), in key order, after the
    /// key `after` (exclusive), with the revision they reflect: every event
    /// of this prefix up to it is included, none after.
    pub fn snapshot(
        &self,
        namespace: Option<&str>,
        after: Option<&str>,
        global: i64,
    ) -> (Vec<Stored>, i64) {
        let inner = self.lock();
        let revision = global.max(inner.last_applied);
        let prefix = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
        let range = match after {
            Some(key) => inner
                .objects
                .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded)),
            None => inner.objects.range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            )),
        };
        let items = range
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, revision)
    }

    /// One object and the revision the answer reflects (as [`Cache::snapshot`]).
    pub fn get_at(&self, suffix: &str, global: i64) -> (Option<Stored>, i64) {
        let inner = self.lock();
        (
            inner.objects.get(suffix).cloned(),
            global.max(inner.last_applied),
        )
    }

    /// Replaces a stored object without an event (a held heartbeat, see
    /// `heartbeat.rs`) if it is still at `revision`; false otherwise.
    pub fn replace_quietly(&self, suffix: &str, object: Arc<Value>, revision: i64) -> bool {
        let mut inner = self.lock();
        let Some(stored) = inner.objects.get_mut(suffix) else {
            return false;
        };
        let current = stored
            .object
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok());
        if current != Some(revision) {
            return false;
        }
        stored.object = object;
        true
    }

    /// The revision of the last event applied to this prefix: unchanged
    /// while nothing under it changed (derived indexes rebuild on change).
    pub fn last_applied(&self) -> i64 {
        self.lock().last_applied
    }

    pub fn get(&self, suffix: &str) -> Option<Stored> {
        self.lock().objects.get(suffix).cloned()
    }

    /// Registers a watcher for events after `revision`; or, with
    /// `initial`, for the current state as ADDED events then what follows.
    /// `global` is the feeder's revision read before the call.
    pub fn subscribe(
        &self,
        namespace: Option<&str>,
        revision: i64,
        initial: bool,
        global: i64,
    ) -> Result<Subscription, TooOld> {
        let mut inner = self.lock();
        let current_revision = global.max(inner.last_applied);
        let mut backlog = Vec::new();
        if initial {
            let prefix = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
            for (k, s) in inner.objects.range(prefix.clone()..) {
                if !k.starts_with(&prefix) {
                    break;
                }
                backlog.push(Arc::new(CacheEvent {
                    kind: EventType::Added,
                    revision: current_revision,
                    namespace: namespace.unwrap_or_default().to_string(),
                    object: s.object.clone(),
                    previous: None,
                    encoded: Default::default(),
                }));
            }
        } else {
            if revision < inner.history_start {
                return Err(TooOld {
                    oldest: inner.history_start,
                });
            }
            backlog.extend(
                inner
                    .history
                    .iter()
                    .filter(|e| e.revision > revision)
                    .filter(|e| namespace.is_none_or(|ns| e.namespace == ns))
                    .cloned(),
            );
        }
        let (tx, rx) = mpsc::channel(WATCHER_QUEUE);
        inner.watchers.push(WatcherSlot {
            namespace: namespace.map(str::to_string),
            tx,
        });
        Ok(Subscription {
            backlog,
            revision: current_revision,
            rx,
        })
    }
}
