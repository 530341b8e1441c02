//! One task per watch: replay history from SQLite up to the revision the hub
//! had published when the watch subscribed, then forward live batches. A
//! watch that overflowed its hub queue subscribes again and replays the gap,
//! so slow watchers catch up instead of stalling anyone.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::readers;
use super::Shared;
use crate::datastore::error::{Error, Result};
use crate::datastore::hub::{Received, Subscription};
use crate::datastore::index::in_range;
use crate::datastore::types::*;
use crate::datastore::Watcher;

/// Rows per history read.
const REPLAY_CHUNK: usize = 1000;
/// Messages buffered between the watch task and its consumer.
const OUTBOX: usize = 64;

pub fn start(shared: Arc<Shared>, req: WatchRequest) -> Result<Watcher> {
    let compacted = shared.compact_revision.load(Ordering::Acquire);
    if req.start_revision > 0 && req.start_revision < compacted {
        return Err(Error::Compacted {
            compact_revision: compacted,
        });
    }
    // Subscribe before returning so no change committed after this call can
    // be missed.
    let (sub, published) = shared.hub.subscribe(&req.key, &req.range_end);
    let (tx, rx) = mpsc::channel(OUTBOX);
    tokio::spawn(run(shared, req, sub, published, tx));
    Ok(Watcher::new(rx))
}

fn wanted(req: &WatchRequest, event: &Event, next: i64) -> bool {
    event.kv.mod_revision >= next
        && in_range(&event.kv.key, &req.key, &req.range_end)
        && !(req.no_put && event.kind == EventKind::Put)
        && !(req.no_delete && event.kind == EventKind::Delete)
}

fn shape(req: &WatchRequest, event: &Event) -> Event {
    Event {
        kind: event.kind,
        kv: event.kv.clone(),
        prev_kv: if req.prev_kv {
            event.prev_kv.clone()
        } else {
            None
        },
    }
}

enum Stop {
    /// The consumer went away or the store closed.
    Gone,
    Compacted(i64),
}

async fn run(
    shared: Arc<Shared>,
    req: WatchRequest,
    mut sub: Subscription,
    mut published: i64,
    tx: mpsc::Sender<WatchMessage>,
) {
    let mut next = if req.start_revision > 0 {
        req.start_revision
    } else {
        published + 1
    };
    loop {
        if next <= published {
            match replay(&shared, &req, next, published, &tx).await {
                Ok(()) => next = published + 1,
                Err(Stop::Compacted(rev)) => {
                    let _ = tx
                        .send(WatchMessage::Compacted {
                            compact_revision: rev,
                        })
                        .await;
                    return;
                }
                Err(Stop::Gone) => return,
            }
        }
        loop {
            match sub.recv().await {
                Received::Batch(batch) => {
                    if batch.revision < next {
                        continue;
                    }
                    let events: Vec<Event> = batch
                        .events
                        .iter()
                        .filter(|e| wanted(&req, e, next))
                        .map(|e| shape(&req, e))
                        .collect();
                    next = batch.revision + 1;
                    if !events.is_empty() {
                        let msg = WatchMessage::Events {
                            revision: batch.revision,
                            events,
                        };
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
                Received::Overflowed => {
                    tracing::debug!(next, "watcher fell behind; catching up from history");
                    let (fresh, at) = shared.hub.subscribe(&req.key, &req.range_end);
                    sub = fresh;
                    published = at;
                    break;
                }
                Received::Closed => return,
            }
        }
    }
}

async fn replay(
    shared: &Arc<Shared>,
    req: &WatchRequest,
    mut from: i64,
    to: i64,
    tx: &mpsc::Sender<WatchMessage>,
) -> std::result::Result<(), Stop> {
    while from <= to {
        let read = readers::history(shared.clone(), from, to, REPLAY_CHUNK).await;
        // Rows newer than the compaction point are never removed, so the
        // chunk is complete as long as compaction has not passed `from`.
        let compacted = shared.compact_revision.load(Ordering::Acquire);
        if compacted > from {
            return Err(Stop::Compacted(compacted));
        }
        let (events, next) = match read {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(%err, "watch history read failed");
                return Err(Stop::Gone);
            }
        };
        let events: Vec<Event> = events
            .iter()
            .filter(|e| wanted(req, e, from))
            .map(|e| shape(req, e))
            .collect();
        if !events.is_empty() {
            let msg = WatchMessage::Events {
                revision: to,
                events,
            };
            tx.send(msg).await.map_err(|_| Stop::Gone)?;
        }
        from = next;
    }
    Ok(())
}
