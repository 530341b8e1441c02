//! Watch fan-out in process: the writer publishes each group commit's events
//! once; every subscriber whose range matches gets the shared batch.
//!
//! A subscriber's queue is bounded. When it is full the subscriber is
//! dropped and flagged as overflowed instead of stalling the writer; its
//! watch task then catches up from history in SQLite, as etcd moves slow
//! watchers to its "unsynced" set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::mpsc;

use super::index::in_range;
use super::types::Event;

/// How many commit batches a subscriber may have queued before it overflows.
const QUEUE_BATCHES: usize = 1024;

/// The events of one or more revisions committed together.
pub struct Batch {
    /// The highest revision in the batch.
    pub revision: i64,
    pub events: Vec<Event>,
}

struct Entry {
    key: Vec<u8>,
    range_end: Vec<u8>,
    tx: mpsc::Sender<Arc<Batch>>,
    overflowed: Arc<AtomicBool>,
}

struct Inner {
    next_id: u64,
    subscribers: HashMap<u64, Entry>,
    /// The highest revision published so far.
    published: i64,
    closed: bool,
}

pub struct Hub {
    inner: Mutex<Inner>,
}

pub struct Subscription {
    id: u64,
    hub: Weak<Hub>,
    rx: mpsc::Receiver<Arc<Batch>>,
    overflowed: Arc<AtomicBool>,
}

pub enum Received {
    Batch(Arc<Batch>),
    /// The subscriber fell behind and was dropped; catch up from history.
    Overflowed,
    Closed,
}

impl Subscription {
    pub async fn recv(&mut self) -> Received {
        match self.rx.recv().await {
            Some(batch) => Received::Batch(batch),
            None if self.overflowed.load(Ordering::Acquire) => Received::Overflowed,
            None => Received::Closed,
        }
    }
}

impl Subscription {
    /// Whether the hub dropped this subscription for falling behind.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// A batch already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Batch>> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.lock().subscribers.remove(&self.id);
        }
    }
}

impl Hub {
    pub fn new(published: i64) -> Arc<Hub> {
        Arc::new(Hub {
            inner: Mutex::new(Inner {
                next_id: 0,
                subscribers: HashMap::new(),
                published,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to changes in the range; returns the subscription and the
    /// last revision published before it, so the caller knows which revisions
    /// must come from history.
    pub fn subscribe(self: &Arc<Self>, key: &[u8], range_end: &[u8]) -> (Subscription, i64) {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        if !inner.closed {
            inner.subscribers.insert(
                id,
                Entry {
                    key: key.to_vec(),
                    range_end: range_end.to_vec(),
                    tx,
                    overflowed: overflowed.clone(),
                },
            );
        }
        let published = inner.published;
        drop(inner);
        let sub = Subscription {
            id,
            hub: Arc::downgrade(self),
            rx,
            overflowed,
        };
        (sub, published)
    }

    /// Hands a committed batch to every subscriber it concerns.
    pub fn publish(&self, batch: Batch) {
        let batch = Arc::new(batch);
        let mut inner = self.lock();
        inner.published = inner.published.max(batch.revision);
        inner.subscribers.retain(|_, entry| {
            let wanted = batch
                .events
                .iter()
                .any(|e| in_range(&e.kv.key, &entry.key, &entry.range_end));
            if !wanted {
                return true;
            }
            match entry.tx.try_send(batch.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    entry.overflowed.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    pub fn published(&self) -> i64 {
        self.lock().published
    }

    /// Ends every subscription (store shutdown).
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subscribers.clear();
    }

    #[cfg(test)]
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::types::{EventKind, KeyValue};

    fn event(key: &[u8], rev: i64) -> Event {
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: rev,
                ..Default::default()
            },
            prev_kv: None,
        }
    }

    #[tokio::test]
    async fn delivers_only_matching_batches() {
        let hub = Hub::new(1);
        let (mut sub, published) = hub.subscribe(b"/a/", b"/a0");
        assert_eq!(published, 1);
        hub.publish(Batch {
            revision: 2,
            events: vec![event(b"/b/x", 2)],
        });
        hub.publish(Batch {
            revision: 3,
            events: vec![event(b"/a/x", 3)],
        });
        match sub.recv().await {
            Received::Batch(b) => assert_eq!(b.revision, 3),
            _ => panic!("expected a batch"),
        }
        assert_eq!(hub.published(), 3);
    }

    #[tokio::test]
    async fn slow_subscriber_overflows_without_blocking() {
        let hub = Hub::new(0);
        let (mut sub, _) = hub.subscribe(b"k", b"");
        for rev in 1..=(QUEUE_BATCHES as i64 + 5) {
            hub.publish(Batch {
                revision: rev,
                events: vec![event(b"k", rev)],
            });
        }
        assert_eq!(hub.subscriber_count(), 0);
        let mut n = 0;
        loop {
            match sub.recv().await {
                Received::Batch(_) => n += 1,
                Received::Overflowed => break,
                Received::Closed => panic!("expected overflow"),
            }
        }
        assert_eq!(n, QUEUE_BATCHES);
    }
}
