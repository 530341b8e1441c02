//! Several machines on one: "hosts" are network namespaces `nkmh<slot>-<i>`
//! joined by the bridge `nkmh<slot>br` in the root namespace. Host 0 runs
//! `nanokube server` (with its own node), hosts 1.. run `nanokube agent
//! --server https://<host 0>:6443 --token …`, each process started with
//! `nsenter --net` (only the network namespace: containerd and runc need
//! the machine's /sys/fs/cgroup and mounts, which `ip netns exec` would
//! replace), so each node's containerd, CNI bridge, VXLAN device, proxy
//! and DNS rules live in its host.
//!
//! ```ignore
//! let mh = MultiHost::start(2, &[]);          // 3 nodes Ready
//! mh.apply(&deployment_yaml);
//! mh.in_host(1, || TcpStream::connect(...));  // from inside host 1
//! mh.shutdown();                              // or drop: both clean up
//! ```
//!
//! Addresses of slot `m` (a lock file per slot, so parallel runs do not
//! collide): hosts 10.(248+m).0.(i+1)/24 and the bridge .254, cluster CIDR
//! 10.(240+m).0.0/16, service CIDR 10.(244+m).0.0/16. Tests send traffic
//! only to these hosts and to the pods and services they create; hosts
//! have no default route.
//!
//! Dropping a [`MultiHost`] (also on panic) stops every process, removes
//! what each node left on the machine (`agent::cleanup` per host: shims,
//! containers, mounts, cgroups), then deletes the namespaces, veths and
//! the bridge. A later run of the same slot first sweeps what a killed run
//! left (the host directories are recorded in the slot's state file).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent::{
    cleanup, instance_id, node_condition, require_node_prerequisites, shared_busybox_tar,
};
use super::*;

mod api;
mod net;

#[allow(unused_imports)] // not every test binary uses them
pub use api::{node_of, pod_line};
#[allow(unused_imports)]
pub use net::{pid_with_cmdline, tcp_throughput};

/// How long the server may take from start to its node Ready.
pub const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an agent may take from start to its node Ready.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The API server's port in host 0.
pub const API_PORT: u16 = 6443;
/// Slots: see the module comment.
const SLOTS: u32 = 4;
/// SIGTERM → exit before SIGKILL at teardown.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One host: its namespace, address, directories and its nanokube process.
pub struct Host {
    pub index: usize,
    /// `nkmh<slot>-<i>`.
    pub netns: String,
    /// The root-namespace end of its veth (taking it down cuts the host off).
    pub veth: String,
    pub ip: Ipv4Addr,
    /// Everything of the host lives below (data dir `d/`, logs).
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub agent_dir: PathBuf,
    /// Instance id of its agent dir (cgroups `nanokube-<id>`, bridge `nk<id>`).
    pub id: String,
    pub node_name: String,
    pub proc: Option<Proc>,
}

impl Host {
    /// `/var/run/netns/<netns>`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.netns)
    }

    /// `nsenter --net=<netns> PROGRAM ARGS` (not run).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns_path().display()))
            .arg(program)
            .args(args);
        cmd
    }

    /// The pid of its containerd (from the pid file), if it runs.
    pub fn containerd_pid(&self) -> Option<i32> {
        let text =
            std::fs::read_to_string(self.agent_dir.join("containerd/containerd.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "containerd").then_some(pid)
    }

    /// `ip -d -o link show type vxlan` inside the host: its VXLAN
    /// devices, one line each ("" when none).
    pub fn vxlan_links(&self) -> String {
        let out = run_with_timeout(
            Command::new("ip").args([
                "-n",
                &self.netns,
                "-d",
                "-o",
                "link",
                "show",
                "type",
                "vxlan",
            ]),
            None,
            CLIENT_TIMEOUT,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The tail of its nanokube process's log ("" when none ran).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }
}

/// The slot's lock, held while the hosts exist.
struct Slot {
    n: u32,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

fn slot_dir() -> PathBuf {
    std::env::temp_dir().join("nanokube-test-slots")
}

fn state_file(n: u32) -> PathBuf {
    slot_dir().join(format!("mh-{n}.roots"))
}

fn claim_slot() -> Slot {
    std::fs::create_dir_all(slot_dir()).expect("create slot lock dir");
    for n in 0..SLOTS {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(slot_dir().join(format!("mh-{n}.lock")))
            .expect("open slot lock file");
        if let Ok(lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            return Slot { n, _lock: lock };
        }
    }
    panic!("no free multi-host test slot: all {SLOTS} are taken");
}

/// Runs `ip ARGS`; panics with its stderr on failure.
fn ip(args: &[&str]) {
    let out = run_with_timeout(Command::new("ip").args(args), None, CLIENT_TIMEOUT);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip ARGS`, ignoring failure; stdout.
fn ip_quiet(args: &[&str]) -> String {
    let out = run_with_timeout(Command::new("ip").args(args), None, CLIENT_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces of slot `n` that exist now.
fn slot_netns(n: u32) -> Vec<String> {
    let prefix = format!("nkmh{n}-");
    ip_quiet(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Links of slot `n` in the root namespace (bridge, veth ends).
fn slot_links(n: u32) -> Vec<String> {
    let prefix = format!("nkmh{n}");
    ip_quiet(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|name| {
            name.strip_prefix(&prefix)
                .is_some_and(|rest| rest == "br" || rest.starts_with('v'))
        })
        .map(str::to_string)
        .collect()
}

/// The markers the node cleanup recognises host `root`'s instance by.
fn markers(n: u32, root: &Path) -> Option<cleanup::Markers> {
    let agent_dir = root.join("d").join("agent").canonicalize().ok()?;
    Some(cleanup::Markers {
        root: root.to_path_buf(),
        id: instance_id(&agent_dir),
        agent_dir,
        prefixes: vec![format!("10.{}.", 240 + n), format!("10.{}.", 244 + n)],
    })
}

/// Removes what a killed earlier run of slot `n` left: processes in its
/// namespaces, each recorded host's node leftovers, namespaces, links.
fn sweep(n: u32, verbose: bool) {
    for ns in slot_netns(n) {
        let pids: Vec<i32> = ip_quiet(&["netns", "pids", &ns])
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let roots = std::fs::read_to_string(state_file(n)).unwrap_or_default();
    for root in roots.lines().filter(|l| !l.is_empty()) {
        if let Some(m) = markers(n, Path::new(root)) {
            if verbose {
                eprintln!("multi-host slot {n}: sweeping what a previous run left in {root}");
            }
            cleanup::teardown(&m);
        }
        // The killed run's temporary directory, unless mounts remain.
        if let Some(dir) = Path::new(root).parent() {
            let ours = dir
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("nk-"));
            if verbose && ours && dir.is_dir() && cleanup::mounts_under(dir).is_empty() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    for ns in slot_netns(n) {
        let _ = ip_quiet(&["netns", "del", &ns]);
    }
    for link in slot_links(n) {
        let _ = ip_quiet(&["link", "del", &link]);
    }
}

/// Hosts, their processes, and the way to the API in host 0.
pub struct MultiHost {
    pub hosts: Vec<Host>,
    pub slot: u32,
    pub bridge: String,
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub cluster_dns: Ipv4Addr,
    /// Spawn of `nanokube server` → its node Ready.
    pub server_ready: Duration,
    /// Admin kubeconfig pointing at host 0's address.
    pub kubeconfig: PathBuf,
    creds: Option<Creds>,
    server_args: Vec<String>,
    slot_lock: Slot,
    tmp: Option<tempfile::TempDir>,
    torn_down: bool,
}

impl MultiHost {
    /// `1 + agents` hosts: the server in host 0 and `agents` joined agents,
    /// every node Ready.
    pub fn start(agents: usize, server_extra: &[&str]) -> MultiHost {
        let mut mh = Self::with_server(1 + agents, server_extra);
        for i in 1..=agents {
            mh.spawn_agent(i, &[]);
        }
        for i in 1..=agents {
            mh.wait_joined(i, JOIN_TIMEOUT);
        }
        mh
    }

    /// `hosts` hosts with the server running in host 0 (its node Ready);
    /// no agents yet.
    pub fn with_server(hosts: usize, server_extra: &[&str]) -> MultiHost {
        require_node_prerequisites();
        require_tool("nsenter", "util-linux");
        require_tool("curl", "curl");
        assert!((1..200).contains(&hosts), "1..200 hosts");
        let slot = claim_slot();
        let n = slot.n;
        sweep(n, true);
        let tmp = short_tempdir();
        let base = tmp.path().canonicalize().expect("canonical temp dir");
        let mut list = Vec::new();
        for i in 0..hosts {
            let root = base.join(format!("h{i}"));
            let data_dir = root.join("d");
            let images = data_dir.join("agent").join("images");
            std::fs::create_dir_all(&images).expect("create agent images dir");
            std::fs::copy(shared_busybox_tar(), images.join("busybox.tar"))
                .expect("place the busybox image");
            let agent_dir = data_dir.join("agent").canonicalize().expect("agent dir");
            list.push(Host {
                index: i,
                netns: format!("nkmh{n}-{i}"),
                veth: format!("nkmh{n}v{i}"),
                ip: Ipv4Addr::new(10, 248 + n as u8, 0, i as u8 + 1),
                id: instance_id(&agent_dir),
                node_name: format!("mh{n}-host{i}"),
                root,
                data_dir,
                agent_dir,
                proc: None,
            });
        }
        let roots: Vec<String> = list
            .iter()
            .map(|h| h.root.to_string_lossy().into_owned())
            .collect();
        std::fs::write(state_file(n), roots.join("\n") + "\n").expect("write slot state");
        let mut mh = MultiHost {
            hosts: list,
            slot: n,
            bridge: format!("nkmh{n}br"),
            cluster_cidr: format!("10.{}.0.0/16", 240 + n),
            service_cidr: format!("10.{}.0.0/16", 244 + n),
            cluster_dns: Ipv4Addr::new(10, 244 + n as u8, 0, 10),
            server_ready: Duration::ZERO,
            kubeconfig: base.join("admin.yaml"),
            creds: None,
            server_args: Vec::new(),
            slot_lock: slot,
            tmp: Some(tmp),
            torn_down: false,
        };
        // From here on a panic unwinds through `Drop`, which cleans up.
        mh.build_network();
        mh.start_server(server_extra);
        mh
    }

    fn build_network(&self) {
        let br = &self.bridge;
        ip(&["link", "add", br, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("10.{}.0.254/24", 248 + self.slot),
            "dev",
            br,
        ]);
        ip(&["link", "set", br, "up"]);
        for h in &self.hosts {
            ip(&["netns", "add", &h.netns]);
            ip(&[
                "link", "add", &h.veth, "type", "veth", "peer", "name", "eth0", "netns", &h.netns,
            ]);
            ip(&["link", "set", &h.veth, "master", br, "up"]);
            let inside = |args: &[&str]| {
                let mut v = vec!["-n", h.netns.as_str()];
                v.extend_from_slice(args);
                ip(&v);
            };
            inside(&["addr", "add", &format!("{}/24", h.ip), "dev", "eth0"]);
            inside(&["link", "set", "eth0", "up"]);
            inside(&["link", "set", "lo", "up"]);
            // Per-namespace sysctls (the kernel keeps these per netns).
            let script = "echo 1 > /proc/sys/net/ipv4/ip_forward && \
                          echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables";
            let out = run_with_timeout(&mut h.command("sh", &["-c", script]), None, CLIENT_TIMEOUT);
            assert!(
                out.status.success(),
                "sysctls in {}: {}",
                h.netns,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Flags every node gets: the host's disk is not under test.
    fn node_flags(h: &Host) -> Vec<String> {
        [
            "--data-dir",
            h.data_dir.to_str().expect("utf-8 path"),
            "--node-ip",
            &h.ip.to_string(),
            "--node-name",
            &h.node_name,
            "--eviction-hard",
            "memory.available<1Mi",
            "--image-gc-high-threshold",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn start_server(&mut self, extra: &[&str]) {
        let h = &self.hosts[0];
        let mut args: Vec<String> = vec!["server".into()];
        args.extend(Self::node_flags(h));
        let own = [
            "--https-listen-port".to_string(),
            API_PORT.to_string(),
            "--tls-san".into(),
            h.ip.to_string(),
            "--write-kubeconfig".into(),
            h.root
                .join("kubeconfig.yaml")
                .to_string_lossy()
                .into_owned(),
            "--cluster-cidr".into(),
            self.cluster_cidr.clone(),
            "--service-cidr".into(),
            self.service_cidr.clone(),
            "--cluster-dns".into(),
            self.cluster_dns.to_string(),
        ];
        args.extend(own);
        args.extend(extra.iter().map(|s| s.to_string()));
        self.server_args = args;
        self.respawn_server();
    }

    /// Starts `nanokube server` in host 0 with the flags of the first
    /// start; waits until it answers and its node is Ready.
    pub fn respawn_server(&mut self) {
        let t0 = Instant::now();
        let args = self.server_args.clone();
        self.spawn_in(0, Kind::Server, &args);
        let deadline = t0 + SERVER_READY_TIMEOUT;
        let url = format!("{}/readyz", self.api_url());
        loop {
            self.assert_alive(0);
            if http_status(&url) == Some(200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server in host 0 did not answer /readyz within {SERVER_READY_TIMEOUT:?}; \
                 its stderr:\n{}",
                self.hosts[0].log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.write_kubeconfig();
        self.wait_joined(0, deadline.saturating_duration_since(Instant::now()));
        self.server_ready = t0.elapsed();
    }

    /// The server's admin kubeconfig with host 0's address, for kubectl
    /// and curl in the root namespace (the bridge has an address there).
    fn write_kubeconfig(&mut self) {
        let src = self.hosts[0].root.join("kubeconfig.yaml");
        let text =
            std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        let url = self.api_url();
        let text: String = text
            .lines()
            .map(|l| match l.find("server:") {
                Some(i) => format!("{}server: \"{url}\"", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.kubeconfig, text + "\n").expect("write admin kubeconfig");
        let kubeconfig = self.kubeconfig.clone();
        if let Some(p) = self.hosts[0].proc.as_mut() {
            p.kubeconfig_path = Some(kubeconfig.clone());
            p.api_port = Some(API_PORT);
        }
        let dir = kubeconfig.with_file_name("creds");
        self.creds = Some(creds_from_kubeconfig(&kubeconfig, &dir));
    }

    /// `https://<host 0>:6443`.
    pub fn api_url(&self) -> String {
        format!("https://{}:{API_PORT}", self.hosts[0].ip)
    }

    /// The server's join token (`<data-dir>/server/token`).
    pub fn token(&self) -> String {
        let path = self.hosts[0].data_dir.join("server").join("token");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        text.trim().to_string()
    }

    fn spawn_in(&mut self, i: usize, kind: Kind, args: &[String]) {
        let h = &mut self.hosts[i];
        if let Some(mut old) = h.proc.take() {
            old.kill();
        }
        let mut all = vec![format!("--net={}", h.netns_path().display())];
        all.push(NANOKUBE.to_string());
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        // nsenter execs nanokube (no fork for a network namespace), so the
        // child is the nanokube process itself.
        let p = Proc::spawn(kind, "nsenter", &refs, 0, &h.data_dir, &h.root);
        h.proc = Some(p);
    }

    /// The arguments of `nanokube agent` in host `i`, with `token` (none:
    /// the stored credentials) and `extra`.
    pub fn agent_args(&self, i: usize, token: Option<&str>, extra: &[&str]) -> Vec<String> {
        let h = &self.hosts[i];
        let mut args: Vec<String> = vec!["agent".into(), "--server".into(), self.api_url()];
        if let Some(t) = token {
            args.extend(["--token".into(), t.to_string()]);
        }
        let mut node = Self::node_flags(h);
        // A test may name the node itself (e.g. to reuse another's name).
        if extra.contains(&"--node-name") {
            if let Some(k) = node.iter().position(|a| a == "--node-name") {
                node.drain(k..k + 2);
            }
        }
        args.extend(node);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Starts `nanokube agent` in host `i` with the server's token; does
    /// not wait.
    pub fn spawn_agent(&mut self, i: usize, extra: &[&str]) {
        let token = self.token();
        let args = self.agent_args(i, Some(&token), extra);
        self.spawn_in(i, Kind::Agent, &args);
    }

    /// Starts `nanokube agent` in host `i` with exactly `args`.
    pub fn spawn_agent_with(&mut self, i: usize, args: &[String]) {
        self.spawn_in(i, Kind::Agent, args);
    }

    /// Waits until host `i`'s process exits; its status and log. Panics
    /// when it still runs after `timeout`.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let h = &mut self.hosts[i];
            let p = h.proc.as_mut().expect("no process in this host");
            let child = p.child.as_mut().expect("process already reaped");
            if let Some(status) = child.try_wait().expect("try_wait") {
                let log = p.log();
                h.proc = None;
                return (status, log);
            }
            assert!(
                Instant::now() < deadline,
                "the process in host {i} still runs after {timeout:?}; its stderr:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Host `i`'s exit status and log when its process has exited (it is
    /// then reaped and forgotten), else `None`.
    pub fn try_exit(&mut self, i: usize) -> Option<(ExitStatus, String)> {
        let h = &mut self.hosts[i];
        let p = h.proc.as_mut()?;
        let status = p.child.as_mut()?.try_wait().ok().flatten()?;
        let log = p.log();
        h.proc = None;
        Some((status, log))
    }

    /// Panics with the log when host `i`'s process exited.
    pub fn assert_alive(&mut self, i: usize) {
        if let Some(p) = self.hosts[i].proc.as_mut() {
            p.assert_alive();
        }
    }

    /// Waits until host `i`'s node is Ready with its address as InternalIP
    /// (its process must stay alive); returns how long that took.
    pub fn wait_joined(&mut self, i: usize, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        let name = self.hosts[i].node_name.clone();
        let want = self.hosts[i].ip.to_string();
        loop {
            self.assert_alive(i);
            let (code, node) = self.api("GET", &format!("/api/v1/nodes/{name}"), None);
            if code == 200 && node_condition(&node, "Ready") == Some("True") {
                let ips = internal_ips(&node);
                assert_eq!(ips, vec![want.clone()], "InternalIP of node {name}: {node}");
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < timeout,
                "node {name} (host {i}) not Ready within {timeout:?} (GET answered {code}: {})\n\
                 its stderr:\n{}\ncontainerd log (tail):\n{}",
                node["status"]["conditions"],
                self.hosts[i].log(),
                self.containerd_log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tail of host `i`'s containerd log.
    pub fn containerd_log(&self, i: usize) -> String {
        let path = self.hosts[i].agent_dir.join("containerd/containerd.log");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        tail(&text, 3000).to_string()
    }

    /// SIGKILLs host `i`'s nanokube process and its containerd (the pods'
    /// shims and containers stay, as when a machine's agent crashes).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.hosts[i].proc.take() {
            p.kill();
        }
        if let Some(pid) = self.hosts[i].containerd_pid() {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// SIGTERM to host `i`'s process; waits for its exit.
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        let mut p = self.hosts[i].proc.take().expect("no process in this host");
        p.terminate(STOP_GRACE * 3)
    }

    /// Takes host `i`'s link to the bridge down (`up = false`) or up.
    pub fn set_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["link", "set", &self.hosts[i].veth, state]);
    }

    /// Runs `f` on a thread inside host `i`'s network namespace.
    pub fn in_host<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> T {
        net::in_netns(&self.hosts[i].netns_path(), f)
    }

    /// The address of host `i` with `port`.
    pub fn addr(&self, i: usize, port: u16) -> SocketAddr {
        SocketAddr::from((self.hosts[i].ip, port))
    }

    /// Index of the host whose node is `name`.
    pub fn host_of(&self, node: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.node_name == node)
            .unwrap_or_else(|| panic!("no host runs node {node:?}"))
    }

    /// Stops every process, removes every node's leftovers, namespaces and
    /// links; fails when something is left over.
    pub fn shutdown(mut self) {
        self.teardown();
        let left = self.leftovers();
        assert!(
            left.is_empty(),
            "the hosts left these behind after their cleanup:\n  {}",
            left.join("\n  ")
        );
    }

    fn teardown(&mut self) {
        self.torn_down = true;
        // SIGTERM everywhere first, then wait: nodes stop side by side.
        for h in &mut self.hosts {
            if let Some(child) = h.proc.as_mut().and_then(|p| p.child.as_mut()) {
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for h in &mut self.hosts {
            if let Some(mut p) = h.proc.take() {
                while Instant::now() < deadline {
                    match p.child.as_mut().map(|c| c.try_wait()) {
                        Some(Ok(None)) => std::thread::sleep(Duration::from_millis(20)),
                        _ => break,
                    }
                }
                p.kill();
            }
        }
        for h in &self.hosts {
            if let Some(m) = markers(self.slot, &h.root) {
                cleanup::teardown(&m);
            }
        }
        sweep(self.slot, false);
        let _ = std::fs::remove_file(state_file(self.slot));
    }

    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for h in &self.hosts {
            if let Some(m) = markers(self.slot, &h.root) {
                out.extend(
                    cleanup::leftovers(&m)
                        .into_iter()
                        .map(|l| format!("host {}: {l}", h.index)),
                );
            }
        }
        out.extend(
            slot_netns(self.slot)
                .into_iter()
                .map(|n| format!("netns {n}")),
        );
        out.extend(
            slot_links(self.slot)
                .into_iter()
                .map(|l| format!("link {l}")),
        );
        out
    }
}

impl Drop for MultiHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for h in &self.hosts {
                if h.proc.is_some() {
                    eprintln!(
                        "--- host {} ({}, node {}) stderr (tail):\n{}\n--- its containerd log (tail):\n{}",
                        h.index,
                        h.netns,
                        h.node_name,
                        tail(&h.log(), 5000),
                        self.containerd_log(h.index)
                    );
                }
            }
        }
        if !self.torn_down {
            self.teardown();
        }
        let left = self.leftovers();
        if !left.is_empty() {
            eprintln!("the hosts left these behind:\n  {}", left.join("\n  "));
        }
        let _ = &self.slot_lock;
        // Never delete recursively through a mount that would not go.
        if let Some(tmp) = self.tmp.take() {
            if !cleanup::mounts_under(tmp.path()).is_empty() {
                eprintln!("keeping {} (mounts remain)", tmp.keep().display());
            }
        }
    }
}

/// The InternalIP addresses of a node.
pub fn internal_ips(node: &Value) -> Vec<String> {
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str().map(str::to_string))
        .collect()
}
