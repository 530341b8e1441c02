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
use crate::datastore::hub::{Batch, Received, Subscription};
use crate::datastore::index::in_range;
use crate::datastore::types::*;
use crate::datastore::Watcher;

/// Rows per history read.
const REPLAY_CHUNK: usize = 1000;
/// Messages buffered between the watch task and its consumer.
const OUTBOX: usize = 64;
/// Progress requests queued; more than one pending adds nothing.
const PROGRESS_REQUESTS: usize = 1;

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
    let (progress_tx, progress_rx) = mpsc::channel(PROGRESS_REQUESTS);
    tokio::spawn(run(shared, req, sub, published, tx, progress_rx));
    Ok(Watcher::new(rx, progress_tx))
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
    mut progress: mpsc::Receiver<()>,
) {
    let mut next = if req.start_revision > 0 {
        req.start_revision
    } else {
        published + 1
    };
    let mut pending_progress = false;
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
        // Progress requests wait while history is replayed: they are only
        // answered here, once the watch is live.
        loop {
            if pending_progress {
                match answer_progress(&shared, &req, &mut sub, &mut next, &tx).await {
                    Answer::Sent => pending_progress = false,
                    Answer::AfterReplay => {}
                    Answer::Gone => return,
                }
            }
            let received = tokio::select! {
                received = sub.recv() => received,
                Some(()) = progress.recv() => {
                    pending_progress = true;
                    continue;
                }
            };
            match received {
                Received::Batch(batch) => {
                    if forward(&req, &batch, &mut next, &tx).await.is_err() {
                        return;
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

enum Answer {
    Sent,
    /// The subscription overflowed: answer once the replay filled the gap.
    AfterReplay,
    Gone,
}

/// Delivers every queued batch up to what the hub has published, then says
/// so with a `Progress` message.
async fn answer_progress(
    shared: &Shared,
    req: &WatchRequest,
    sub: &mut Subscription,
    next: &mut i64,
    tx: &mpsc::Sender<WatchMessage>,
) -> Answer {
    // Everything published so far is already queued in `sub`.
    let upto = shared.hub.published();
    while *next <= upto {
        let Some(batch) = sub.try_recv() else { break };
        if forward(req, &batch, next, tx).await.is_err() {
            return Answer::Gone;
        }
    }
    if *next <= upto && sub.overflowed() {
        return Answer::AfterReplay;
    }
    // Not `next - 1`: a watch starting in the future must not report a
    // revision the store has not reached.
    let msg = WatchMessage::Progress { revision: upto };
    match tx.send(msg).await {
        Ok(()) => Answer::Sent,
        Err(_) => Answer::Gone,
    }
}

/// Sends the batch's events this watch wants; `Err` when the consumer is gone.
async fn forward(
    req: &WatchRequest,
    batch: &Batch,
    next: &mut i64,
    tx: &mpsc::Sender<WatchMessage>,
) -> std::result::Result<(), ()> {
    if batch.revision < *next {
        return Ok(());
    }
    let events: Vec<Event> = batch
        .events
        .iter()
        .filter(|e| wanted(req, e, *next))
        .map(|e| shape(req, e))
        .collect();
    *next = batch.revision + 1;
    if events.is_empty() {
        return Ok(());
    }
    let msg = WatchMessage::Events {
        revision: batch.revision,
        events,
    };
    tx.send(msg).await.map_err(|_| ())
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
