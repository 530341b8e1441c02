//! A real one-node cluster for the node-agent tests: `nanokube server`
//! WITH its agent (containerd, CNI, pods), in a fresh directory, with the
//! busybox test image pre-placed for import, on a CIDR, ports and node name
//! of its own, so several clusters (tests of one binary, or other runs on
//! the machine) can run side by side.
//!
//! ```ignore
//! let c = Cluster::start();                 // waits until the node is Ready
//! c.apply(&format!("... image: {BUSYBOX} ... imagePullPolicy: Never ..."));
//! let pod = c.wait_running("default", "web", POD_TIMEOUT);
//! c.shutdown();                             // or drop: both clean up
//! ```
//!
//! Dropping a [`Cluster`] (also when the test panicked) stops the server
//! (SIGTERM, then SIGKILL), then removes whatever the instance left on the
//! machine: processes, mounts, links, routes, iptables rules, cgroups (see
//! `cleanup.rs`). [`Cluster::shutdown`] does the same and fails the test
//! when something is left over.

mod api;
pub mod cleanup;
mod support;

pub use support::*;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::images::{busybox_image, require_busybox, BUSYBOX};
use super::*;

/// How long the node may take from server start to Ready.
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a pod of the local image may take to run.
pub const POD_TIMEOUT: Duration = Duration::from_secs(60);
/// kubectl speaking SPDY/3.1 for exec, attach, port-forward.
pub const KUBECTL_SPDY: &str = KUBECTL_OLDEST;
/// kubectl speaking WebSocket (`v5.channel.k8s.io`).
pub const KUBECTL_WEBSOCKET: &str = KUBECTL_NEWEST;
/// How long the server may take to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Slots: slot `n` owns cluster CIDR 10.(200+n).0.0/16 and service CIDR
/// 10.(160+n).0.0/16.
const SLOTS: u32 = 40;

/// Fails (never skips) when something the node agent needs is missing.
pub fn require_node_prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the node-agent tests run real containers and must run as root (CI does)"
    );
    require_tool("containerd", "containerd");
    require_tool("runc", "runc");
    assert!(
        Path::new("/usr/lib/cni/bridge").is_file(),
        "/usr/lib/cni/bridge is missing but the node-agent tests need the CNI plugins: \
         install the Debian package `containernetworking-plugins` \
         (apt-get install -y containernetworking-plugins)"
    );
    require_busybox();
    require_tool("iptables-save", "iptables");
    require_tool("iptables-restore", "iptables");
    require_tool("nft", "nftables");
    require_tool("ip", "iproute2");
}

/// The instance id of an agent dir: first 8 hex of sha256 of its
/// canonical path (names the bridge `nk<id>`, cgroups `nanokube-<id>`).
pub fn instance_id(agent_dir: &Path) -> String {
    let canon = agent_dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", agent_dir.display()));
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_os_str().as_encoded_bytes());
    hex::encode(d.as_ref())[..8].to_string()
}

/// The busybox image tarball, built once per test process.
pub fn shared_busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agent-images");
        busybox_image(&dir, BUSYBOX)
    })
    .clone()
}

/// A slot held for the cluster's lifetime (a lock file, so other test
/// processes on the machine skip it).
struct Slot {
    n: u32,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Whether an address or route of the machine lies in one of `prefixes`.
fn range_in_use(prefixes: &[String]) -> bool {
    let probe = cleanup::Markers {
        root: PathBuf::new(),
        agent_dir: PathBuf::new(),
        id: "-".into(),
        prefixes: prefixes.to_vec(),
    };
    let show = |args: &[&str]| {
        let out = run_with_timeout(Command::new("ip").args(args), None, CLIENT_TIMEOUT);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    probe.has_address(&show(&["-4", "-o", "addr", "show"]))
        || probe.has_address(&show(&["-4", "route", "show", "table", "all"]))
}

fn claim_slot() -> Slot {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join("nanokube-test-slots");
    std::fs::create_dir_all(&dir).expect("create slot lock dir");
    let base = std::process::id() % SLOTS;
    for _ in 0..SLOTS * 2 {
        let n = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SLOTS;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{n}.lock")))
            .expect("open slot lock file");
        let Ok(lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            continue;
        };
        // A run killed before its cleanup may have left the range behind.
        if range_in_use(&slot_prefixes(n)) {
            continue;
        }
        return Slot { n, _lock: lock };
    }
    panic!("no free test slot: all {SLOTS} address ranges 10.200-239.0.0/16 are taken");
}

fn slot_prefixes(n: u32) -> Vec<String> {
    vec![format!("10.{}.", 200 + n), format!("10.{}.", 160 + n)]
}

/// One `nanokube server` with its node agent; cleaned up on drop.
pub struct Cluster {
    pub server: Proc,
    /// The test directory: `d/` (data dir), `host/` (for hostPath
    /// volumes), server logs `stderr-N.log`.
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub agent_dir: PathBuf,
    /// A directory for hostPath volumes (outside the data dir).
    pub host_dir: PathBuf,
    pub id: String,
    pub node: String,
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub kubelet_port: u16,
    /// From spawning the server to the node being Ready.
    pub cold_start: Duration,
    creds: Option<Creds>,
    args: Vec<String>,
    datastore_port: u16,
    slot: Slot,
    tmp: Option<tempfile::TempDir>,
    torn_down: bool,
}

impl std::ops::Deref for Cluster {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.server
    }
}

impl Cluster {
    /// Starts a cluster and waits until its node is Ready.
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Like [`Cluster::start`] with extra server arguments.
    pub fn start_with(extra: &[&str]) -> Cluster {
        require_node_prerequisites();
        let slot = claim_slot();
        let tmp = short_tempdir();
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let data_dir = root.join("d");
        let images = data_dir.join("agent").join("images");
        std::fs::create_dir_all(&images).expect("create agent images dir");
        std::fs::copy(shared_busybox_tar(), images.join("busybox.tar"))
            .expect("place the busybox image");
        let host_dir = root.join("host");
        std::fs::create_dir_all(&host_dir).expect("create host dir");
        let agent_dir = data_dir.join("agent").canonicalize().expect("agent dir");
        let id = instance_id(&agent_dir);
        let n = slot.n;
        let node = format!("nk-test-{n}");
        let cluster_cidr = format!("10.{}.0.0/16", 200 + n);
        let service_cidr = format!("10.{}.0.0/16", 160 + n);
        let datastore_port = free_port();
        let api_port = free_port();
        let kubelet_port = free_port();
        let kubeconfig = data_dir.join("kubeconfig.yaml");
        let mut args: Vec<String> = [
            "server",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--datastore-listen-address",
            &format!("127.0.0.1:{datastore_port}"),
            "--https-listen-port",
            &api_port.to_string(),
            "--bind-address",
            "127.0.0.1",
            "--write-kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
            "--node-name",
            &node,
            "--kubelet-port",
            &kubelet_port.to_string(),
            "--cluster-cidr",
            &cluster_cidr,
            "--service-cidr",
            &service_cidr,
            "--cluster-dns",
            &format!("10.{}.0.10", 160 + n),
            // The host's disk is not under test: a nearly full CI disk
            // must not taint the node with disk pressure or start image GC.
            "--eviction-hard",
            "memory.available<1Mi",
            "--image-gc-high-threshold",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A test may bind the API elsewhere (pods reach it only through a
        // non-loopback address).
        if extra.contains(&"--bind-address") {
            if let Some(i) = args.iter().position(|a| a == "--bind-address") {
                args.drain(i..i + 2);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = Proc::spawn(
            Kind::Server,
            NANOKUBE,
            &refs,
            datastore_port,
            &data_dir,
            &root,
        );
        server.api_port = Some(api_port);
        server.kubeconfig_path = Some(kubeconfig);
        let t0 = Instant::now();
        // From here on a panic unwinds through `Drop`, which cleans up.
        let mut c = Cluster {
            server,
            root,
            data_dir,
            agent_dir,
            host_dir,
            id,
            node,
            cluster_cidr,
            service_cidr,
            kubelet_port,
            cold_start: Duration::ZERO,
            creds: None,
            args,
            datastore_port,
            slot,
            tmp: Some(tmp),
            torn_down: false,
        };
        c.server.wait_ready();
        c.creds = Some(c.server.creds());
        c.wait_node_ready(NODE_READY_TIMEOUT);
        c.cold_start = t0.elapsed();
        eprintln!(
            "cluster {} (slot {}, id {}) node Ready after {:?}",
            c.root.display(),
            c.slot.n,
            c.id,
            c.cold_start
        );
        c
    }

    /// The markers the cleanup recognises this instance by.
    pub fn markers(&self) -> cleanup::Markers {
        cleanup::Markers {
            root: self.root.clone(),
            agent_dir: self.agent_dir.clone(),
            id: self.id.clone(),
            prefixes: slot_prefixes(self.slot.n),
        }
    }

    /// Whether `ip` is in the cluster CIDR.
    pub fn in_cluster_cidr(&self, ip: IpAddr) -> bool {
        ip.to_string()
            .starts_with(&format!("10.{}.", 200 + self.slot.n))
    }

    // -- process control --------------------------------------------------

    /// SIGKILLs the server (the agent in it dies without any cleanup).
    pub fn kill_server(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same data dir, ports and flags;
    /// waits until it answers and the node is Ready.
    pub fn restart(&mut self) {
        self.server.kill();
        let refs: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut p = Proc::spawn(
            Kind::Server,
            NANOKUBE,
            &refs,
            self.datastore_port,
            &self.data_dir,
            &self.root,
        );
        p.api_port = self.server.api_port;
        p.kubeconfig_path = self.server.kubeconfig_path.clone();
        self.server = p;
        self.server.wait_ready();
        self.wait_node_ready(NODE_READY_TIMEOUT);
    }

    /// SIGTERM, up to [`STOP_GRACE`] to exit, then SIGKILL.
    fn stop_server(&mut self) {
        if let Some(child) = self.server.child.as_mut() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.server.kill();
    }

    /// The tail of containerd's log.
    pub fn containerd_log(&self) -> String {
        let text = std::fs::read_to_string(self.agent_dir.join("containerd/containerd.log"))
            .unwrap_or_default();
        tail(&text, 4096).to_string()
    }

    /// Stops the server, removes everything the instance left, and fails
    /// when something could not be removed.
    pub fn shutdown(mut self) {
        self.stop_server();
        let m = self.markers();
        cleanup::teardown(&m);
        self.torn_down = true;
        let left = cleanup::leftovers(&m);
        assert!(
            left.is_empty(),
            "the cluster left these behind after its cleanup:\n  {}",
            left.join("\n  ")
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- cluster {} (node {}, id {}) server stderr (tail):\n{}\n--- containerd log (tail):\n{}",
                self.root.display(),
                self.node,
                self.id,
                tail(&self.server.log(), 6000),
                self.containerd_log()
            );
        }
        if !self.torn_down {
            self.stop_server();
            cleanup::teardown(&self.markers());
        }
        let left = cleanup::leftovers(&self.markers());
        if !left.is_empty() {
            eprintln!(
                "cluster {} left these behind:\n  {}",
                self.root.display(),
                left.join("\n  ")
            );
        }
        // Never delete recursively through a mount that would not go.
        if !cleanup::mounts_under(&self.root).is_empty() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("keeping {} (mounts remain)", tmp.keep().display());
            }
        }
    }
}

/// An instance's identity (slot, directory, id, markers) without a
/// server, for testing the cleanup itself; torn down on drop.
pub struct Scratch {
    pub markers: cleanup::Markers,
    /// The slot: cluster CIDR 10.(200+slot).0.0/16.
    pub slot: u32,
    _slot: Slot,
    _tmp: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let slot = claim_slot();
        let tmp = short_tempdir();
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let agent_dir = root.join("d").join("agent");
        std::fs::create_dir_all(&agent_dir).expect("create agent dir");
        let markers = cleanup::Markers {
            id: instance_id(&agent_dir),
            root,
            agent_dir,
            prefixes: slot_prefixes(slot.n),
        };
        Scratch {
            markers,
            slot: slot.n,
            _slot: slot,
            _tmp: tmp,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        cleanup::teardown(&self.markers);
    }
}
