//! Snapshots of the SQLite file: online save, verification, offline restore.
//!
//! Save runs `VACUUM INTO` on a connection of its own (in the server or in
//! another process): it reads inside one read transaction, so the copy is the
//! store exactly at one committed revision while the writer goes on
//! committing to the WAL. The revision a snapshot holds is read back from the
//! copy itself, so it needs no sidecar file.
//!
//! Restore marks the restored store compacted at a revision above anything
//! clients may have seen (etcd 3.6's `snapshot restore --bump-revision
//! --mark-compacted`): objects keep their resourceVersions, the store's
//! revision jumps forward, and a client watching or listing from an older
//! resourceVersion gets "compacted" (410 Gone through the API) and relists
//! instead of waiting for revisions that will never mean what it saw.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::schema;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no datastore at {0}")]
    Missing(PathBuf),
    #[error("the datastore {0} is in use by a running server: stop it first")]
    InUse(PathBuf),
    #[error("{path} is not a usable snapshot: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, SnapshotError>;

/// What a snapshot (or a store file) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The newest revision in the file: the store exactly as it was then.
    pub revision: i64,
    pub compact_revision: i64,
}

/// The outcome of [`restore`].
#[derive(Debug, Clone)]
pub struct Restored {
    pub snapshot: SnapshotInfo,
    /// The store's revision after the restore (also its compaction point).
    pub revision: i64,
    /// Where the replaced store was moved, if there was one.
    pub moved_aside: Option<PathBuf>,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a consistent copy of the store at `db` to `dest` (which must not
/// exist), mode 0600, synced to disk. Safe while a server writes.
pub fn save(db: &Path, dest: &Path) -> Result<SnapshotInfo> {
    if !db.exists() {
        return Err(SnapshotError::Missing(db.to_path_buf()));
    }
    // No CREATE flag: a wrong path must not leave an empty store behind.
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(db))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql(db))?;
    // VACUUM INTO accepts an existing empty file: creating it first is how
    // the copy gets mode 0600 whatever the umask.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(io(dest))?;
    let target = dest.to_string_lossy().into_owned();
    if let Err(err) = conn.execute("VACUUM INTO ?1", [&target]) {
        let _ = std::fs::remove_file(dest);
        return Err(sql(db)(err));
    }
    drop(conn);
    let info = (|| {
        let copy = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(sql(dest))?;
        // One self-contained file, whatever mode the source was in.
        copy.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql(dest))?;
        let info = read_info(&copy).map_err(sql(dest))?;
        drop(copy);
        // VACUUM INTO does not sync its output.
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(io(dest))?;
        Ok(info)
    })();
    if info.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    info
}

fn read_info(conn: &Connection) -> rusqlite::Result<SnapshotInfo> {
    let (revision, compact_revision) = schema::stored_revision(conn)?;
    Ok(SnapshotInfo {
        revision,
        compact_revision,
    })
}

/// The revision a file holds, without checking it (for listings).
pub fn peek(path: &Path) -> Option<SnapshotInfo> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    read_info(&conn).ok()
}

const COLUMNS: [(&str, &[&str]); 3] = [
    (
        "log",
        &[
            "id",
            "key",
            "value",
            "codec",
            "create_revision",
            "version",
            "lease",
            "tombstone",
        ],
    ),
    ("lease", &["id", "ttl"]),
    ("meta", &["name", "value"]),
];

/// Checks that `path` is an intact store file of our schema; returns the
/// revision it holds. Never writes to it.
pub fn verify(path: &Path) -> Result<SnapshotInfo> {
    let invalid = |reason: String| SnapshotError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| invalid(e.to_string()))?;
    let check = (|| -> rusqlite::Result<std::result::Result<SnapshotInfo, String>> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        if problems.first().map(String::as_str) != Some("ok") {
            let mut text = problems.into_iter().take(3).collect::<Vec<_>>().join("; ");
            if text.is_empty() {
                text = "integrity check failed".into();
            }
            return Ok(Err(format!("integrity check: {text}")));
        }
        for (table, wanted) in COLUMNS {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
            let have: Vec<String> = stmt
                .query_map([table], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            if let Some(missing) = wanted.iter().find(|c| !have.iter().any(|h| h == *c)) {
                return Ok(Err(format!("no column {missing} in table {table}")));
            }
        }
        Ok(Ok(read_info(&conn)?))
    })();
    match check {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(reason)) => Err(invalid(reason)),
        // "file is not a database" and friends: corrupt as far as we care.
        Err(err) => Err(invalid(err.to_string())),
    }
}

/// Replaces the store at `db` with the snapshot at `snapshot`. The server
/// must be stopped: a store another process holds open is refused. The old
/// store is moved to `<db>.old-<unix time>`. The restored store's revision
/// is the greater of the snapshot's plus `bump` and the replaced store's plus
/// one, and history up to it is marked compacted (see the module comment).
pub fn restore(snapshot: &Path, db: &Path, bump: i64, now_unix: u64) -> Result<Restored> {
    let info = verify(snapshot)?;
    let old_revision = if db.exists() { claim(db)? } else { None };
    let revision = (info.revision + bump.max(0))
        .max(old_revision.map_or(0, |r| r + 1))
        .max(info.revision);
    let dir = db.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let staged = with_suffix(db, ".restoring");
    remove_if_present(&staged)?;
    std::fs::copy(snapshot, &staged).map_err(io(&staged))?;
    let prepared = (|| {
        let conn = Connection::open_with_flags(&staged, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(sql(&staged))?;
        conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql(&staged))?;
        if revision > info.compact_revision {
            schema::set_compact_revision(&conn, revision).map_err(|e| SnapshotError::Invalid {
                path: staged.clone(),
                reason: e.to_string(),
            })?;
        }
        drop(conn);
        set_private(&staged)?;
        std::fs::File::open(&staged)
            .and_then(|f| f.sync_all())
            .map_err(io(&staged))
    })();
    if let Err(err) = prepared {
        let _ = std::fs::remove_file(&staged);
        return Err(err);
    }
    let moved_aside = if db.exists() {
        let aside = with_suffix(db, &format!(".old-{now_unix}"));
        // claim() folded the WAL into the file; leftovers of a store that
        // could not be opened go along so they never meet the new file.
        for suffix in ["-wal", "-shm", ""] {
            let from = with_suffix(db, suffix);
            if from.exists() {
                let to = with_suffix(&aside, suffix);
                std::fs::rename(&from, &to).map_err(io(&from))?;
            }
        }
        Some(aside)
    } else {
        for suffix in ["-wal", "-shm"] {
            remove_if_present(&with_suffix(db, suffix))?;
        }
        None
    };
    std::fs::rename(&staged, db).map_err(io(db))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(Restored {
        snapshot: info,
        revision,
        moved_aside,
    })
}

/// Proves no other process has the store open and folds its WAL into the
/// file; returns its revision (`None` when it cannot be read at all).
///
/// Every connection to a WAL database holds a shared lock on the file for
/// as long as it is open; leaving WAL mode needs the exclusive lock, so it
/// fails at once while a server (or `nanokube datastore`) runs.
fn claim(db: &Path) -> Result<Option<i64>> {
    let conn = match Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(conn) => conn,
        Err(_) => return Ok(None),
    };
    conn.busy_timeout(std::time::Duration::ZERO)
        .map_err(sql(db))?;
    match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    }) {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(SnapshotError::InUse(db.to_path_buf())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            return Err(SnapshotError::InUse(db.to_path_buf()))
        }
        // A damaged store is replaced all the same: that is what restores are for.
        Err(_) => return Ok(None),
    }
    Ok(read_info(&conn).ok().map(|i| i.revision))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_rows(path: &Path, revisions: &[i64]) {
        let conn = schema::open_writer(path).unwrap();
        for rev in revisions {
            let version = crate::datastore::index::Version {
                id: crate::datastore::index::row_id(*rev, 0),
                create_revision: *rev,
                version: 1,
                lease: 0,
                tombstone: false,
            };
            schema::insert_row(
                &conn,
                version.id,
                format!("/k{rev}").as_bytes(),
                b"v",
                &version,
            )
            .unwrap();
        }
    }

    #[test]
    fn save_verify_restore_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        store_with_rows(&db, &[2, 3, 4]);
        let snap = tmp.path().join("snap");
        let info = save(&db, &snap).unwrap();
        assert_eq!(info.revision, 4);
        assert_eq!(verify(&snap).unwrap(), info);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&snap).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(save(&db, &snap), Err(SnapshotError::Io { .. })));

        // The replaced store had gone further than the snapshot.
        store_with_rows(&db, &[5, 6]);
        let restored = restore(&snap, &db, 0, 1234).unwrap();
        assert_eq!(restored.revision, 7);
        assert_eq!(
            restored.moved_aside.as_deref(),
            Some(tmp.path().join("state.db.old-1234").as_path())
        );
        let now = verify(&db).unwrap();
        assert_eq!(now.revision, 7);
        assert_eq!(now.compact_revision, 7);
        assert_eq!(
            verify(&tmp.path().join("state.db.old-1234"))
                .unwrap()
                .revision,
            6
        );

        // Into an empty place, with a bump.
        let fresh = tmp.path().join("fresh").join("state.db");
        let restored = restore(&snap, &fresh, 1000, 1).unwrap();
        assert_eq!(restored.revision, 1004);
        assert!(restored.moved_aside.is_none());
    }

    #[test]
    fn damaged_and_foreign_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        assert!(matches!(verify(&junk), Err(SnapshotError::Invalid { .. })));
        let foreign = tmp.path().join("foreign");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (a)")
            .unwrap();
        let err = verify(&foreign).unwrap_err().to_string();
        assert!(err.contains("no column id in table log"), "{err}");
        let db = tmp.path().join("state.db");
        assert!(matches!(
            restore(&junk, &db, 0, 1),
            Err(SnapshotError::Invalid { .. })
        ));
        assert!(!db.exists());
    }

    #[test]
    fn a_store_held_open_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        store_with_rows(&db, &[2]);
        let snap = tmp.path().join("snap");
        save(&db, &snap).unwrap();
        let held = schema::open_writer(&db).unwrap();
        assert!(matches!(
            restore(&snap, &db, 0, 1),
            Err(SnapshotError::InUse(_))
        ));
        drop(held);
        restore(&snap, &db, 0, 1).unwrap();
    }
}
