//! The snapshot directory: names, listing, atomic saves, pruning.
//!
//! Names are k3s's: `<name>-<node>-<unix time>`, one SQLite file each, no
//! sidecar (the revision is read back from the file itself).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Error;
use crate::datastore::{self, SnapshotError, SqliteBackend};

/// One snapshot file as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub name: String,
    pub location: String,
    pub size: u64,
    /// Unix seconds, from the name.
    pub created: i64,
    /// The revision it holds; absent when the file cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(skip)]
    pub path: PathBuf,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The directory, created 0700 if missing (snapshots hold every Secret).
pub fn ensure_dir(dir: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// `<name>-<node>-<unix time>`; the name and node must be usable as file names.
pub fn file_name(name: &str, node: &str, unix: u64) -> Result<String, Error> {
    for (what, s) in [("snapshot name", name), ("node name", node)] {
        if s.is_empty() || s.starts_with('.') || s.contains(['/', '\0']) {
            return Err(Error::BadName(format!("{what} {s:?}")));
        }
    }
    Ok(format!("{name}-{node}-{unix}"))
}

/// Where a save happens: the server's store, or the file of a stopped or
/// running server opened from this process.
pub enum Source<'a> {
    Backend(&'a SqliteBackend),
    File(&'a Path),
}

/// Saves under `dir/file_name` through a hidden temporary file, published
/// with a hard link so an existing snapshot is never overwritten.
pub fn save(source: Source<'_>, dir: &Path, file_name: &str) -> Result<Entry, Error> {
    // A wrong data dir must not leave an empty snapshot directory behind.
    if let Source::File(db) = source {
        if !db.exists() {
            return Err(SnapshotError::Missing(db.to_path_buf()).into());
        }
    }
    ensure_dir(dir)?;
    let path = dir.join(file_name);
    if path.exists() {
        return Err(Error::Exists(path));
    }
    let tmp = dir.join(format!(".{file_name}.tmp"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Io {
                path: tmp,
                source: e,
            })
        }
        _ => {}
    }
    let info = match source {
        Source::Backend(store) => store.snapshot(&tmp),
        Source::File(db) => datastore::save_snapshot(db, &tmp),
    }?;
    let published = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    published.map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Exists(path.clone()),
        _ => Error::Io {
            path: path.clone(),
            source,
        },
    })?;
    sync_dir(dir)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Entry {
        name: file_name.to_string(),
        location: format!("file://{}", path.display()),
        size,
        created: created_of(file_name).unwrap_or(0),
        revision: Some(info.revision),
        path,
    })
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// The unix time at the end of a snapshot name.
fn created_of(name: &str) -> Option<i64> {
    let (_, tail) = name.rsplit_once('-')?;
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tail.parse().ok()
}

/// Every snapshot in `dir`, oldest first; a missing directory is empty.
/// With `with_revision`, each file is opened to read its revision.
pub fn list(dir: &Path, with_revision: bool) -> Result<Vec<Entry>, Error> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for item in read.flatten() {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Some(created) = created_of(&name) else {
            continue;
        };
        let Ok(meta) = item.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let path = item.path();
        let revision = match with_revision {
            true => datastore::peek_snapshot(&path).map(|i| i.revision),
            false => None,
        };
        out.push(Entry {
            location: format!("file://{}", path.display()),
            name,
            size: meta.len(),
            created,
            revision,
            path,
        });
    }
    out.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    Ok(out)
}

/// Deletes the named snapshots; every name must exist in `dir`.
pub fn delete(dir: &Path, names: &[String]) -> Result<Vec<String>, Error> {
    let have = list(dir, false)?;
    for name in names {
        if !have.iter().any(|e| &e.name == name) {
            return Err(Error::NotFound(name.clone()));
        }
    }
    let mut deleted = Vec::new();
    for name in names {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
        deleted.push(name.clone());
    }
    Ok(deleted)
}

/// Keeps the newest `retain` snapshots named `<name>-<node>-<time>` and
/// deletes the older ones; returns the names deleted.
pub fn prune(dir: &Path, name: &str, node: &str, retain: usize) -> Result<Vec<String>, Error> {
    let prefix = format!("{name}-{node}-");
    let mine: Vec<Entry> = list(dir, false)?
        .into_iter()
        .filter(|e| {
            e.name
                .strip_prefix(&prefix)
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    let excess = mine.len().saturating_sub(retain);
    let names: Vec<String> = mine.into_iter().take(excess).map(|e| e.name).collect();
    delete(dir, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_and_prune() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snaps");
        for (n, t) in [
            ("on-demand", 30),
            ("on-demand", 10),
            ("on-demand", 20),
            ("scheduled", 15),
        ] {
            let name = file_name(n, "node-a", t).unwrap();
            ensure_dir(&dir).unwrap();
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        std::fs::write(dir.join("on-demand-node-a-x"), b"not ours").unwrap();
        std::fs::write(dir.join(".on-demand-node-a-40.tmp"), b"half").unwrap();
        let names: Vec<String> = list(&dir, false)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            [
                "on-demand-node-a-10",
                "scheduled-node-a-15",
                "on-demand-node-a-20",
                "on-demand-node-a-30"
            ]
        );
        let pruned = prune(&dir, "on-demand", "node-a", 1).unwrap();
        assert_eq!(pruned, ["on-demand-node-a-10", "on-demand-node-a-20"]);
        assert!(dir.join("scheduled-node-a-15").exists());
        assert!(dir.join("on-demand-node-a-30").exists());
        assert!(matches!(
            delete(&dir, &["nope-1".into()]),
            Err(Error::NotFound(_))
        ));
        assert!(file_name("a/b", "n", 1).is_err());
        assert!(file_name("a", "", 1).is_err());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
