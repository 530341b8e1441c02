//! Upstream's atomic writer, which makes configMap/secret/downwardAPI/
//! projected updates appear all at once to the container:
//!
//! ```text
//! <volume>/..2024_05_01_10_11_12.1234567/   the payload, one dir per version
//! <volume>/..data -> ..2024_05_01_10_11_12.1234567
//! <volume>/key -> ..data/key                what the user sees
//! ```
//!
//! A new version is written to a fresh timestamped dir; `..data` is then
//! switched to it by renaming a temporary symlink over it (rename is
//! atomic), and the old version is removed. Nothing is written when the
//! payload on disk already matches.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{ownership, VolumeError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file.
pub(crate) type Payload = BTreeMap<String, FileProjection>;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
const MAX_PATH: usize = 4096;
const MAX_NAME: usize = 255;

/// Upstream's path rules for payload entries.
fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err(format!("invalid path: must not be empty: {p:?}"));
    }
    if p.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if p.len() > MAX_PATH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH} characters"
        ));
    }
    let items: Vec<&str> = p.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {p}"));
        }
        if item.len() > MAX_NAME {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_NAME} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    if p.contains('\0') {
        return Err(format!("invalid path: must not contain NUL: {p:?}"));
    }
    Ok(())
}

/// `a//b/./c` → `a/b/c` (after validation, so no `..` remains).
fn clean(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn validate(payload: &Payload) -> Result<BTreeMap<String, &FileProjection>, VolumeError> {
    let mut out = BTreeMap::new();
    for (k, v) in payload {
        validate_path(k).map_err(VolumeError::Invalid)?;
        let c = clean(k);
        if c.is_empty() {
            return Err(VolumeError::Invalid(format!("invalid path: {k:?}")));
        }
        out.insert(c, v);
    }
    Ok(out)
}

fn top(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

fn io_err(what: &str, p: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let context = format!("{what} {}", p.display());
    move |e| VolumeError::io(context, e)
}

/// Writes `payload` into the existing directory `target`; `Ok(true)` when
/// a new version was written.
pub(crate) fn write(
    target: &Path,
    payload: &Payload,
    fs_group: Option<u32>,
) -> Result<bool, VolumeError> {
    let files = validate(payload)?;
    let tops: BTreeSet<&str> = files.keys().map(|k| top(k)).collect();
    let current = current_version(target);
    let same = current
        .as_deref()
        .is_some_and(|v| matches(&target.join(v), &files, fs_group));
    if same && visible_links_ok(target, &tops) {
        return Ok(false);
    }
    let version = if same {
        current.clone().unwrap_or_default()
    } else {
        let version = new_version_dir(target)?;
        let dir = target.join(&version);
        for (path, f) in &files {
            write_file(&dir.join(path), f)?;
        }
        if let Some(gid) = fs_group {
            ownership::set_volume_ownership(&dir, gid, true, false)?;
            ownership::set_volume_ownership_of_root(target, gid, true)?;
        }
        switch_data(target, &version)?;
        version
    };
    make_visible_links(target, &tops)?;
    remove_stale(target, &version, &tops)?;
    if !same {
        tracing::debug!(dir = %target.display(), files = files.len(), "volume payload written");
    }
    Ok(!same)
}

/// The version dir `..data` points to.
fn current_version(target: &Path) -> Option<String> {
    let link = fs::read_link(target.join(DATA)).ok()?;
    let name = link.to_str()?;
    (name.starts_with("..") && !name.contains('/') && name != DATA).then(|| name.to_string())
}

/// Whether `dir` holds exactly the payload (contents, modes, group).
fn matches(dir: &Path, files: &BTreeMap<String, &FileProjection>, fs_group: Option<u32>) -> bool {
    let mut found = BTreeMap::new();
    if list_files(dir, "", &mut found).is_err() || found.len() != files.len() {
        return false;
    }
    files.iter().all(|(path, f)| {
        let Some(meta) = found.get(path) else {
            return false;
        };
        let want = f.mode | if fs_group.is_some() { 0o440 } else { 0 };
        meta.mode() & 0o7777 == want
            && fs_group.is_none_or(|g| meta.gid() == g)
            && meta.len() == f.data.len() as u64
            && fs::read(dir.join(path)).is_ok_and(|d| d == f.data)
    })
}

/// Regular files below `dir` by relative path; anything else is an error
/// (a version dir holds only what this writer put there).
fn list_files(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, fs::Metadata>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| io::Error::other("non-utf-8 name"))?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = entry.metadata()?;
        if meta.is_dir() {
            list_files(&entry.path(), &rel, out)?;
        } else if meta.is_file() {
            out.insert(rel, meta);
        } else {
            return Err(io::Error::other("unexpected file type"));
        }
    }
    Ok(())
}

fn visible_links_ok(target: &Path, tops: &BTreeSet<&str>) -> bool {
    tops.iter()
        .all(|t| fs::read_link(target.join(t)).is_ok_and(|l| l == Path::new(DATA).join(t)))
}

/// A fresh `..<UTC timestamp>.<random>` dir, mode 0755 whatever the umask.
fn new_version_dir(target: &Path) -> Result<String, VolumeError> {
    let stamp = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.")
        .to_string();
    for _ in 0..16 {
        let name = format!("{stamp}{}", uuid::Uuid::new_v4().as_u128() as u32);
        let dir = target.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &dir))?;
                return Ok(name);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating", &dir)(e)),
        }
    }
    Err(VolumeError::io(
        format!("creating a version dir in {}", target.display()),
        io::Error::other("no free name"),
    ))
}

fn write_file(path: &Path, f: &FileProjection) -> Result<(), VolumeError> {
    if let Some(parent) = path.parent() {
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o755)
            .create(parent)
            .map_err(io_err("creating", parent))?;
    }
    fs::write(path, &f.data).map_err(io_err("writing", path))?;
    // Explicitly, so the umask does not narrow the mode asked for.
    fs::set_permissions(path, fs::Permissions::from_mode(f.mode)).map_err(io_err("chmod", path))
}

/// Points `..data` at `version` by renaming a fresh symlink over it.
fn switch_data(target: &Path, version: &str) -> Result<(), VolumeError> {
    let tmp = target.join(DATA_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &tmp)(e)),
    }
    symlink(version, &tmp).map_err(io_err("creating symlink", &tmp))?;
    fs::rename(&tmp, target.join(DATA)).map_err(io_err("renaming", &tmp))
}

/// `key -> ..data/key` for every top-level name of the payload.
fn make_visible_links(target: &Path, tops: &BTreeSet<&str>) -> Result<(), VolumeError> {
    for t in tops {
        let link = target.join(t);
        let want = Path::new(DATA).join(t);
        match fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                symlink(&want, &link).map_err(io_err("creating symlink", &link))?;
            }
            Err(e) => return Err(io_err("inspecting", &link)(e)),
            Ok(m) if m.file_type().is_symlink() => {
                if fs::read_link(&link).ok().as_deref() != Some(want.as_path()) {
                    let tmp = target.join(format!("{DATA_TMP}_{t}"));
                    let _ = fs::remove_file(&tmp);
                    symlink(&want, &tmp).map_err(io_err("creating symlink", &tmp))?;
                    fs::rename(&tmp, &link).map_err(io_err("renaming", &tmp))?;
                }
            }
            Ok(_) => {
                return Err(VolumeError::Invalid(format!(
                    "{} exists and is not a symlink into {DATA}",
                    link.display()
                )))
            }
        }
    }
    Ok(())
}

/// Removes old version dirs and user-visible links of names no longer in
/// the payload. Only entries this writer makes are candidates.
fn remove_stale(target: &Path, version: &str, tops: &BTreeSet<&str>) -> Result<(), VolumeError> {
    let entries = fs::read_dir(target).map_err(io_err("reading", target))?;
    for entry in entries {
        let entry = entry.map_err(io_err("reading", target))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path: PathBuf = entry.path();
        let Ok(ft) = entry.file_type() else {
            continue;
        };
        if name.starts_with("..") {
            if name == DATA || name == version || name == ".." {
                continue;
            }
            // remove_dir_all does not follow symlinks.
            let removed = if ft.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io_err("removing", &path))?;
        } else if ft.is_symlink()
            && !tops.contains(name.as_str())
            && fs::read_link(&path).is_ok_and(|l| l == Path::new(DATA).join(&name))
        {
            fs::remove_file(&path).map_err(io_err("removing", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(entries: &[(&str, &str, u32)]) -> Payload {
        entries
            .iter()
            .map(|(k, v, m)| {
                let f = FileProjection {
                    data: v.as_bytes().to_vec(),
                    mode: *m,
                };
                (k.to_string(), f)
            })
            .collect()
    }

    #[test]
    fn path_rules() {
        assert!(validate_path("a/b").is_ok());
        for bad in ["", "/abs", "a/../b", "..", "..a", "..data/x"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        assert_eq!(clean("a//b/./c"), "a/b/c");
    }

    #[test]
    fn writes_swaps_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let p1 = payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]);
        assert!(write(t, &p1, None).unwrap());
        let v1 = current_version(t).unwrap();
        assert_eq!(fs::read_to_string(t.join("a")).unwrap(), "1");
        assert_eq!(fs::read_to_string(t.join("sub/b")).unwrap(), "2");
        assert_eq!(fs::read_link(t.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::read_link(t.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        let mode = fs::metadata(t.join("sub/b")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(t.join(&v1)).unwrap().mode() & 0o777, 0o755);

        // Same payload: nothing written.
        assert!(!write(t, &p1, None).unwrap());
        assert_eq!(current_version(t).unwrap(), v1);

        // A mode change alone is a change; a removed key disappears.
        let p2 = payload(&[("a", "1", 0o400)]);
        assert!(write(t, &p2, None).unwrap());
        let v2 = current_version(t).unwrap();
        assert_ne!(v1, v2);
        assert!(!t.join(&v1).exists());
        assert!(fs::symlink_metadata(t.join("sub")).is_err());
        let names: BTreeSet<String> = fs::read_dir(t)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [DATA.to_string(), v2.clone(), "a".into()].into());

        // A deleted user-visible link is restored without a new version.
        fs::remove_file(t.join("a")).unwrap();
        assert!(!write(t, &p2, None).unwrap());
        assert_eq!(fs::read_to_string(t.join("a")).unwrap(), "1");

        // Empty payload (optional source missing): an empty volume.
        assert!(write(t, &Payload::new(), None).unwrap());
        assert!(fs::symlink_metadata(t.join("a")).is_err());
        assert!(t.join(DATA).exists());
    }

    #[test]
    fn content_change_is_seen_atomically_through_data() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        write(t, &payload(&[("k", "old", 0o644)]), None).unwrap();
        let held = fs::File::open(t.join("k")).unwrap();
        write(t, &payload(&[("k", "new", 0o644)]), None).unwrap();
        assert_eq!(fs::read_to_string(t.join("k")).unwrap(), "new");
        drop(held);
    }

    #[test]
    fn fs_group_ownership() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let p = payload(&[("k", "v", 0o600)]);
        assert!(write(t, &p, Some(4321)).unwrap());
        let m = fs::metadata(t.join("k")).unwrap();
        assert_eq!((m.gid(), m.mode() & 0o777), (4321, 0o640));
        assert_eq!(fs::metadata(t).unwrap().gid(), 4321);
        assert!(!write(t, &p, Some(4321)).unwrap());
    }

    #[test]
    fn invalid_payload_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(dir.path(), &payload(&[("../x", "v", 0o644)]), None).unwrap_err();
        assert!(matches!(e, VolumeError::Invalid(_)));
    }
}
