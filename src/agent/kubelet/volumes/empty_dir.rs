//! emptyDir: a directory under the pod, or a tmpfs there for
//! `medium: Memory`; mode 0777 as upstream. Set up once: later calls find
//! the directory (or the mount) and leave it alone.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{mounts, ownership, VolumeError};

const MODE: u32 = 0o777;

/// `size`: the tmpfs size (memory medium only).
pub(crate) fn setup(
    dir: &Path,
    memory: bool,
    size: Option<u64>,
    fs_group: Option<u32>,
) -> Result<(), VolumeError> {
    let fresh = match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => false,
        Ok(_) => {
            return Err(VolumeError::Invalid(format!(
                "{} exists and is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            super::apply::create_dir_all(dir)?;
            true
        }
        Err(e) => return Err(VolumeError::io(format!("inspecting {}", dir.display()), e)),
    };
    let needs_setup = if memory {
        !mounts::is_mount_point(dir)
            .map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?
    } else {
        fresh
    };
    if !needs_setup {
        return Ok(());
    }
    if memory {
        mounts::mount_tmpfs(dir, size)?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(MODE))
        .map_err(|e| VolumeError::io(format!("chmod {}", dir.display()), e))?;
    if let Some(gid) = fs_group {
        ownership::set_volume_ownership(dir, gid, false, false)?;
    }
    tracing::debug!(dir = %dir.display(), memory, "emptyDir ready");
    Ok(())
}

/// Allocated bytes below `dir`: symlinks are not followed, other file
/// systems not entered (a tmpfs emptyDir is measured by its own mount).
pub(crate) fn usage(dir: &Path) -> io::Result<u64> {
    let root = fs::symlink_metadata(dir)?;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let m = match entry.metadata() {
                Ok(m) => m,
                // Deleted under our feet: nothing to count.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if m.dev() != root.dev() {
                continue;
            }
            total = total.saturating_add(m.blocks() * 512);
            if m.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total.saturating_add(root.blocks() * 512))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_dir_is_0777_and_left_alone_later() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/v");
        setup(&d, false, None, None).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o777);
        fs::write(d.join("data"), vec![1u8; 64 * 1024]).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        setup(&d, false, None, None).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o700);
        assert!(d.join("data").exists());
        assert!(usage(&d).unwrap() >= 64 * 1024);
    }

    #[test]
    fn memory_medium_mounts_a_sized_tmpfs_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let d = root.join("v");
        let _guard = mounts::UnmountGuard(root.clone());
        setup(&d, true, Some(4 << 20), Some(1234)).unwrap();
        assert!(mounts::is_mount_point(&d).unwrap());
        let m = fs::metadata(&d).unwrap();
        assert_eq!(m.mode() & 0o777, 0o777);
        assert_eq!(m.gid(), 1234);
        fs::write(d.join("f"), "x").unwrap();
        setup(&d, true, Some(4 << 20), None).unwrap();
        assert!(d.join("f").exists(), "a second setup must not remount");
        // The size limit holds.
        assert!(fs::write(d.join("big"), vec![0u8; 5 << 20]).is_err());
    }
}
