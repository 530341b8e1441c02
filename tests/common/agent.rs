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

pub mod cleanup;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

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
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
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

    // -- API -------------------------------------------------------------

    /// `METHOD path` on the API with the admin credentials (curl: cheap
    /// enough to poll with); (status, JSON body or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let creds = self.creds.as_ref().expect("credentials are read at start");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-X", method])
            .arg("--cacert")
            .arg(&creds.ca)
            .arg("--cert")
            .arg(&creds.cert)
            .arg("--key")
            .arg(&creds.key)
            .args(["-w", "\n%{http_code}"]);
        let input = body.map(|b| b.to_string());
        if input.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(format!("{}{path}", self.server.api_url()));
        let out = run_with_timeout(
            &mut cmd,
            input.as_deref().map(str::as_bytes),
            CLIENT_TIMEOUT,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code: u16 = code.trim().parse().unwrap_or(0);
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// `GET path`, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        let (code, v) = self.api("GET", path, None);
        assert_eq!(
            code,
            200,
            "GET {path} answered {code}: {v}\nserver stderr:\n{}",
            self.log()
        );
        v
    }

    /// `/usr/bin/kubectl` (the distribution's default version).
    pub fn k(&self) -> Kubectl<'_> {
        let mut k = self.server.kubectl(KUBECTL_NEWEST);
        k.bin = PathBuf::from("/usr/bin/kubectl");
        k.version = "default".into();
        k
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> String {
        self.k().stdin_ok(&["apply", "-f", "-"], yaml)
    }

    /// `kubectl apply` of a JSON manifest.
    pub fn apply_json(&self, manifest: &Value) -> String {
        self.apply(&manifest.to_string())
    }

    /// `kubectl delete pod` without waiting.
    pub fn delete_pod(&self, ns: &str, name: &str) {
        self.k()
            .ok(&["delete", "pod", "-n", ns, name, "--wait=false"]);
    }

    /// The pod, or `None` when it does not exist.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        let (code, v) = self.api("GET", &format!("/api/v1/namespaces/{ns}/pods/{name}"), None);
        match code {
            200 => Some(v),
            404 => None,
            _ => panic!("GET pod {ns}/{name} answered {code}: {v}"),
        }
    }

    /// Pods matching a label selector such as `app=web`.
    pub fn pods_by_label(&self, ns: &str, selector: &str) -> Vec<Value> {
        let sel = selector.replace('=', "%3D").replace(',', "%2C");
        let list = self.get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={sel}"));
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Events whose involved object is `name` in `ns`.
    pub fn events_for(&self, ns: &str, name: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/namespaces/{ns}/events"));
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["involvedObject"]["name"] == name)
            .cloned()
            .collect()
    }

    /// `reason: message` of every event of `name`.
    pub fn event_lines(&self, ns: &str, name: &str) -> Vec<String> {
        self.events_for(ns, name)
            .iter()
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e["type"].as_str().unwrap_or(""),
                    e["reason"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Waits until an event of `name` satisfies `pred`; returns it.
    pub fn wait_event(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events_for(ns, name).into_iter().find(|e| pred(e)) {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no event of {ns}/{name} {what} within {timeout:?}\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The pod's status, its events and the server log's tail, for
    /// failure messages.
    pub fn describe(&self, ns: &str, name: &str) -> String {
        let status = match self.pod(ns, name) {
            Some(p) => serde_json::to_string_pretty(&p["status"]).unwrap_or_default(),
            None => "(pod not found)".into(),
        };
        format!(
            "pod {ns}/{name} status:\n{status}\nevents:\n  {}\nserver stderr (tail):\n{}",
            self.event_lines(ns, name).join("\n  "),
            tail(&self.log(), 4096)
        )
    }

    /// Polls the pod every 250 ms until `cond` holds; returns it. Panics
    /// with the pod's status, events and the server log.
    pub fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.pod(ns, name) {
                if cond(&p) {
                    return p;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "pod {ns}/{name} did not {what} within {timeout:?}\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the pod is Running with every container running.
    pub fn wait_running(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        self.wait_pod(ns, name, timeout, "run", is_running)
    }

    /// Waits until the pod's Ready condition is `ready`.
    pub fn wait_ready(&self, ns: &str, name: &str, ready: bool, timeout: Duration) -> Value {
        let want = if ready { "True" } else { "False" };
        self.wait_pod(ns, name, timeout, &format!("become Ready={want}"), |p| {
            condition(p, "Ready") == Some(want)
        })
    }

    /// Waits until the pod object is gone; returns how long that took.
    pub fn wait_gone(&self, ns: &str, name: &str, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            if self.pod(ns, name).is_none() {
                return t0.elapsed();
            }
            if t0.elapsed() > timeout {
                panic!(
                    "pod {ns}/{name} still exists {timeout:?} after deletion\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the node is Ready (the server must stay alive).
    pub fn wait_node_ready(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let path = format!("/api/v1/nodes/{}", self.node);
        loop {
            self.server.assert_alive();
            let (code, node) = self.api("GET", &path, None);
            if code == 200 && node_condition(&node, "Ready") == Some("True") {
                return node;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {} not Ready within {timeout:?} (GET answered {code}: {node})\n\
                     server stderr:\n{}\ncontainerd log (tail):\n{}",
                    self.node,
                    self.log(),
                    self.containerd_log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // -- streaming --------------------------------------------------------

    /// `kubectl logs` (default kubectl), asserting success.
    pub fn logs(&self, ns: &str, pod: &str, container: Option<&str>) -> String {
        let mut args = vec!["logs", "-n", ns, pod];
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        self.k().ok(&args)
    }

    /// Waits until the pod's log (of `container`) contains `text`.
    pub fn wait_log(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        text: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut args = vec!["logs", "-n", ns, pod];
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        loop {
            let out = self.k().run(&args);
            let log = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && log.contains(text) {
                return log;
            }
            if Instant::now() > deadline {
                panic!(
                    "log of {ns}/{pod} {container:?} has no {text:?} within {timeout:?}; \
                     last output:\n{log}\nstderr:\n{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.describe(ns, pod)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `kubectl exec` with kubectl `version` ("default" = /usr/bin/kubectl);
    /// does not check the status.
    pub fn exec(
        &self,
        version: &str,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
    ) -> Output {
        self.exec_stdin(version, ns, pod, container, cmd, None)
    }

    /// Like [`Cluster::exec`] with `-i` and `stdin` when given.
    pub fn exec_stdin(
        &self,
        version: &str,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let k = self.kubectl_version(version);
        let mut args = vec!["exec", "-n", ns, pod];
        if stdin.is_some() {
            args.push("-i");
        }
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        args.push("--");
        args.extend_from_slice(cmd);
        run_with_timeout(&mut k.command(&args), stdin, CLIENT_TIMEOUT)
    }

    /// `kubectl exec` (default kubectl) asserting success; stdout.
    pub fn exec_ok(&self, ns: &str, pod: &str, container: Option<&str>, cmd: &[&str]) -> String {
        let out = self.exec("default", ns, pod, container, cmd);
        assert!(
            out.status.success(),
            "kubectl exec {ns}/{pod} {container:?} -- {cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.describe(ns, pod)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl `version` ("1.27" … "1.33", or "default").
    pub fn kubectl_version(&self, version: &str) -> Kubectl<'_> {
        if version == "default" {
            self.k()
        } else {
            self.server.kubectl(version)
        }
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

// ---------------------------------------------------------------------------
// Manifests

/// A container of the local busybox image (never pulled) running `script`
/// with `sh -c`.
pub fn busybox_container(name: &str, script: &str) -> Value {
    serde_json::json!({
        "name": name,
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    })
}

/// A Pod with `spec`.
pub fn pod_manifest(ns: &str, name: &str, spec: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

// ---------------------------------------------------------------------------
// Reading pod and node JSON

/// The status of condition `kind` of a pod.
pub fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a str> {
    node_condition(pod, kind)
}

/// The status of condition `kind` of a node (or any object with
/// `status.conditions`).
pub fn node_condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// The status of container `name` (app, init or ephemeral); Null if none.
pub fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    for list in [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ] {
        if let Some(s) = pod["status"][list]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
        {
            return s;
        }
    }
    &NULL
}

/// `restartCount` of container `name` (0 when not reported).
pub fn restart_count(pod: &Value, name: &str) -> i64 {
    container_status(pod, name)["restartCount"]
        .as_i64()
        .unwrap_or(0)
}

/// Phase Running and every container reported running.
pub fn is_running(pod: &Value) -> bool {
    let spec_count = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let statuses = pod["status"]["containerStatuses"].as_array();
    pod["status"]["phase"] == "Running"
        && statuses.is_some_and(|s| {
            s.len() == spec_count && s.iter().all(|c| c["state"]["running"].is_object())
        })
}

/// `status.podIP`, parsed.
pub fn pod_ip(pod: &Value) -> IpAddr {
    pod["status"]["podIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("pod has no podIP: {}", pod["status"]))
}

// ---------------------------------------------------------------------------
// Plain HTTP to pods (their addresses are the test's own)

/// `GET path` over HTTP/1.0 to `addr`; (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let timeout = Duration::from_secs(3);
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header from {addr}: {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}: {head:?}"))?;
    Ok((code, body.to_string()))
}

/// Retries [`http_get`] until it answers 200 or `timeout` passes.
pub fn wait_http(addr: SocketAddr, path: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match http_get(addr, path) {
            Ok((200, body)) => return body,
            Ok((code, body)) => format!("status {code}: {body}"),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            panic!("GET http://{addr}{path} did not answer 200 within {timeout:?}: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------

/// A named scenario for [`run_scenarios`].
pub type Scenario<'a> = (&'static str, Box<dyn FnOnce() + Send + 'a>);

/// Runs scenarios against one cluster in parallel threads (named after
/// them, so their panics say which failed); fails listing every failed one.
pub fn run_scenarios(scenarios: Vec<Scenario<'_>>) {
    let failed = try_scenarios(scenarios);
    assert!(
        failed.is_empty(),
        "scenarios failed: {failed:?} (their panic messages are printed above)"
    );
}

/// Like [`run_scenarios`] but returns the names of the failed scenarios,
/// so a test can go on with later (sequential) steps.
pub fn try_scenarios(scenarios: Vec<Scenario<'_>>) -> Vec<&'static str> {
    std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .into_iter()
            .map(|(name, f)| {
                let h = std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn_scoped(s, f)
                    .expect("spawn scenario thread");
                (name, h)
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, h)| h.join().is_err().then_some(name))
            .collect()
    })
}
