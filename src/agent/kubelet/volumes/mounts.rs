//! The mount table and the few mounts the volume manager makes: tmpfs for
//! memory-backed volumes, bind mounts for subPaths, and the shared
//! propagation of the pods directory that `HostToContainer` and
//! `Bidirectional` mount propagation need.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::VolumeError;

/// Every mount point of this process's mount namespace, in table order.
pub(super) fn mount_points() -> io::Result<Vec<PathBuf>> {
    Ok(mount_table()?.into_iter().map(|(p, _)| p).collect())
}

/// Mount points with whether each is shared (a `shared:N` tag).
fn mount_table() -> io::Result<Vec<(PathBuf, bool)>> {
    let table = std::fs::read("/proc/self/mountinfo")?;
    Ok(table
        .split(|&c| c == b'\n')
        .filter_map(parse_line)
        .collect())
}

/// The mount point (fifth field) of one `/proc/self/mountinfo` line and
/// whether its optional fields (seventh up to `-`) mark it shared.
fn parse_line(line: &[u8]) -> Option<(PathBuf, bool)> {
    let mut fields = line.split(|&c| c == b' ');
    let point = fields.nth(4)?;
    let shared = fields
        .skip(1)
        .take_while(|f| *f != b"-")
        .any(|f| f.starts_with(b"shared:"));
    Some((PathBuf::from(unescape(point)), shared))
}

/// The kernel escapes space, tab, newline and backslash as `\ooo`.
fn unescape(b: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u16, |acc, d| acc * 8 + u16::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    OsString::from_vec(out)
}

pub(super) fn is_mount_point(path: &Path) -> io::Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == path))
}

/// Mounts a tmpfs at `dir` (`size=` only with a limit: upstream leaves the
/// kernel default, half of the memory, otherwise).
pub(super) fn mount_tmpfs(dir: &Path, size: Option<u64>) -> Result<(), VolumeError> {
    let data = size.map(|s| format!("size={s}"));
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        data.as_deref(),
    )
    .map_err(|e| VolumeError::io(format!("mounting tmpfs at {}", dir.display()), e.into()))?;
    tracing::debug!(dir = %dir.display(), ?size, "tmpfs mounted");
    Ok(())
}

/// Bind-mounts the file or directory open as `fd` (opened without
/// following symlinks) onto `target`, through `/proc/self/fd`: what is
/// mounted is what was checked, whatever the path names now.
pub(super) fn bind_fd(fd: &OwnedFd, target: &Path) -> Result<(), VolumeError> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| VolumeError::io(format!("bind mount at {}", target.display()), e.into()))
}

/// Unmounts one mount point; a busy one is detached (the pod is gone, so
/// whoever still holds it keeps its view until it lets go). `false` when
/// nothing was mounted there.
pub(super) fn unmount(path: &Path) -> Result<bool, VolumeError> {
    let fail = |e: Errno| VolumeError::io(format!("unmounting {}", path.display()), e.into());
    match umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(false),
        Err(Errno::EBUSY) => match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => Ok(true),
            Err(Errno::EINVAL) => Ok(false),
            Err(e) => Err(fail(e)),
        },
        Err(e) => Err(fail(e)),
    }
}

/// Unmounts everything mounted at or below `prefix`, deepest first, until
/// the table shows nothing there (mounts may be stacked). Entries that
/// cannot be reached by their path (covered by a later mount of a parent)
/// end the loop: they hide nothing the removal could reach.
pub(super) fn unmount_under(prefix: &Path) -> Result<(), VolumeError> {
    loop {
        let mut under: Vec<PathBuf> = mount_points()
            .map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?
            .into_iter()
            .filter(|m| m.starts_with(prefix))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        under.dedup();
        let mut progress = false;
        for m in &under {
            if unmount(m)? {
                tracing::debug!(path = %m.display(), "unmounted");
                progress = true;
            }
        }
        if !progress {
            if !under.is_empty() {
                tracing::warn!(prefix = %prefix.display(), left = under.len(), "unreachable mounts left below");
            }
            return Ok(());
        }
    }
}

/// Makes `dir` a shared mount, bind-mounting it onto itself first when it
/// is not a mount point: the runtime refuses `HostToContainer` and
/// `Bidirectional` propagation from a private mount (upstream's kubelet
/// makes its whole root rshared; doing it per volume keeps every mount
/// below the pod directory, where teardown finds it).
pub(super) fn make_shared(dir: &Path) -> Result<(), VolumeError> {
    let fail = |e: Errno| VolumeError::io(format!("making {} shared", dir.display()), e.into());
    let table = mount_table().map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?;
    let entry = table.iter().rev().find(|(p, _)| p == dir);
    match entry {
        Some((_, true)) => return Ok(()),
        Some((_, false)) => {}
        None => mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(fail)?,
    }
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail)?;
    tracing::debug!(dir = %dir.display(), "volume made shared for mount propagation");
    Ok(())
}

#[cfg(test)]
pub(super) fn is_shared(path: &Path) -> bool {
    mount_table()
        .unwrap()
        .iter()
        .rev()
        .any(|(p, shared)| p == path && *shared)
}

/// Unmounts everything below a test directory, even when the test fails.
#[cfg(test)]
pub(crate) struct UnmountGuard(pub PathBuf);

#[cfg(test)]
impl Drop for UnmountGuard {
    fn drop(&mut self) {
        if let Err(e) = unmount_under(&self.0) {
            eprintln!("test cleanup: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let line = b"36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw";
        assert_eq!(parse_line(line), Some((PathBuf::from("/mnt two"), false)));
        let shared = b"36 35 98:0 / /x rw shared:7 master:1 - ext4 /dev/root rw";
        assert_eq!(parse_line(shared), Some((PathBuf::from("/x"), true)));
        assert_eq!(unescape(b"a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape(b"trailing\\"), "trailing\\");
        assert_eq!(unescape(b"x\\04"), "x\\04");
        assert_eq!(parse_line(b""), None);
    }

    #[test]
    fn root_is_a_mount_point() {
        assert!(is_mount_point(Path::new("/")).unwrap());
    }

    #[test]
    fn tmpfs_mount_and_unmount_under() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let _guard = UnmountGuard(root.clone());
        let a = root.join("a");
        std::fs::create_dir(&a).unwrap();
        mount_tmpfs(&a, Some(1 << 20)).unwrap();
        let b = a.join("b");
        std::fs::create_dir(&b).unwrap();
        mount_tmpfs(&b, None).unwrap();
        assert!(is_mount_point(&a).unwrap() && is_mount_point(&b).unwrap());
        unmount_under(&root).unwrap();
        assert!(!is_mount_point(&a).unwrap());
        assert!(!b.exists(), "b lived on the tmpfs");
    }
}
