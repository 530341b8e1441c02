//! Hostile and invalid requests get etcd's errors, and the process survives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::Proc;
use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

/// The gRPC status of an etcd-client error, or a panic.
fn status(err: etcd_client::Error) -> tonic::Status {
    match err {
        etcd_client::Error::GRpcStatus(s) => s,
        other => panic!("expected a gRPC status, got: {other:?}"),
    }
}

fn expect_status<T: std::fmt::Debug>(
    what: &str,
    res: Result<T, etcd_client::Error>,
    code: tonic::Code,
    message: &str,
) {
    let err = match res {
        Ok(v) => panic!("{what}: expected error {message:?}, got Ok({v:?})"),
        Err(e) => e,
    };
    let s = status(err);
    assert_eq!(s.message(), message, "{what}: {s:?}");
    assert_eq!(s.code(), code, "{what}: {s:?}");
}

async fn still_answers(c: &mut Client, p: &mut Proc, what: &str) {
    p.assert_alive();
    let r = tokio::time::timeout(Duration::from_secs(10), c.get("/keep/1", None))
        .await
        .unwrap_or_else(|_| panic!("after {what}: get timed out"))
        .unwrap_or_else(|e| panic!("after {what}: get failed: {e}"));
    assert_eq!(r.kvs().len(), 1, "after {what}");
    assert_eq!(r.kvs()[0].value(), b"kept", "after {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_etcd_errors_and_process_survives() {
    let mut p = Proc::datastore();
    let mut c = p.client().await;
    c.put("/keep/1", "kept", None).await.unwrap();
    c.put("/keep/2", "kept2", None).await.unwrap();

    // --- too large requests ---
    let big = vec![b'x'; 1024 * 1024 * 16 / 10]; // 1.6 MiB
    expect_status(
        "put 1.6 MiB",
        c.put("/big", big, None).await,
        tonic::Code::InvalidArgument,
        "etcdserver: request is too large",
    );
    still_answers(&mut c, &mut p, "1.6 MiB put").await;
    let huge = vec![b'y'; 2 * 1024 * 1024]; // 2 MiB
    let res = c.put("/huge", huge, None).await;
    assert!(res.is_err(), "a 2 MiB put must fail: {res:?}");
    // the connection may have been reset; a fresh one must work
    let mut c = p.client().await;
    still_answers(&mut c, &mut p, "2 MiB put").await;
    assert!(c.get("/big", None).await.unwrap().kvs().is_empty());
    assert!(c.get("/huge", None).await.unwrap().kvs().is_empty());
    // just below the limit works
    let ok = vec![b'z'; 1024 * 1024];
    c.put("/onemib", ok, None).await.unwrap();
    let r = c.get("/onemib", None).await.unwrap();
    assert_eq!(r.kvs()[0].value().len(), 1024 * 1024);

    // --- invalid range: range_end < key is empty, not an error ---
    let r = c
        .get("/keep/2", Some(GetOptions::new().with_range("/keep/1")))
        .await
        .expect("range_end < key is not an error");
    assert!(r.kvs().is_empty(), "{r:?}");
    assert_eq!(r.count(), 0);

    // --- unknown leases ---
    let unknown: i64 = 0x0bad_1ea5e;
    expect_status(
        "revoke unknown lease",
        c.lease_revoke(unknown).await,
        tonic::Code::NotFound,
        "etcdserver: requested lease not found",
    );
    let ttl = c
        .lease_time_to_live(unknown, None)
        .await
        .expect("timetolive of an unknown lease is not an error");
    assert_eq!(ttl.ttl(), -1, "{ttl:?}");
    match c.lease_keep_alive(unknown).await {
        // etcd answers TTL 0, which etcd-client turns into this error
        Err(etcd_client::Error::LeaseKeepAliveError(_)) => {}
        other => panic!("keep-alive of an unknown lease: {other:?}"),
    }
    expect_status(
        "put with unknown lease",
        c.put("/leased", "v", Some(PutOptions::new().with_lease(unknown)))
            .await,
        tonic::Code::NotFound,
        "etcdserver: requested lease not found",
    );
    assert!(c.get("/leased", None).await.unwrap().kvs().is_empty());

    // --- revisions ---
    expect_status(
        "get at a future revision",
        c.get("/keep/1", Some(GetOptions::new().with_revision(1_000_000)))
            .await,
        tonic::Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
    );

    // --- keys ---
    expect_status(
        "empty key",
        c.put("", "v", None).await,
        tonic::Code::InvalidArgument,
        "etcdserver: key is not provided",
    );

    // --- txn limits ---
    let ops: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("/txn/{i}"), "v", None))
        .collect();
    expect_status(
        "txn with 129 ops",
        c.txn(Txn::new().and_then(ops)).await,
        tonic::Code::InvalidArgument,
        "etcdserver: too many operations in txn request",
    );
    let ops: Vec<TxnOp> = (0..128)
        .map(|i| TxnOp::put(format!("/txn/{i}"), "v", None))
        .collect();
    let r = c
        .txn(Txn::new().and_then(ops))
        .await
        .expect("128 ops is fine");
    assert!(r.succeeded());
    let dup = Txn::new().and_then(vec![
        TxnOp::put("/dup", "1", None),
        TxnOp::put("/dup", "2", None),
    ]);
    expect_status(
        "txn putting one key twice",
        c.txn(dup).await,
        tonic::Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
    );
    // duplicates in the failure branch count too
    let dup = Txn::new()
        .when(vec![Compare::version("/keep/1", CompareOp::Equal, 1)])
        .and_then(vec![])
        .or_else(vec![
            TxnOp::put("/dup", "1", None),
            TxnOp::delete("/dup", None),
        ]);
    expect_status(
        "txn putting and deleting one key",
        c.txn(dup).await,
        tonic::Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
    );
    assert!(c.get("/dup", None).await.unwrap().kvs().is_empty());

    still_answers(&mut c, &mut p, "invalid requests").await;

    // --- garbage on the wire ---
    let addr = p.endpoint();
    let garbage = std::thread::spawn(move || {
        let mut held = Vec::new();
        // raw garbage
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = s.write_all(&junk);
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        // an HTTP/1 request
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let _ = s.read(&mut buf);
        // a broken HTTP/2 preface
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ =
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff");
        let _ = s.read(&mut buf);
        // a valid preface followed by a frame with an absurd length
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let _ = s.write_all(&[
            0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 1, 2, 3,
        ]);
        let _ = s.read(&mut buf);
        // connections that stay open doing nothing, one mid-preface
        let idle = TcpStream::connect(&addr).unwrap();
        held.push(idle);
        let mut half = TcpStream::connect(&addr).unwrap();
        let _ = half.write_all(b"PRI * HTTP/2.0\r\n");
        held.push(half);
        held
    })
    .join()
    .expect("garbage thread");
    still_answers(&mut c, &mut p, "garbage bytes").await;
    let mut fresh = p.client().await;
    still_answers(&mut fresh, &mut p, "garbage bytes (new connection)").await;
    drop(garbage);

    // --- after all: alive, and data written before is intact ---
    p.assert_alive();
    let r = fresh
        .get("/keep/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let kvs: Vec<(&[u8], &[u8])> = r.kvs().iter().map(|kv| (kv.key(), kv.value())).collect();
    assert_eq!(
        kvs,
        vec![
            (&b"/keep/1"[..], &b"kept"[..]),
            (&b"/keep/2"[..], &b"kept2"[..])
        ]
    );
    let r = fresh
        .get(
            "/txn/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(r.count(), 128);
    fresh.put("/after", "ok", None).await.unwrap();
    p.assert_alive();
}
