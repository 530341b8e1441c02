//! `fsGroup`: upstream's SetVolumeOwnership. Every file and directory of
//! the volume gets the group; files gain g+rw (g+r when the volume is
//! read-only), directories also g+x and setgid so new files inherit the
//! group. Symlinks are re-grouped but never followed, and the walk stays
//! on the volume's file system.

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use super::VolumeError;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

fn mask(read_only: bool, dir: bool) -> u32 {
    let m = if read_only { RO_MASK } else { RW_MASK };
    if dir {
        m | EXEC_MASK | SETGID
    } else {
        m
    }
}

/// Whether the root already looks done (`fsGroupChangePolicy:
/// OnRootMismatch`).
fn root_matches(dir: &Path, gid: u32, read_only: bool) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| {
        let want = mask(read_only, m.is_dir());
        m.gid() == gid && m.mode() & want == want
    })
}

pub(crate) fn set_volume_ownership(
    dir: &Path,
    gid: u32,
    read_only: bool,
    on_root_mismatch: bool,
) -> Result<(), VolumeError> {
    if on_root_mismatch && root_matches(dir, gid, read_only) {
        return Ok(());
    }
    let root = fs::symlink_metadata(dir)
        .map_err(|e| VolumeError::io(format!("inspecting {}", dir.display()), e))?;
    walk(dir, root.dev(), gid, read_only)
        .map_err(|e| VolumeError::io(format!("setting fsGroup on {}", dir.display()), e))?;
    tracing::debug!(dir = %dir.display(), gid, "volume ownership set");
    Ok(())
}

/// The volume root only (for the atomic writer, whose version dirs are
/// walked on their own).
pub(crate) fn set_volume_ownership_of_root(
    dir: &Path,
    gid: u32,
    read_only: bool,
) -> Result<(), VolumeError> {
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| VolumeError::io(format!("inspecting {}", dir.display()), e))?;
    change(dir, &meta, gid, read_only)
        .map_err(|e| VolumeError::io(format!("setting fsGroup on {}", dir.display()), e))
}

fn walk(path: &Path, dev: u64, gid: u32, read_only: bool) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    change(path, &meta, gid, read_only)?;
    if meta.is_dir() && meta.dev() == dev {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let child = entry.path();
            let m = fs::symlink_metadata(&child)?;
            if m.is_dir() && m.dev() != dev {
                // Another file system mounted inside the volume.
                continue;
            }
            walk(&child, dev, gid, read_only)?;
        }
    }
    Ok(())
}

fn change(path: &Path, meta: &fs::Metadata, gid: u32, read_only: bool) -> io::Result<()> {
    lchown(path, None, Some(gid))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.mode() & 0o7777;
    let want = mode | mask(read_only, meta.is_dir());
    if want != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(want))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn groups_files_and_dirs_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        let v = dir.path().join("v");
        fs::create_dir_all(v.join("d")).unwrap();
        fs::write(v.join("d/f"), "x").unwrap();
        fs::set_permissions(v.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        symlink(outside.path(), v.join("escape")).unwrap();
        set_volume_ownership(&v, 777, false, false).unwrap();
        let f = fs::metadata(v.join("d/f")).unwrap();
        assert_eq!((f.gid(), f.mode() & 0o7777), (777, 0o660));
        let d = fs::metadata(v.join("d")).unwrap();
        assert_eq!(d.gid(), 777);
        assert_eq!(d.mode() & 0o2000, 0o2000);
        assert_ne!(fs::metadata(outside.path()).unwrap().gid(), 777);
        assert_eq!(fs::symlink_metadata(v.join("escape")).unwrap().gid(), 777);
        assert!(root_matches(&v, 777, false));
        // OnRootMismatch: a matching root skips the walk.
        fs::write(v.join("new"), "y").unwrap();
        lchown(v.join("new"), None, Some(0)).unwrap();
        set_volume_ownership(&v, 777, false, true).unwrap();
        assert_ne!(fs::metadata(v.join("new")).unwrap().gid(), 777);
    }
}
