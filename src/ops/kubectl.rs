//! `nanokube kubectl`: kubectl from PATH with `KUBECONFIG` set to the
//! admin kubeconfig unless the caller set it. An install may link
//! `kubectl` to nanokube itself; that link is skipped, never run.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::config::{CommonArgs, LogFormat};

use super::Error;

/// The file identity (device, inode) of a path, links followed.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The first executable `kubectl` on `path` that is not `this` (the
/// running nanokube, seen through any link).
pub(super) fn find(path: &OsStr, this: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let me = this.and_then(identity);
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join("kubectl"))
        .find(|p| {
            let executable = std::fs::metadata(p)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            executable && (me.is_none() || identity(p) != me)
        })
}

/// `$KUBECONFIG` when set, else the admin kubeconfig the server writes:
/// `/etc/nanokube/nanokube.yaml` as root, `<data-dir>/nanokube.yaml`
/// otherwise (data dir from `NANOKUBE_DATA_DIR` or the default).
pub(super) fn kubeconfig(env: Option<OsString>, data_dir_env: Option<OsString>) -> OsString {
    if let Some(k) = env.filter(|k| !k.is_empty()) {
        return k;
    }
    let common = CommonArgs {
        config: PathBuf::new(),
        debug: false,
        log_format: LogFormat::Text,
        data_dir: data_dir_env.filter(|d| !d.is_empty()).map(PathBuf::from),
    };
    crate::pki::default_kubeconfig_path(&common.data_dir()).into_os_string()
}

pub fn run(args: Vec<OsString>) -> Result<i32, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let this = std::env::current_exe().ok();
    let kubectl = find(&path, this.as_deref()).ok_or(Error::KubectlMissing)?;
    let config = kubeconfig(
        std::env::var_os("KUBECONFIG"),
        std::env::var_os("NANOKUBE_DATA_DIR"),
    );
    // exec: kubectl gets the terminal and signals, and its exit code is ours.
    let source = std::process::Command::new(&kubectl)
        .args(args)
        .env("KUBECONFIG", config)
        .exec();
    Err(Error::Exec {
        path: kubectl,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_link_to_ourselves_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let me = dir.path().join("nanokube");
        executable(&me);
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        std::os::unix::fs::symlink(&me, a.join("kubectl")).unwrap();
        std::fs::write(b.join("kubectl"), "not executable").unwrap();
        executable(&c.join("kubectl"));
        let path = std::env::join_paths([&a, &b, &c]).unwrap();
        assert_eq!(find(&path, Some(&me)), Some(c.join("kubectl")));
        let only_me = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(find(&only_me, Some(&me)), None);
        assert_eq!(find(OsStr::new(""), Some(&me)), None);
    }

    #[test]
    fn kubeconfig_from_env_or_the_admin_one() {
        assert_eq!(
            kubeconfig(Some("/k.yaml".into()), None),
            OsString::from("/k.yaml")
        );
        let default = kubeconfig(Some("".into()), Some("/data".into()));
        let want = if nix::unistd::geteuid().is_root() {
            "/etc/nanokube/nanokube.yaml"
        } else {
            "/data/nanokube.yaml"
        };
        assert_eq!(default, OsString::from(want));
    }
}
