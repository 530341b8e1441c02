//! Forwarder behaviour that needs a controlled clock or queue, without gRPC.

use std::sync::Arc;

use super::*;
use crate::datastore::{Event, EventKind, KeyValue};
use crate::etcd::testing::MemBackend;
use crate::etcd::EtcdInfo;

/// Stands in for PROGRESS_NOTIFY_INTERVAL; tokio's paused clock needs the
/// test-util feature, which the crate does not enable.
const TICK: Duration = Duration::from_millis(200);

fn ctx() -> (Context<MemBackend>, tokio::sync::watch::Sender<bool>) {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ctx = Context {
        backend: Arc::new(MemBackend::default()),
        info: Arc::new(EtcdInfo {
            name: "t".into(),
            client_urls: Vec::new(),
            member_id: 1,
            cluster_id: 2,
        }),
        stop,
    };
    (ctx, stop_tx)
}

fn forwarder(
    ctx: &Context<MemBackend>,
    progress_notify: bool,
) -> (Forwarder<MemBackend>, mpsc::Receiver<Item>) {
    let (tx, rx) = mpsc::channel(64);
    let f = Forwarder {
        ctx: ctx.clone(),
        tx,
        watch_id: 3,
        progress_every: progress_notify.then_some(TICK),
        last_revision: 0,
        active: false,
    };
    (f, rx)
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

#[tokio::test]
async fn drain_stops_after_first_batch_past_the_revision() {
    let (ctx, _stop) = ctx();
    let (mut f, mut out) = forwarder(&ctx, false);
    let (tx, rx) = mpsc::channel(8);
    let mut watcher = Watcher::new(rx);
    for rev in [3, 5, 7, 9] {
        tx.send(events(rev)).await.unwrap();
    }
    assert!(matches!(f.drain(&mut watcher, 5).await, Flow::Continue));
    let sent: Vec<i64> = std::iter::from_fn(|| out.try_recv().ok())
        .map(|r| revision(&r.unwrap()))
        .collect();
    assert_eq!(sent, vec![3, 5, 7]);
    // An empty queue drains to nothing.
    assert!(matches!(f.drain(&mut watcher, 100).await, Flow::Continue));
    assert_eq!(revision(&out.try_recv().unwrap().unwrap()), 9);
    assert!(out.try_recv().is_err());
}

#[tokio::test]
async fn quiet_watches_get_progress_notifications() {
    let (ctx, _stop) = ctx();
    let (f, mut out) = forwarder(&ctx, true);
    let (tx, rx) = mpsc::channel(8);
    let (_control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(Watcher::new(rx), control_rx));

    let resp = out.recv().await.unwrap().unwrap();
    assert_eq!(resp.watch_id, 3);
    assert!(resp.events.is_empty() && !resp.canceled && !resp.created);

    // An interval with events sends no notification.
    tx.send(events(4)).await.unwrap();
    let started = Instant::now();
    assert_eq!(out.recv().await.unwrap().unwrap().events.len(), 1);
    let resp = out.recv().await.unwrap().unwrap();
    assert!(started.elapsed() > TICK, "one quiet interval passed first");
    assert!(resp.events.is_empty());
    assert_eq!(revision(&resp), 4, "never behind what was delivered");
    task.abort();
}

#[tokio::test]
async fn watches_without_progress_notify_stay_silent() {
    let (ctx, _stop) = ctx();
    let (f, mut out) = forwarder(&ctx, false);
    let (_tx, rx) = mpsc::channel(8);
    let (_control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(Watcher::new(rx), control_rx));
    tokio::time::sleep(TICK * 3).await;
    assert!(out.try_recv().is_err());
    task.abort();
}

#[tokio::test]
async fn compaction_and_store_shutdown_cancel_the_watch() {
    let (ctx, _stop) = ctx();
    let (f, mut out) = forwarder(&ctx, false);
    let (tx, rx) = mpsc::channel(8);
    let (_control, control_rx) = mpsc::channel(1);
    tx.send(WatchMessage::Compacted {
        compact_revision: 12,
    })
    .await
    .unwrap();
    f.run(Watcher::new(rx), control_rx).await;
    let resp = out.recv().await.unwrap().unwrap();
    assert!(resp.canceled);
    assert_eq!((resp.watch_id, resp.compact_revision), (3, 12));
    assert_eq!(resp.cancel_reason, COMPACTED_REASON);

    let (f, mut out) = forwarder(&ctx, false);
    let (tx, rx) = mpsc::channel::<WatchMessage>(8);
    let (_control, control_rx) = mpsc::channel(1);
    drop(tx);
    f.run(Watcher::new(rx), control_rx).await;
    let resp = out.recv().await.unwrap().unwrap();
    assert!(resp.canceled);
    assert_eq!(resp.cancel_reason, STOPPED_REASON);
}

#[tokio::test]
async fn flush_requests_are_acknowledged_after_delivery() {
    let (ctx, _stop) = ctx();
    let (f, mut out) = forwarder(&ctx, false);
    let (tx, rx) = mpsc::channel(8);
    let (control, control_rx) = mpsc::channel(1);
    let task = tokio::spawn(f.run(Watcher::new(rx), control_rx));
    tx.send(events(2)).await.unwrap();
    let (ack, done) = oneshot::channel();
    control.send(Flush(2, ack)).await.unwrap();
    done.await.unwrap();
    assert_eq!(revision(&out.try_recv().unwrap().unwrap()), 2);
    task.abort();
}
