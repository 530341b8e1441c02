//! The SQLite backend: one writer thread (group commit), a few reader
//! connections, the in-memory key index, leases and the watch hub.

mod checkpointer;
mod read;
mod readers;
mod rules;
mod schema;
mod snapshot;
mod timers;
mod txn;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::error::{Error, Result};
use super::hub::Hub;
use super::index::Index;
use super::lease::Leases;
use super::types::*;
use super::{Backend, Watcher};
use readers::Readers;
use writer::{Done, Op, Request, Writer};

pub use snapshot::{peek, restore, save, SnapshotError, SnapshotInfo};

/// Tuning of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How often automatic compaction runs; zero disables it.
    pub compaction_interval: Duration,
    /// History younger than this is kept.
    pub compaction_retention: Duration,
    /// At least this many revisions of history are kept.
    pub compaction_min_revisions: i64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            compaction_interval: Duration::from_secs(60),
            compaction_retention: Duration::from_secs(300),
            compaction_min_revisions: 1000,
        }
    }
}

/// State shared by the writer, readers, watch tasks and timers.
struct Shared {
    path: PathBuf,
    index: RwLock<Index>,
    leases: Mutex<Leases>,
    /// The newest committed revision.
    revision: AtomicI64,
    compact_revision: AtomicI64,
    free_bytes: AtomicI64,
    hub: Arc<Hub>,
    readers: Readers,
}

pub struct SqliteBackend {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    timers: Vec<tokio::task::JoinHandle<()>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the store at `path`. Must be called inside a
    /// tokio runtime: timers for lease expiry and compaction are spawned on it.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Arc<SqliteBackend>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = schema::open_writer(path)?;
        let checkpointer = checkpointer::Checkpointer::start(path, &mut conn)?;
        let loaded = schema::load(&conn)?;
        let free = schema::free_bytes(&conn)?;
        tracing::info!(
            path = %path.display(),
            revision = loaded.revision,
            compact_revision = loaded.compact_revision,
            keys = loaded.index.len(),
            "datastore opened"
        );
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            index: RwLock::new(loaded.index),
            leases: Mutex::new(loaded.leases),
            revision: AtomicI64::new(loaded.revision),
            compact_revision: AtomicI64::new(loaded.compact_revision),
            free_bytes: AtomicI64::new(free),
            hub: Hub::new(loaded.revision),
            readers: Readers::new(path.to_path_buf()),
        });
        let (tx, rx) = mpsc::channel(4096);
        let writer = Writer::new(
            conn,
            shared.clone(),
            rx,
            loaded.revision,
            loaded.unpurged,
            checkpointer,
        );
        std::thread::Builder::new()
            .name("datastore-writer".into())
            .spawn(move || writer.run())?;
        let timers = timers::spawn(shared.clone(), tx.clone(), options);
        Ok(Arc::new(SqliteBackend { shared, tx, timers }))
    }

    /// Writes a consistent copy of the store to `dest` (see
    /// [`snapshot::save`]). Blocking: call it off the async threads.
    pub fn snapshot(&self, dest: &Path) -> std::result::Result<SnapshotInfo, SnapshotError> {
        snapshot::save(&self.shared.path, dest)
    }

    async fn submit(&self, op: Op) -> Result<Done> {
        submit(&self.tx, op).await
    }

    /// Stops accepting work, lets the writer finish what is queued and
    /// checkpoint, and ends every watch.
    pub async fn close(&self) {
        for t in &self.timers {
            t.abort();
        }
        self.shared.hub.close();
        match self.submit(Op::Shutdown).await {
            Ok(_) | Err(Error::Stopped) => {}
            Err(err) => tracing::warn!(%err, "datastore shutdown"),
        }
    }
}

async fn submit(tx: &mpsc::Sender<Request>, op: Op) -> Result<Done> {
    let (reply, rx) = oneshot::channel();
    tx.send(Request { op, reply })
        .await
        .map_err(|_| Error::Stopped)?;
    rx.await.map_err(|_| Error::Stopped)?
}

fn unexpected() -> Error {
    Error::Storage("writer answered with the wrong kind of result".into())
}

impl Backend for SqliteBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        readers::range(self.shared.clone(), req).await
    }

    async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        match self.submit(Op::Put(req)).await? {
            Done::Put(resp) => Ok(resp),
            _ => Err(unexpected()),
        }
    }

    async fn delete_range(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        match self.submit(Op::Delete(req)).await? {
            Done::Delete(resp) => Ok(resp),
            _ => Err(unexpected()),
        }
    }

    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        match self.submit(Op::Txn(req)).await? {
            Done::Txn(resp) => Ok(resp),
            _ => Err(unexpected()),
        }
    }

    async fn compact(&self, revision: i64) -> Result<i64> {
        match self.submit(Op::Compact(revision)).await? {
            Done::Revision(rev) => Ok(rev),
            _ => Err(unexpected()),
        }
    }

    async fn watch(&self, req: WatchRequest) -> Result<Watcher> {
        watch::start(self.shared.clone(), req)
    }

    async fn lease_grant(&self, id: i64, ttl: i64) -> Result<LeaseGrant> {
        match self.submit(Op::LeaseGrant { id, ttl }).await? {
            Done::LeaseGrant(grant) => Ok(grant),
            _ => Err(unexpected()),
        }
    }

    async fn lease_revoke(&self, id: i64) -> Result<i64> {
        match self.submit(Op::LeaseRevoke(id)).await? {
            Done::Revision(rev) => Ok(rev),
            _ => Err(unexpected()),
        }
    }

    fn lease_keep_alive(&self, id: i64) -> Result<i64> {
        let mut leases = self.shared.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases.renew(id).ok_or(Error::LeaseNotFound)
    }

    fn lease_time_to_live(&self, id: i64, with_keys: bool) -> LeaseTimeToLive {
        let leases = self.shared.leases.lock().unwrap_or_else(|p| p.into_inner());
        match leases.time_to_live(id) {
            Some((ttl, granted_ttl, keys)) => LeaseTimeToLive {
                id,
                ttl,
                granted_ttl,
                keys: if with_keys { keys } else { Vec::new() },
            },
            None => LeaseTimeToLive {
                id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            },
        }
    }

    fn leases(&self) -> Vec<i64> {
        self.shared
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids()
    }

    fn current_revision(&self) -> i64 {
        self.shared.revision.load(Ordering::Acquire)
    }

    fn published_revision(&self) -> i64 {
        self.shared.hub.published()
    }

    fn status(&self) -> Status {
        let db = std::fs::metadata(&self.shared.path)
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        let wal_path = {
            let mut p = self.shared.path.clone().into_os_string();
            p.push("-wal");
            PathBuf::from(p)
        };
        let wal = std::fs::metadata(wal_path)
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        let free = self.shared.free_bytes.load(Ordering::Acquire);
        Status {
            revision: self.current_revision(),
            compact_revision: self.shared.compact_revision.load(Ordering::Acquire),
            db_size: db + wal,
            db_size_in_use: (db - free).max(0),
        }
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        for t in &self.timers {
            t.abort();
        }
        self.shared.hub.close();
    }
}
