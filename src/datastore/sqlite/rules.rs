//! etcd's rules for txns that need no store access: compare semantics,
//! op-count limits and "no key written twice in one branch".

use std::collections::BTreeSet;

use crate::datastore::error::{Error, Result};
use crate::datastore::index::in_range;
use crate::datastore::types::*;

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

pub fn compare_one(cmp: &Compare, kv: &KeyValue) -> bool {
    let ord = match &cmp.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::CreateRevision(v) => kv.create_revision.cmp(v),
        CompareTarget::ModRevision(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
    };
    match cmp.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// etcd's request checks: op counts and no key written twice in a branch.
pub fn check_txn_shape(req: &TxnRequest) -> Result<()> {
    if req.success.len() > MAX_TXN_OPS || req.failure.len() > MAX_TXN_OPS {
        return Err(Error::TooManyOps);
    }
    for branch in [&req.success, &req.failure] {
        branch_writes(branch)?;
    }
    Ok(())
}

type Writes = (BTreeSet<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>)>);

/// The keys a branch puts and the ranges it deletes, rejecting overlaps.
fn branch_writes(ops: &[TxnOp]) -> Result<Writes> {
    let mut puts = BTreeSet::new();
    let mut dels = Vec::new();
    for op in ops {
        match op {
            TxnOp::Put(p) => {
                if !puts.insert(p.key.clone()) {
                    return Err(Error::DuplicateKey);
                }
            }
            TxnOp::Delete(d) => dels.push((d.key.clone(), d.range_end.clone())),
            TxnOp::Txn(inner) => {
                if inner.success.len() > MAX_TXN_OPS || inner.failure.len() > MAX_TXN_OPS {
                    return Err(Error::TooManyOps);
                }
                let (sp, sd) = branch_writes(&inner.success)?;
                let (fp, fd) = branch_writes(&inner.failure)?;
                // Only one nested branch runs, so they may overlap each other.
                for key in sp.union(&fp) {
                    if !puts.insert(key.clone()) {
                        return Err(Error::DuplicateKey);
                    }
                }
                dels.extend(sd);
                dels.extend(fd);
            }
            TxnOp::Range(_) => {}
        }
    }
    for key in &puts {
        if dels.iter().any(|(start, end)| in_range(key, start, end)) {
            return Err(Error::DuplicateKey);
        }
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> TxnOp {
        TxnOp::Put(PutRequest {
            key: key.into(),
            ..Default::default()
        })
    }

    #[test]
    fn duplicate_puts_are_rejected() {
        let req = TxnRequest {
            success: vec![put("a"), put("a")],
            ..Default::default()
        };
        assert!(matches!(check_txn_shape(&req), Err(Error::DuplicateKey)));
    }

    #[test]
    fn put_inside_deleted_range_is_rejected() {
        let req = TxnRequest {
            success: vec![
                put("a/1"),
                TxnOp::Delete(DeleteRequest {
                    key: "a/".into(),
                    range_end: "a0".into(),
                    prev_kv: false,
                }),
            ],
            ..Default::default()
        };
        assert!(matches!(check_txn_shape(&req), Err(Error::DuplicateKey)));
    }

    #[test]
    fn nested_branches_may_overlap_each_other() {
        let inner = TxnRequest {
            success: vec![put("x")],
            failure: vec![put("x")],
            ..Default::default()
        };
        let req = TxnRequest {
            success: vec![TxnOp::Txn(inner), put("y")],
            ..Default::default()
        };
        assert!(check_txn_shape(&req).is_ok());
    }

    #[test]
    fn too_many_ops() {
        let req = TxnRequest {
            success: (0..129).map(|i| put(&format!("k{i}"))).collect(),
            ..Default::default()
        };
        assert!(matches!(check_txn_shape(&req), Err(Error::TooManyOps)));
    }

    #[test]
    fn compare_semantics() {
        let kv = KeyValue {
            version: 2,
            value: b"v".to_vec(),
            ..Default::default()
        };
        let cmp = |result, target| Compare {
            key: b"k".to_vec(),
            range_end: vec![],
            result,
            target,
        };
        assert!(compare_one(
            &cmp(CompareResult::Equal, CompareTarget::Version(2)),
            &kv
        ));
        assert!(compare_one(
            &cmp(CompareResult::Greater, CompareTarget::Version(1)),
            &kv
        ));
        assert!(compare_one(
            &cmp(CompareResult::Less, CompareTarget::Value(b"w".to_vec())),
            &kv
        ));
        assert!(compare_one(
            &cmp(CompareResult::NotEqual, CompareTarget::Lease(3)),
            &kv
        ));
    }
}
