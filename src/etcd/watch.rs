//! The Watch service. One bidirectional stream carries many watches: a
//! session task reads create/cancel/progress requests, and one forwarder task
//! per watch turns datastore messages into responses. Every response of a
//! stream goes through one channel, so their order is the order sent.

use std::collections::HashMap;

use etcd_client::proto::{PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::forwarder::{compacted, Flush, Forwarder, Item};
use super::status::server_stopped;
use super::Context;
use crate::datastore::{Backend, Error, WatchRequest};

/// Responses queued for a slow client before forwarders wait.
const RESPONSE_BUFFER: usize = 128;
/// Pending control messages per watch, and pending progress answers.
const CONTROL_BUFFER: usize = 4;
/// The watch id of responses that belong to no single watch.
const NO_WATCH: i64 = -1;
const FILTER_NOPUT: i32 = 0;
const FILTER_NODELETE: i32 = 1;
/// etcd's ErrWatcherDuplicateID text.
const DUPLICATE_ID_REASON: &str = "mvcc: duplicate watch ID provided on the WatchStream";

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
        let (progress, progress_rx) = mpsc::channel(CONTROL_BUFFER);
        let session = Session {
            ctx: self.ctx.clone(),
            tx: tx.clone(),
            watches: HashMap::new(),
            next_id: 0,
            progress,
            _progress_task: Task(tokio::spawn(answer_progress(
                self.ctx.clone(),
                tx,
                progress_rx,
            ))),
        };
        tokio::spawn(session.run(request.into_inner()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A task that ends when its owner drops it: that is how a closed stream
/// releases every watch (and so every datastore watcher) it held.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running forwarder and its control channel.
struct WatchTask {
    task: Task,
    control: mpsc::Sender<Flush>,
}

/// A progress request waiting for every forwarder to catch up to `revision`.
struct PendingProgress {
    revision: i64,
    acks: Vec<oneshot::Receiver<()>>,
}

struct Session<B> {
    ctx: Context<B>,
    tx: mpsc::Sender<Item>,
    watches: HashMap<i64, WatchTask>,
    next_id: i64,
    /// Progress answers leave in request order through one task, so their
    /// revisions never go backwards.
    progress: mpsc::Sender<PendingProgress>,
    _progress_task: Task,
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
        self.watches.retain(|_, w| !w.task.0.is_finished());
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
        let start = req.start_revision;
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
                let forwarder = Forwarder::new(
                    self.ctx.clone(),
                    self.tx.clone(),
                    id,
                    progress_notify,
                    (start - 1).min(current),
                );
                let task = Task(tokio::spawn(forwarder.run(watcher, control_rx)));
                self.watches.insert(id, WatchTask { task, control });
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
        task.task.0.abort();
        let _ = (&mut task.task.0).await;
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
        let revision = self.ctx.backend.current_revision();
        let mut acks = Vec::with_capacity(self.watches.len());
        for task in self.watches.values() {
            let (ack, done) = oneshot::channel();
            // A forwarder that is gone has nothing left to deliver.
            if task.control.send(Flush(revision, ack)).await.is_ok() {
                acks.push(done);
            }
        }
        tracing::debug!(revision, watches = acks.len(), "watch progress request");
        // Waiting here would stall the session behind a slow client.
        self.progress
            .send(PendingProgress { revision, acks })
            .await
            .map_err(|_| Closed)
    }
}

/// Sends each progress answer once its forwarders have all acknowledged.
async fn answer_progress<B: Backend>(
    ctx: Context<B>,
    tx: mpsc::Sender<Item>,
    mut pending: mpsc::Receiver<PendingProgress>,
) {
    while let Some(p) = pending.recv().await {
        for done in p.acks {
            let _ = done.await;
        }
        let resp = PbWatchResponse {
            header: ctx.header(p.revision),
            watch_id: NO_WATCH,
            ..Default::default()
        };
        if tx.send(Ok(resp)).await.is_err() {
            break;
        }
    }
}
