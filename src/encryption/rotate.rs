//! What the stored Secrets are encrypted with, and key rotation: a new key
//! becomes the active one (old ones kept for reading), every Secret is
//! rewritten with it by compare-and-swap on its mod revision (a concurrent
//! write is never lost: the loser is read again on the next pass), and only
//! when no Secret uses an old key any more is it dropped from the file.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::envelope::{self, Key, Sealer};
use super::{config, Encryption, Error, KeySet, SECRETS_PREFIX};
use crate::datastore::{
    Backend, Compare, CompareResult, CompareTarget, KeyValue, PutRequest, RangeRequest,
    SqliteBackend, TxnOp, TxnRequest,
};

/// The name of the key a new key file starts with (k3s: `aescbckey`).
pub const FIRST_KEY: &str = "aesgcmkey";
/// Secrets read per datastore range.
const PAGE: i64 = 256;
/// Passes over every Secret before a rotation gives up on writers that
/// keep racing it (each pass rewrites what the previous one lost).
const PASSES: usize = 10;

/// What `secrets-encrypt status` and `rotate` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// New Secrets are encrypted (`--secrets-encryption`).
    pub enabled: bool,
    /// The key new Secrets are encrypted with.
    pub active_key: Option<String>,
    /// The keys of the key file, active first.
    pub keys: Vec<String>,
    /// Secrets per key name (every key of the file listed).
    pub secrets: BTreeMap<String, usize>,
    /// Secrets stored in the clear (written before encryption was on).
    pub plaintext: usize,
    /// Secrets sealed by a key this server does not have.
    pub unreadable: usize,
    /// After a rotation: Secrets rewritten with the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewritten: Option<usize>,
    /// After a rotation: keys removed from the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

impl Key {
    fn copy(&self) -> Result<Key, Error> {
        Key::new(self.name.clone(), &self.secret)
    }
}

/// Every Secret as stored now, read page by page.
async fn all_secrets(db: &SqliteBackend) -> Result<Vec<KeyValue>, Error> {
    let mut end = SECRETS_PREFIX.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1; // "/registry/secrets0": just past every key under the prefix
    }
    let mut start = SECRETS_PREFIX.as_bytes().to_vec();
    let mut out = Vec::new();
    loop {
        let resp = db
            .range(RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        let more = resp.more;
        if let Some(last) = resp.kvs.last() {
            start = last.key.clone();
            start.push(0);
        }
        out.extend(resp.kvs);
        if !more {
            return Ok(out);
        }
    }
}

/// Re-encrypts one stored Secret with the active key, if nobody wrote it
/// since it was read. `Ok(false)`: a concurrent write came first.
async fn rewrite(db: &SqliteBackend, set: &KeySet, kv: &KeyValue) -> Result<bool, Error> {
    let active = set.keys.first().ok_or(Error::Disabled)?;
    let plain = super::unseal_with(set, &kv.key, &kv.value)?;
    let plain = plain.as_deref().unwrap_or(&kv.value);
    let sealed = active.seal(&kv.key, plain)?;
    let resp = db
        .txn(TxnRequest {
            compare: vec![Compare {
                key: kv.key.clone(),
                range_end: Vec::new(),
                result: CompareResult::Equal,
                target: CompareTarget::ModRevision(kv.mod_revision),
            }],
            success: vec![TxnOp::Put(PutRequest {
                key: kv.key.clone(),
                value: sealed,
                ignore_lease: true,
                ..Default::default()
            })],
            failure: Vec::new(),
        })
        .await?;
    Ok(resp.succeeded)
}

/// A key name not yet in `keys`: `aesgcmkey-<UTC time>` (k3s names its
/// rotated keys after the time too).
fn next_name(keys: &[Key]) -> String {
    let base = format!(
        "{FIRST_KEY}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    );
    let taken = |n: &str| keys.iter().any(|k| k.name == n);
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{base}-{i}");
        i += 1;
    }
    name
}

impl Encryption {
    /// Whether encryption is on, its keys and what each Secret is sealed with.
    pub async fn status(&self) -> Result<Status, Error> {
        let set = self.current();
        let mut status = Status {
            enabled: self.enabled,
            active_key: self
                .enabled
                .then(|| set.keys.first().map(|k| k.name.clone()))
                .flatten(),
            keys: set.keys.iter().map(|k| k.name.clone()).collect(),
            secrets: set.keys.iter().map(|k| (k.name.clone(), 0)).collect(),
            ..Default::default()
        };
        for kv in all_secrets(&self.db).await? {
            match envelope::sealer(&set.keys, &kv.value) {
                Sealer::Plaintext => status.plaintext += 1,
                Sealer::Key(name) => *status.secrets.entry(name.to_string()).or_default() += 1,
                Sealer::Unknown(_) => match envelope::sealer(&set.retired, &kv.value) {
                    Sealer::Key(name) => *status.secrets.entry(name.to_string()).or_default() += 1,
                    _ => status.unreadable += 1,
                },
            }
        }
        Ok(status)
    }

    /// Makes a new key the active one, re-encrypts every Secret with it and
    /// drops the keys no Secret uses any more from the key file.
    pub async fn rotate(&self) -> Result<Status, Error> {
        if !self.enabled {
            return Err(Error::Disabled);
        }
        let _one = self.rotating.lock().await;
        let old = self.current();
        let fresh = Key::generate(next_name(&old.keys))?;
        let name = fresh.name.clone();
        let mut keys = vec![fresh];
        for k in &old.keys {
            keys.push(k.copy()?);
        }
        // The file first: a crash from here on restarts with every key.
        config::store(&self.path, &keys)?;
        self.replace(KeySet {
            keys,
            retired: copies(&old.retired)?,
        });
        tracing::info!(key = %name, "secrets encryption key rotated; re-encrypting secrets");

        let mut rewritten = 0;
        let mut stuck: BTreeSet<String> = BTreeSet::new();
        let mut clean = false;
        for _ in 0..PASSES {
            let set = self.current();
            let mut lost = 0;
            for kv in all_secrets(&self.db).await? {
                match envelope::sealer(&set.keys, &kv.value) {
                    Sealer::Key(n) if n == name => continue,
                    // Nothing to decrypt it with; counted as unreadable.
                    Sealer::Unknown(_) => continue,
                    Sealer::Key(n) if stuck.contains(n) => continue,
                    _ => {}
                }
                match rewrite(&self.db, &set, &kv).await {
                    Ok(true) => rewritten += 1,
                    Ok(false) => lost += 1,
                    Err(Error::Decrypt(key)) => {
                        tracing::error!(
                            key = %String::from_utf8_lossy(&kv.key),
                            "stored secret does not decrypt; its key stays in the key file"
                        );
                        stuck.insert(key);
                    }
                    Err(e) => return Err(e),
                }
            }
            if lost == 0 {
                clean = true;
                break;
            }
        }
        if !clean {
            return Err(Error::Unfinished(format!(
                "secrets kept changing during {PASSES} passes; key {name} is active and the old keys are kept: run rotate again"
            )));
        }
        let set = self.current();
        let (keep, drop): (Vec<&Key>, Vec<&Key>) = set
            .keys
            .iter()
            .partition(|k| k.name == name || stuck.contains(&k.name));
        let keep = keep
            .into_iter()
            .map(Key::copy)
            .collect::<Result<Vec<_>, _>>()?;
        let mut retired = copies(&set.retired)?;
        for k in &drop {
            retired.push(k.copy()?);
        }
        config::store(&self.path, &keep)?;
        self.replace(KeySet {
            keys: keep,
            retired,
        });
        let dropped: Vec<String> = drop.iter().map(|k| k.name.clone()).collect();
        tracing::info!(rewritten, ?dropped, "secrets re-encrypted");
        let mut status = self.status().await?;
        status.rewritten = Some(rewritten);
        status.dropped = dropped;
        Ok(status)
    }
}

fn copies(keys: &[Key]) -> Result<Vec<Key>, Error> {
    keys.iter().map(Key::copy).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::SqliteOptions;

    async fn get(db: &SqliteBackend, key: &str) -> KeyValue {
        let resp = db
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
        resp.kvs.into_iter().next().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotation_rewrites_every_secret_and_loses_no_concurrent_write() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
        let enc = Encryption::load(dir.path(), true, db.clone()).unwrap();
        let key = |i: usize| format!("{SECRETS_PREFIX}ns/s{i}");
        for i in 0..40 {
            let value = enc.seal(&key(i), br#"{"n":0}"#.to_vec()).unwrap();
            db.put(PutRequest {
                key: key(i).into_bytes(),
                value,
                ..Default::default()
            })
            .await
            .unwrap();
        }
        db.put(PutRequest {
            key: key(99).into_bytes(),
            value: br#"{"n":0}"#.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(enc.status().await.unwrap().plaintext, 1);

        // A writer bumping s0..s4 by compare-and-swap while the rotation runs.
        let writer = {
            let (db, enc) = (db.clone(), enc.clone());
            tokio::spawn(async move {
                for round in 1..=30 {
                    for i in 0..5 {
                        loop {
                            let kv = get(&db, &key(i)).await;
                            let value = enc
                                .seal(&key(i), format!(r#"{{"n":{round}}}"#).into_bytes())
                                .unwrap();
                            let put = TxnOp::Put(PutRequest {
                                key: kv.key.clone(),
                                value,
                                ..Default::default()
                            });
                            let resp = db
                                .txn(TxnRequest {
                                    compare: vec![Compare {
                                        key: kv.key.clone(),
                                        range_end: Vec::new(),
                                        result: CompareResult::Equal,
                                        target: CompareTarget::ModRevision(kv.mod_revision),
                                    }],
                                    success: vec![put],
                                    failure: Vec::new(),
                                })
                                .await
                                .unwrap();
                            if resp.succeeded {
                                break;
                            }
                        }
                    }
                }
            })
        };
        let status = enc.rotate().await.unwrap();
        writer.await.unwrap();
        let active = status.active_key.clone().unwrap();
        assert!(active.starts_with("aesgcmkey-"), "{status:?}");
        assert_eq!(status.dropped, vec!["aesgcmkey".to_string()]);
        assert_eq!(status.plaintext, 0);
        // The writer may have re-sealed its five with the new key first.
        assert!(status.rewritten.unwrap() >= 36, "{status:?}");
        assert_eq!(status.secrets.get(&active), Some(&41), "{status:?}");
        // The file holds the new key only; every value decrypts; the
        // writer's last round is what is stored.
        let file = config::load(&config::path(dir.path())).unwrap().unwrap();
        assert_eq!(file.len(), 1);
        assert_eq!(file[0].name, active);
        for i in (0..40).chain([99]) {
            let kv = get(&db, &key(i)).await;
            let plain = enc.unseal(&key(i), &kv.value).unwrap();
            let want = if i < 5 { r#"{"n":30}"# } else { r#"{"n":0}"# };
            assert_eq!(std::str::from_utf8(&plain).unwrap(), want, "s{i}");
        }
        // Disabled encryption refuses to rotate, and still reads.
        let off = Encryption::load(dir.path(), false, db.clone()).unwrap();
        assert!(matches!(off.rotate().await, Err(Error::Disabled)));
        let kv = get(&db, &key(7)).await;
        assert!(off.unseal(&key(7), &kv.value).is_ok());
        db.close().await;
    }
}
