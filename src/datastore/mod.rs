//! The datastore: a revisioned key-value log with etcd v3 semantics.
//!
//! One door: the [`Backend`] trait and the types it speaks. The etcd gRPC
//! layer (`crate::etcd`) and, later, the API server use only this. The SQLite
//! implementation ([`SqliteBackend`]) keeps the current key index in memory
//! (like etcd's treeIndex), appends every change as a row keyed by revision,
//! commits concurrent writes in groups, and pushes committed events to
//! watchers in process.

mod error;
mod types;

mod hub;
mod index;
mod lease;
mod sqlite;

use std::future::Future;

pub use error::{Error, Result};
pub use sqlite::SnapshotError;
pub use sqlite::{peek as peek_snapshot, restore as restore_snapshot, save as save_snapshot};
pub use sqlite::{SqliteBackend, SqliteOptions};
pub use types::*;

/// A live watch. Dropping it cancels the watch.
pub struct Watcher {
    rx: tokio::sync::mpsc::Receiver<WatchMessage>,
    progress: tokio::sync::mpsc::Sender<()>,
}

impl Watcher {
    pub(crate) fn new(
        rx: tokio::sync::mpsc::Receiver<WatchMessage>,
        progress: tokio::sync::mpsc::Sender<()>,
    ) -> Self {
        Watcher { rx, progress }
    }

    /// Asks for a [`WatchMessage::Progress`]: it arrives after every event
    /// of this watch committed before the call, so a consumer knows it is
    /// up to date (etcd's progress request, Kubernetes' consistent reads).
    pub fn request_progress(&self) {
        // A full queue already holds a request that will answer this one too.
        let _ = self.progress.try_send(());
    }

    /// The next batch of events, or `None` once the store shut down.
    /// After [`WatchMessage::Compacted`] nothing more arrives.
    pub async fn next(&mut self) -> Option<WatchMessage> {
        self.rx.recv().await
    }
}

/// What the etcd layer needs from a store. Every method is etcd's operation of
/// the same name; errors carry etcd's messages.
pub trait Backend: Send + Sync + 'static {
    fn range(&self, req: RangeRequest) -> impl Future<Output = Result<RangeResponse>> + Send;
    fn put(&self, req: PutRequest) -> impl Future<Output = Result<PutResponse>> + Send;
    fn delete_range(
        &self,
        req: DeleteRequest,
    ) -> impl Future<Output = Result<DeleteResponse>> + Send;
    fn txn(&self, req: TxnRequest) -> impl Future<Output = Result<TxnResponse>> + Send;
    /// Drops history before `revision`; returns the current revision.
    fn compact(&self, revision: i64) -> impl Future<Output = Result<i64>> + Send;
    /// Starts a watch; events from `start_revision` (if given) are replayed
    /// from history first, then live events follow without gaps.
    fn watch(&self, req: WatchRequest) -> impl Future<Output = Result<Watcher>> + Send;
    /// `id == 0` lets the store choose an id.
    fn lease_grant(&self, id: i64, ttl: i64) -> impl Future<Output = Result<LeaseGrant>> + Send;
    /// Deletes the lease and every key attached to it; returns the revision.
    fn lease_revoke(&self, id: i64) -> impl Future<Output = Result<i64>> + Send;
    /// Renews the lease; returns its TTL in seconds.
    fn lease_keep_alive(&self, id: i64) -> Result<i64>;
    fn lease_time_to_live(&self, id: i64, with_keys: bool) -> LeaseTimeToLive;
    fn leases(&self) -> Vec<i64>;
    fn current_revision(&self) -> i64;
    /// The newest revision handed to watchers. The writer publishes a batch
    /// just before it advances `current_revision`, so this may lead it for
    /// a moment; a reader that must see whatever any watcher saw waits for
    /// `current_revision` to catch up with it.
    fn published_revision(&self) -> i64;
    fn status(&self) -> Status;
}
