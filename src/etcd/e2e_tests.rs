//! The services end to end: a real gRPC server over the SQLite datastore,
//! driven by the `etcd-client` crate as a Go client would drive etcd.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::proto::PbWatchResponse;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    WatchOptions, WatchResponseStream,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

use super::{serve_tcp, Error, EtcdInfo};
use crate::datastore::{Backend, PutRequest, SqliteBackend, SqliteOptions};

pub(super) const MEMBER: u64 = 0xabc;
pub(super) const CLUSTER: u64 = 0xdef;

pub(super) struct Server {
    pub backend: Arc<SqliteBackend>,
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
    // Last, so the store's files outlive everything else of the server.
    _dir: tempfile::TempDir,
}

pub(super) async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let info = EtcdInfo {
        name: "test".into(),
        client_urls: vec![endpoint.clone()],
        member_id: MEMBER,
        cluster_id: CLUSTER,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_tcp(backend.clone(), info, listener, async move {
        let _ = stopped.await;
    }));
    Server {
        backend,
        endpoint,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Server {
    async fn client(&self) -> Client {
        Client::connect([self.endpoint.as_str()], None)
            .await
            .unwrap()
    }
}

fn code(err: etcd_client::Error) -> (Code, String) {
    match err {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("not a grpc status: {other:?}"),
    }
}

#[tokio::test]
async fn kv_operations() {
    let srv = start().await;
    let mut c = srv.client().await;
    // A fresh store is at revision 1, as etcd: the first write is 2.
    let put = c.put("a", "1", None).await.unwrap();
    let h = put.0.header.unwrap();
    assert_eq!(
        (h.cluster_id, h.member_id, h.revision, h.raft_term),
        (CLUSTER, MEMBER, 2, 1)
    );
    c.put("b", "2", None).await.unwrap();
    let prev = c
        .put("a", "3", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(prev.0.prev_kv.unwrap().value, b"1");

    let got = c.get("a", None).await.unwrap();
    assert_eq!(got.0.header.unwrap().revision, 4);
    assert_eq!(got.0.kvs[0].value, b"3");
    assert_eq!(
        (
            got.0.kvs[0].version,
            got.0.kvs[0].create_revision,
            got.0.kvs[0].mod_revision
        ),
        (2, 2, 4)
    );
    let all = c
        .get("", Some(GetOptions::new().with_all_keys().with_limit(1)))
        .await
        .unwrap();
    assert_eq!((all.0.kvs.len(), all.0.count, all.0.more), (1, 2, true));
    let sorted = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Key, SortOrder::Ascend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(sorted.0.kvs.len(), 2);
    let (code_, msg) = code(c.get("", None).await.unwrap_err());
    assert_eq!(
        (code_, msg.as_str()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );

    let txn = Txn::new()
        .when([Compare::value("a", CompareOp::Equal, "3")])
        .and_then([TxnOp::put("c", "x", None), TxnOp::get("a", None)])
        .or_else([TxnOp::delete("a", None)]);
    let resp = c.txn(txn).await.unwrap();
    assert!(resp.0.succeeded);
    assert_eq!(resp.0.responses.len(), 2);
    assert_eq!(resp.0.header.unwrap().revision, 5);
    let txn = Txn::new()
        .when([Compare::version("a", CompareOp::Greater, 5)])
        .and_then([TxnOp::delete("a", None)]);
    let failed = c.txn(txn).await.unwrap();
    // A failed compare writes nothing, so the revision stays.
    assert!(!failed.0.succeeded);
    assert_eq!(failed.0.header.unwrap().revision, 5);

    let del = c
        .delete("a", Some(etcd_client::DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!((del.0.deleted, del.0.prev_kvs.len()), (1, 1));
    assert_eq!(del.0.header.unwrap().revision, 6);
    let old = c
        .get("a", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.0.kvs[0].value, b"1");
    let compact = c.compact(3, None).await.unwrap();
    assert_eq!(compact.0.header.unwrap().revision, 6);
    let (code_, _) = code(
        c.get("b", Some(GetOptions::new().with_revision(2)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code_, Code::OutOfRange);
    // The compaction revision itself is still readable, as in etcd.
    let at = c
        .get("b", Some(GetOptions::new().with_revision(3)))
        .await
        .unwrap();
    assert_eq!(at.0.kvs[0].value, b"2");
    let (code_, _) = code(
        c.get("b", Some(GetOptions::new().with_revision(7)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code_, Code::OutOfRange);
}

#[tokio::test]
async fn oversized_and_overlong_requests_are_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let big = vec![b'x'; super::MAX_REQUEST_BYTES + 1];
    let (code_, msg) = code(c.put("big", big, None).await.unwrap_err());
    assert_eq!(
        (code_, msg.as_str()),
        (Code::InvalidArgument, "etcdserver: request is too large")
    );
    let ops: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("k{i}"), "v", None))
        .collect();
    let (code_, msg) = code(c.txn(Txn::new().and_then(ops)).await.unwrap_err());
    assert_eq!(
        (code_, msg.as_str()),
        (
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request"
        )
    );
    // Nothing was written.
    assert_eq!(srv.backend.current_revision(), 1);
}

async fn next(ws: &mut etcd_client::WatchStream) -> etcd_client::proto::PbWatchResponse {
    tokio::time::timeout(Duration::from_secs(5), ws.message())
        .await
        .expect("watch response in time")
        .unwrap()
        .expect("stream open")
        .0
}

#[tokio::test]
async fn watch_create_events_cancel_progress() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.put("seed", "0", None).await.unwrap();
    let mut ws = c
        .watch("k", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert!(created.created && !created.canceled);
    assert_eq!((created.watch_id, created.header.unwrap().revision), (0, 2));

    ws.watch("k1", Some(WatchOptions::new().with_prev_key()))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert_eq!((created.watch_id, created.created), (1, true));

    c.put("k1", "a", None).await.unwrap();
    c.delete("k1", None).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let r = next(&mut ws).await;
        for ev in r.events {
            seen.push((r.watch_id, ev.r#type, ev.prev_kv.is_some()));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![(0, 0, false), (0, 1, false), (1, 0, false), (1, 1, true)]
    );

    ws.cancel(1).await.unwrap();
    let canceled = next(&mut ws).await;
    assert_eq!((canceled.watch_id, canceled.canceled), (1, true));
    ws.request_progress().await.unwrap();
    let progress = next(&mut ws).await;
    assert_eq!(progress.watch_id, -1);
    assert_eq!(progress.header.unwrap().revision, 4);
    assert!(progress.events.is_empty());

    // A watch from an old revision replays history first.
    ws.watch("k1", Some(WatchOptions::new().with_start_revision(3)))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert_eq!((created.watch_id, created.created), (2, true));
    let replay = next(&mut ws).await;
    assert_eq!(replay.watch_id, 2);
    let revs: Vec<(i32, i64)> = replay
        .events
        .iter()
        .map(|e| (e.r#type, e.kv.as_ref().unwrap().mod_revision))
        .collect();
    assert_eq!(revs, vec![(0, 3), (1, 4)]);
}

#[tokio::test]
async fn watch_compacted_and_duplicate_ids() {
    let srv = start().await;
    let mut c = srv.client().await;
    for i in 0..3 {
        c.put("k", format!("{i}"), None).await.unwrap();
    }
    // Revisions 2, 3, 4; history before 3 goes.
    srv.backend.compact(3).await.unwrap();
    let mut ws = c
        .watch("k", Some(WatchOptions::new().with_start_revision(2)))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert!(created.created);
    let cancel = next(&mut ws).await;
    assert!(cancel.canceled);
    assert_eq!(
        (cancel.watch_id, cancel.compact_revision),
        (created.watch_id, 3)
    );
    // From the compaction revision itself the history is still there.
    ws.watch("k", Some(WatchOptions::new().with_start_revision(3)))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert!(created.created && !created.canceled);
    let replay = next(&mut ws).await;
    assert_eq!(replay.watch_id, created.watch_id);
    let values: Vec<&[u8]> = replay
        .events
        .iter()
        .map(|e| e.kv.as_ref().unwrap().value.as_slice())
        .collect();
    assert_eq!(values, vec![b"1".as_slice(), b"2"]);

    ws.watch("x", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await.watch_id, 7);
    ws.watch("y", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    let dup = next(&mut ws).await;
    assert!(dup.created && dup.canceled);
    assert_eq!(dup.watch_id, -1);
    assert!(dup.cancel_reason.contains("duplicate watch ID"));
}

#[tokio::test]
async fn leases() {
    let srv = start().await;
    let mut c = srv.client().await;
    let grant = c.lease_grant(30, None).await.unwrap();
    assert_eq!(grant.0.ttl, 30);
    let id = grant.0.id;
    c.put("leased", "v", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    // The client reads the first answer itself and fails on TTL 0.
    let (mut keeper, mut stream) = c.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let resp = stream.message().await.unwrap().unwrap();
    assert_eq!((resp.0.id, resp.0.ttl), (id, 30));
    match c.lease_keep_alive(4242).await {
        Err(etcd_client::Error::LeaseKeepAliveError(msg)) => assert_eq!(msg, "lease not found"),
        other => panic!("unexpected {other:?}"),
    }

    let ttl = c
        .lease_time_to_live(
            id,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert_eq!(ttl.0.keys, vec![b"leased".to_vec()]);
    assert_eq!(c.lease_time_to_live(99, None).await.unwrap().0.ttl, -1);
    assert_eq!(c.leases().await.unwrap().0.leases.len(), 1);
    let revoked = c.lease_revoke(id).await.unwrap();
    // The put was revision 2, the revoke's delete of the key is 3.
    assert_eq!(revoked.0.header.unwrap().revision, 3);
    assert_eq!(c.get("leased", None).await.unwrap().0.count, 0);
    let (code_, _) = code(c.lease_revoke(id).await.unwrap_err());
    assert_eq!(code_, Code::NotFound);
}

#[tokio::test]
async fn maintenance_and_cluster() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.put("a", "1", None).await.unwrap();
    let st = c.status().await.unwrap().0;
    assert_eq!(st.version, "3.5.16");
    assert_eq!(
        (
            st.leader,
            st.raft_index,
            st.raft_term,
            st.raft_applied_index
        ),
        (MEMBER, 2, 1, 2)
    );
    assert_eq!(st.header.unwrap().revision, 2);
    assert!(st.db_size > 0 && (0..=st.db_size).contains(&st.db_size_in_use));
    let h1 = c.hash_kv(0).await.unwrap().0;
    assert_eq!(h1.hash_revision, 2);
    c.put("a", "2", None).await.unwrap();
    let h2 = c.hash_kv(0).await.unwrap().0;
    assert_eq!(h2.hash_revision, 3);
    assert_ne!(h2.hash, h1.hash);
    // The hash of an older revision is that revision's.
    let again = c.hash_kv(2).await.unwrap().0;
    assert_eq!(again.hash, h1.hash);
    assert_eq!(again.header.unwrap().revision, 3);
    assert!(c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None
        )
        .await
        .unwrap()
        .0
        .alarms
        .is_empty());
    c.defragment().await.unwrap();

    let members = c.member_list().await.unwrap().0.members;
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].id, members[0].name.as_str()), (MEMBER, "test"));
    assert_eq!(members[0].client_ur_ls, vec![srv.endpoint.clone()]);
    let (code_, _) = code(c.member_add(["http://x:2380"], None).await.unwrap_err());
    assert_eq!(code_, Code::FailedPrecondition);
    c.move_leader(MEMBER).await.unwrap();
    let (code_, _) = code(c.move_leader(1).await.unwrap_err());
    assert_eq!(code_, Code::FailedPrecondition);

    let snap = match c.snapshot().await {
        Ok(mut s) => s.message().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let (code_, msg) = code(snap.unwrap_err());
    assert_eq!(code_, Code::Unimplemented);
    assert!(msg.contains("sqlite3 .backup"));
}

/// etcd's HashKV reports in `hash_revision` the revision it hashed; the
/// header carries the current one.
#[tokio::test]
async fn hash_kv_of_an_old_revision_reports_that_revision() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.put("a", "1", None).await.unwrap();
    c.put("a", "2", None).await.unwrap();
    let old = c.hash_kv(2).await.unwrap().0;
    assert_eq!(old.header.unwrap().revision, 3);
    assert_eq!(old.hash_revision, 2);
}

#[tokio::test]
async fn shutdown_ends_streams_and_server() {
    let mut srv = start().await;
    let mut c = srv.client().await;
    let mut ws = c.watch("k", None).await.unwrap();
    assert!(next(&mut ws).await.created);
    let id = c.lease_grant(10, None).await.unwrap().0.id;
    let (_keeper, mut ka) = c.lease_keep_alive(id).await.unwrap();
    let _ = srv.stop.take().map(|s| s.send(()));
    let res = tokio::time::timeout(Duration::from_secs(8), &mut srv.task)
        .await
        .expect("server stops in time");
    assert!(res.unwrap().is_ok());
    let end = tokio::time::timeout(Duration::from_secs(2), ws.message())
        .await
        .expect("stream ends");
    match end {
        Err(e) => assert_eq!(code(e).0, Code::Unavailable),
        Ok(None) => {}
        Ok(Some(r)) => panic!("unexpected response {:?}", r.0),
    }
    let end = tokio::time::timeout(Duration::from_secs(2), ka.message())
        .await
        .expect("stream ends");
    match end {
        Err(e) => assert_eq!(code(e).0, Code::Unavailable),
        Ok(None) => {}
        Ok(Some(r)) => panic!("unexpected response {:?}", r.0),
    }
}

/// Every task of a watch stream (session, progress answers, one forwarder per
/// watch, which owns the datastore watcher) holds the server's context, so
/// the backend's reference count says whether they are all gone.
#[tokio::test]
async fn a_closed_stream_releases_every_watcher() {
    let srv = start().await;
    let mut client = srv.client().await;
    // A first call makes sure the services exist, so the count is settled.
    client.get("a", None).await.unwrap();
    let idle = Arc::strong_count(&srv.backend);
    let mut ws = client.watch("a", None).await.unwrap();
    ws.watch("b", None).await.unwrap();
    for _ in 0..2 {
        assert!(next(&mut ws).await.created);
    }
    assert!(Arc::strong_count(&srv.backend) >= idle + 2);
    // Closing the stream is enough; the connection stays.
    drop(ws);
    for _ in 0..100 {
        if Arc::strong_count(&srv.backend) == idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(Arc::strong_count(&srv.backend), idle);
    // The store still serves the (still connected) client.
    client.put("a", "1", None).await.unwrap();
}

async fn recv(responses: &mut WatchResponseStream) -> PbWatchResponse {
    tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("watch response in time")
        .unwrap()
        .expect("stream open")
        .0
}

/// Puts `{prefix}0`, `{prefix}1`, … until `stop`; returns each put's revision.
fn spawn_writer(mut client: Client, prefix: String, stop: Arc<AtomicBool>) -> JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let mut revs = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let put = client
                .put(format!("{prefix}{}", revs.len()), "v", None)
                .await
                .unwrap();
            revs.push(put.0.header.unwrap().revision);
        }
        revs
    })
}

/// Reads a watch stream and checks the promise of a progress response: once
/// one with revision R has arrived, no event at or below R may follow.
#[derive(Default)]
struct ProgressCheck {
    /// The revision of the latest progress response.
    covered: i64,
    /// Event revisions per watch id, in arrival order.
    seen: HashMap<i64, Vec<i64>>,
}

impl ProgressCheck {
    /// Takes one response; true if it was a progress response.
    fn take(&mut self, resp: PbWatchResponse) -> bool {
        assert!(!resp.canceled && !resp.created, "unexpected {resp:?}");
        if resp.watch_id == -1 {
            assert!(resp.events.is_empty());
            let rev = resp.header.unwrap().revision;
            assert!(
                rev >= self.covered,
                "progress went back from {} to {rev}",
                self.covered
            );
            self.covered = rev;
            return true;
        }
        for ev in &resp.events {
            let rev = ev.kv.as_ref().unwrap().mod_revision;
            assert!(
                rev > self.covered,
                "watch {} sent an event at revision {rev} after a progress response at {}",
                resp.watch_id,
                self.covered
            );
            self.seen.entry(resp.watch_id).or_default().push(rev);
        }
        false
    }

    /// Reads until the next progress response; returns its revision.
    async fn until_progress(&mut self, responses: &mut WatchResponseStream) -> i64 {
        while !self.take(recv(responses).await) {}
        self.covered
    }
}

/// The race progress requests used to lose: events still in flight inside
/// the datastore when the answer went out arrived after it. With writers
/// racing every request, each answer must follow all events it covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_follows_the_progress_response_that_covers_it() {
    let srv = start().await;
    let mut c = srv.client().await;
    let ws = c
        .watch("/p/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let (mut requests, mut responses) = ws.split();
    // A second watch on the stream: the answer waits for both.
    requests
        .watch("/p/w0/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    for id in [0, 1] {
        let created = recv(&mut responses).await;
        assert!(created.created && !created.canceled);
        assert_eq!(created.watch_id, id);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| spawn_writer(c.clone(), format!("/p/w{w}/"), stop.clone()))
        .collect();

    let mut check = ProgressCheck::default();
    let mut before = srv.backend.current_revision();
    for round in 0..200 {
        // Each request goes out the moment a new write is committed, while
        // its events are still on their way through the datastore.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while srv.backend.current_revision() == before {
            assert!(tokio::time::Instant::now() < deadline, "writers stalled");
            tokio::task::yield_now().await;
        }
        before = srv.backend.current_revision();
        // Every third round two requests go out back to back.
        let sent = if round % 3 == 0 { 2 } else { 1 };
        for _ in 0..sent {
            requests.request_progress().await.unwrap();
        }
        let answer = check.until_progress(&mut responses).await;
        assert!(
            answer >= before,
            "progress at {answer} older than the request ({before})"
        );
        for _ in 1..sent {
            check.until_progress(&mut responses).await;
        }
    }

    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    let mut first_writer = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        let revs = w.await.unwrap();
        written += revs.len();
        if i == 0 {
            first_writer = revs;
        }
    }
    let head = srv.backend.current_revision();
    assert_eq!(head, 1 + written as i64, "one revision per put");
    requests.request_progress().await.unwrap();
    assert_eq!(check.until_progress(&mut responses).await, head);
    // Nothing lost, nothing twice, in order.
    assert_eq!(check.seen[&0], (2..=head).collect::<Vec<_>>());
    first_writer.sort_unstable();
    assert_eq!(check.seen[&1], first_writer);
}

/// A watch from an old revision replays history before it goes live; a
/// progress request sent right away must wait for that replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_request_waits_for_the_replay_of_an_old_start() {
    const OLD: i64 = 3000;
    let srv = start().await;
    let backend = &srv.backend;
    futures::stream::iter(0..OLD)
        .map(|i| async move {
            let key = format!("/r/old/{}", i % 700);
            let put = PutRequest {
                key: key.into_bytes(),
                value: vec![b'v'; 100],
                ..Default::default()
            };
            backend.put(put).await
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(backend.current_revision(), 1 + OLD);

    let mut c = srv.client().await;
    // Writes go on while the history is replayed.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(c.clone(), "/r/live/".into(), stop.clone());
    let ws = c
        .watch(
            "/r/",
            Some(WatchOptions::new().with_prefix().with_start_revision(2)),
        )
        .await
        .unwrap();
    let (mut requests, mut responses) = ws.split();
    requests.request_progress().await.unwrap();
    let created = recv(&mut responses).await;
    assert!(created.created && !created.canceled);

    let mut check = ProgressCheck::default();
    let covered = check.until_progress(&mut responses).await;
    assert!(covered > OLD, "progress at {covered} before the old writes");
    // Every revision up to the answer came before it (later ones may too).
    let seen = check.seen.get(&0).map_or(&[][..], Vec::as_slice);
    let owed = (covered - 1) as usize;
    assert!(
        seen.len() >= owed,
        "only {} of {owed} events before the progress response at {covered}",
        seen.len()
    );
    assert_eq!(seen[..owed], (2..=covered).collect::<Vec<_>>());

    // Once live, the answers keep their promise too.
    for _ in 0..20 {
        requests.request_progress().await.unwrap();
        check.until_progress(&mut responses).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let head = srv.backend.current_revision();
    requests.request_progress().await.unwrap();
    assert_eq!(check.until_progress(&mut responses).await, head);
    assert_eq!(check.seen[&0], (2..=head).collect::<Vec<_>>());
}
