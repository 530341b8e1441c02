//! The services end to end: a real gRPC server over the in-memory backend,
//! driven by the `etcd-client` crate as a Go client would drive etcd.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    WatchOptions,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

use super::testing::MemBackend;
use super::{serve_tcp, Error, EtcdInfo};

pub(super) const MEMBER: u64 = 0xabc;
pub(super) const CLUSTER: u64 = 0xdef;

pub(super) struct Server {
    pub backend: Arc<MemBackend>,
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

pub(super) async fn start() -> Server {
    let backend = Arc::new(MemBackend::default());
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
    let put = c.put("a", "1", None).await.unwrap();
    let h = put.0.header.unwrap();
    assert_eq!(
        (h.cluster_id, h.member_id, h.revision, h.raft_term),
        (CLUSTER, MEMBER, 1, 1)
    );
    c.put("b", "2", None).await.unwrap();
    let prev = c
        .put("a", "3", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(prev.0.prev_kv.unwrap().value, b"1");

    let got = c.get("a", None).await.unwrap();
    assert_eq!(got.0.header.unwrap().revision, 3);
    assert_eq!(got.0.kvs[0].value, b"3");
    assert_eq!(got.0.kvs[0].version, 2);
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
    assert_eq!(resp.0.header.unwrap().revision, 4);
    let txn = Txn::new()
        .when([Compare::version("a", CompareOp::Greater, 5)])
        .and_then([TxnOp::delete("a", None)]);
    assert!(!c.txn(txn).await.unwrap().0.succeeded);

    let del = c
        .delete("a", Some(etcd_client::DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!((del.0.deleted, del.0.prev_kvs.len()), (1, 1));
    let compact = c.compact(2, None).await.unwrap();
    assert_eq!(compact.0.header.unwrap().revision, 5);
    let (code_, _) = code(
        c.get("b", Some(GetOptions::new().with_revision(1)))
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
    assert_eq!(srv.backend.current_revision_for_test(), 0);
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
    assert_eq!((created.watch_id, created.header.unwrap().revision), (0, 1));

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
    assert_eq!(progress.header.unwrap().revision, 3);
    assert!(progress.events.is_empty());

    // A watch from an old revision replays history first.
    ws.watch("k1", Some(WatchOptions::new().with_start_revision(2)))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert_eq!((created.watch_id, created.created), (2, true));
    let replay = next(&mut ws).await;
    assert_eq!((replay.watch_id, replay.events.len()), (2, 2));
}

#[tokio::test]
async fn watch_compacted_and_duplicate_ids() {
    let srv = start().await;
    let mut c = srv.client().await;
    for i in 0..3 {
        c.put("k", format!("{i}"), None).await.unwrap();
    }
    srv.backend.compact_now(2);
    let mut ws = c
        .watch("k", Some(WatchOptions::new().with_start_revision(1)))
        .await
        .unwrap();
    let created = next(&mut ws).await;
    assert!(created.created);
    let cancel = next(&mut ws).await;
    assert!(cancel.canceled);
    assert_eq!(
        (cancel.watch_id, cancel.compact_revision),
        (created.watch_id, 2)
    );

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
    assert_eq!(revoked.0.header.unwrap().revision, 2);
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
        (st.leader, st.raft_index, st.raft_term, st.db_size),
        (MEMBER, 1, 1, 4096)
    );
    let h1 = c.hash_kv(0).await.unwrap().0;
    assert_eq!(h1.hash_revision, 1);
    c.put("a", "2", None).await.unwrap();
    assert_ne!(c.hash_kv(0).await.unwrap().0.hash, h1.hash);
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

#[tokio::test]
async fn a_closed_stream_releases_every_watcher() {
    let srv = start().await;
    let mut client = srv.client().await;
    let mut ws = client.watch("a", None).await.unwrap();
    ws.watch("b", None).await.unwrap();
    for _ in 0..2 {
        assert!(next(&mut ws).await.created);
    }
    assert_eq!(srv.backend.open_watchers(), 2);
    drop(ws);
    drop(client);
    for _ in 0..100 {
        if srv.backend.open_watchers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(srv.backend.open_watchers(), 0);
}
