//! Objects in the datastore, and the watch caches fed from it (DESIGN
//! decision 2: this cache is the informer store of everything in process).
//!
//! Writes go straight to the datastore with etcd-style compare-and-swap
//! transactions; the feeder task applies every committed change to the
//! cache of its prefix, in revision order. Reads wait until the cache has
//! caught up with the revision they need.

mod cache;
mod feeder;
mod heartbeat;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use cache::{CacheEvent, EventType};
pub use heartbeat::only_renewal;

use crate::datastore::{
    Backend, Compare, CompareResult, CompareTarget, DeleteRequest, PutRequest, RangeRequest,
    SqliteBackend, TxnOp, TxnRequest,
};
use crate::encryption::Encryption;

/// The datastore implementation the API layer runs on.
pub type Db = SqliteBackend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object already exists")]
    Exists,
    #[error("object was modified or deleted")]
    Conflict,
    #[error("required revision has been compacted")]
    Compacted,
    #[error("timed out waiting for revision {wanted} (cache at {current})")]
    TooNew { wanted: i64, current: i64 },
    #[error("stored object is not valid json: {0}")]
    Corrupt(String),
    #[error("datastore: {0}")]
    Datastore(String),
    #[error("{0}")]
    Encryption(#[from] crate::encryption::Error),
}

impl From<crate::datastore::Error> for StoreError {
    fn from(e: crate::datastore::Error) -> Self {
        match e {
            crate::datastore::Error::Compacted { .. } => StoreError::Compacted,
            other => StoreError::Datastore(other.to_string()),
        }
    }
}

/// A stored object read from the datastore, with its revisions.
#[derive(Debug, Clone)]
pub struct Current {
    pub object: Value,
    pub mod_revision: i64,
}

pub struct Store {
    db: Arc<Db>,
    caches: Arc<feeder::CacheSet>,
    revision: watch::Receiver<i64>,
    progress: mpsc::Sender<()>,
    adds: mpsc::Sender<feeder::AddCache>,
    heartbeats: heartbeat::Heartbeats,
    /// Encrypts Secret values on the way in, decrypts every value on the
    /// way out (`None`: values are stored as they are).
    encryption: Option<Arc<Encryption>>,
}

/// Sets `metadata.resourceVersion` (stored bytes never carry it).
pub fn set_resource_version(obj: &mut Value, revision: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), revision.to_string().into());
    }
}

impl Store {
    /// Loads every object under `/registry/` for the given storage segments
    /// and starts the feeder. Returns when the caches are filled.
    pub async fn open(
        db: Arc<Db>,
        storages: &[&str],
        encryption: Option<Arc<Encryption>>,
    ) -> Result<Arc<Store>, StoreError> {
        let (caches, revision, progress, adds) =
            feeder::start(db.clone(), storages, encryption.clone()).await?;
        let store = Arc::new(Store {
            db,
            caches,
            revision,
            progress,
            adds,
            heartbeats: Default::default(),
            encryption,
        });
        heartbeat::start_flusher(Arc::downgrade(&store));
        Ok(store)
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The revision every cache has applied.
    pub fn cache_revision(&self) -> i64 {
        *self.revision.borrow()
    }

    /// Waits until the caches reflect `revision` (at most ~3 s, as upstream).
    pub async fn wait_for(&self, revision: i64) -> Result<(), StoreError> {
        if self.cache_revision() >= revision {
            return Ok(());
        }
        let mut rx = self.revision.clone();
        let wait = async {
            loop {
                // A revision with no event (e.g. a lease grant) only shows up
                // through a progress answer, so ask for one while waiting.
                let _ = self.progress.try_send(());
                let changed = tokio::time::timeout(
                    Duration::from_millis(50),
                    rx.wait_for(|r| *r >= revision),
                );
                match changed.await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(_)) => return Err(StoreError::Datastore("cache feeder stopped".into())),
                    Err(_) => continue,
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(3), wait).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::TooNew {
                wanted: revision,
                current: self.cache_revision(),
            }),
        }
    }

    /// Waits until the caches hold every committed write (a consistent read).
    pub async fn sync(&self) -> Result<i64, StoreError> {
        let current = self.db.current_revision();
        self.wait_for(current).await?;
        Ok(current.max(self.cache_revision()))
    }

    /// Follows the feeder's revision (for watch bookmarks).
    pub fn revision_rx(&self) -> watch::Receiver<i64> {
        self.revision.clone()
    }

    pub fn cache(&self, storage: &str) -> Option<Arc<cache::Cache>> {
        self.caches.get(storage)
    }

    /// The cache of `storage`, made (and filled) by the feeder when new.
    pub async fn ensure_cache(&self, storage: &str) -> Result<Arc<cache::Cache>, StoreError> {
        if let Some(c) = self.caches.get(storage) {
            return Ok(c);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ask = feeder::AddCache {
            storage: storage.to_string(),
            reply,
        };
        if self.adds.send(ask).await.is_err() {
            return Err(StoreError::Datastore("cache feeder stopped".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Datastore("cache feeder stopped".into()))?
    }

    /// Reads one object from the datastore (authoritative, for writes).
    pub async fn read(&self, key: &str) -> Result<Option<Current>, StoreError> {
        // The datastore's writer hands a batch to watchers just before it
        // makes it visible to reads: someone who saw an event through the
        // cache must not then read the key as missing or older. The cache's
        // own revision advances only after its subscribers got the events,
        // so wait for what the datastore published, not for the cache.
        let seen = self.db.published_revision().max(self.cache_revision());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.db.current_revision() < seen && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let resp = self
            .db
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
        match resp.kvs.into_iter().next() {
            Some(kv) => Ok(Some(self.decode(&kv.key, &kv.value, kv.mod_revision)?)),
            None => Ok(None),
        }
    }

    /// Reads every object under `prefix` at `revision` (0: now), from
    /// `start_key` on, at most `limit` (0: all). Returns (objects with their
    /// keys, revision read at, more remain).
    pub async fn read_range(
        &self,
        prefix: &str,
        start_key: &str,
        revision: i64,
        limit: i64,
    ) -> Result<(Vec<(String, Value)>, i64, bool), StoreError> {
        let resp = self
            .db
            .range(RangeRequest {
                key: start_key.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                revision,
                limit,
                ..Default::default()
            })
            .await?;
        let mut out = Vec::with_capacity(resp.kvs.len());
        for kv in resp.kvs {
            let cur = self.decode(&kv.key, &kv.value, kv.mod_revision)?;
            out.push((String::from_utf8_lossy(&kv.key).into_owned(), cur.object));
        }
        Ok((out, resp.revision, resp.more))
    }

    /// Runs `op` on `key` if `target` holds; else fails with `lost`.
    async fn guarded(
        &self,
        key: &str,
        target: CompareTarget,
        op: TxnOp,
        lost: StoreError,
    ) -> Result<i64, StoreError> {
        let resp = self
            .db
            .txn(TxnRequest {
                compare: vec![compare(key.as_bytes(), target)],
                success: vec![op],
                failure: vec![],
            })
            .await?;
        if resp.succeeded {
            Ok(resp.revision)
        } else {
            Err(lost)
        }
    }

    /// Creates `key` if absent; returns the revision of the write.
    pub async fn create(&self, key: &str, value: Vec<u8>, lease: i64) -> Result<i64, StoreError> {
        let put = TxnOp::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: self.seal(key, value)?,
            lease,
            ..Default::default()
        });
        self.guarded(
            key,
            CompareTarget::CreateRevision(0),
            put,
            StoreError::Exists,
        )
        .await
    }

    /// Replaces `key` if it is still at `mod_revision`.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        mod_revision: i64,
    ) -> Result<i64, StoreError> {
        let put = TxnOp::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: self.seal(key, value)?,
            ..Default::default()
        });
        self.guarded(
            key,
            CompareTarget::ModRevision(mod_revision),
            put,
            StoreError::Conflict,
        )
        .await
    }

    /// Deletes `key` if it is still at `mod_revision`.
    pub async fn delete(&self, key: &str, mod_revision: i64) -> Result<i64, StoreError> {
        let delete = TxnOp::Delete(DeleteRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        });
        self.guarded(
            key,
            CompareTarget::ModRevision(mod_revision),
            delete,
            StoreError::Conflict,
        )
        .await
    }

    /// The value to store under `key` (Secrets encrypted when that is on).
    fn seal(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        match &self.encryption {
            Some(e) => Ok(e.seal(key, value)?),
            None => Ok(value),
        }
    }

    /// A stored value as an object: decrypted when it was encrypted.
    fn decode(&self, key: &[u8], bytes: &[u8], mod_revision: i64) -> Result<Current, StoreError> {
        match &self.encryption {
            Some(e) => decode(
                &e.unseal(&String::from_utf8_lossy(key), bytes)?,
                mod_revision,
            ),
            None => decode(bytes, mod_revision),
        }
    }

    /// The compacted revision: history before it is gone.
    pub fn compact_revision(&self) -> i64 {
        self.db.status().compact_revision
    }
}

fn compare(key: &[u8], target: CompareTarget) -> Compare {
    Compare {
        key: key.to_vec(),
        range_end: Vec::new(),
        result: CompareResult::Equal,
        target,
    }
}

/// etcd's range end for "every key with this prefix".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn decode(bytes: &[u8], mod_revision: i64) -> Result<Current, StoreError> {
    let mut object: Value =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    set_resource_version(&mut object, mod_revision);
    Ok(Current {
        object,
        mod_revision,
    })
}
