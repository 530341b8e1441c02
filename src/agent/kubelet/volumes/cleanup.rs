//! Removing a pod's volumes: unmount first (tmpfs, subPath binds, anything
//! a Bidirectional mount propagated back), then delete without following
//! symlinks and without entering another file system, so nothing outside
//! `A/pods/<uid>` can be touched.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{mounts, Layout, VolumeError};

pub(crate) fn teardown(layout: &Layout) -> Result<(), VolumeError> {
    let pod_dir = &layout.pod_dir;
    let meta = match fs::symlink_metadata(pod_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(VolumeError::io(
                format!("inspecting {}", pod_dir.display()),
                e,
            ))
        }
    };
    if !meta.is_dir() {
        return Err(VolumeError::Invalid(format!(
            "{} is not a directory; not following it",
            pod_dir.display()
        )));
    }
    for dir in [layout.subpaths(), layout.volumes()] {
        mounts::unmount_under(&dir)?;
        remove_tree(&dir, meta.dev())
            .map_err(|e| VolumeError::io(format!("removing {}", dir.display()), e))?;
    }
    tracing::info!(pod_dir = %pod_dir.display(), "pod volumes removed");
    Ok(())
}

/// Deletes `path` and below. Symlinks are removed, never followed; a
/// directory on another device (a mount that could not be unmounted) stops
/// the removal with an error rather than emptying someone else's files.
fn remove_tree(path: &Path, dev: u64) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    if meta.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is on another file system (still mounted?)",
            path.display()
        )));
    }
    for entry in fs::read_dir(path)? {
        remove_tree(&entry?.path(), dev)?;
    }
    fs::remove_dir(path)
}

/// Uids of pod directories holding volume state.
pub(crate) fn pod_dirs_with_volumes(pods: &Path) -> Result<Vec<String>, VolumeError> {
    let entries = match fs::read_dir(pods) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(VolumeError::io(format!("reading {}", pods.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| VolumeError::io(format!("reading {}", pods.display()), e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_dir || super::check_component("pod uid", &name).is_err() {
            continue;
        }
        let dir: PathBuf = entry.path();
        let has = |d: &str| fs::symlink_metadata(dir.join(d)).is_ok();
        if has("volumes") || has("volume-subpaths") {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn removal_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        let layout = Layout {
            pod_dir: t.path().join("pods/uid1"),
        };
        let v = layout.volumes().join("kubernetes.io~empty-dir/v");
        fs::create_dir_all(&v).unwrap();
        symlink(&outside, v.join("link")).unwrap();
        symlink(&outside, layout.pod_dir.join("etc-hosts-like")).unwrap();
        teardown(&layout).unwrap();
        assert!(outside.join("keep").exists());
        assert!(!layout.volumes().exists());
        assert!(layout.pod_dir.exists(), "only the volume dirs are ours");
        teardown(&layout).unwrap();
        teardown(&Layout {
            pod_dir: t.path().join("pods/none"),
        })
        .unwrap();
    }

    #[test]
    fn lists_pod_dirs_with_volumes() {
        let t = tempfile::tempdir().unwrap();
        let pods = t.path().join("pods");
        fs::create_dir_all(pods.join("a/volumes")).unwrap();
        fs::create_dir_all(pods.join("b/containers")).unwrap();
        fs::create_dir_all(pods.join("c/volume-subpaths")).unwrap();
        symlink(pods.join("a"), pods.join("d")).unwrap();
        let mut found = pod_dirs_with_volumes(&pods).unwrap();
        found.sort();
        assert_eq!(found, ["a", "c"]);
        assert!(pod_dirs_with_volumes(&t.path().join("none"))
            .unwrap()
            .is_empty());
    }
}
