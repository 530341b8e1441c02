//! The isolated root the install tests run in: the host's `/` under an
//! overlay (upper and work dirs in a `/dev/shm` temp dir) mounted in a
//! private mount namespace (`unshare --mount`), entered with `chroot`; init
//! system stubs recording their calls; snapshots of the upper dir.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{require_tool, NANOKUBE};

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Init {
    Systemd,
    Openrc,
    None,
}

/// Enters the overlay root and runs the rest of the arguments there.
/// $1 test dir, $2 binary on the host, $3 "systemd" or not.
const ENTER: &str = r#"
set -e
T=$1; BIN=$2; INIT=$3; shift 3
M=$T/merged
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$M"
mount --rbind /dev "$M/dev"
mount -t proc proc "$M/proc"
mount --rbind /sys "$M/sys"
mount -t tmpfs tmpfs "$M/run"
mount --bind "$T/side" "$M/tmp"
mount --bind "$BIN" "$M/tmp/bin/nanokube"
# A checkout's release build, when the test made one.
if [ -e "$T/side/src/target/release/nanokube" ]; then
    mount --bind "$BIN" "$M/tmp/src/target/release/nanokube"
fi
if [ "$INIT" = systemd ]; then mkdir -p "$M/run/systemd/system"; fi
exec chroot "$M" "$@"
"#;

const SYSTEMCTL: &str = r#"#!/bin/sh
echo "systemctl $*" >>/tmp/calls
verb=$1; shift
if [ "$1" = --quiet ]; then shift; fi
case "$verb" in
    daemon-reload | reset-failed) ;;
    enable) touch "/tmp/state/enabled-$1" ;;
    disable) rm -f "/tmp/state/enabled-$1" ;;
    is-enabled) test -e "/tmp/state/enabled-$1" ;;
    start | restart) touch "/tmp/state/active-$1" ;;
    stop) rm -f "/tmp/state/active-$1" ;;
    is-active) test -e "/tmp/state/active-$1" ;;
    *) echo "systemctl stub: unexpected $verb" >&2; exit 2 ;;
esac
"#;

const RC_UPDATE: &str = r#"#!/bin/sh
echo "rc-update $*" >>/tmp/calls
case "$1" in
    add) touch "/tmp/state/enabled-$2" ;;
    delete) rm -f "/tmp/state/enabled-$2" ;;
    show) for f in /tmp/state/enabled-*; do [ -e "$f" ] && echo " ${f#/tmp/state/enabled-} | $2"; done; true ;;
    *) exit 2 ;;
esac
"#;

const RC_SERVICE: &str = r#"#!/bin/sh
echo "rc-service $*" >>/tmp/calls
case "$2" in
    start | restart) touch "/tmp/state/active-$1" ;;
    stop) rm -f "/tmp/state/active-$1" ;;
    status) test -e "/tmp/state/active-$1" ;;
    *) exit 2 ;;
esac
"#;

/// One isolated root; dropping it removes the temp dir (the mounts died
/// with their namespaces).
pub(super) struct Root {
    dir: tempfile::TempDir,
    init: Init,
    /// What the upper dir held before the install.
    pub(super) before: BTreeMap<String, String>,
}

impl Root {
    pub(super) fn new(init: Init) -> Root {
        require_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("nk-install-")
            .tempdir_in("/dev/shm")
            .expect("temp dir in /dev/shm");
        let t = dir.path();
        for d in [
            "upper",
            "work",
            "merged",
            "side/stubs",
            "side/state",
            "side/bin",
            "side/src/packaging",
        ] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        std::fs::write(t.join("side/bin/nanokube"), b"").unwrap();
        std::fs::write(t.join("side/calls"), b"").unwrap();
        // The checkout's script and packaging/, as a checkout would have them.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy(
            &repo.join("install.sh"),
            &t.join("side/src/install.sh"),
            0o755,
        );
        for f in packaging_files() {
            copy(
                &repo.join("packaging").join(&f),
                &t.join("side/src/packaging").join(f),
                0o644,
            );
        }
        let stubs = t.join("side/stubs");
        match init {
            Init::Systemd => write_exec(&stubs.join("systemctl"), SYSTEMCTL),
            Init::Openrc => {
                write_exec(&stubs.join("openrc-run"), "#!/bin/sh\nexit 0\n");
                write_exec(&stubs.join("rc-update"), RC_UPDATE);
                write_exec(&stubs.join("rc-service"), RC_SERVICE);
            }
            Init::None => {}
        }
        let mut root = Root {
            dir,
            init,
            before: BTreeMap::new(),
        };
        // A fresh machine: state other nanokube runs left on the host (a
        // kubeconfig in /etc/nanokube) is hidden by whiteouts first.
        let out = root.run(
            "rm -rf /etc/nanokube /var/lib/nanokube /var/log/nanokube.log /var/log/nanokube-agent.log",
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        root.before = root.snapshot();
        root
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `sh -c script` in the root with only `env` (and PATH, HOME).
    pub(super) fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let init = if self.init == Init::Systemd {
            "systemd"
        } else {
            "-"
        };
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--fork"])
            .args(["/bin/sh", "-c", ENTER, "enter"])
            .arg(self.dir.path())
            .arg(NANOKUBE)
            .arg(init)
            .args(["/usr/bin/env", "-i"])
            .arg("PATH=/tmp/stubs:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .arg("HOME=/root");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(["/bin/sh", "-c", script]);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("run unshare (util-linux)");
        eprintln!("--- {script}\n{}", text(&out));
        out
    }

    pub(super) fn install(&self, env: &[(&str, &str)], args: &str) -> Output {
        let mut all = vec![
            ("INSTALL_NANOKUBE_BIN", "/tmp/bin/nanokube"),
            ("INSTALL_NANOKUBE_SKIP_DOWNLOAD", "true"),
            ("INSTALL_NANOKUBE_SKIP_DEPS", "true"),
        ];
        all.extend_from_slice(env);
        self.run(&format!("/tmp/src/install.sh {args}"), &all)
    }

    /// Every entry of the upper dir: path → kind, mode, size, mtime.
    /// Directories the host's `/` has are copy-up residue and left out.
    pub(super) fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.path("upper"), "", &mut out);
        out
    }

    /// Files (not directories, not whiteouts) the install added, with modes.
    pub(super) fn added_files(&self) -> BTreeMap<String, u32> {
        self.snapshot()
            .into_iter()
            .filter(|(k, v)| v.starts_with("file") && !self.before.contains_key(k))
            .map(|(k, _)| {
                let mode = std::fs::symlink_metadata(self.path("upper").join(&k))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o7777;
                (k, mode)
            })
            .collect()
    }

    pub(super) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path("upper").join(rel))
            .unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// The init stubs' calls since the last take.
    pub(super) fn take_calls(&self) -> Vec<String> {
        let path = self.path("side/calls");
        let calls = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
        calls.lines().map(str::to_string).collect()
    }

    /// Uninstalls with `script` and checks the root is as before the install.
    pub(super) fn uninstall_and_compare(&self, script: &str) {
        let out = self.run(script, &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            self.snapshot(),
            self.before,
            "the root differs from before the install"
        );
        self.assert_no_temp_left();
    }

    pub(super) fn assert_no_temp_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path("side"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("nanokube-install."))
            .collect();
        assert!(left.is_empty(), "install.sh left temp dirs: {left:?}");
    }
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let ft = meta.file_type();
        if ft.is_dir() {
            if !Path::new("/").join(&rel).is_dir() {
                out.insert(rel.clone(), "dir".into());
            }
            walk(&e.path(), &rel, out);
        } else if ft.is_char_device() && meta.rdev() == 0 {
            out.insert(rel, "whiteout".into());
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            out.insert(rel, format!("link {}", target.display()));
        } else {
            out.insert(
                rel,
                format!(
                    "file {:o} {} {}.{}",
                    meta.mode() & 0o7777,
                    meta.len(),
                    meta.mtime(),
                    meta.mtime_nsec()
                ),
            );
        }
    }
}

pub(super) fn packaging_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh") || n.ends_with(".service") || n.ends_with(".openrc"))
        .collect()
}

pub(super) fn copy(from: &Path, to: &Path, mode: u32) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub(super) fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub(super) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn require_prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the install tests need root (mount namespaces, overlayfs, chroot): run them as root (CI does)"
    );
    require_tool("unshare", "util-linux");
    require_tool("chroot", "coreutils");
    require_tool("sha256sum", "coreutils");
    assert!(
        std::fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .contains("overlay"),
        "the install tests need overlayfs in the kernel"
    );
    assert!(
        Path::new("/dev/shm").is_dir(),
        "the install tests need /dev/shm"
    );
}

pub(super) fn expect_files(root: &Root, expected: &[(&str, u32)]) {
    let want: BTreeMap<String, u32> = expected.iter().map(|(p, m)| (p.to_string(), *m)).collect();
    assert_eq!(root.added_files(), want, "the files install.sh wrote");
}

pub(super) fn assert_same_binary(root: &Root) {
    let installed = std::fs::read(root.path("upper/usr/local/bin/nanokube")).unwrap();
    assert!(
        installed == std::fs::read(NANOKUBE).unwrap(),
        "the installed binary differs from the built one"
    );
}
