//! Applying one write request inside the writer's open transaction: put,
//! delete-range, txn (compares, branch choice, nested txns), compaction and
//! lease grant/revoke. Validation happens before the first change of a
//! request, so a rejected request leaves nothing behind.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::read;
use super::rules::{check_txn_shape, compare_one};
use super::schema;
use super::writer::{Done, Op};
use super::Shared;
use crate::datastore::error::{Error, Result};
use crate::datastore::index::{row_id, Version};
use crate::datastore::lease::MAX_TTL;
use crate::datastore::types::*;

pub struct Applier<'a> {
    conn: &'a Connection,
    shared: &'a Shared,
    /// Newest revision before this request.
    base: i64,
    /// Changes made so far under revision `base + 1`.
    sub: i64,
    events: &'a mut Vec<Event>,
    dropped: Vec<i64>,
}

impl<'a> Applier<'a> {
    pub fn new(
        conn: &'a Connection,
        shared: &'a Shared,
        base: i64,
        events: &'a mut Vec<Event>,
    ) -> Self {
        Applier {
            conn,
            shared,
            base,
            sub: 0,
            events,
            dropped: Vec::new(),
        }
    }

    /// The store revision after this request.
    pub fn revision(&self) -> i64 {
        if self.sub > 0 {
            self.base + 1
        } else {
            self.base
        }
    }

    pub fn take_dropped(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.dropped)
    }

    pub fn apply(&mut self, op: &Op) -> Result<Done> {
        match op {
            Op::Put(req) => {
                self.check_put(req)?;
                let resp = self.put(req)?;
                Ok(Done::Put(resp))
            }
            Op::Delete(req) => {
                if req.key.is_empty() {
                    return Err(Error::EmptyKey);
                }
                Ok(Done::Delete(self.delete(req)?))
            }
            Op::Txn(req) => {
                check_txn_shape(req)?;
                let plan = self.plan(req)?;
                self.check_branch(req, &plan)?;
                let resp = self.txn(req, &plan)?;
                Ok(Done::Txn(resp))
            }
            Op::Compact(rev) => self.compact(*rev),
            Op::LeaseGrant { id, ttl } => self.lease_grant(*id, *ttl),
            Op::LeaseRevoke(id) => self.lease_revoke(*id),
            Op::Shutdown => Ok(Done::Revision(self.revision())),
            Op::LeaseExpire(id) => {
                let expired = self.leases(|l| l.is_expired(*id));
                if expired {
                    self.lease_revoke(*id)
                } else {
                    Ok(Done::Revision(self.revision()))
                }
            }
        }
    }

    fn leases<T>(&self, f: impl FnOnce(&mut crate::datastore::lease::Leases) -> T) -> T {
        f(&mut self.shared.leases.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The revision reads inside this request see (its own changes included).
    fn view(&self) -> i64 {
        self.base + 1
    }

    fn current(&self, key: &[u8]) -> Option<Version> {
        let index = self.shared.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .get(key, self.view())
            .filter(|v| !v.tombstone)
            .copied()
    }

    /// Live keys of the range as this request sees them.
    fn live_in_range(&self, key: &[u8], range_end: &[u8]) -> Vec<(Vec<u8>, Version)> {
        let index = self.shared.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .range(key, range_end, self.view())
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn value(&self, id: i64) -> Result<Vec<u8>> {
        schema::value_of(self.conn, id)?
            .ok_or_else(|| Error::Storage(format!("row {id} missing from the log")))
    }

    fn check_put(&self, req: &PutRequest) -> Result<()> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if (req.ignore_value || req.ignore_lease) && self.current(&req.key).is_none() {
            return Err(Error::KeyNotFound);
        }
        if !req.ignore_lease && req.lease != 0 && !self.leases(|l| l.contains(req.lease)) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    fn next_id(&mut self) -> i64 {
        self.sub += 1;
        row_id(self.base + 1, self.sub - 1)
    }

    fn put(&mut self, req: &PutRequest) -> Result<PutResponse> {
        let prev = self.current(&req.key);
        let prev_kv = match prev {
            Some(v) => Some(read::kv_of(&req.key, &v, self.value(v.id)?)),
            None => None,
        };
        let value = match (&prev_kv, req.ignore_value) {
            (Some(kv), true) => kv.value.clone(),
            _ => req.value.clone(),
        };
        let lease = match (&prev, req.ignore_lease) {
            (Some(v), true) => v.lease,
            _ => req.lease,
        };
        let id = self.next_id();
        let version = Version {
            id,
            create_revision: prev.map_or(self.base + 1, |v| v.create_revision),
            version: prev.map_or(1, |v| v.version + 1),
            lease,
            tombstone: false,
        };
        schema::insert_row(self.conn, id, &req.key, &value, &version)?;
        self.shared
            .index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(&req.key, version);
        self.leases(|l| {
            if let Some(p) = prev {
                if p.lease != 0 && p.lease != lease {
                    l.detach(p.lease, &req.key);
                }
            }
            if lease != 0 {
                l.attach(lease, &req.key);
            }
        });
        let kv = read::kv_of(&req.key, &version, value);
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev_kv.clone(),
        });
        Ok(PutResponse {
            revision: self.base + 1,
            prev_kv: if req.prev_kv { prev_kv } else { None },
        })
    }

    fn delete(&mut self, req: &DeleteRequest) -> Result<DeleteResponse> {
        let victims = self.live_in_range(&req.key, &req.range_end);
        let mut prev_kvs = Vec::new();
        for (key, prev) in &victims {
            let prev_kv = read::kv_of(key, prev, self.value(prev.id)?);
            let id = self.next_id();
            let tomb = Version {
                id,
                create_revision: 0,
                version: 0,
                lease: 0,
                tombstone: true,
            };
            schema::insert_row(self.conn, id, key, &[], &tomb)?;
            self.shared
                .index
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(key, tomb);
            if prev.lease != 0 {
                self.leases(|l| l.detach(prev.lease, key));
            }
            self.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    mod_revision: self.base + 1,
                    ..Default::default()
                },
                prev_kv: Some(prev_kv.clone()),
            });
            if req.prev_kv {
                prev_kvs.push(prev_kv);
            }
        }
        Ok(DeleteResponse {
            revision: self.revision(),
            deleted: victims.len() as i64,
            prev_kvs,
        })
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let current = self.revision();
        let compacted = self.shared.compact_revision.load(Ordering::Acquire);
        let at = read::read_revision(req.revision, current, compacted)?;
        let conn = self.conn;
        let mut fetch = |id| schema::value_of(conn, id);
        let mut resp = read::range(&self.shared.index, req, at, &mut fetch)?;
        resp.revision = current;
        Ok(resp)
    }

    fn compare(&self, cmp: &Compare) -> Result<bool> {
        let matched = self.live_in_range(&cmp.key, &cmp.range_end);
        if matched.is_empty() {
            if let CompareTarget::Value(_) = cmp.target {
                // etcd: a value compare on a missing key always fails.
                return Ok(false);
            }
            return Ok(compare_one(cmp, &KeyValue::default()));
        }
        for (key, v) in matched {
            let value = match cmp.target {
                CompareTarget::Value(_) => self.value(v.id)?,
                _ => Vec::new(),
            };
            if !compare_one(cmp, &read::kv_of(&key, &v, value)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Evaluates every compare of the txn and of the nested txns on the chosen
    /// path against the state before the txn, as etcd does.
    fn plan(&self, req: &TxnRequest) -> Result<Plan> {
        let mut succeeded = true;
        for cmp in &req.compare {
            if !self.compare(cmp)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = Vec::new();
        for op in ops {
            if let TxnOp::Txn(inner) = op {
                nested.push(self.plan(inner)?);
            }
        }
        Ok(Plan { succeeded, nested })
    }

    fn check_branch(&self, req: &TxnRequest, plan: &Plan) -> Result<()> {
        let ops = if plan.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = plan.nested.iter();
        for op in ops {
            match op {
                TxnOp::Put(p) => self.check_put(p)?,
                TxnOp::Delete(d) if d.key.is_empty() => return Err(Error::EmptyKey),
                TxnOp::Range(r) if r.key.is_empty() => return Err(Error::EmptyKey),
                TxnOp::Txn(inner) => {
                    if let Some(p) = nested.next() {
                        self.check_branch(inner, p)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn txn(&mut self, req: &TxnRequest, plan: &Plan) -> Result<TxnResponse> {
        let ops = if plan.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = plan.nested.iter();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let resp = match op {
                TxnOp::Range(r) => TxnOpResponse::Range(self.range(r)?),
                TxnOp::Put(p) => TxnOpResponse::Put(self.put(p)?),
                TxnOp::Delete(d) => TxnOpResponse::Delete(self.delete(d)?),
                TxnOp::Txn(inner) => {
                    let p = nested
                        .next()
                        .ok_or_else(|| Error::Storage("txn plan out of step".into()))?;
                    TxnOpResponse::Txn(self.txn(inner, p)?)
                }
            };
            responses.push(resp);
        }
        Ok(TxnResponse {
            revision: self.revision(),
            succeeded: plan.succeeded,
            responses,
        })
    }

    fn compact(&mut self, rev: i64) -> Result<Done> {
        let compacted = self.shared.compact_revision.load(Ordering::Acquire);
        if rev <= compacted {
            return Err(Error::Compacted {
                compact_revision: compacted,
            });
        }
        if rev > self.base {
            return Err(Error::FutureRevision);
        }
        schema::set_compact_revision(self.conn, rev)?;
        // Readers check the compaction point before using the index, so
        // publish it first.
        self.shared.compact_revision.store(rev, Ordering::Release);
        self.dropped = self
            .shared
            .index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .compact(rev);
        tracing::debug!(revision = rev, rows = self.dropped.len(), "compacted");
        Ok(Done::Revision(self.base))
    }

    fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<Done> {
        if ttl > MAX_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if id == 0 { self.fresh_lease_id() } else { id };
        if id < 0 || self.leases(|l| l.contains(id)) {
            return Err(Error::LeaseExists);
        }
        self.conn
            .prepare_cached("INSERT INTO lease (id, ttl) VALUES (?1, ?2)")?
            .execute([id, ttl])?;
        self.leases(|l| l.grant(id, ttl));
        Ok(Done::LeaseGrant(LeaseGrant { id, ttl }))
    }

    fn fresh_lease_id(&self) -> i64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(1);
        let mut id = (nanos & 0x3fff_ffff_ffff_ffff).max(1);
        while self.leases(|l| l.contains(id)) {
            id += 1;
        }
        id
    }

    fn lease_revoke(&mut self, id: i64) -> Result<Done> {
        let keys = self.leases(|l| l.revoke(id)).ok_or(Error::LeaseNotFound)?;
        self.conn
            .prepare_cached("DELETE FROM lease WHERE id = ?1")?
            .execute([id])?;
        for key in keys {
            self.delete(&DeleteRequest {
                key,
                range_end: Vec::new(),
                prev_kv: false,
            })?;
        }
        Ok(Done::Revision(self.revision()))
    }
}

struct Plan {
    succeeded: bool,
    nested: Vec<Plan>,
}
