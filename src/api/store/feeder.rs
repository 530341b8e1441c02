//! Fills the caches from the datastore and keeps them current with one
//! datastore watch over `/registry/`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::cache::Cache;
use super::{prefix_end, set_resource_version, Db, StoreError};
use crate::datastore::{Backend, EventKind, RangeRequest, WatchMessage, WatchRequest};
use crate::encryption::Encryption;

const ROOT: &str = "/registry/";

type Started = (
    HashMap<String, Arc<Cache>>,
    watch::Receiver<i64>,
    mpsc::Sender<()>,
);

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
    let caches: HashMap<String, Arc<Cache>> =
        names.iter().cloned().zip(list.iter().cloned()).collect();
    tokio::spawn(feed(watcher, names, list, rev_tx, progress_rx, enc));
    Ok((caches, rev_rx, progress_tx))
}

async fn feed(
    mut watcher: crate::datastore::Watcher,
    storages: Vec<String>,
    caches: Vec<Arc<Cache>>,
    revision: watch::Sender<i64>,
    mut progress: mpsc::Receiver<()>,
    enc: Option<Arc<Encryption>>,
) {
    loop {
        let msg = tokio::select! {
            m = watcher.next() => m,
            Some(()) = progress.recv() => {
                watcher.request_progress();
                continue;
            }
        };
        match msg {
            Some(WatchMessage::Events {
                revision: rev,
                events,
            }) => {
                for ev in events {
                    let key = String::from_utf8_lossy(&ev.kv.key);
                    let Some((i, suffix, namespace)) = locate(&storages, &key) else {
                        continue;
                    };
                    let object = match ev.kind {
                        EventKind::Put => {
                            match parse(enc.as_deref(), &ev.kv.value, &key, ev.kv.mod_revision) {
                                Some(v) => Some(v),
                                None => continue,
                            }
                        }
                        EventKind::Delete => None,
                    };
                    caches[i].apply(suffix, namespace, object, ev.kv.mod_revision);
                }
                revision.send_if_modified(|r| advance(r, rev));
            }
            Some(WatchMessage::Progress { revision: rev }) => {
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
