//! Tearing down what one node-agent instance left on the machine, also
//! after a failed test: processes (containerd, shims, containers), mounts
//! under the test directory (overlay rootfs, netns, tmpfs volumes), links
//! (the `nk<id>` bridge and its veths), routes, iptables rules and chains
//! and nftables tables of the instance, CNI state files, cgroups.
//!
//! What belongs to the instance is recognised by markers nobody else uses:
//! the test directory's path, the instance id (a whole 8-hex token), and
//! the address prefixes of its cluster and service CIDRs (unique per slot).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::super::run_with_timeout;

/// What identifies one instance on the machine.
#[derive(Clone, Debug)]
pub struct Markers {
    /// The test directory (data dir, logs, hostPath dirs all live below).
    pub root: PathBuf,
    /// `<data-dir>/agent`, canonical.
    pub agent_dir: PathBuf,
    /// Instance id: first 8 hex of sha256 of the canonical agent dir.
    pub id: String,
    /// Address prefixes such as `10.205.` (cluster CIDR, service CIDR).
    pub prefixes: Vec<String>,
}

impl Markers {
    /// Whether `text` names the instance id as a whole hex token.
    pub fn has_id(&self, text: &str) -> bool {
        let hex = |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit());
        text.match_indices(&self.id).any(|(i, _)| {
            !hex(text[..i].chars().next_back()) && !hex(text[i + self.id.len()..].chars().next())
        })
    }

    /// Whether `text` holds an address in one of the instance's ranges.
    pub fn has_address(&self, text: &str) -> bool {
        text.split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '=')
            .map(|t| t.trim_start_matches('!'))
            .any(|t| self.prefixes.iter().any(|p| t.starts_with(p.as_str())))
    }

    /// Whether `text` names another nanokube instance (`nanokube-<id>`
    /// with an id not ours), as CNI comments do.
    pub fn names_other_instance(&self, text: &str) -> bool {
        text.match_indices("nanokube-").any(|(i, m)| {
            let rest = &text[i + m.len()..];
            let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            hex.len() == 8 && hex != self.id
        })
    }

    /// Ours: names our id, or holds one of our addresses without naming
    /// another instance (someone else may use the same range by hand).
    fn is_ours(&self, text: &str) -> bool {
        self.has_id(text) || (self.has_address(text) && !self.names_other_instance(text))
    }
}

/// Runs a command with a timeout; (success, stdout).
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run_with_timeout(&mut cmd, stdin.map(str::as_bytes), Duration::from_secs(30));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// Processes

fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// (parent pid, state letter) of a process.
fn stat(pid: i32) -> Option<(i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((_, s)) if s != 'Z' && s != 'X')
}

/// Processes whose command line names the agent dir (containerd, its
/// shims: `-address <A>/containerd/containerd.sock`) and all their
/// descendants (containers whose shim is gone get re-parented, which is why
/// cgroups are swept too).
pub fn instance_processes(m: &Markers) -> Vec<i32> {
    let me = std::process::id() as i32;
    let needle = m.agent_dir.to_string_lossy().into_owned();
    let pids = all_pids();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for &pid in &pids {
        if let Some((ppid, _)) = stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found: BTreeSet<i32> = pids
        .iter()
        .copied()
        .filter(|&p| p != me && alive(p) && cmdline(p).contains(&needle))
        .collect();
    let mut todo: Vec<i32> = found.iter().copied().collect();
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if c != me && found.insert(c) {
                todo.push(c);
            }
        }
    }
    found.into_iter().filter(|&p| alive(p)).collect()
}

/// The containerd the agent started, by its pid file, if that pid is still
/// a containerd.
fn containerd_by_pidfile(m: &Markers) -> Option<i32> {
    let text = std::fs::read_to_string(m.agent_dir.join("containerd/containerd.pid")).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "containerd" && alive(pid)).then_some(pid)
}

/// The socket a containerd shim v2 listens on, from its command line
/// (`-namespace NS -id ID -address A`): containerd 1.6 names it
/// `/run/containerd/s/<hex sha256 of "A/NS/ID">`; a SIGKILLed shim leaves
/// it behind.
fn shim_socket(pid: i32) -> Option<(String, PathBuf)> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let value = |flag: &str| args.windows(2).find(|w| w[0] == flag).map(|w| w[1].clone());
    let (ns, id, address) = (value("-namespace")?, value("-id")?, value("-address")?);
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{address}/{ns}/{id}").as_bytes(),
    );
    let socket = Path::new("/run/containerd/s").join(hex::encode(d.as_ref()));
    Some((id, socket))
}

/// libcni's cached results of sandbox `id` (`<network>-<id>-<ifname>`, the
/// loopback network's too): left behind when the sandbox was never torn
/// down through CNI.
fn cni_results_of(sandbox: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/var/lib/cni/results") else {
        return Vec::new();
    };
    let needle = format!("-{sandbox}-");
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&needle))
        .map(|e| e.path())
        .collect()
}

fn sigkill(pids: &[i32]) {
    for &p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn wait_gone(pids: &[i32], timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Cgroups

/// `/sys/fs/cgroup/<hierarchy>/nanokube-<id>` of every hierarchy (v1 and
/// the unified one), without duplicates from the `cpu -> cpu,cpuacct` links.
pub fn cgroup_roots(m: &Markers) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(hier) = e.path().canonicalize() else {
            continue;
        };
        if !seen.insert(hier.clone()) {
            continue;
        }
        let root = hier.join(format!("nanokube-{}", m.id));
        if root.is_dir() {
            out.push(root);
        }
    }
    // The unified hierarchy mounted at /sys/fs/cgroup itself (pure v2).
    let v2 = Path::new("/sys/fs/cgroup").join(format!("nanokube-{}", m.id));
    if v2.is_dir() && !out.contains(&v2) {
        out.push(v2);
    }
    out
}

/// Every cgroup directory below `root` (included), deepest first.
fn cgroup_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(dir) = std::fs::read_dir(&out[i]) {
            for e in dir.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn cgroup_pids(m: &Markers) -> Vec<i32> {
    let mut pids = BTreeSet::new();
    for root in cgroup_roots(m) {
        for dir in cgroup_dirs(&root) {
            let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.into_iter().filter(|&p| alive(p)).collect()
}

// ---------------------------------------------------------------------------
// Mounts

/// Mount points at or below `root` in this mount namespace, in mount order.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = root.to_string_lossy().into_owned();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .map(PathBuf::from)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount_all(root: &Path) {
    for _ in 0..10 {
        let mut mounts = mounts_under(root);
        if mounts.is_empty() {
            return;
        }
        // Deepest first; of stacked mounts on one point, the last first.
        mounts.reverse();
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in mounts {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

// ---------------------------------------------------------------------------
// Links, routes

/// Links of the instance: names `nk…<id>` and veths enslaved to them.
pub fn instance_links(m: &Markers) -> Vec<String> {
    let (_, out) = run("ip", &["-o", "link", "show"], None);
    let mut bridges = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        // `7: vethab12@if3: <...> ... master nk1234abcd state UP ...`
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name).to_string();
        let master = line
            .split_whitespace()
            .skip_while(|w| *w != "master")
            .nth(1)
            .unwrap_or("")
            .to_string();
        if name.starts_with("nk") && m.has_id(&name) {
            bridges.push(name.clone());
        }
        links.push((name, master));
    }
    let mut out: Vec<String> = links
        .into_iter()
        .filter(|(n, master)| !bridges.contains(n) && bridges.contains(master))
        .map(|(n, _)| n)
        .collect();
    out.extend(bridges);
    out
}

const ROUTE_TYPES: &[&str] = &[
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "anycast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
];

/// IPv4 routes (any table) whose destination is in the instance's ranges
/// and whose device (if any) is the instance's, as the arguments that
/// delete them: `[type] dst [table T]`.
pub fn instance_routes(m: &Markers) -> Vec<Vec<String>> {
    let (_, out) = run("ip", &["-4", "route", "show", "table", "all"], None);
    let mut routes = Vec::new();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (kind, dst) = match words.as_slice() {
            [t, d, ..] if ROUTE_TYPES.contains(t) => (Some(*t), *d),
            [d, ..] => (None, *d),
            [] => continue,
        };
        if !m.prefixes.iter().any(|p| dst.starts_with(p.as_str())) {
            continue;
        }
        // A route through another instance's bridge is not ours.
        if let Some(dev) = words.windows(2).find(|w| w[0] == "dev") {
            if !m.has_id(dev[1]) {
                continue;
            }
        }
        let mut args: Vec<String> = kind.into_iter().map(str::to_string).collect();
        args.push(dst.to_string());
        if let Some(t) = words.windows(2).find(|w| w[0] == "table") {
            args.extend(["table".to_string(), t[1].to_string()]);
        }
        routes.push(args);
    }
    routes
}

fn delete_links_and_routes(m: &Markers) {
    for link in instance_links(m) {
        let _ = run("ip", &["link", "del", &link], None);
    }
    for _ in 0..3 {
        let routes = instance_routes(m);
        if routes.is_empty() {
            break;
        }
        for r in routes {
            let mut args = vec!["-4", "route", "del"];
            args.extend(r.iter().map(String::as_str));
            let _ = run("ip", &args, None);
        }
    }
}

// ---------------------------------------------------------------------------
// iptables, nftables

const IPTABLES_TABLES: &[&str] = &["nat", "filter", "mangle", "raw"];

/// One table's rules of the instance (`-A …` lines as iptables-save
/// prints them) and the user chains only the instance uses.
fn iptables_plan(m: &Markers, table: &str) -> (Vec<String>, Vec<String>) {
    let (ok, save) = run("iptables-save", &["-t", table], None);
    if !ok {
        return (Vec::new(), Vec::new());
    }
    let mut user_chains = BTreeSet::new();
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in save.lines() {
        if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            if let (Some(name), Some("-")) = (w.next(), w.next()) {
                user_chains.insert(name.to_string());
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split_whitespace().next().unwrap_or("").to_string();
            rules.push((chain, line.to_string()));
        }
    }
    let target = |line: &str| -> Option<String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.windows(2)
            .find(|p| p[0] == "-j" || p[0] == "-g")
            .map(|p| p[1].to_string())
    };
    // Per rule, once: its target and whether it is ours. Another instance's
    // service proxy may hold tens of thousands of rules: never rescan them
    // per chain.
    let facts: Vec<(Option<String>, bool)> = rules
        .iter()
        .map(|(_, l)| (target(l), m.is_ours(l)))
        .collect();
    let mut refs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (t, _)) in facts.iter().enumerate() {
        if let Some(t) = t {
            refs.entry(t.as_str()).or_default().push(i);
        }
    }
    let mut doomed: BTreeSet<String> = user_chains
        .iter()
        .filter(|c| m.has_id(c))
        .cloned()
        .collect();
    // Chains reached only from the instance's rules or from doomed chains.
    loop {
        let mut grew = false;
        for chain in &user_chains {
            if doomed.contains(chain) {
                continue;
            }
            let Some(refs) = refs.get(chain.as_str()) else {
                continue;
            };
            if refs
                .iter()
                .all(|&i| facts[i].1 || doomed.contains(&rules[i].0))
                && refs.iter().any(|&i| facts[i].1)
            {
                doomed.insert(chain.clone());
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let ours: Vec<String> = rules
        .iter()
        .zip(&facts)
        .filter(|((c, _), (t, own))| {
            !doomed.contains(c) && (*own || t.as_ref().is_some_and(|t| doomed.contains(t)))
        })
        .map(|((_, l), _)| l.clone())
        .collect();
    (ours, doomed.into_iter().collect())
}

fn iptables_cleanup(m: &Markers) {
    for table in IPTABLES_TABLES {
        let (rules, chains) = iptables_plan(m, table);
        if rules.is_empty() && chains.is_empty() {
            continue;
        }
        let mut lines: Vec<String> = rules.iter().map(|r| format!("-D {}", &r[3..])).collect();
        lines.extend(chains.iter().map(|c| format!("-F {c}")));
        lines.extend(chains.iter().map(|c| format!("-X {c}")));
        let script = |body: &[String]| format!("*{table}\n{}\nCOMMIT\n", body.join("\n"));
        let (ok, _) = run("iptables-restore", &["--noflush"], Some(&script(&lines)));
        if !ok {
            // Something changed in between: one line at a time, best effort.
            for l in &lines {
                let _ = run(
                    "iptables-restore",
                    &["--noflush"],
                    Some(&script(std::slice::from_ref(l))),
                );
            }
        }
    }
}

/// The instance's iptables rules and chains still present (`table: line`).
pub fn iptables_leftovers(m: &Markers) -> Vec<String> {
    let mut out = Vec::new();
    for table in IPTABLES_TABLES {
        let (rules, chains) = iptables_plan(m, table);
        out.extend(rules.into_iter().map(|r| format!("{table}: {r}")));
        out.extend(chains.into_iter().map(|c| format!("{table}: chain {c}")));
    }
    out
}

/// nftables tables whose name carries the instance id (`family name`).
pub fn nft_tables(m: &Markers) -> Vec<String> {
    let (ok, out) = run("nft", &["list", "tables"], None);
    if !ok {
        return Vec::new();
    }
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("table "))
        .filter(|t| m.has_id(t))
        .map(str::to_string)
        .collect()
}

fn nft_cleanup(m: &Markers) {
    for t in nft_tables(m) {
        let args: Vec<&str> = ["delete", "table"]
            .into_iter()
            .chain(t.split_whitespace())
            .collect();
        let _ = run("nft", &args, None);
    }
}

// ---------------------------------------------------------------------------
// CNI state outside the data dir (host-local IPAM and libcni's result cache
// default to /var/lib/cni when the conflist does not move them).

fn cni_state_paths(m: &Markers) -> Vec<PathBuf> {
    let net = format!("nanokube-{}", m.id);
    let mut out = Vec::new();
    let ipam = Path::new("/var/lib/cni/networks").join(&net);
    if ipam.exists() {
        out.push(ipam);
    }
    if let Ok(dir) = std::fs::read_dir("/var/lib/cni/results") {
        for e in dir.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{net}-"))
            {
                out.push(e.path());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------

/// Removes everything of the instance; the server process must be gone.
pub fn teardown(m: &Markers) {
    // 1. containerd, shims and everything below them; then whatever is
    //    still in the instance's cgroups (containers whose shim died).
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut pids = instance_processes(m);
        sockets.extend(pids.iter().filter_map(|&p| shim_socket(p)));
        pids.extend(containerd_by_pidfile(m));
        pids.extend(cgroup_pids(m));
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            break;
        }
        sigkill(&pids);
        wait_gone(&pids, Duration::from_secs(5));
    }
    for (sandbox, socket) in sockets {
        let _ = std::fs::remove_file(socket);
        // Sandbox ids are 64 hex: never a pattern that matches broadly.
        if sandbox.len() == 64 && sandbox.chars().all(|c| c.is_ascii_hexdigit()) {
            for f in cni_results_of(&sandbox) {
                let _ = std::fs::remove_file(f);
            }
        }
    }
    // 2. Mounts (rootfs overlays, netns bind mounts: unmounting the last
    //    reference destroys the netns and its veth pair, tmpfs volumes).
    unmount_all(&m.root);
    // 3. Network: links, routes, rules.
    delete_links_and_routes(m);
    iptables_cleanup(m);
    nft_cleanup(m);
    for p in cni_state_paths(m) {
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
    // 4. Cgroups, deepest first (rmdir only: cgroupfs has no files to
    //    delete); a cgroup whose last task just exited may be busy briefly.
    for _ in 0..20 {
        let roots = cgroup_roots(m);
        if roots.is_empty() {
            break;
        }
        for root in roots {
            for dir in cgroup_dirs(&root) {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What of the instance is still on the machine (empty when clean).
pub fn leftovers(m: &Markers) -> Vec<String> {
    let mut out = Vec::new();
    for p in instance_processes(m) {
        out.push(format!("process {p}: {}", cmdline(p)));
    }
    for p in cgroup_pids(m) {
        out.push(format!(
            "process {p} in a cgroup of the instance: {}",
            cmdline(p)
        ));
    }
    for p in mounts_under(&m.root) {
        out.push(format!("mount {}", p.display()));
    }
    for l in instance_links(m) {
        out.push(format!("link {l}"));
    }
    for r in instance_routes(m) {
        out.push(format!("route {}", r.join(" ")));
    }
    for r in iptables_leftovers(m) {
        out.push(format!("iptables {r}"));
    }
    for t in nft_tables(m) {
        out.push(format!("nft table {t}"));
    }
    for p in cni_state_paths(m) {
        out.push(format!("CNI state {}", p.display()));
    }
    for c in cgroup_roots(m) {
        out.push(format!("cgroup {}", c.display()));
    }
    out
}
