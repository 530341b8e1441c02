//! The Watch service. One bidirectional stream carries many watches: a
//! session task reads create/cancel/progress requests, and one forwarder task
//! per watch turns datastore messages into responses. Every response of a
//! stream goes through one channel, so their order is the order sent.

use std::collections::HashMap;
use std::time::Duration;

use etcd_client::proto::{
    PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService,
};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::status::server_stopped;
use super::{convert, Context};
use crate::datastore::{Backend, Error, WatchMessage, WatchRequest, Watcher};

/// How often a quiet watch created with progress_notify reports the revision
/// (etcd's default).
pub(crate) const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(600);
/// Responses queued for a slow client before forwarders wait.
const RESPONSE_BUFFER: usize = 128;
/// Pending control messages per watch.
const CONTROL_BUFFER: usize = 4;
/// The watch id of responses that belong to no single watch.
const NO_WATCH: i64 = -1;
const FILTER_NOPUT: i32 = 0;
const FILTER_NODELETE: i32 = 1;
const COMPACTED_REASON: &str = "etcdserver: mvcc: required revision has been compacted";
/// etcd's ErrWatcherDuplicateID text.
const DUPLICATE_ID_REASON: &str = "mvcc: duplicate watch ID provided on the WatchStream";
const STOPPED_REASON: &str = "etcdserver: server stopped";

type Item = Result<PbWatchResponse, Status>;

/// The client stopped reading; the stream is over.
struct Closed;

pub(crate) struct WatchApi<B> {
    ctx: Context<B>,
}

impl<B: Backend> WatchApi<B> {
    pub fn new(ctx: Context<B>) -> Self {
        WatchApi { ctx }
    }
}

#[tonic::async_trait]
impl<B: Backend> PbWatchService for WatchApi<B> {
    type WatchStream = ReceiverStream<Item>;

    async fn watch(
        &self,
        request: Request<Streaming<PbWatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let session = Session {
            ctx: self.ctx.clone(),
            tx,
            watches: HashMap::new(),
            next_id: 0,
        };
        tokio::spawn(session.run(request.into_inner()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Asks a forwarder to deliver everything up to a revision, then acknowledge.
struct Flush(i64, oneshot::Sender<()>);

/// A running forwarder; dropping it stops the watch (and so the datastore's
/// watcher), which is how a closed stream releases everything it held.
struct WatchTask {
    handle: JoinHandle<()>,
    control: mpsc::Sender<Flush>,
}

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

struct Session<B> {
    ctx: Context<B>,
    tx: mpsc::Sender<Item>,
    watches: HashMap<i64, WatchTask>,
    next_id: i64,
}

impl<B: Backend> Session<B> {
    async fn run(mut self, mut inbound: Streaming<PbWatchRequest>) {
        // Like etcd, a client that half-closes keeps its watches until it
        // goes away, so the stream lives on after the last request.
        let mut reading = true;
        loop {
            tokio::select! {
                msg = inbound.message(), if reading => match msg {
                    Ok(Some(req)) => {
                        if self.handle(req).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => reading = false,
                    Err(status) => {
                        tracing::debug!(%status, "watch stream receive failed");
                        break;
                    }
                },
                () = self.tx.closed() => break,
                () = self.ctx.stopped() => {
                    let _ = self.tx.send(Err(server_stopped())).await;
                    break;
                }
            }
        }
        tracing::debug!(watches = self.watches.len(), "watch stream closed");
    }

    async fn handle(&mut self, req: PbWatchRequest) -> Result<(), Closed> {
        match req.request_union {
            Some(PbWatchRequestUnion::CreateRequest(c)) => {
                let no_put = c.filters.contains(&FILTER_NOPUT);
                let no_delete = c.filters.contains(&FILTER_NODELETE);
                let wreq = WatchRequest {
                    key: c.key,
                    range_end: c.range_end,
                    start_revision: c.start_revision,
                    prev_kv: c.prev_kv,
                    no_put,
                    no_delete,
                };
                self.create(c.watch_id, wreq, c.progress_notify).await
            }
            Some(PbWatchRequestUnion::CancelRequest(c)) => self.cancel(c.watch_id).await,
            Some(PbWatchRequestUnion::ProgressRequest(_)) => self.progress().await,
            // etcd ignores an empty request.
            None => Ok(()),
        }
    }

    async fn send(&self, resp: PbWatchResponse) -> Result<(), Closed> {
        self.tx.send(Ok(resp)).await.map_err(|_| Closed)
    }

    async fn create(
        &mut self,
        requested_id: i64,
        mut req: WatchRequest,
        progress_notify: bool,
    ) -> Result<(), Closed> {
        // Watches ended by compaction keep their id until now, as in etcd.
        self.watches.retain(|_, w| !w.handle.is_finished());
        let current = self.ctx.backend.current_revision();
        let id = if requested_id > 0 {
            if self.watches.contains_key(&requested_id) {
                return self
                    .send(PbWatchResponse {
                        header: self.ctx.header(current),
                        watch_id: NO_WATCH,
                        created: true,
                        canceled: true,
                        cancel_reason: DUPLICATE_ID_REASON.to_string(),
                        ..Default::default()
                    })
                    .await;
            }
            requested_id
        } else {
            while self.watches.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id += 1;
            self.next_id - 1
        };
        // "From now" is pinned to the revision the created response reports,
        // so a write racing with the create is neither lost nor reported twice.
        if req.start_revision <= 0 {
            req.start_revision = current + 1;
        }
        tracing::debug!(
            watch_id = id,
            key = %String::from_utf8_lossy(&req.key),
            range_end = %String::from_utf8_lossy(&req.range_end),
            start_revision = req.start_revision,
            "watch create"
        );
        let created = PbWatchResponse {
            header: self.ctx.header(current),
            watch_id: id,
            created: true,
            ..Default::default()
        };
        match self.ctx.backend.watch(req).await {
            Ok(watcher) => {
                // The ack goes out before the forwarder exists, so it always
                // precedes the watch's first events.
                self.send(created).await?;
                let (control, control_rx) = mpsc::channel(CONTROL_BUFFER);
                let forwarder = Forwarder {
                    ctx: self.ctx.clone(),
                    tx: self.tx.clone(),
                    watch_id: id,
                    progress_notify,
                    last_revision: current,
                    active: false,
                };
                let handle = tokio::spawn(forwarder.run(watcher, control_rx));
                self.watches.insert(id, WatchTask { handle, control });
                Ok(())
            }
            Err(Error::Compacted { compact_revision }) => {
                // etcd acknowledges first, then cancels with the compaction.
                self.send(created).await?;
                self.send(compacted(self.ctx.current_header(), id, compact_revision))
                    .await
            }
            Err(err) => {
                tracing::debug!(watch_id = id, %err, "watch refused");
                self.send(PbWatchResponse {
                    canceled: true,
                    cancel_reason: err.to_string(),
                    ..created
                })
                .await
            }
        }
    }

    async fn cancel(&mut self, id: i64) -> Result<(), Closed> {
        // Like etcd, cancelling an unknown id gets no answer.
        let Some(mut task) = self.watches.remove(&id) else {
            tracing::debug!(watch_id = id, "cancel of unknown watch");
            return Ok(());
        };
        tracing::debug!(watch_id = id, "watch cancel");
        // Wait until the forwarder has really stopped, so no event of this
        // watch can follow the cancel response.
        task.handle.abort();
        let _ = (&mut task.handle).await;
        self.send(PbWatchResponse {
            header: self.ctx.current_header(),
            watch_id: id,
            canceled: true,
            ..Default::default()
        })
        .await
    }

    /// etcd answers a progress request with watch id -1 once every watch on
    /// the stream has delivered everything up to the reported revision. The
    /// revision is read first; then each forwarder flushes its queue and
    /// acknowledges, and only then does the answer go out.
    async fn progress(&mut self) -> Result<(), Closed> {
        let rev = self.ctx.backend.current_revision();
        let mut acks = Vec::with_capacity(self.watches.len());
        for task in self.watches.values() {
            let (ack, done) = oneshot::channel();
            // A forwarder that is gone has nothing left to deliver.
            if task.control.send(Flush(rev, ack)).await.is_ok() {
                acks.push(done);
            }
        }
        tracing::debug!(watches = acks.len(), "watch progress request");
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        // Waiting here would stall the session behind a slow client; the
        // waiter ends once every forwarder answered or went away.
        tokio::spawn(async move {
            for done in acks {
                let _ = done.await;
            }
            let _ = tx
                .send(Ok(PbWatchResponse {
                    header: ctx.header(rev),
                    watch_id: NO_WATCH,
                    ..Default::default()
                }))
                .await;
        });
        Ok(())
    }
}

fn compacted(
    header: Option<etcd_client::proto::PbResponseHeader>,
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
struct Forwarder<B> {
    ctx: Context<B>,
    tx: mpsc::Sender<Item>,
    watch_id: i64,
    progress_notify: bool,
    /// Highest revision this watch has reported, so notifications never go
    /// backwards.
    last_revision: i64,
    /// Whether anything was sent since the last progress tick.
    active: bool,
}

impl<B: Backend> Forwarder<B> {
    async fn run(mut self, mut watcher: Watcher, mut control: mpsc::Receiver<Flush>) {
        let mut ticker = self.progress_notify.then(|| {
            let mut t = tokio::time::interval_at(
                Instant::now() + PROGRESS_NOTIFY_INTERVAL,
                PROGRESS_NOTIFY_INTERVAL,
            );
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        loop {
            let flow = tokio::select! {
                msg = watcher.next() => self.forward(msg).await,
                Some(Flush(upto, ack)) = control.recv() => {
                    let flow = self.drain(&mut watcher, upto).await;
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
                self.last_revision = self.last_revision.max(revision);
                // An empty batch only says "nothing new": a progress report,
                // which only clients that asked for those should see.
                if events.is_empty() && !self.progress_notify {
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
            Some(WatchMessage::Compacted { compact_revision }) => {
                tracing::debug!(watch_id = self.watch_id, compact_revision, "watch compacted");
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

    /// Forwards what is already queued, up to the first batch past `upto`:
    /// the datastore queues events in revision order, so after that batch
    /// everything up to `upto` has been delivered.
    async fn drain(&mut self, watcher: &mut Watcher, upto: i64) -> Flow {
        // `unconstrained` because tokio's fairness budget could otherwise make
        // a non-empty queue look empty here.
        while let Some(msg) = tokio::task::unconstrained(watcher.next()).now_or_never() {
            let past = matches!(&msg, Some(WatchMessage::Events { revision, .. }) if *revision > upto);
            if let Flow::Stop = self.forward(msg).await {
                return Flow::Stop;
            }
            if past {
                break;
            }
        }
        Flow::Continue
    }

    /// A quiet interval ends with an empty response carrying the revision,
    /// which clients read as "nothing happened up to here".
    async fn notify_progress(&mut self, watcher: &mut Watcher) -> Flow {
        let rev = self.ctx.backend.current_revision();
        if self.active {
            self.active = false;
            return Flow::Continue;
        }
        if let Flow::Stop = self.drain(watcher, rev).await {
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

/// The next tick, or never for watches without progress notifications.
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
