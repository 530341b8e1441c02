//! Fills the caches from the datastore and keeps them current with one
//! datastore watch over `/registry/`.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::cache::Cache;
use super::{prefix_end, set_resource_version, Db, StoreError};
use crate::datastore::{Backend, EventKind, RangeRequest, WatchMessage, WatchRequest};
use crate::encryption::Encryption;

const ROOT: &str = "/registry/";

type Started = (
    Arc<CacheSet>,
    watch::Receiver<i64>,
    mpsc::Sender<()>,
    mpsc::Sender<AddCache>,
);

/// The caches by storage segment. Custom resources add segments while the
/// feeder runs, so the set is shared and grows under a lock.
#[derive(Default)]
pub(super) struct CacheSet {
    inner: std::sync::RwLock<(Vec<String>, Vec<Arc<Cache>>)>,
}

impl CacheSet {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Vec<String>, Vec<Arc<Cache>>)> {
        // Every mutation is one push pair: a poisoned lock still holds
        // consistent data.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self, storage: &str) -> Option<Arc<Cache>> {
        let set = self.read();
        let i = set.0.iter().position(|s| s == storage)?;
        Some(set.1[i].clone())
    }

    fn push(&self, storage: String, cache: Arc<Cache>) {
        let mut set = self.inner.write().unwrap_or_else(|p| p.into_inner());
        set.0.push(storage);
        set.1.push(cache);
    }
}

/// Asks the feeder for a cache of a new storage segment, filled at the
/// revision the feeder has applied so that no change is missed or doubled.
pub(super) struct AddCache {
    pub storage: String,
    pub reply: tokio::sync::oneshot::Sender<Result<Arc<Cache>, StoreError>>,
}

/// Where a key belongs: (storage segment, key after it, namespace).
fn locate<'k>(storages: &[String], key: &'k str) -> Option<(usize, &'k str, &'k str)> {
    let rest = key.strip_prefix(ROOT)?;
    // Longest match first: "services/specs" before a hypothetical "services".
    let (index, storage) = storages
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            rest.len() > s.len() && rest.starts_with(s.as_str()) && rest.as_bytes()[s.len()] == b'/'
        })
        .max_by_key(|(_, s)| s.len())?;
    let suffix = &rest[storage.len() + 1..];
    let namespace = suffix.split_once('/').map(|(ns, _)| ns).unwrap_or("");
    Some((index, suffix, namespace))
}

fn parse(enc: Option<&Encryption>, value: &[u8], key: &str, revision: i64) -> Option<Value> {
    let value = match enc.map(|e| e.unseal(key, value)) {
        None => std::borrow::Cow::Borrowed(value),
        Some(Ok(plain)) => plain,
        Some(Err(e)) => {
            // Loud, and never the value: the object stays invisible (as a
            // value that is not json) until its key is back in the key file.
            tracing::error!(key, error = %e, "skipping stored object that does not decrypt");
            return None;
        }
    };
    match serde_json::from_slice::<Value>(&value) {
        Ok(mut v) => {
            set_resource_version(&mut v, revision);
            Some(v)
        }
        Err(e) => {
            // One bad object must not stop the cache; it stays invisible.
            tracing::warn!(key, error = %e, "skipping stored object that is not json");
            None
        }
    }
}

async fn load(
    db: &Db,
    storages: &[String],
    caches: &[Arc<Cache>],
    enc: Option<&Encryption>,
) -> Result<i64, StoreError> {
    let resp = db
        .range(RangeRequest {
            key: ROOT.as_bytes().to_vec(),
            range_end: prefix_end(ROOT.as_bytes()),
            ..Default::default()
        })
        .await?;
    for kv in resp.kvs {
        let key = String::from_utf8_lossy(&kv.key);
        if let Some((i, suffix, _)) = locate(storages, &key) {
            if let Some(v) = parse(enc, &kv.value, &key, kv.mod_revision) {
                caches[i].load(suffix.to_string(), v);
            }
        }
    }
    Ok(resp.revision)
}

pub(super) async fn start(
    db: Arc<Db>,
    storages: &[&str],
    enc: Option<Arc<Encryption>>,
) -> Result<Started, StoreError> {
    let names: Vec<String> = storages.iter().map(|s| s.to_string()).collect();
    let revision = db.current_revision();
    let list: Vec<Arc<Cache>> = names
        .iter()
        .map(|_| Arc::new(Cache::new(revision)))
        .collect();
    let loaded = load(&db, &names, &list, enc.as_deref()).await?;
    let watcher = db
        .watch(WatchRequest {
            key: ROOT.as_bytes().to_vec(),
            range_end: prefix_end(ROOT.as_bytes()),
            start_revision: loaded + 1,
            ..Default::default()
        })
        .await?;
    let (rev_tx, rev_rx) = watch::channel(loaded);
    let (progress_tx, progress_rx) = mpsc::channel(1);
    let (add_tx, add_rx) = mpsc::channel(16);
    let set = Arc::new(CacheSet::default());
    for (name, cache) in names.into_iter().zip(list) {
        set.push(name, cache);
    }
    let feeding = Feeding {
        db,
        set: set.clone(),
        enc,
        applied: loaded,
    };
    tokio::spawn(feed(watcher, feeding, rev_tx, progress_rx, add_rx));
    Ok((set, rev_rx, progress_tx, add_tx))
}

struct Feeding {
    db: Arc<Db>,
    set: Arc<CacheSet>,
    enc: Option<Arc<Encryption>>,
    /// The revision every cache reflects.
    applied: i64,
}

impl Feeding {
    /// A new cache for `storage`, filled at the applied revision: events
    /// after it reach the cache through the feed, none before it do.
    async fn add(&self, storage: String) -> Result<Arc<Cache>, StoreError> {
        if let Some(c) = self.set.get(&storage) {
            return Ok(c);
        }
        let prefix = format!("{ROOT}{storage}/");
        let resp = self
            .db
            .range(RangeRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                revision: self.applied,
                ..Default::default()
            })
            .await?;
        let cache = Arc::new(Cache::new(self.applied));
        let names = [storage.clone()];
        for kv in resp.kvs {
            let key = String::from_utf8_lossy(&kv.key);
            if let Some((_, suffix, _)) = locate(&names, &key) {
                if let Some(v) = parse(self.enc.as_deref(), &kv.value, &key, kv.mod_revision) {
                    cache.load(suffix.to_string(), v);
                }
            }
        }
        self.set.push(storage, cache.clone());
        Ok(cache)
    }
}

async fn feed(
    mut watcher: crate::datastore::Watcher,
    mut feeding: Feeding,
    revision: watch::Sender<i64>,
    mut progress: mpsc::Receiver<()>,
    mut adds: mpsc::Receiver<AddCache>,
) {
    loop {
        let msg = tokio::select! {
            m = watcher.next() => m,
            Some(()) = progress.recv() => {
                watcher.request_progress();
                continue;
            }
            Some(add) = adds.recv() => {
                let _ = add.reply.send(feeding.add(add.storage).await);
                continue;
            }
        };
        match msg {
            Some(WatchMessage::Events {
                revision: rev,
                events,
            }) => {
                let (storages, caches) = {
                    let set = feeding.set.read();
                    (set.0.clone(), set.1.clone())
                };
                for ev in events {
                    let key = String::from_utf8_lossy(&ev.kv.key);
                    let Some((i, suffix, namespace)) = locate(&storages, &key) else {
                        continue;
                    };
                    let object = match ev.kind {
                        EventKind::Put => {
                            match parse(
                                feeding.enc.as_deref(),
                                &ev.kv.value,
                                &key,
                                ev.kv.mod_revision,
                            ) {
                                Some(v) => Some(v),
                                None => continue,
                            }
                        }
                        EventKind::Delete => None,
                    };
                    caches[i].apply(suffix, namespace, object, ev.kv.mod_revision);
                }
                feeding.applied = feeding.applied.max(rev);
                revision.send_if_modified(|r| advance(r, rev));
            }
            Some(WatchMessage::Progress { revision: rev }) => {
                feeding.applied = feeding.applied.max(rev);
                revision.send_if_modified(|r| advance(r, rev));
            }
            Some(WatchMessage::Compacted { compact_revision }) => {
                // Only a feeder stalled for minutes can get here; the caches
                // would miss changes, so stop serving stale data loudly.
                tracing::error!(
                    compact_revision,
                    "watch cache fell behind compaction; cache feeder stopped"
                );
                return;
            }
            None => {
                tracing::info!("datastore closed; cache feeder stopped");
                return;
            }
        }
    }
}

fn advance(current: &mut i64, to: i64) -> bool {
    if to > *current {
        *current = to;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_picks_longest_storage_and_namespace() {
        let s: Vec<String> = ["services/specs", "pods", "namespaces"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            locate(&s, "/registry/services/specs/ns1/web"),
            Some((0, "ns1/web", "ns1"))
        );
        assert_eq!(
            locate(&s, "/registry/namespaces/default"),
            Some((2, "default", ""))
        );
        assert_eq!(locate(&s, "/registry/podsx/a"), None);
        assert_eq!(locate(&s, "/other"), None);
    }
}
