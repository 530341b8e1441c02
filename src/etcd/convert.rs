//! Wire messages (etcd's protobufs) to datastore types and back. Enums
//! arrive as raw i32s; unknown values are treated the way etcd's Go code
//! treats them (ignored) unless the request would be meaningless.

use etcd_client::proto::{
    PbCompare, PbCompareTarget, PbDeleteRequest, PbDeleteResponse, PbEvent, PbKeyValue,
    PbPutRequest, PbPutResponse, PbRangeRequest, PbRangeResponse, PbResponseHeader, PbResponseOp,
    PbTargetUnion, PbTxnOpRequest, PbTxnOpResponse, PbTxnRequest, PbTxnRequestOp, PbTxnResponse,
};
use tonic::Status;

use crate::datastore::{
    Compare, CompareResult, CompareTarget, DeleteRequest, DeleteResponse, Error, Event, EventKind,
    KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, SortOrder, SortTarget, TxnOp,
    TxnOpResponse, TxnRequest, TxnResponse,
};

/// etcd's `--max-txn-ops` default.
pub(crate) const MAX_TXN_OPS: usize = 128;

/// mvccpb.Event.EventType values.
const EVENT_PUT: i32 = 0;
const EVENT_DELETE: i32 = 1;

pub(crate) fn range_request(r: PbRangeRequest) -> RangeRequest {
    let mut sort_order = match r.sort_order {
        1 => SortOrder::Ascend,
        2 => SortOrder::Descend,
        _ => SortOrder::None,
    };
    let sort_target = match r.sort_target {
        1 => SortTarget::Version,
        2 => SortTarget::Create,
        3 => SortTarget::Mod,
        4 => SortTarget::Value,
        _ => SortTarget::Key,
    };
    // As etcd's applyRange: a sort target without an order means ascending,
    // and ascending by key is the natural order, so no sort at all.
    if sort_target != SortTarget::Key && sort_order == SortOrder::None {
        sort_order = SortOrder::Ascend;
    } else if sort_target == SortTarget::Key && sort_order == SortOrder::Ascend {
        sort_order = SortOrder::None;
    }
    RangeRequest {
        key: r.key,
        range_end: r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order,
        sort_target,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    }
}

pub(crate) fn put_request(r: PbPutRequest) -> PutRequest {
    PutRequest {
        key: r.key,
        value: r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub(crate) fn delete_request(r: PbDeleteRequest) -> DeleteRequest {
    DeleteRequest {
        key: r.key,
        range_end: r.range_end,
        prev_kv: r.prev_kv,
    }
}

/// etcd's checkTxnRequest limit, applied to nested txns as well.
pub(crate) fn check_txn_ops(r: &PbTxnRequest) -> Result<(), Error> {
    if r.compare.len() > MAX_TXN_OPS
        || r.success.len() > MAX_TXN_OPS
        || r.failure.len() > MAX_TXN_OPS
    {
        return Err(Error::TooManyOps);
    }
    for op in r.success.iter().chain(&r.failure) {
        if let Some(PbTxnOpRequest::RequestTxn(inner)) = &op.request {
            check_txn_ops(inner)?;
        }
    }
    Ok(())
}

pub(crate) fn txn_request(r: PbTxnRequest) -> Result<TxnRequest, Status> {
    Ok(TxnRequest {
        compare: r
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: r
            .success
            .into_iter()
            .map(txn_op)
            .collect::<Result<_, _>>()?,
        failure: r
            .failure
            .into_iter()
            .map(txn_op)
            .collect::<Result<_, _>>()?,
    })
}

fn txn_op(op: PbTxnRequestOp) -> Result<TxnOp, Status> {
    match op.request {
        Some(PbTxnOpRequest::RequestRange(r)) => Ok(TxnOp::Range(range_request(r))),
        Some(PbTxnOpRequest::RequestPut(r)) => Ok(TxnOp::Put(put_request(r))),
        Some(PbTxnOpRequest::RequestDeleteRange(r)) => Ok(TxnOp::Delete(delete_request(r))),
        Some(PbTxnOpRequest::RequestTxn(r)) => Ok(TxnOp::Txn(txn_request(r)?)),
        // Refused rather than skipped so responses stay aligned with ops.
        None => Err(Status::invalid_argument(
            "etcdserver: txn operation has no request",
        )),
    }
}

/// The target enum picks the field; as in Go's getters, a missing or
/// mismatched `target_union` reads as that field's zero value.
fn compare(c: PbCompare) -> Result<Compare, Status> {
    let result = match c.result {
        0 => CompareResult::Equal,
        1 => CompareResult::Greater,
        2 => CompareResult::Less,
        3 => CompareResult::NotEqual,
        other => {
            return Err(Status::invalid_argument(format!(
                "etcdserver: unknown compare result {other}"
            )))
        }
    };
    let union = c.target_union;
    let target = match PbCompareTarget::try_from(c.target) {
        Ok(PbCompareTarget::Version) => CompareTarget::Version(match union {
            Some(PbTargetUnion::Version(v)) => v,
            _ => 0,
        }),
        Ok(PbCompareTarget::Create) => CompareTarget::CreateRevision(match union {
            Some(PbTargetUnion::CreateRevision(v)) => v,
            _ => 0,
        }),
        Ok(PbCompareTarget::Mod) => CompareTarget::ModRevision(match union {
            Some(PbTargetUnion::ModRevision(v)) => v,
            _ => 0,
        }),
        Ok(PbCompareTarget::Value) => CompareTarget::Value(match union {
            Some(PbTargetUnion::Value(v)) => v,
            _ => Vec::new(),
        }),
        Ok(PbCompareTarget::Lease) => CompareTarget::Lease(match union {
            Some(PbTargetUnion::Lease(v)) => v,
            _ => 0,
        }),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "etcdserver: unknown compare target {}",
                c.target
            )))
        }
    };
    Ok(Compare {
        key: c.key,
        range_end: c.range_end,
        result,
        target,
    })
}

pub(crate) fn kv(kv: KeyValue) -> PbKeyValue {
    PbKeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub(crate) fn event(ev: Event) -> PbEvent {
    PbEvent {
        r#type: match ev.kind {
            EventKind::Put => EVENT_PUT,
            EventKind::Delete => EVENT_DELETE,
        },
        kv: Some(kv(ev.kv)),
        prev_kv: ev.prev_kv.map(kv),
    }
}

/// Builds a response header for a revision (see `Context::header`).
pub(crate) type Header<'a> = &'a dyn Fn(i64) -> Option<PbResponseHeader>;

pub(crate) fn range_response(r: RangeResponse, header: Header<'_>) -> PbRangeResponse {
    PbRangeResponse {
        header: header(r.revision),
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

pub(crate) fn put_response(r: PutResponse, header: Header<'_>) -> PbPutResponse {
    PbPutResponse {
        header: header(r.revision),
        prev_kv: r.prev_kv.map(kv),
    }
}

pub(crate) fn delete_response(r: DeleteResponse, header: Header<'_>) -> PbDeleteResponse {
    PbDeleteResponse {
        header: header(r.revision),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

pub(crate) fn txn_response(r: TxnResponse, header: Header<'_>) -> PbTxnResponse {
    PbTxnResponse {
        header: header(r.revision),
        succeeded: r.succeeded,
        responses: r
            .responses
            .into_iter()
            .map(|op| PbResponseOp {
                response: Some(match op {
                    TxnOpResponse::Range(r) => {
                        PbTxnOpResponse::ResponseRange(range_response(r, header))
                    }
                    TxnOpResponse::Put(r) => PbTxnOpResponse::ResponsePut(put_response(r, header)),
                    TxnOpResponse::Delete(r) => {
                        PbTxnOpResponse::ResponseDeleteRange(delete_response(r, header))
                    }
                    TxnOpResponse::Txn(r) => PbTxnOpResponse::ResponseTxn(txn_response(r, header)),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
