//! `nanokube agent --server URL --token T` as a real node beside a server
//! with its own node, both in this network namespace (the API on
//! loopback; the cluster runs `--flannel-backend none`: two nodes sharing
//! one host network need no overlay, and with `none` the test brings the
//! agent's CNI config itself, as a user would). The agent has its own data dir,
//! node name and kubelet port, so its containerd, bridge, cgroups and
//! rules carry its own instance id.
//!
//! Checks: a wrong CA hash in the token and a missing token are refused
//! with clear errors; the agent joins (node Ready with the host's address,
//! join time printed); a pod bound to it runs; `kubectl logs`/`exec` reach
//! it through the API server and the agent's kubelet port; the server
//! killed and restarted does not restart that pod and the agent picks the
//! API up again (a new pod runs); the agent restarted without the token
//! rejoins with its stored credentials and adopts its running pod; the
//! agent restarted while the server is down comes up on them too, and a
//! first join started while the server is down waits and then joins.
//!
//! The multi-host (network namespace) versions are in `tests/multinode*`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::agent::*;
use crate::common::hollow::server_token;
use crate::common::*;
use serde_json::{json, Value};

const NS: &str = "default";
/// Time to Ready the issue asks for (containerd start included).
const JOIN_TARGET: Duration = Duration::from_secs(5);
/// What a busy CI machine may take before the test calls it broken.
const JOIN_LIMIT: Duration = Duration::from_secs(30);

/// One `nanokube agent` process on its own data dir; stopped and its
/// instance cleaned up on drop.
struct Agent {
    root: PathBuf,
    data_dir: PathBuf,
    node: String,
    kubelet_port: u16,
    server_url: String,
    markers: cleanup::Markers,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
}

impl Agent {
    fn new(c: &Cluster, name: &str) -> Agent {
        let root = c.root.join(name);
        let data_dir = root.join("d");
        let images = data_dir.join("agent").join("images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::copy(shared_busybox_tar(), images.join("busybox.tar")).unwrap();
        let agent_dir = data_dir.join("agent").canonicalize().unwrap();
        let prefix = |cidr: &str| {
            let mut parts = cidr.split('.');
            format!("{}.{}.", parts.next().unwrap(), parts.next().unwrap())
        };
        let markers = cleanup::Markers {
            root: root.clone(),
            id: instance_id(&agent_dir),
            agent_dir,
            prefixes: vec![prefix(&c.cluster_cidr), prefix(&c.service_cidr)],
        };
        Agent {
            root,
            data_dir,
            node: name.to_string(),
            kubelet_port: free_port(),
            server_url: c.server.api_url(),
            markers,
            child: None,
            log: PathBuf::new(),
            starts: 0,
        }
    }

    fn args(&self, token: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--server".into(),
            self.server_url.clone(),
            "--data-dir".into(),
            self.data_dir.to_string_lossy().into_owned(),
            "--node-name".into(),
            self.node.clone(),
            "--kubelet-port".into(),
            self.kubelet_port.to_string(),
            // The host's disk is not under test (as in `Cluster`).
            "--eviction-hard".into(),
            "memory.available<1Mi".into(),
            "--image-gc-high-threshold".into(),
            "100".into(),
        ];
        if let Some(t) = token {
            args.extend(["--token".into(), t.into()]);
        }
        args
    }

    fn start(&mut self, token: Option<&str>) {
        assert!(self.child.is_none(), "the agent is already running");
        self.log = self.root.join(format!("agent-{}.log", self.starts));
        self.starts += 1;
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(NANOKUBE)
            .args(self.args(token))
            .env_remove("NANOKUBE_TOKEN")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nanokube agent");
        self.child = Some(child);
    }

    /// SIGTERM, then SIGKILL after 15 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the agent exited ({status}):\n{}", self.log());
            }
        }
    }

    /// Runs the agent to its exit (it must fail fast); (success, output).
    fn run_to_exit(&self, token: Option<&str>, data_dir: &Path) -> (bool, String) {
        let mut args = self.args(token);
        let i = args.iter().position(|a| a == "--data-dir").unwrap();
        args[i + 1] = data_dir.to_string_lossy().into_owned();
        let out = run_with_timeout(
            Command::new(NANOKUBE)
                .args(&args)
                .env_remove("NANOKUBE_TOKEN"),
            None,
            Duration::from_secs(30),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `--flannel-backend none` means "bring your own CNI": the bridge
    /// conflist the kubelet would write, with the instance's names (so the
    /// cleanup knows them), for the node's podCIDR.
    fn write_cni_config(&self, pod_cidr: &str) {
        let id = &self.markers.id;
        let agent_dir = &self.markers.agent_dir;
        let conf = json!({
            "cniVersion": "0.4.0",
            "name": format!("nanokube-{id}"),
            "plugins": [
                {"type": "bridge", "bridge": format!("nk{id}"), "isGateway": true,
                 "ipMasq": false, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": agent_dir.join("cni/networks")}},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        });
        let dir = agent_dir.join("etc/cni/net.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("10-nanokube.conflist"), conf.to_string()).unwrap();
    }

    /// Waits until the agent's node is Ready; the node object.
    fn wait_ready(&mut self, c: &Cluster, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let path = format!("/api/v1/nodes/{}", self.node);
        loop {
            self.assert_alive();
            let (code, node) = c.api("GET", &path, None);
            if code == 200 && node_condition(&node, "Ready") == Some("True") {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not Ready within {timeout:?} ({code}: {node})\nagent log:\n{}",
                self.node,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- agent {} log (tail):\n{}",
                self.node,
                tail(&self.log(), 6000)
            );
        }
        self.stop();
        cleanup::teardown(&self.markers);
        let left = cleanup::leftovers(&self.markers);
        if !left.is_empty() {
            eprintln!(
                "agent {} left these behind:\n  {}",
                self.node,
                left.join("\n  ")
            );
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn internal_ip(node: &Value) -> String {
    let addrs = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    addrs
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn pod_on(node: &str, name: &str, script: &str) -> Value {
    pod_manifest(
        NS,
        name,
        json!({"nodeName": node, "terminationGracePeriodSeconds": 1,
               "containers": [busybox_container("main", script)]}),
    )
}

fn container_id(pod: &Value) -> String {
    container_status(pod, "main")["containerID"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn agent_joins_runs_pods_and_survives_restarts() {
    let mut c = Cluster::start_with(&["--flannel-backend", "none"]);
    let token = server_token(&c.server);
    let name = format!("{}-agent", c.node);
    let mut agent = Agent::new(&c, &name);

    // A token whose CA hash is not the server's CA: refused before any
    // credential is sent, naming the possible man in the middle.
    let secret = token
        .split("::")
        .nth(1)
        .expect("K10<hash>::server:<secret>");
    let wrong = format!("K10{}::{secret}", "0".repeat(64));
    let (ok, out) = agent.run_to_exit(Some(&wrong), &agent.root.join("wrong"));
    assert!(!ok, "joined with a wrong CA hash:\n{out}");
    assert!(out.contains("man-in-the-middle"), "{out}");
    // No token and nothing stored: one clear error.
    let (ok, out) = agent.run_to_exit(None, &agent.root.join("none"));
    assert!(!ok, "started without token or credentials:\n{out}");
    assert!(out.contains("--token"), "{out}");

    // Join: Ready with the host's address; the join time is logged.
    let t0 = Instant::now();
    agent.start(Some(&token));
    let node = agent.wait_ready(&c, JOIN_LIMIT);
    let join = t0.elapsed();
    // The phases, as the agent logged them (each with its time).
    let phases = [
        "joining",
        "server CA checked",
        "node credentials ready",
        "container runtime ready",
        "node registered",
        "node Ready: joined",
    ];
    let log = agent.log();
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| phases.iter().any(|p| l.contains(p)))
        .collect();
    eprintln!(
        "agent joined: node Ready after {join:?} (target {JOIN_TARGET:?}); phases:\n  {}",
        logged.join("\n  ")
    );
    assert!(
        log.contains("node Ready: joined"),
        "the join time is not logged:\n{log}"
    );
    let server_node = c.get(&format!("/api/v1/nodes/{}", c.node));
    let ip = internal_ip(&node);
    assert!(!ip.is_empty() && ip != "127.0.0.1", "{node}");
    assert_eq!(ip, internal_ip(&server_node), "both nodes are this host");
    assert_eq!(
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        json!(agent.kubelet_port),
        "{node}"
    );
    let pod_cidr = node["spec"]["podCIDR"].as_str().expect("a podCIDR");
    agent.write_cni_config(pod_cidr);

    // A pod on the agent's node runs; logs and exec reach it.
    c.apply_json(&pod_on(
        &name,
        "on-agent",
        "echo hello-from-agent; exec sleep 3600",
    ));
    let pod = c.wait_running(NS, "on-agent", POD_TIMEOUT);
    assert_eq!(pod["spec"]["nodeName"], json!(name));
    assert!(c.in_cluster_cidr(pod_ip(&pod)), "{pod}");
    c.wait_log(NS, "on-agent", None, "hello-from-agent", POD_TIMEOUT);
    let host = c.exec_ok(NS, "on-agent", None, &["cat", "/etc/hostname"]);
    assert_eq!(host.trim(), "on-agent");
    let spdy = c.exec(KUBECTL_SPDY, NS, "on-agent", None, &["echo", "spdy"]);
    assert!(
        String::from_utf8_lossy(&spdy.stdout).contains("spdy"),
        "{spdy:?}"
    );
    let before = container_id(&pod);
    assert!(!before.is_empty(), "{pod}");

    // The server killed, away for a while (the agent retries with
    // back-off) and restarted: the agent's pod is not touched, and the
    // agent follows the new server (a new pod runs).
    c.kill_server();
    std::thread::sleep(Duration::from_secs(10));
    agent.assert_alive();
    c.restart();
    agent.wait_ready(&c, Duration::from_secs(60));
    c.apply_json(&pod_on(&name, "after-restart", "exec sleep 3600"));
    c.wait_running(NS, "after-restart", POD_TIMEOUT);
    let pod = c.wait_running(NS, "on-agent", POD_TIMEOUT);
    assert_eq!(container_id(&pod), before, "the pod was restarted: {pod}");
    assert_eq!(restart_count(&pod, "main"), 0, "{pod}");
    agent.assert_alive();

    // The agent restarted without the token: stored credentials.
    agent.stop();
    agent.start(None);
    agent.wait_ready(&c, JOIN_LIMIT);
    // The restarted kubelet adopts the running container.
    let pod = c.wait_running(NS, "on-agent", POD_TIMEOUT);
    assert_eq!(container_id(&pod), before, "the pod was restarted: {pod}");

    // The agent restarted with its token (as a service unit would) while
    // the server is down: it comes up on its stored credentials and serves
    // the API again once the server is back (a new pod runs).
    // A machine joining for the first time meanwhile waits for the server
    // (boot order) and joins once it is back.
    agent.stop();
    c.kill_server();
    agent.start(Some(&token));
    let mut late = Agent::new(&c, &format!("{name}-late"));
    late.start(Some(&token));
    std::thread::sleep(Duration::from_secs(3));
    agent.assert_alive();
    let log = agent.log();
    assert!(log.contains("trying the stored node credentials"), "{log}");
    late.assert_alive();
    let log = late.log();
    assert!(log.contains("waiting for it"), "{log}");
    c.restart();
    agent.wait_ready(&c, JOIN_LIMIT);
    late.wait_ready(&c, Duration::from_secs(30));
    drop(late);
    c.apply_json(&pod_on(&name, "after-both", "exec sleep 3600"));
    c.wait_running(NS, "after-both", POD_TIMEOUT);
    let pod = c.wait_running(NS, "on-agent", POD_TIMEOUT);
    assert_eq!(container_id(&pod), before, "the pod was restarted: {pod}");

    for pod in ["on-agent", "after-restart", "after-both"] {
        c.delete_pod(NS, pod);
        c.wait_gone(NS, pod, POD_TIMEOUT);
    }

    drop(agent);
    c.shutdown();
}
