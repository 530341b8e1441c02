//! What `check-config` reads about the machine, all under one root (`/`,
//! or a directory in tests). Nothing here fails: a file that cannot be
//! read is `None`, and the checks report it (a static binary under
//! qemu-user may see no /proc/config.gz, or no /sys/fs/cgroup).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct Machine {
    root: PathBuf,
    /// Where binaries are looked for (PATH, then the sbin directories a
    /// non-root PATH often lacks).
    search: Vec<PathBuf>,
    kernel_config: Option<PathBuf>,
}

/// A kernel config: symbol (without `CONFIG_`) → `y` or `m`.
pub struct KernelConfig {
    pub source: String,
    symbols: HashMap<String, char>,
}

impl KernelConfig {
    pub fn parse(source: String, text: &str) -> KernelConfig {
        let symbols = text
            .lines()
            .filter_map(|l| l.strip_prefix("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .filter_map(|(k, v)| match v.trim() {
                "y" => Some((k.to_string(), 'y')),
                "m" => Some((k.to_string(), 'm')),
                _ => None,
            })
            .collect();
        KernelConfig { source, symbols }
    }

    /// `Some('y')` built in, `Some('m')` a module, `None` not set.
    pub fn get(&self, symbol: &str) -> Option<char> {
        self.symbols.get(symbol).copied()
    }
}

const SBIN: [&str; 4] = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin"];

impl Machine {
    /// This machine, binaries searched on `$PATH`.
    pub fn real(kernel_config: Option<PathBuf>) -> Machine {
        let path = std::env::var_os("PATH").unwrap_or_default();
        Machine::at(Path::new("/"), &path, kernel_config)
    }

    /// A machine whose files are under `root`.
    pub fn at(root: &Path, path: &std::ffi::OsStr, kernel_config: Option<PathBuf>) -> Machine {
        let mut search: Vec<PathBuf> = std::env::split_paths(path)
            .filter(|p| p.is_absolute())
            .collect();
        search.extend(SBIN.iter().map(PathBuf::from));
        search.dedup();
        Machine {
            root: root.to_path_buf(),
            search,
            kernel_config,
        }
    }

    fn under(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.under(path)).ok()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.under(path).exists()
    }

    /// `uname -r` (from /proc, so a missing /proc is seen, not guessed).
    pub fn kernel_release(&self) -> Option<String> {
        self.read("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
    }

    /// The kernel config from the places k3s's check-config looks;
    /// the second value lists where it looked.
    pub fn kernel_config(&self, release: Option<&str>) -> (Option<KernelConfig>, String) {
        let mut tries: Vec<String> = Vec::new();
        if let Some(p) = &self.kernel_config {
            tries.push(p.display().to_string());
        } else {
            tries.push("/proc/config.gz".into());
            if let Some(r) = release {
                tries.push(format!("/boot/config-{r}"));
                tries.push(format!("/usr/src/linux-{r}/.config"));
            }
            tries.push("/usr/src/linux/.config".into());
        }
        for t in &tries {
            let path = if self.kernel_config.is_some() {
                PathBuf::from(t)
            } else {
                self.under(t)
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let text = if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut s = String::new();
                if flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut s)
                    .is_err()
                {
                    continue;
                }
                s
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            };
            return (
                Some(KernelConfig::parse(t.clone(), &text)),
                tries.join(", "),
            );
        }
        (None, tries.join(", "))
    }

    /// The first executable `name` on the search path.
    pub fn binary(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.search
            .iter()
            .map(|d| self.under(&d.join(name).to_string_lossy()))
            .find(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }

    /// The first of `dirs` holding every one of `files`.
    pub fn dir_with(&self, dirs: &[&str], files: &[&str]) -> Option<String> {
        dirs.iter()
            .find(|d| {
                files
                    .iter()
                    .all(|f| self.under(&format!("{d}/{f}")).is_file())
            })
            .map(|d| d.to_string())
    }
}
