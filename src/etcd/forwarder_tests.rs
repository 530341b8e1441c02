//! Forwarder behaviour without gRPC. Most tests drive a watcher built from
//! channels the test holds, playing the datastore's watch task: they queue
//! events and answer progress requests themselves. The context's backend is
//! the real SQLite store, which supplies the current revision.

use std::cell::Cell;
use std::sync::Arc;

use super::*;
use crate::datastore::{
    Event, EventKind, KeyValue, PutRequest, SqliteBackend, SqliteOptions, WatchRequest,
};
use crate::etcd::EtcdInfo;

/// Stands in for PROGRESS_NOTIFY_INTERVAL; tokio's paused clock needs the
/// test-util feature, which the crate does not enable.
const TICK: Duration = Duration::from_millis(200);
/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(5);

struct Store {
    ctx: Context<SqliteBackend>,
    _stop: tokio::sync::watch::Sender<bool>,
    // Last, so the files outlive the backend's users.
    _dir: tempfile::TempDir,
}

/// A fresh store (at revision 1) and a context over it.
fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ctx = Context {
        backend,
        info: Arc::new(EtcdInfo {
            name: "t".into(),
            client_urls: Vec::new(),
            member_id: 1,
            cluster_id: 2,
        }),
        stop,
    };
    Store {
        ctx,
        _stop: stop_tx,
        _dir: dir,
    }
}

impl Store {
    /// A forwarder for watch 3 that owes nothing up to `synced_through`.
    fn forwarder(
        &self,
        progress_notify: bool,
        synced_through: i64,
    ) -> (Forwarder<SqliteBackend>, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(64);
        let mut f = Forwarder::new(self.ctx.clone(), tx, 3, progress_notify, synced_through);
        f.progress_every = progress_notify.then_some(TICK);
        (f, rx)
    }

    async fn put(&self, key: &str) -> i64 {
        let req = PutRequest {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        self.ctx.backend.put(req).await.unwrap().revision
    }
}

/// The datastore's side of a watcher, held by the test.
struct Feed {
    messages: mpsc::Sender<WatchMessage>,
    progress: mpsc::Receiver<()>,
}

fn watcher() -> (Watcher, Feed) {
    let (messages, rx) = mpsc::channel(64);
    // One pending request, as the datastore queues them.
    let (progress_tx, progress) = mpsc::channel(1);
    (Watcher::new(rx, progress_tx), Feed { messages, progress })
}

impl Feed {
    async fn send(&self, msg: WatchMessage) {
        self.messages.send(msg).await.unwrap();
    }

    async fn events(&self, revision: i64) {
        self.send(events(revision)).await;
    }

    async fn progress(&self, revision: i64) {
        self.send(WatchMessage::Progress { revision }).await;
    }

    /// Waits for the forwarder's next progress request.
    async fn requested(&mut self) {
        tokio::time::timeout(PATIENCE, self.progress.recv())
            .await
            .expect("a progress request")
            .expect("watcher alive");
    }

    fn not_requested(&mut self) {
        assert!(self.progress.try_recv().is_err(), "unexpected request");
    }
}

fn events(revision: i64) -> WatchMessage {
    WatchMessage::Events {
        revision,
        events: vec![Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: b"k".to_vec(),
                mod_revision: revision,
                ..Default::default()
            },
            prev_kv: None,
        }],
    }
}

fn revision(resp: &PbWatchResponse) -> i64 {
    resp.header.as_ref().map_or(0, |h| h.revision)
}

/// Header revisions of everything sent so far (events carry their own).
fn sent(out: &mut mpsc::Receiver<Item>) -> Vec<i64> {
    std::iter::from_fn(|| out.try_recv().ok())
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.watch_id, 3);
            assert!(!r.events.is_empty(), "only events expected: {r:?}");
            revision(&r)
        })
        .collect()
}

async fn next(out: &mut mpsc::Receiver<Item>) -> PbWatchResponse {
    tokio::time::timeout(PATIENCE, out.recv())
        .await
        .expect("a response")
        .expect("forwarder alive")
        .unwrap()
}

/// The next response other than a notification at `stale`: a tick may pass
/// while the test advances the store, and report the old revision.
async fn next_after(out: &mut mpsc::Receiver<Item>, stale: i64) -> PbWatchResponse {
    loop {
        let resp = next(out).await;
        if !(resp.events.is_empty() && revision(&resp) == stale) {
            return resp;
        }
    }
}

#[tokio::test]
async fn catch_up_owes_nothing_at_or_below_what_was_delivered() {
    let s = store();
    let (mut f, mut out) = s.forwarder(false, 5);
    let (mut w, mut feed) = watcher();
    let flow = tokio::time::timeout(PATIENCE, f.catch_up(&mut w, 5)).await;
    assert!(matches!(flow, Ok(Flow::Continue)));
    feed.not_requested();
    assert!(out.try_recv().is_err());
}

#[tokio::test]
async fn catch_up_forwards_queued_events_and_returns_on_progress() {
    let s = store();
    let (mut f, mut out) = s.forwarder(false, 0);
    let (mut w, mut feed) = watcher();
    feed.events(3).await;
    feed.events(5).await;
    let returned = Cell::new(false);
    let catch_up = async {
        let flow = f.catch_up(&mut w, 7).await;
        returned.set(true);
        flow
    };
    let datastore = async {
        feed.requested().await;
        // What was queued goes out while the answer is pending...
        while out.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!returned.get(), "returned before the progress answer");
        // ...and so does what the datastore sends before answering.
        feed.events(7).await;
        feed.progress(7).await;
        // Anything after the answer is left for the main loop.
        feed.events(9).await;
    };
    let (flow, ()) = tokio::join!(catch_up, datastore);
    assert!(matches!(flow, Flow::Continue));
    feed.not_requested();
    // The progress answer itself is not a response.
    assert_eq!(sent(&mut out), vec![3, 5, 7]);
    assert_eq!(f.last_revision, 7);
    assert_eq!(w.next().await, Some(events(9)));
}

#[tokio::test]
async fn progress_below_the_target_asks_again() {
    let s = store();
    let (mut f, mut out) = s.forwarder(false, 0);
    let (mut w, mut feed) = watcher();
    let returned = Cell::new(false);
    let catch_up = async {
        let flow = f.catch_up(&mut w, 10).await;
        returned.set(true);
        flow
    };
    let datastore = async {
        feed.requested().await;
        feed.events(4).await;
        feed.progress(6).await;
        // Not enough: a second request, and no return yet.
        feed.requested().await;
        assert!(!returned.get());
        feed.events(10).await;
        feed.progress(10).await;
    };
    let (flow, ()) = tokio::join!(catch_up, datastore);
    assert!(matches!(flow, Flow::Continue));
    feed.not_requested();
    assert_eq!(sent(&mut out), vec![4, 10]);

    // A progress answer alone is enough, and sends nothing.
    let catch_up = f.catch_up(&mut w, 12);
    let datastore = async {
        feed.requested().await;
        feed.progress(12).await;
    };
    let (flow, ()) = tokio::join!(catch_up, datastore);
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(f.last_revision, 12);
    assert!(out.try_recv().is_err());
}

#[tokio::test]
async fn flush_is_acknowledged_after_the_progress_answer() {
    let s = store();
    let (f, mut out) = s.forwarder(false, 1);
    let (w, mut feed) = watcher();
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));

    let (ack, mut done) = oneshot::channel();
    control.send(Flush(4, ack)).await.unwrap();
    feed.requested().await;
    feed.events(3).await;
    assert_eq!(revision(&next(&mut out).await), 3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(done.try_recv().is_err(), "acknowledged before the answer");
    feed.events(4).await;
    feed.progress(4).await;
    tokio::time::timeout(PATIENCE, done).await.unwrap().unwrap();
    assert_eq!(sent(&mut out), vec![4]);

    // A progress message outside a flush only moves the watch forward.
    feed.progress(9).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(out.try_recv().is_err());
    let (ack, done) = oneshot::channel();
    control.send(Flush(9, ack)).await.unwrap();
    tokio::time::timeout(PATIENCE, done).await.unwrap().unwrap();
    feed.not_requested();
    task.abort();
}

#[tokio::test]
async fn a_watch_ending_during_a_flush_cancels_and_acknowledges() {
    let s = store();
    let (f, mut out) = s.forwarder(false, 1);
    let (w, mut feed) = watcher();
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));
    let (ack, done) = oneshot::channel();
    control.send(Flush(4, ack)).await.unwrap();
    feed.requested().await;
    feed.send(WatchMessage::Compacted {
        compact_revision: 3,
    })
    .await;
    tokio::time::timeout(PATIENCE, done).await.unwrap().unwrap();
    let resp = next(&mut out).await;
    assert!(resp.canceled);
    assert_eq!(
        (resp.compact_revision, resp.cancel_reason.as_str()),
        (3, COMPACTED_REASON)
    );
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();

    // The store shutting down mid-flush.
    let (f, mut out) = s.forwarder(false, 1);
    let (w, mut feed) = watcher();
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));
    let (ack, done) = oneshot::channel();
    control.send(Flush(4, ack)).await.unwrap();
    feed.requested().await;
    drop(feed);
    tokio::time::timeout(PATIENCE, done).await.unwrap().unwrap();
    let resp = next(&mut out).await;
    assert!(resp.canceled);
    assert_eq!(resp.cancel_reason, STOPPED_REASON);
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn quiet_watches_get_progress_notifications() {
    let s = store();
    let (f, mut out) = s.forwarder(true, 1);
    let (w, mut feed) = watcher();
    let (_control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));

    // Nothing owed: a notification at the store's revision, no request.
    let resp = next(&mut out).await;
    assert_eq!(resp.watch_id, 3);
    assert!(resp.events.is_empty() && !resp.canceled && !resp.created);
    assert_eq!(revision(&resp), 1);
    feed.not_requested();

    // The store moved on: the watch catches up before it notifies.
    assert_eq!(s.put("other").await, 2);
    feed.requested().await;
    feed.progress(2).await;
    let resp = next_after(&mut out, 1).await;
    assert!(resp.events.is_empty());
    assert_eq!(revision(&resp), 2);

    // An interval with events sends no notification. (The event goes out
    // before its commit so that no tick in between asks for progress.)
    feed.events(3).await;
    let started = Instant::now();
    assert_eq!(s.put("k").await, 3);
    assert_eq!(next_after(&mut out, 2).await.events.len(), 1);
    let resp = next(&mut out).await;
    assert!(started.elapsed() > TICK, "one quiet interval passed first");
    assert!(resp.events.is_empty());
    assert_eq!(revision(&resp), 3, "never behind what was delivered");

    // Events delivered by a tick's catch-up count as activity too.
    assert_eq!(s.put("k").await, 4);
    feed.requested().await;
    feed.events(4).await;
    feed.progress(4).await;
    let started = Instant::now();
    let resp = next_after(&mut out, 3).await;
    assert_eq!(resp.events.len(), 1);
    let resp = next(&mut out).await;
    assert!(started.elapsed() > TICK / 2, "no notification on that tick");
    assert!(resp.events.is_empty());
    assert_eq!(revision(&resp), 4);
    feed.not_requested();
    task.abort();
}

#[tokio::test]
async fn watches_without_progress_notify_stay_silent() {
    let s = store();
    let (f, mut out) = s.forwarder(false, 1);
    let (w, mut feed) = watcher();
    let (_control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));
    s.put("other").await;
    tokio::time::sleep(TICK * 3).await;
    assert!(out.try_recv().is_err());
    feed.not_requested();
    task.abort();
}

#[tokio::test]
async fn compaction_and_store_shutdown_cancel_the_watch() {
    let s = store();
    let (f, mut out) = s.forwarder(false, 1);
    let (w, feed) = watcher();
    let (_control, control_rx) = mpsc::channel(1);
    feed.send(WatchMessage::Compacted {
        compact_revision: 12,
    })
    .await;
    f.run(w, control_rx).await;
    let resp = out.recv().await.unwrap().unwrap();
    assert!(resp.canceled);
    assert_eq!((resp.watch_id, resp.compact_revision), (3, 12));
    assert_eq!(resp.cancel_reason, COMPACTED_REASON);

    let (f, mut out) = s.forwarder(false, 1);
    let (w, feed) = watcher();
    let (_control, control_rx) = mpsc::channel(1);
    drop(feed);
    f.run(w, control_rx).await;
    let resp = out.recv().await.unwrap().unwrap();
    assert!(resp.canceled);
    assert_eq!(resp.cancel_reason, STOPPED_REASON);
}

/// The same against the store's own watcher: a flush for the current
/// revision is acknowledged only after every event up to it went out, while
/// a writer keeps committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_against_the_real_store_deliver_everything_before_the_ack() {
    let s = store();
    let current = s.ctx.backend.current_revision();
    let w = s
        .ctx
        .backend
        .watch(WatchRequest {
            key: b"/k/".to_vec(),
            range_end: b"/k0".to_vec(),
            start_revision: current + 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let (f, mut out) = s.forwarder(false, current);
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));
    let backend = s.ctx.backend.clone();
    let writer = tokio::spawn(async move {
        for i in 0..2000 {
            let req = PutRequest {
                key: format!("/k/{i}").into_bytes(),
                ..Default::default()
            };
            backend.put(req).await.unwrap();
        }
    });

    let mut delivered = current;
    let mut flushes = 0;
    while !writer.is_finished() || flushes == 0 {
        let upto = s.ctx.backend.current_revision();
        let (ack, done) = oneshot::channel();
        control.send(Flush(upto, ack)).await.unwrap();
        // Drain responses while waiting, as the stream would.
        tokio::pin!(done);
        loop {
            tokio::select! {
                acked = &mut done => {
                    acked.unwrap();
                    break;
                }
                resp = out.recv() => {
                    for ev in resp.unwrap().unwrap().events {
                        let rev = ev.kv.unwrap().mod_revision;
                        assert_eq!(rev, delivered + 1, "in order, without gaps");
                        delivered = rev;
                    }
                }
            }
        }
        while let Ok(resp) = out.try_recv() {
            for ev in resp.unwrap().events {
                let rev = ev.kv.unwrap().mod_revision;
                assert_eq!(rev, delivered + 1);
                delivered = rev;
            }
        }
        assert!(
            delivered >= upto,
            "acknowledged at {delivered}, owed {upto}"
        );
        flushes += 1;
    }
    writer.await.unwrap();
    assert!(flushes > 1);
    task.abort();
}

/// A watch may start at a future revision; its notifications still report
/// a revision the store has reached, as etcd's do (a client may read at it).
#[tokio::test]
async fn notifications_never_run_ahead_of_the_store() {
    let s = store();
    let w = s
        .ctx
        .backend
        .watch(WatchRequest {
            key: b"f".to_vec(),
            start_revision: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let (f, mut out) = s.forwarder(true, 1);
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(w, control_rx));
    assert_eq!(s.put("other").await, 2);
    // A progress request: the store's watcher answers for up to revision 9.
    let (ack, done) = oneshot::channel();
    control.send(Flush(2, ack)).await.unwrap();
    tokio::time::timeout(PATIENCE, done).await.unwrap().unwrap();
    let resp = next(&mut out).await;
    assert!(resp.events.is_empty());
    assert_eq!(revision(&resp), s.ctx.backend.current_revision());
    task.abort();
}
