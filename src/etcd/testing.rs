//! A small in-memory `Backend` for the etcd layer's tests: just enough etcd
//! semantics (latest-revision reads, history for watches, leases) to drive
//! the gRPC services end to end without the SQLite store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::datastore::*;

#[derive(Default)]
pub(crate) struct MemBackend {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    rev: i64,
    compact: i64,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    history: Vec<Event>,
    watchers: Vec<(WatchRequest, mpsc::Sender<WatchMessage>)>,
    leases: HashMap<i64, i64>,
    next_lease: i64,
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => key >= start && key < end,
    }
}

fn wants(w: &WatchRequest, ev: &Event) -> bool {
    in_range(&ev.kv.key, &w.key, &w.range_end)
        && !(w.no_put && ev.kind == EventKind::Put)
        && !(w.no_delete && ev.kind == EventKind::Delete)
}

fn shape(w: &WatchRequest, ev: &Event) -> Event {
    let mut ev = ev.clone();
    if !w.prev_kv {
        ev.prev_kv = None;
    }
    ev
}

impl MemBackend {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Test hook: compact without going through gRPC.
    pub fn compact_now(&self, rev: i64) {
        let mut st = self.lock();
        st.compact = rev;
        st.history.retain(|e| e.kv.mod_revision > rev);
    }
}

impl State {
    fn range(&self, r: &RangeRequest) -> Result<RangeResponse> {
        if r.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if r.revision > self.rev {
            return Err(Error::FutureRevision);
        }
        if r.revision > 0 && r.revision <= self.compact {
            return Err(Error::Compacted {
                compact_revision: self.compact,
            });
        }
        let all: Vec<KeyValue> = self
            .kvs
            .values()
            .filter(|kv| in_range(&kv.key, &r.key, &r.range_end))
            .cloned()
            .collect();
        let count = all.len() as i64;
        let limit = if r.limit > 0 {
            r.limit as usize
        } else {
            all.len()
        };
        let more = all.len() > limit;
        let mut kvs: Vec<KeyValue> = if r.count_only {
            Vec::new()
        } else {
            all.into_iter().take(limit).collect()
        };
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            revision: self.rev,
            kvs,
            more,
            count,
        })
    }

    fn put(&mut self, p: &PutRequest, rev: i64, evs: &mut Vec<Event>) -> Result<PutResponse> {
        if p.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if p.lease != 0 && !self.leases.contains_key(&p.lease) {
            return Err(Error::LeaseNotFound);
        }
        let prev = self.kvs.get(&p.key).cloned();
        let kv = KeyValue {
            key: p.key.clone(),
            value: p.value.clone(),
            create_revision: prev.as_ref().map_or(rev, |k| k.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |k| k.version + 1),
            lease: p.lease,
        };
        self.kvs.insert(p.key.clone(), kv.clone());
        evs.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        Ok(PutResponse {
            revision: rev,
            prev_kv: prev.filter(|_| p.prev_kv),
        })
    }

    fn delete(&mut self, d: &DeleteRequest, rev: i64, evs: &mut Vec<Event>) -> DeleteResponse {
        let keys: Vec<Vec<u8>> = self
            .kvs
            .keys()
            .filter(|k| in_range(k, &d.key, &d.range_end))
            .cloned()
            .collect();
        let mut prev_kvs = Vec::new();
        for k in &keys {
            if let Some(prev) = self.kvs.remove(k) {
                evs.push(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: k.clone(),
                        mod_revision: rev,
                        ..Default::default()
                    },
                    prev_kv: Some(prev.clone()),
                });
                prev_kvs.push(prev);
            }
        }
        DeleteResponse {
            revision: rev,
            deleted: keys.len() as i64,
            prev_kvs: if d.prev_kv { prev_kvs } else { Vec::new() },
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let kv = self.kvs.get(&c.key).cloned().unwrap_or_default();
        let ord = match &c.target {
            CompareTarget::Version(v) => kv.version.cmp(v),
            CompareTarget::CreateRevision(v) => kv.create_revision.cmp(v),
            CompareTarget::ModRevision(v) => kv.mod_revision.cmp(v),
            CompareTarget::Value(v) => kv.value.cmp(v),
            CompareTarget::Lease(v) => kv.lease.cmp(v),
        };
        match c.result {
            CompareResult::Equal => ord.is_eq(),
            CompareResult::NotEqual => ord.is_ne(),
            CompareResult::Greater => ord.is_gt(),
            CompareResult::Less => ord.is_lt(),
        }
    }

    fn txn(&mut self, t: &TxnRequest, rev: i64, evs: &mut Vec<Event>) -> Result<TxnResponse> {
        let succeeded = t.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::new();
        for op in ops {
            responses.push(match op {
                TxnOp::Range(r) => TxnOpResponse::Range(self.range(r)?),
                TxnOp::Put(p) => TxnOpResponse::Put(self.put(p, rev, evs)?),
                TxnOp::Delete(d) => TxnOpResponse::Delete(self.delete(d, rev, evs)),
                TxnOp::Txn(t) => TxnOpResponse::Txn(self.txn(t, rev, evs)?),
            });
        }
        Ok(TxnResponse {
            revision: rev,
            succeeded,
            responses,
        })
    }

    /// Runs a write at the next revision; commits it only if it changed
    /// something, then feeds the watchers.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut State, i64, &mut Vec<Event>) -> Result<T>,
    ) -> Result<T> {
        let rev = self.rev + 1;
        let mut evs = Vec::new();
        let out = f(self, rev, &mut evs)?;
        if !evs.is_empty() {
            self.rev = rev;
            self.history.extend(evs.iter().cloned());
            self.watchers.retain(|(w, tx)| {
                let mine: Vec<Event> = evs
                    .iter()
                    .filter(|e| wants(w, e))
                    .map(|e| shape(w, e))
                    .collect();
                mine.is_empty()
                    || tx
                        .try_send(WatchMessage::Events {
                            revision: rev,
                            events: mine,
                        })
                        .is_ok()
            });
        }
        Ok(out)
    }
}

impl Backend for MemBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.lock().range(&req)
    }
    async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        self.lock().write(|st, rev, evs| st.put(&req, rev, evs))
    }
    async fn delete_range(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        self.lock()
            .write(|st, rev, evs| Ok(st.delete(&req, rev, evs)))
    }
    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        self.lock().write(|st, rev, evs| st.txn(&req, rev, evs))
    }
    async fn compact(&self, revision: i64) -> Result<i64> {
        self.compact_now(revision);
        Ok(self.lock().rev)
    }
    async fn watch(&self, req: WatchRequest) -> Result<Watcher> {
        let mut st = self.lock();
        if req.start_revision > 0 && req.start_revision <= st.compact {
            return Err(Error::Compacted {
                compact_revision: st.compact,
            });
        }
        let (tx, rx) = mpsc::channel(1024);
        let old: Vec<Event> = st
            .history
            .iter()
            .filter(|e| e.kv.mod_revision >= req.start_revision && wants(&req, e))
            .map(|e| shape(&req, e))
            .collect();
        if !old.is_empty() {
            let _ = tx.try_send(WatchMessage::Events {
                revision: st.rev,
                events: old,
            });
        }
        st.watchers.push((req, tx));
        Ok(Watcher::new(rx))
    }
    async fn lease_grant(&self, id: i64, ttl: i64) -> Result<LeaseGrant> {
        let mut st = self.lock();
        let id = if id == 0 {
            st.next_lease += 1;
            st.next_lease + 1000
        } else {
            id
        };
        if st.leases.insert(id, ttl).is_some() {
            return Err(Error::LeaseExists);
        }
        Ok(LeaseGrant { id, ttl })
    }
    async fn lease_revoke(&self, id: i64) -> Result<i64> {
        let mut st = self.lock();
        if st.leases.remove(&id).is_none() {
            return Err(Error::LeaseNotFound);
        }
        let keys: Vec<Vec<u8>> = st
            .kvs
            .values()
            .filter(|kv| kv.lease == id)
            .map(|kv| kv.key.clone())
            .collect();
        st.write(|st, rev, evs| {
            for key in keys {
                let del = DeleteRequest {
                    key,
                    ..Default::default()
                };
                st.delete(&del, rev, evs);
            }
            Ok(())
        })?;
        Ok(st.rev)
    }
    fn lease_keep_alive(&self, id: i64) -> Result<i64> {
        self.lock()
            .leases
            .get(&id)
            .copied()
            .ok_or(Error::LeaseNotFound)
    }
    fn lease_time_to_live(&self, id: i64, with_keys: bool) -> LeaseTimeToLive {
        let st = self.lock();
        match st.leases.get(&id) {
            None => LeaseTimeToLive {
                id,
                ttl: -1,
                ..Default::default()
            },
            Some(&ttl) => LeaseTimeToLive {
                id,
                ttl,
                granted_ttl: ttl,
                keys: if with_keys {
                    st.kvs
                        .values()
                        .filter(|kv| kv.lease == id)
                        .map(|kv| kv.key.clone())
                        .collect()
                } else {
                    Vec::new()
                },
            },
        }
    }
    fn leases(&self) -> Vec<i64> {
        self.lock().leases.keys().copied().collect()
    }
    fn current_revision(&self) -> i64 {
        self.lock().rev
    }
    fn status(&self) -> Status {
        let st = self.lock();
        Status {
            revision: st.rev,
            compact_revision: st.compact,
            db_size: 4096,
            db_size_in_use: 2048,
        }
    }
}

impl MemBackend {
    pub fn current_revision_for_test(&self) -> i64 {
        self.lock().rev
    }

    /// Watchers whose receiving side is still alive.
    pub fn open_watchers(&self) -> usize {
        self.lock()
            .watchers
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .count()
    }
}
