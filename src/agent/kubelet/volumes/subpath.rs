//! subPath and subPathExpr, with upstream's defences against a container
//! that plants symlinks in a writable volume to reach the host:
//!
//! 1. the path must be relative and must not step back (`..`);
//! 2. a missing subPath is created as a directory (with the volume root's
//!    mode) by walking the volume with `openat(O_NOFOLLOW)`;
//! 3. the path with its symlinks resolved must stay inside the volume;
//! 4. the resolved path is opened component by component without following
//!    symlinks, and that open file is bind-mounted to
//!    `volume-subpaths/<volume>/<container>/<index>` via `/proc/self/fd`,
//!    so what the runtime mounts is what was checked, even if the
//!    container swaps a directory for a symlink afterwards.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};

use super::{apply, mounts, Layout, VolumeError};

/// Upstream's variable expansion (`$(VAR)`, `$$` escapes `$`) with the
/// subPathExpr rule that every referenced variable must have a value.
pub(crate) fn expand(expr: &str, env: &[(String, String)]) -> Result<String, String> {
    let lookup = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut missing = std::collections::BTreeSet::new();
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.push_str(&expr[checkpoint..cursor]);
            let rest = &expr[cursor + 1..];
            let advance = match b[cursor + 1] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name).filter(|v| !v.is_empty()) {
                            Some(v) => out.push_str(v),
                            None => {
                                missing.insert(name.to_string());
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // Not an expression: the `$` stays, the next byte is
                    // copied with the rest.
                    out.push('$');
                    0
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&expr[checkpoint.min(expr.len())..]);
    if !missing.is_empty() {
        let names: Vec<_> = missing.into_iter().collect();
        return Err(format!("missing value for {}", names.join(", ")));
    }
    Ok(out)
}

pub(crate) fn validate(sub: &str) -> Result<(), VolumeError> {
    if sub.starts_with('/') {
        return Err(VolumeError::Invalid(format!(
            "error SubPath `{sub}` must not be an absolute path"
        )));
    }
    if sub.split('/').any(|c| c == "..") {
        return Err(VolumeError::Invalid(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        )));
    }
    if sub.contains('\0') {
        return Err(VolumeError::Invalid(format!("invalid SubPath {sub:?}")));
    }
    Ok(())
}

/// The host path to give the runtime for `sub` inside `volume`.
pub(crate) fn prepare(
    layout: &Layout,
    volume: &Path,
    sub: &str,
    volume_name: &str,
    container: &str,
    index: usize,
) -> Result<PathBuf, VolumeError> {
    super::check_component("container name", container)?;
    // Details stay in the log: they may describe the host's file system.
    let refuse = |what: &str, detail: String| {
        tracing::warn!(volume = volume_name, container, sub, detail, "{what}");
        VolumeError::Invalid(format!(
            "{what} for volumeMount {volume_name:?} of container {container:?}"
        ))
    };
    let base = fs::canonicalize(volume)
        .map_err(|e| refuse("failed to prepare subPath", format!("volume path: {e}")))?;
    let full = base.join(sub);
    if fs::metadata(&full).is_err() {
        let perm = fs::metadata(&base)
            .map(|m| m.mode() & 0o7777)
            .unwrap_or(0o755);
        make_dir(&base, &full, perm)
            .map_err(|e| refuse("failed to create subPath directory", e))?;
    }
    let resolved =
        fs::canonicalize(&full).map_err(|e| refuse("failed to prepare subPath", e.to_string()))?;
    if !resolved.starts_with(&base) {
        return Err(refuse(
            "failed to prepare subPath",
            format!(
                "subpath {} not within volume path {}",
                resolved.display(),
                base.display()
            ),
        ));
    }
    let fd =
        open_no_follow(&base, &resolved).map_err(|e| refuse("failed to prepare subPath", e))?;
    let target = layout
        .subpaths()
        .join(volume_name)
        .join(container)
        .join(index.to_string());
    bind(&fd, &target).map_err(|e| refuse("failed to prepare subPath", e.to_string()))?;
    Ok(target)
}

const WALK: OFlag = OFlag::O_PATH
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn kind(fd: &OwnedFd) -> Result<SFlag, String> {
    let st = fstat(fd).map_err(|e| e.to_string())?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Relative components of `path` below `base` (both resolved).
fn below<'a>(base: &Path, path: &'a Path) -> Result<Vec<&'a std::ffi::OsStr>, String> {
    let rel = path
        .strip_prefix(base)
        .map_err(|_| format!("{} not within {}", path.display(), base.display()))?;
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(format!("unexpected component in {}", rel.display())),
        })
        .collect()
}

/// Opens `path` (inside `base`, symlinks already resolved) without
/// following any symlink on the way.
fn open_no_follow(base: &Path, path: &Path) -> Result<OwnedFd, String> {
    let mut fd = open(base, WALK | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| format!("opening {}: {e}", base.display()))?;
    for c in below(base, path)? {
        let next =
            openat(&fd, c, WALK, Mode::empty()).map_err(|e| format!("opening {c:?}: {e}"))?;
        if kind(&next)? == SFlag::S_IFLNK {
            return Err(format!("unexpected symlink found at {c:?}"));
        }
        fd = next;
    }
    Ok(fd)
}

/// Creates the missing directories of `full` under `base`: the existing
/// part is resolved and checked to stay inside, then every new directory
/// is made relative to an fd of its parent, never through a symlink.
fn make_dir(base: &Path, full: &Path, perm: u32) -> Result<(), String> {
    let mut existing = full.to_path_buf();
    let mut missing = Vec::new();
    while fs::symlink_metadata(&existing).is_err() {
        let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
            return Err("no existing parent".into());
        };
        missing.push(name);
        if !existing.pop() {
            return Err("no existing parent".into());
        }
    }
    let existing = fs::canonicalize(&existing).map_err(|e| e.to_string())?;
    if !existing.starts_with(base) {
        return Err(format!(
            "{} not within volume path {}",
            existing.display(),
            base.display()
        ));
    }
    let mut fd = open_no_follow(base, &existing)?;
    if kind(&fd)? != SFlag::S_IFDIR {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let mode = Mode::from_bits_truncate(perm);
    for name in missing.iter().rev() {
        match mkdirat(&fd, name.as_os_str(), mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(format!("mkdir {name:?}: {e}")),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = openat(&fd, name.as_os_str(), flags, Mode::empty())
            .map_err(|e| format!("opening {name:?}: {e}"))?;
        // The umask narrowed mkdirat's mode; the fd is the dir just made.
        fchmod(&dir, mode).map_err(|e| format!("chmod {name:?}: {e}"))?;
        fd = dir;
    }
    Ok(())
}

/// Bind-mounts `fd` at `target` unless it is already mounted there (a
/// restarted container reuses its subPath mount).
fn bind(fd: &OwnedFd, target: &Path) -> Result<(), VolumeError> {
    let is_dir =
        kind(fd).map_err(|e| VolumeError::io("fstat", io::Error::other(e)))? == SFlag::S_IFDIR;
    let mounted = mounts::is_mount_point(target)
        .map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?;
    if mounted {
        let st = fstat(fd).map_err(|e| VolumeError::io("fstat", e.into()))?;
        let same = fs::metadata(target)
            .is_ok_and(|m| m.dev() == st.st_dev as u64 && m.ino() == st.st_ino as u64);
        if same {
            return Ok(());
        }
        mounts::unmount(target)?;
    }
    if let Some(parent) = target.parent() {
        apply::create_dir_all(parent)?;
    }
    let ctx = |what: &str| format!("{what} {}", target.display());
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() == is_dir => {}
        Ok(m) => {
            let removed = if m.is_dir() {
                fs::remove_dir(target)
            } else {
                fs::remove_file(target)
            };
            removed.map_err(|e| VolumeError::io(ctx("removing"), e))?;
            create_target(target, is_dir)?;
        }
        Err(_) => create_target(target, is_dir)?,
    }
    mounts::bind_fd(fd, target)
}

fn create_target(target: &Path, is_dir: bool) -> Result<(), VolumeError> {
    let made = if is_dir {
        fs::create_dir(target)
    } else {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(target)
            .map(drop)
    };
    made.map_err(|e| VolumeError::io(format!("creating {}", target.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_upstream() {
        let e = env(&[("A", "x"), ("B", "y"), ("A", "z"), ("EMPTY", "")]);
        assert_eq!(expand("$(A)/$(B)", &e).unwrap(), "z/y");
        assert_eq!(expand("$$(A)", &e).unwrap(), "$(A)");
        assert_eq!(expand("a$b$", &e).unwrap(), "a$b$");
        assert_eq!(expand("$(A", &e).unwrap(), "$(A");
        assert_eq!(expand("é$(B)é", &e).unwrap(), "éyé");
        assert_eq!(
            expand("$(NOPE)/$(EMPTY)/$(A)", &e).unwrap_err(),
            "missing value for EMPTY, NOPE"
        );
    }

    #[test]
    fn validation() {
        validate("a/b").unwrap();
        validate("a..b/c").unwrap();
        assert!(validate("/abs").is_err());
        assert!(validate("a/../b").is_err());
        assert!(validate("..").is_err());
    }
}
