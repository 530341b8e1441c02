//! Reads: a few SQLite connections in WAL mode (readers never block the
//! writer), used from tokio's blocking pool with bounded concurrency.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::read;
use super::schema;
use super::Shared;
use crate::datastore::error::{Error, Result};
use crate::datastore::index::{row_id, Version};
use crate::datastore::types::*;

/// Concurrent SQLite reads; each holds one connection.
const READERS: usize = 4;

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READERS)),
        }
    }

    fn take(&self) -> Result<Connection> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Runs `f` with a reader connection on the blocking pool.
pub async fn with_reader<R, F>(shared: Arc<Shared>, f: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce(&Shared, &Connection) -> Result<R> + Send + 'static,
{
    let permit = shared
        .readers
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::Stopped)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let conn = shared.readers.take()?;
        let result = f(&shared, &conn);
        shared.readers.give_back(conn);
        result
    })
    .await
    .map_err(|err| Error::Storage(format!("read task failed: {err}")))?
}

pub async fn range(shared: Arc<Shared>, req: RangeRequest) -> Result<RangeResponse> {
    with_reader(shared, move |shared, conn| {
        let mut attempts = 0;
        loop {
            let current = shared.revision.load(Ordering::Acquire);
            let compacted = shared.compact_revision.load(Ordering::Acquire);
            let at = read::read_revision(req.revision, current, compacted)?;
            let mut fetch = |id| schema::value_of(conn, id);
            match read::range(&shared.index, &req, at, &mut fetch) {
                Err(Error::Compacted {
                    compact_revision: 0,
                }) => {
                    attempts += 1;
                    // A read at the latest revision raced with compaction of
                    // a row that was just superseded: read again.
                    if req.revision > 0 || attempts >= 3 {
                        return Err(Error::Compacted {
                            compact_revision: shared.compact_revision.load(Ordering::Acquire),
                        });
                    }
                }
                Ok(mut resp) => {
                    resp.revision = current;
                    return Ok(resp);
                }
                other => return other,
            }
        }
    })
    .await
}

/// Rows with revision in `[from, to]`, at most `limit`, as events (with the
/// previous version when history still has it). Returns the events and the
/// next revision to read.
pub async fn history(
    shared: Arc<Shared>,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<(Vec<Event>, i64)> {
    with_reader(shared, move |shared, conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, key, value, codec, create_revision, version, lease, tombstone
             FROM log WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
        )?;
        let mut rows = stmt.query(rusqlite::params![
            row_id(from, 0),
            row_id(to + 1, 0),
            limit as i64 + 1
        ])?;
        let mut found: Vec<(Vec<u8>, Vec<u8>, Version)> = Vec::new();
        while let Some(row) = rows.next()? {
            found.push((
                row.get(1)?,
                schema::decode(row.get(2)?, row.get(3)?)?,
                Version {
                    id: row.get(0)?,
                    create_revision: row.get(4)?,
                    version: row.get(5)?,
                    lease: row.get(6)?,
                    tombstone: row.get::<_, i64>(7)? != 0,
                },
            ));
        }
        drop(rows);
        // Never split a revision between two chunks.
        let next = if found.len() > limit {
            let cut_rev = found[limit].2.mod_revision();
            found.retain(|(_, _, v)| v.mod_revision() < cut_rev);
            if found.is_empty() {
                return Err(Error::Storage(
                    "a single revision exceeds the replay chunk".into(),
                ));
            }
            cut_rev
        } else {
            to + 1
        };
        let mut events = Vec::with_capacity(found.len());
        for (key, value, v) in found {
            let prev = {
                let index = shared.index.read().unwrap_or_else(|p| p.into_inner());
                index.before(&key, v.id).filter(|p| !p.tombstone).copied()
            };
            let prev_kv = match prev {
                Some(p) => schema::value_of(conn, p.id)?.map(|val| read::kv_of(&key, &p, val)),
                None => None,
            };
            let (kind, kv) = if v.tombstone {
                let kv = KeyValue {
                    key,
                    mod_revision: v.mod_revision(),
                    ..Default::default()
                };
                (EventKind::Delete, kv)
            } else {
                (EventKind::Put, read::kv_of(&key, &v, value))
            };
            events.push(Event { kind, kv, prev_kv });
        }
        Ok((events, next))
    })
    .await
}
