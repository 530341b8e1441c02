//! Reading the machine: CPUs (affinity and cgroup quota), memory
//! (`/proc/meminfo`), filesystems (statvfs), PIDs, and the identity the
//! Node reports in `nodeInfo`. Parsers are pure functions over file text.

use std::path::{Path, PathBuf};

/// The identity in `status.nodeInfo` that does not change while we run.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

pub fn identity() -> Identity {
    let first = |paths: &[&str]| {
        paths
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let kernel_version = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let os_image = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| os_release_pretty_name(&t))
        // Upstream's fallback when there is no os-release.
        .unwrap_or_else(|| "Linux".to_string());
    Identity {
        machine_id: first(&["/etc/machine-id", "/var/lib/dbus/machine-id"]),
        system_uuid: first(&["/sys/class/dmi/id/product_uuid"]),
        boot_id: first(&["/proc/sys/kernel/random/boot_id"]),
        kernel_version,
        os_image,
    }
}

/// `PRETTY_NAME` of an os-release file, unquoted.
pub fn os_release_pretty_name(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?
        .trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    let mut out = String::with_capacity(unquoted.len());
    let mut escaped = false;
    for c in unquoted.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meminfo {
    pub total: u64,
    pub available: u64,
}

pub fn parse_meminfo(text: &str) -> Option<Meminfo> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?.trim();
            let kib = rest.strip_suffix("kB").unwrap_or(rest).trim();
            kib.parse::<u64>().ok()?.checked_mul(1024)
        })
    };
    Some(Meminfo {
        total: field("MemTotal")?,
        available: field("MemAvailable")?,
    })
}

pub fn meminfo() -> Result<Meminfo, String> {
    let text = std::fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
    parse_meminfo(&text).ok_or_else(|| "/proc/meminfo has no MemTotal or MemAvailable".into())
}

/// CPUs this process may use, in millicores: the scheduler affinity,
/// lowered by a CFS quota of our cgroup (or an ancestor) if any.
pub fn cpu_millis() -> i64 {
    let cpus = affinity_cpus()
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1) as i64;
    let quota = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| cgroup_quota_millis(&t, Path::new("/sys/fs/cgroup")));
    let millis = cpus * 1000;
    quota.map_or(millis, |q| q.clamp(1, millis))
}

fn affinity_cpus() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let n = (0..nix::sched::CpuSet::count())
        .filter(|i| set.is_set(*i).unwrap_or(false))
        .count();
    (n > 0).then_some(n)
}

/// The smallest CFS quota on our cgroup's path, in millicores, reading the
/// files under `root` (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`).
pub fn cgroup_quota_millis(proc_self_cgroup: &str, root: &Path) -> Option<i64> {
    let mut found: Option<i64> = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let bases: Vec<PathBuf> = if controllers.is_empty() {
            vec![root.to_path_buf()]
        } else if controllers.split(',').any(|c| c == "cpu") {
            vec![
                root.join(controllers),
                root.join("cpu"),
                root.join("cpu,cpuacct"),
            ]
        } else {
            continue;
        };
        for base in bases {
            // Our cgroup and every ancestor may carry a quota.
            let mut dir = Some(Path::new(path.trim_start_matches('/')));
            while let Some(d) = dir {
                let cg = base.join(d);
                if let Some(q) = read_quota(&cg) {
                    found = Some(found.map_or(q, |f| f.min(q)));
                }
                dir = d.parent();
            }
        }
    }
    found
}

fn read_quota(dir: &Path) -> Option<i64> {
    if let Ok(max) = std::fs::read_to_string(dir.join("cpu.max")) {
        return parse_cpu_max(&max);
    }
    let quota = std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok()?;
    let period = std::fs::read_to_string(dir.join("cpu.cfs_period_us")).ok()?;
    quota_millis(quota.trim().parse().ok()?, period.trim().parse().ok()?)
}

/// cgroup v2 `cpu.max`: `max 100000` (no limit) or `150000 100000`.
pub fn parse_cpu_max(text: &str) -> Option<i64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: i64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
    quota_millis(quota.parse().ok()?, period)
}

fn quota_millis(quota: i64, period: i64) -> Option<i64> {
    (quota > 0 && period > 0).then(|| (quota * 1000 + period - 1) / period)
}

/// Size and free space of one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub capacity: u64,
    /// Available to unprivileged users, as upstream's `available`.
    pub available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// statvfs of the filesystem holding `path` (or its nearest existing
/// ancestor: the agent directory may not exist yet on a first start).
pub fn fs_stats(path: &Path) -> Result<FsStats, String> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let st = nix::sys::statvfs::statvfs(existing)
        .map_err(|e| format!("statvfs {}: {e}", existing.display()))?;
    let frag = st.fragment_size() as u64;
    Ok(FsStats {
        capacity: (st.blocks() as u64).saturating_mul(frag),
        available: (st.blocks_available() as u64).saturating_mul(frag),
        inodes: st.files() as u64,
        inodes_free: st.files_available() as u64,
    })
}

/// The PID limit and how many tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidStats {
    pub max: u64,
    pub running: u64,
}

/// As upstream's pidlimit: the limit is the lower of `pid_max` and
/// `threads-max`; the count is every task (threads included), which the
/// fourth field of `/proc/loadavg` (`running/total`) carries.
pub fn pid_stats() -> Result<PidStats, String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let num = |p: &str| -> Result<u64, String> {
        read(p)?
            .trim()
            .parse()
            .map_err(|_| format!("{p}: not a number"))
    };
    let pid_max = num("/proc/sys/kernel/pid_max")?;
    let max = num("/proc/sys/kernel/threads-max").map_or(pid_max, |t| t.min(pid_max));
    let running = parse_loadavg_tasks(&read("/proc/loadavg")?)
        .ok_or_else(|| "/proc/loadavg: no task count".to_string())?;
    Ok(PidStats { max, running })
}

pub fn parse_loadavg_tasks(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

/// Go's GOARCH for this machine, as kubelets label their nodes.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
