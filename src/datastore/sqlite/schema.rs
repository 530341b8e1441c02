//! Opening the SQLite file and rebuilding in-memory state from it.
//!
//! Tables:
//! - `log`: one row per change, keyed by `row_id(revision, sub)`; deletes are
//!   tombstone rows. No secondary index: the key index lives in memory, so a
//!   write touches only the end of one B-tree (few pages per group commit).
//! - `lease`: granted leases (id, ttl).
//! - `meta`: `compact_revision`.
//!
//! Values are stored LZ4-compressed when that saves at least an eighth
//! (`codec` 1), raw otherwise (`codec` 0): Kubernetes objects are JSON and
//! shrink several times, which is bytes an SD card never has to write.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::datastore::error::{Error, Result};
use crate::datastore::index::{revision_of, Index, Version};
use crate::datastore::lease::Leases;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    codec INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    tombstone INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
";

/// The writer's connection. `synchronous = FULL` in WAL mode fsyncs the WAL
/// at every commit: a write is acknowledged only once it is on disk, and
/// group commit shares that fsync among every write of the batch.
pub fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // The checkpoint thread may briefly hold the write lock to restart the WAL.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Small pages: every commit re-logs the pages it touched at the edge of
    // the B-tree (header, interior, last leaf) in full, so their size is the
    // fixed cost of a commit. With 1 KiB pages it is a quarter of SQLite's
    // default; values spill into overflow pages that are written once.
    // Takes effect only when the file is created.
    conn.execute_batch("PRAGMA page_size = 1024;")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // No auto_vacuum: its pointer-map pages would add a page write to every
    // commit. Space freed by compaction is reused by later writes.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 20971520;
         PRAGMA cache_size = -1024;
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// A reader's connection: small cache, never writes.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -256;")?;
    Ok(conn)
}

pub struct Loaded {
    pub index: Index,
    pub leases: Leases,
    pub revision: i64,
    pub compact_revision: i64,
    /// Rows below the compaction point a previous run had not purged yet.
    pub unpurged: Vec<i64>,
}

pub fn load(conn: &Connection) -> Result<Loaded> {
    let compact_revision = stored_compact_revision(conn)?;
    let mut index = Index::default();
    let mut max_id = 0i64;
    {
        let mut stmt = conn.prepare(
            "SELECT id, key, create_revision, version, lease, tombstone FROM log ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let key: Vec<u8> = row.get(1)?;
            let version = Version {
                id,
                create_revision: row.get(2)?,
                version: row.get(3)?,
                lease: row.get(4)?,
                tombstone: row.get::<_, i64>(5)? != 0,
            };
            max_id = max_id.max(id);
            index.push(&key, version);
        }
    }
    let unpurged = if compact_revision > 0 {
        index.compact(compact_revision)
    } else {
        Vec::new()
    };
    let mut leases = Leases::default();
    {
        let mut stmt = conn.prepare("SELECT id, ttl FROM lease")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (id, ttl) = row?;
            leases.grant(id, ttl);
        }
    }
    for (key, version) in index.latest() {
        if !version.tombstone && version.lease != 0 {
            leases.attach(version.lease, key);
        }
    }
    // Revision 1 is the empty store, as in etcd.
    let revision = revision_of(max_id).max(compact_revision).max(1);
    Ok(Loaded {
        index,
        leases,
        revision,
        compact_revision,
        unpurged,
    })
}

const RAW: i64 = 0;
const LZ4: i64 = 1;
/// Values shorter than this are stored raw: too small to gain.
const COMPRESS_FROM: usize = 128;

fn encode(value: &[u8]) -> (std::borrow::Cow<'_, [u8]>, i64) {
    if value.len() >= COMPRESS_FROM {
        let packed = lz4_flex::compress_prepend_size(value);
        if packed.len() * 8 <= value.len() * 7 {
            return (packed.into(), LZ4);
        }
    }
    (value.into(), RAW)
}

/// A stored value back in its original form.
pub fn decode(stored: Vec<u8>, codec: i64) -> Result<Vec<u8>> {
    match codec {
        RAW => Ok(stored),
        LZ4 => lz4_flex::decompress_size_prepended(&stored)
            .map_err(|e| Error::Storage(format!("stored value cannot be decompressed: {e}"))),
        other => Err(Error::Storage(format!(
            "stored value has unknown codec {other}"
        ))),
    }
}

pub fn insert_row(
    conn: &Connection,
    id: i64,
    key: &[u8],
    value: &[u8],
    version: &Version,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO log (id, key, value, codec, create_revision, version, lease, tombstone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let (stored, codec) = encode(value);
    stmt.execute(params![
        id,
        key,
        stored.as_ref(),
        codec,
        version.create_revision,
        version.version,
        version.lease,
        version.tombstone as i64
    ])?;
    Ok(())
}

/// The value of row `id`, or `None` if compaction removed it.
pub fn value_of(conn: &Connection, id: i64) -> Result<Option<Vec<u8>>> {
    let mut stmt = conn.prepare_cached("SELECT value, codec FROM log WHERE id = ?1")?;
    let row = stmt
        .query_row([id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    row.map(|(stored, codec)| decode(stored, codec)).transpose()
}

/// The compaction point recorded in the meta table (0 when never compacted).
fn stored_compact_revision(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'compact_revision'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// The newest revision a store file holds and its compaction point, as
/// [`load`] computes them, without reading the whole log.
pub fn stored_revision(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let compact_revision = stored_compact_revision(conn)?;
    let max_id: Option<i64> = conn.query_row("SELECT max(id) FROM log", [], |r| r.get(0))?;
    let revision = revision_of(max_id.unwrap_or(0))
        .max(compact_revision)
        .max(1);
    Ok((revision, compact_revision))
}

pub fn set_compact_revision(conn: &Connection, revision: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES ('compact_revision', ?1)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [revision],
    )?;
    Ok(())
}

pub fn free_bytes(conn: &Connection) -> Result<i64> {
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(free * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_codec() {
        let json = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"default"},"data":{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}"#;
        let (stored, codec) = encode(json);
        assert_eq!(codec, LZ4);
        assert!(stored.len() < json.len());
        assert_eq!(decode(stored.into_owned(), codec).unwrap(), json.to_vec());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..64)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        let (stored, codec) = encode(&noise);
        assert_eq!(codec, RAW);
        assert_eq!(decode(stored.into_owned(), codec).unwrap(), noise);
        assert!(decode(vec![1, 2, 3], LZ4).is_err());
        assert!(decode(vec![], 7).is_err());
    }
}
