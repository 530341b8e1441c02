use super::*;
use etcd_client::proto::PbResponseHeader;

fn hdr(rev: i64) -> Option<PbResponseHeader> {
    Some(PbResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: rev,
        raft_term: 1,
    })
}

#[test]
fn range_request_fields_and_sort_rules() {
    let r = range_request(PbRangeRequest {
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
        limit: 5,
        revision: 9,
        sort_order: 2,
        sort_target: 3,
        keys_only: true,
        count_only: true,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: 4,
        serializable: true,
    });
    assert_eq!(r.key, b"a");
    assert_eq!(r.range_end, b"b");
    assert_eq!((r.limit, r.revision), (5, 9));
    assert_eq!(r.sort_order, SortOrder::Descend);
    assert_eq!(r.sort_target, SortTarget::Mod);
    assert!(r.keys_only && r.count_only);
    assert_eq!(
        (
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision
        ),
        (1, 2, 3, 4)
    );

    // Target without order sorts ascending; ascending by key is no sort.
    let r = range_request(PbRangeRequest {
        sort_target: 4,
        ..Default::default()
    });
    assert_eq!(
        (r.sort_order, r.sort_target),
        (SortOrder::Ascend, SortTarget::Value)
    );
    let r = range_request(PbRangeRequest {
        sort_order: 1,
        ..Default::default()
    });
    assert_eq!(r.sort_order, SortOrder::None);
    // Unknown enum values are ignored, as in Go.
    let r = range_request(PbRangeRequest {
        sort_order: 42,
        sort_target: -3,
        ..Default::default()
    });
    assert_eq!(
        (r.sort_order, r.sort_target),
        (SortOrder::None, SortTarget::Key)
    );
}

fn cmp(result: i32, target: i32, union: Option<PbTargetUnion>) -> PbCompare {
    PbCompare {
        result,
        target,
        key: b"k".to_vec(),
        range_end: Vec::new(),
        target_union: union,
    }
}

#[test]
fn txn_request_compares_and_nested_ops() {
    let req = PbTxnRequest {
        compare: vec![
            cmp(0, 0, Some(PbTargetUnion::Version(3))),
            cmp(1, 1, Some(PbTargetUnion::CreateRevision(4))),
            cmp(2, 2, Some(PbTargetUnion::ModRevision(5))),
            cmp(3, 3, Some(PbTargetUnion::Value(b"v".to_vec()))),
            cmp(0, 4, Some(PbTargetUnion::Lease(6))),
            // Missing or mismatched union reads as zero, like Go getters.
            cmp(0, 2, Some(PbTargetUnion::Version(8))),
            cmp(0, 3, None),
        ],
        success: vec![PbTxnRequestOp {
            request: Some(PbTxnOpRequest::RequestTxn(PbTxnRequest {
                success: vec![PbTxnRequestOp {
                    request: Some(PbTxnOpRequest::RequestPut(PbPutRequest {
                        key: b"x".to_vec(),
                        value: b"y".to_vec(),
                        lease: 7,
                        prev_kv: true,
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            })),
        }],
        failure: vec![PbTxnRequestOp {
            request: Some(PbTxnOpRequest::RequestDeleteRange(PbDeleteRequest {
                key: b"d".to_vec(),
                range_end: vec![0],
                prev_kv: true,
            })),
        }],
    };
    let t = txn_request(req).unwrap();
    let targets: Vec<_> = t
        .compare
        .iter()
        .map(|c| (c.result, c.target.clone()))
        .collect();
    assert_eq!(
        targets,
        vec![
            (CompareResult::Equal, CompareTarget::Version(3)),
            (CompareResult::Greater, CompareTarget::CreateRevision(4)),
            (CompareResult::Less, CompareTarget::ModRevision(5)),
            (CompareResult::NotEqual, CompareTarget::Value(b"v".to_vec())),
            (CompareResult::Equal, CompareTarget::Lease(6)),
            (CompareResult::Equal, CompareTarget::ModRevision(0)),
            (CompareResult::Equal, CompareTarget::Value(Vec::new())),
        ]
    );
    match &t.success[..] {
        [TxnOp::Txn(inner)] => match &inner.success[..] {
            [TxnOp::Put(p)] => {
                assert_eq!(
                    (p.key.as_slice(), p.value.as_slice()),
                    (&b"x"[..], &b"y"[..])
                );
                assert_eq!(p.lease, 7);
                assert!(p.prev_kv);
            }
            other => panic!("unexpected inner ops {other:?}"),
        },
        other => panic!("unexpected ops {other:?}"),
    }
    assert!(matches!(&t.failure[..], [TxnOp::Delete(d)] if d.range_end == [0] && d.prev_kv));
}

#[test]
fn txn_request_rejects_garbage() {
    let bad_result = PbTxnRequest {
        compare: vec![cmp(9, 0, None)],
        ..Default::default()
    };
    assert!(txn_request(bad_result).is_err());
    let bad_target = PbTxnRequest {
        compare: vec![cmp(0, 17, None)],
        ..Default::default()
    };
    assert!(txn_request(bad_target).is_err());
    let empty_op = PbTxnRequest {
        success: vec![PbTxnRequestOp { request: None }],
        ..Default::default()
    };
    assert!(txn_request(empty_op).is_err());
}

#[test]
fn too_many_ops_is_checked_at_every_level() {
    let put = || PbTxnRequestOp {
        request: Some(PbTxnOpRequest::RequestPut(PbPutRequest::default())),
    };
    let ok = PbTxnRequest {
        success: (0..MAX_TXN_OPS).map(|_| put()).collect(),
        ..Default::default()
    };
    assert!(check_txn_ops(&ok).is_ok());
    let big = PbTxnRequest {
        failure: (0..=MAX_TXN_OPS).map(|_| put()).collect(),
        ..Default::default()
    };
    assert!(matches!(check_txn_ops(&big), Err(Error::TooManyOps)));
    let nested = PbTxnRequest {
        success: vec![PbTxnRequestOp {
            request: Some(PbTxnOpRequest::RequestTxn(big)),
        }],
        ..Default::default()
    };
    assert!(matches!(check_txn_ops(&nested), Err(Error::TooManyOps)));
}

#[test]
fn responses_carry_headers_and_kvs() {
    let kv1 = KeyValue {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        create_revision: 2,
        mod_revision: 3,
        version: 2,
        lease: 5,
    };
    let resp = txn_response(
        TxnResponse {
            revision: 10,
            succeeded: true,
            responses: vec![
                TxnOpResponse::Range(RangeResponse {
                    revision: 10,
                    kvs: vec![kv1.clone()],
                    more: true,
                    count: 4,
                }),
                TxnOpResponse::Put(PutResponse {
                    revision: 10,
                    prev_kv: Some(kv1.clone()),
                }),
                TxnOpResponse::Delete(DeleteResponse {
                    revision: 10,
                    deleted: 1,
                    prev_kvs: vec![kv1.clone()],
                }),
                TxnOpResponse::Txn(TxnResponse {
                    revision: 10,
                    succeeded: false,
                    responses: Vec::new(),
                }),
            ],
        },
        &hdr,
    );
    assert_eq!(resp.header, hdr(10));
    assert!(resp.succeeded);
    assert_eq!(resp.responses.len(), 4);
    match &resp.responses[0].response {
        Some(PbTxnOpResponse::ResponseRange(r)) => {
            assert_eq!(r.kvs.len(), 1);
            let k = &r.kvs[0];
            assert_eq!(
                (k.key.as_slice(), k.value.as_slice(), k.create_revision),
                (&b"k"[..], &b"v"[..], 2)
            );
            assert_eq!((k.mod_revision, k.version, k.lease), (3, 2, 5));
            assert!(r.more);
            assert_eq!(r.count, 4);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        &resp.responses[3].response,
        Some(PbTxnOpResponse::ResponseTxn(t)) if !t.succeeded && t.header == hdr(10)
    ));
}

#[test]
fn events_use_mvccpb_types() {
    let put = event(Event {
        kind: EventKind::Put,
        kv: KeyValue {
            key: b"a".to_vec(),
            ..Default::default()
        },
        prev_kv: None,
    });
    assert_eq!(put.r#type, 0);
    assert!(put.prev_kv.is_none());
    let del = event(Event {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: b"a".to_vec(),
            mod_revision: 4,
            ..Default::default()
        },
        prev_kv: Some(KeyValue::default()),
    });
    assert_eq!(del.r#type, 1);
    assert_eq!(del.kv.map(|k| k.mod_revision), Some(4));
    assert!(del.prev_kv.is_some());
}
