//! The single writer: every change goes through one thread that owns the
//! write connection. It takes whatever requests are queued, applies them in
//! one SQLite transaction (group commit: one fsync for the whole batch),
//! publishes the batch's events to the watch hub and only then answers the
//! callers. Serialising here means SQLite never reports "database is locked".

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpointer::Checkpointer;
use super::schema;
use super::txn::Applier;
use super::Shared;
use crate::datastore::error::{Error, Result};
use crate::datastore::hub::Batch;
use crate::datastore::types::*;

/// Upper bound of requests in one group commit; keeps a commit's latency and
/// memory bounded under heavy load.
const MAX_BATCH: usize = 512;
/// Compacted rows deleted per transaction when the writer is otherwise idle.
const PURGE_CHUNK: usize = 2000;
/// How long a batch may wait for the rest of a busy crowd of writers.
const GATHER: Duration = Duration::from_millis(1);
/// A pause this long without a new request ends the gathering.
const GAP: Duration = Duration::from_micros(200);
/// How often the queue is looked at while gathering.
const POLL: Duration = Duration::from_micros(30);
/// How many recent batch sizes estimate the crowd.
const RECENT_BATCHES: usize = 64;

pub enum Op {
    Put(PutRequest),
    Delete(DeleteRequest),
    Txn(TxnRequest),
    Compact(i64),
    LeaseGrant {
        id: i64,
        ttl: i64,
    },
    LeaseRevoke(i64),
    /// Revoke only if the lease is still expired (it may have been renewed
    /// since the expiry scan queued this).
    LeaseExpire(i64),
    /// Finish queued work, checkpoint, stop; answered after the checkpoint.
    Shutdown,
}

pub enum Done {
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
    Revision(i64),
    LeaseGrant(LeaseGrant),
}

pub struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done>>,
}

pub struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    /// The newest revision assigned (committed, or in the open batch).
    revision: i64,
    purge: VecDeque<i64>,
    checkpointer: Checkpointer,
    /// Sizes of recent batches: how many writers are likely in flight.
    recent: VecDeque<usize>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Request>,
        revision: i64,
        purge: Vec<i64>,
        checkpointer: Checkpointer,
    ) -> Writer {
        Writer {
            conn,
            shared,
            rx,
            revision,
            purge: purge.into(),
            checkpointer,
            recent: VecDeque::with_capacity(RECENT_BATCHES),
        }
    }

    /// Takes what is queued. When recent batches had company, writers come
    /// in a crowd: keep gathering until as many as the largest recent batch
    /// are here, or nobody new came for `GAP`, or `GATHER` passed — so one
    /// fsync (and one set of B-tree page writes) serves them all. A lone
    /// client never waits.
    fn gather(&mut self, first: Request) -> Vec<Request> {
        let mut batch = vec![first];
        self.drain_into(&mut batch);
        let expected = self.recent.iter().copied().max().unwrap_or(1);
        if expected > 1 {
            let start = Instant::now();
            let mut last_arrival = start;
            while batch.len() < expected.min(MAX_BATCH) {
                let now = Instant::now();
                if now - start >= GATHER || now - last_arrival >= GAP {
                    break;
                }
                std::thread::sleep(POLL);
                if self.drain_into(&mut batch) > 0 {
                    last_arrival = Instant::now();
                }
            }
        }
        if self.recent.len() == RECENT_BATCHES {
            self.recent.pop_front();
        }
        self.recent.push_back(batch.len());
        batch
    }

    /// Moves queued requests into `batch`; returns how many.
    fn drain_into(&mut self, batch: &mut Vec<Request>) -> usize {
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        batch.len() - before
    }

    pub fn run(mut self) {
        loop {
            let first = if self.purge.is_empty() {
                match self.rx.blocking_recv() {
                    Some(req) => req,
                    None => break,
                }
            } else {
                match self.rx.try_recv() {
                    Ok(req) => req,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.purge_some(PURGE_CHUNK);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            };
            let batch = self.gather(first);
            let (stops, work): (Vec<Request>, Vec<Request>) = batch
                .into_iter()
                .partition(|r| matches!(r.op, Op::Shutdown));
            if !work.is_empty() {
                let written = work.len();
                self.commit_batch(work);
                // Under endless load the writer is never idle: purge a bit
                // more than the batch wrote, so history cannot outgrow
                // compaction.
                if !self.purge.is_empty() {
                    self.purge_some(2 * written + 64);
                }
                self.checkpointer.restart_if_due(&self.conn);
            }
            if !stops.is_empty() {
                self.stop(stops);
                return;
            }
        }
        self.stop(Vec::new());
    }

    fn stop(&mut self, waiting: Vec<Request>) {
        self.rx.close();
        // Requests that raced with the shutdown still get an answer.
        while let Ok(req) = self.rx.try_recv() {
            let _ = req.reply.send(Err(Error::Stopped));
        }
        self.checkpointer.stop();
        // Leave a compact file behind: fold the WAL into the database.
        self.fold_wal("final checkpoint");
        tracing::info!(revision = self.revision, "datastore writer stopped");
        for req in waiting {
            let _ = req.reply.send(Ok(Done::Revision(self.revision)));
        }
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let start = self.revision;
        let mut events = Vec::new();
        let outcome = self.apply_batch(&batch, &mut events);
        match outcome {
            Ok(results) => {
                // Publish before advancing the revision: whoever sees the new
                // revision (a progress request, a watch starting "now") can
                // rely on its events already being queued to every watcher.
                if !events.is_empty() {
                    self.shared.hub.publish(Batch {
                        revision: self.revision,
                        events,
                    });
                }
                self.shared.revision.store(self.revision, Ordering::Release);
                for (req, result) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(%err, "group commit failed; reloading state from disk");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.revision = start;
                self.recover();
                for req in batch {
                    let _ = req.reply.send(Err(Error::Storage(err.to_string())));
                }
            }
        }
    }

    /// Applies every request in one transaction. A request that fails
    /// validation gets its own error; a storage error fails the whole batch.
    fn apply_batch(
        &mut self,
        batch: &[Request],
        events: &mut Vec<Event>,
    ) -> Result<Vec<Result<Done>>> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut results = Vec::with_capacity(batch.len());
        for req in batch {
            let mut applier = Applier::new(&self.conn, &self.shared, self.revision, events);
            let result = applier.apply(&req.op);
            self.revision = applier.revision();
            if let Err(Error::Storage(msg)) = &result {
                return Err(Error::Storage(msg.clone()));
            }
            if let Op::Compact(_) = req.op {
                if let Ok(Done::Revision(_)) = &result {
                    self.purge.extend(applier.take_dropped());
                }
            }
            results.push(result);
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(results)
    }

    /// Rebuilds the in-memory state after a failed commit, so memory never
    /// disagrees with what is on disk.
    fn recover(&mut self) {
        match schema::load(&self.conn) {
            Ok(loaded) => {
                *self.shared.index.write().unwrap_or_else(|p| p.into_inner()) = loaded.index;
                *self.shared.leases.lock().unwrap_or_else(|p| p.into_inner()) = loaded.leases;
                self.revision = loaded.revision;
                self.shared
                    .revision
                    .store(loaded.revision, Ordering::Release);
                self.shared
                    .compact_revision
                    .store(loaded.compact_revision, Ordering::Release);
                self.purge = loaded.unpurged.into();
            }
            Err(err) => tracing::error!(%err, "reloading datastore state failed"),
        }
    }

    /// Deletes a chunk of rows that compaction made unreachable.
    fn purge_some(&mut self, max: usize) {
        let n = self.purge.len().min(max);
        let ids: Vec<i64> = self.purge.drain(..n).collect();
        let result = (|| -> Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            {
                let mut stmt = self.conn.prepare_cached("DELETE FROM log WHERE id = ?1")?;
                for id in &ids {
                    stmt.execute([id])?;
                }
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        if let Err(err) = result {
            tracing::warn!(%err, "purging compacted rows failed; will retry");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.purge.extend(ids);
            return;
        }
        if self.purge.is_empty() {
            self.after_purge();
        }
    }

    /// Copies the whole WAL into the database and truncates it.
    fn fold_wal(&self, what: &str) {
        let done: rusqlite::Result<(i64, i64, i64)> =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                });
        if let Err(err) = done {
            tracing::warn!(%err, "{what} failed");
        }
    }

    /// Hands free pages back to the file system when compaction freed most
    /// of a large file, so it does not keep its high-water mark forever.
    /// Rare by design: VACUUM rewrites the whole file.
    fn after_purge(&mut self) {
        let size = std::fs::metadata(&self.shared.path)
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        let free = schema::free_bytes(&self.conn).unwrap_or(0);
        if free > 16 << 20 && free * 2 > size {
            tracing::info!(free, size, "vacuuming the datastore file");
            if let Err(err) = self.conn.execute_batch("VACUUM;") {
                tracing::warn!(%err, "vacuum failed");
            }
            // VACUUM wrote the whole file through the WAL; fold it back now
            // rather than leave a WAL as large as the database behind.
            self.fold_wal("checkpoint after vacuum");
        }
        let free = schema::free_bytes(&self.conn).unwrap_or(0);
        self.shared.free_bytes.store(free, Ordering::Release);
        tracing::debug!(free, "compacted rows purged");
    }
}
