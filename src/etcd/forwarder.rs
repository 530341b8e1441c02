//! One task per watch: moves the datastore watcher's messages onto the
//! stream's response channel, answers flush requests (for progress
//! answers), and sends progress notifications on quiet watches.

use std::time::Duration;

use etcd_client::proto::{PbResponseHeader, PbWatchResponse};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tonic::Status;

use super::{convert, Context};
use crate::datastore::{Backend, WatchMessage, Watcher};

/// How often a quiet watch created with progress_notify reports the revision
/// (etcd's default).
pub(crate) const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(600);
const COMPACTED_REASON: &str = "etcdserver: mvcc: required revision has been compacted";
const STOPPED_REASON: &str = "etcdserver: server stopped";

pub(super) type Item = Result<PbWatchResponse, Status>;

/// Asks a forwarder to deliver everything up to a revision, then acknowledge.
pub(super) struct Flush(pub i64, pub oneshot::Sender<()>);

pub(super) fn compacted(
    header: Option<PbResponseHeader>,
    watch_id: i64,
    compact_revision: i64,
) -> PbWatchResponse {
    PbWatchResponse {
        header,
        watch_id,
        canceled: true,
        compact_revision,
        cancel_reason: COMPACTED_REASON.to_string(),
        ..Default::default()
    }
}

/// Whether a forwarder goes on after handling a message.
enum Flow {
    Continue,
    Stop,
}

/// Moves one watch's datastore messages onto the stream.
pub(super) struct Forwarder<B> {
    ctx: Context<B>,
    tx: mpsc::Sender<Item>,
    watch_id: i64,
    /// Set when the client asked for progress notifications.
    progress_every: Option<Duration>,
    /// Highest revision this watch is known to have delivered, so progress
    /// never goes backwards.
    last_revision: i64,
    /// Whether anything was sent since the last progress tick.
    active: bool,
}

impl<B: Backend> Forwarder<B> {
    /// `synced_through` is the revision up to which the watch owes nothing:
    /// the one before its start, or the store's revision for a future start.
    pub fn new(
        ctx: Context<B>,
        tx: mpsc::Sender<Item>,
        watch_id: i64,
        progress_notify: bool,
        synced_through: i64,
    ) -> Self {
        Forwarder {
            ctx,
            tx,
            watch_id,
            progress_every: progress_notify.then_some(PROGRESS_NOTIFY_INTERVAL),
            last_revision: synced_through,
            active: false,
        }
    }

    pub async fn run(mut self, mut watcher: Watcher, mut control: mpsc::Receiver<Flush>) {
        let mut ticker = self.progress_every.map(|every| {
            let mut t = tokio::time::interval_at(Instant::now() + every, every);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        loop {
            let flow = tokio::select! {
                msg = watcher.next() => self.forward(msg).await,
                Some(Flush(upto, ack)) = control.recv() => {
                    let flow = self.catch_up(&mut watcher, upto).await;
                    let _ = ack.send(());
                    flow
                }
                () = tick(&mut ticker) => self.notify_progress(&mut watcher).await,
            };
            if let Flow::Stop = flow {
                break;
            }
        }
        tracing::debug!(watch_id = self.watch_id, "watch ended");
    }

    async fn send(&mut self, resp: PbWatchResponse) -> Flow {
        self.active = true;
        match self.tx.send(Ok(resp)).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    async fn forward(&mut self, msg: Option<WatchMessage>) -> Flow {
        match msg {
            Some(WatchMessage::Events { revision, events }) => {
                self.last_revision = self.last_revision.max(delivered_through(revision, &events));
                // An empty batch only says "nothing new": a progress report,
                // which only clients that asked for those should see.
                if events.is_empty() && self.progress_every.is_none() {
                    return Flow::Continue;
                }
                let resp = PbWatchResponse {
                    header: self.ctx.header(revision),
                    watch_id: self.watch_id,
                    events: events.into_iter().map(convert::event).collect(),
                    ..Default::default()
                };
                self.send(resp).await
            }
            Some(WatchMessage::Progress { revision }) => {
                self.last_revision = self.last_revision.max(revision);
                Flow::Continue
            }
            Some(WatchMessage::Compacted { compact_revision }) => {
                tracing::debug!(
                    watch_id = self.watch_id,
                    compact_revision,
                    "watch compacted"
                );
                let header = self.ctx.current_header();
                self.send(compacted(header, self.watch_id, compact_revision))
                    .await;
                Flow::Stop
            }
            None => {
                // The store shut down; tell the client rather than go silent.
                let resp = PbWatchResponse {
                    header: self.ctx.current_header(),
                    watch_id: self.watch_id,
                    canceled: true,
                    cancel_reason: STOPPED_REASON.to_string(),
                    ..Default::default()
                };
                self.send(resp).await;
                Flow::Stop
            }
        }
    }

    /// Delivers everything this watch owes up to `upto` before a progress
    /// answer: the datastore answers `request_progress` only after every
    /// event committed before the request, replays included.
    async fn catch_up(&mut self, watcher: &mut Watcher, upto: i64) -> Flow {
        if self.last_revision >= upto {
            return Flow::Continue;
        }
        watcher.request_progress();
        loop {
            let msg = watcher.next().await;
            let progress = matches!(msg, Some(WatchMessage::Progress { .. }));
            if let Flow::Stop = self.forward(msg).await {
                return Flow::Stop;
            }
            if progress {
                if self.last_revision >= upto {
                    return Flow::Continue;
                }
                watcher.request_progress();
            }
        }
    }

    /// A quiet interval ends with an empty response carrying the revision,
    /// which clients read as "nothing happened up to here".
    async fn notify_progress(&mut self, watcher: &mut Watcher) -> Flow {
        let rev = self.ctx.backend.current_revision();
        if self.active {
            self.active = false;
            return Flow::Continue;
        }
        if let Flow::Stop = self.catch_up(watcher, rev).await {
            return Flow::Stop;
        }
        if self.active {
            // The flush sent events, which says as much as a notification.
            self.active = false;
            return Flow::Continue;
        }
        self.last_revision = self.last_revision.max(rev);
        let resp = PbWatchResponse {
            header: self.ctx.header(self.last_revision),
            watch_id: self.watch_id,
            ..Default::default()
        };
        let flow = self.send(resp).await;
        self.active = false;
        flow
    }
}

/// The revision a batch proves delivered: its newest event. The message's
/// own revision can run ahead of that (history replay arrives in chunks that
/// all carry the replay's end), so it only counts for an empty batch.
fn delivered_through(revision: i64, events: &[crate::datastore::Event]) -> i64 {
    events
        .iter()
        .map(|e| e.kv.mod_revision)
        .max()
        .unwrap_or(revision)
}

/// The next tick, or never for watches without progress notifications.
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "forwarder_tests.rs"]
mod tests;
