//! Hollow nodes for integration tests: `nanokube agent --hollow` joined to
//! a [`Proc`] server with the server's own join token.
//!
//! ```ignore
//! let server = Proc::server();
//! let agent = hollow_agent(&server, 3, &[]);      // waits until Ready
//! let names = &agent.nodes;                       // ["hollow-hollow-0", ...]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

/// Node-name prefix [`hollow_agent`] uses unless `extra` has `--node-name`.
pub const HOLLOW_PREFIX: &str = "hollow";
/// How long hollow nodes may take to register and become Ready.
pub const HOLLOW_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Annotations the hollow kubelet reads from pods.
pub const READY_AFTER: &str = "hollow.nanokube.io/ready-after-seconds";
pub const NEVER_READY: &str = "hollow.nanokube.io/never-ready";
pub const RUN_SECONDS: &str = "hollow.nanokube.io/run-seconds";
pub const EXIT_CODE: &str = "hollow.nanokube.io/exit-code";

/// `<data-dir>/server/token` of a server.
pub fn token_path(server: &Proc) -> PathBuf {
    server.data_dir.join("server").join("token")
}

/// The server's full join token (`K10<ca-hash>::server:<secret>`).
pub fn server_token(server: &Proc) -> String {
    let path = token_path(server);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.trim().to_string()
}

/// The names of `n` hollow nodes with `prefix`: `<prefix>-hollow-<i>`.
pub fn hollow_node_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-hollow-{i}")).collect()
}

/// A running `nanokube agent --hollow` (a [`Proc`]: killed on drop) and
/// the names of its nodes.
pub struct HollowAgent {
    pub proc: Proc,
    pub nodes: Vec<String>,
}

impl std::ops::Deref for HollowAgent {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for HollowAgent {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// Starts `nanokube agent --hollow` with `nodes` nodes against `server`
/// (its URL and token), with `extra` arguments (e.g. `--node-name x`,
/// `--hollow-run-seconds 1`, `--token other`); does not wait.
pub fn spawn_hollow_agent(server: &Proc, nodes: usize, extra: &[&str]) -> HollowAgent {
    let has = |flag: &str| {
        extra
            .iter()
            .any(|a| a == &flag || a.starts_with(&format!("{flag}=")))
    };
    let prefix = extra
        .iter()
        .position(|a| *a == "--node-name")
        .and_then(|i| extra.get(i + 1))
        .map(|s| s.to_string())
        .or_else(|| {
            extra
                .iter()
                .find_map(|a| a.strip_prefix("--node-name=").map(str::to_string))
        })
        .unwrap_or_else(|| HOLLOW_PREFIX.to_string());
    let token = server_token(server);
    let url = server.api_url();
    let count = nodes.to_string();
    // The agent's data dir lives next to the server's and names the prefix.
    let log_dir = server
        .data_dir
        .parent()
        .expect("server data dir has a parent")
        .join(format!("agent-{prefix}"));
    let mut args = vec![
        "agent",
        "--hollow",
        "--hollow-nodes",
        &count,
        "--server",
        &url,
    ];
    if !has("--token") {
        args.extend(["--token", &token]);
    }
    if !has("--node-name") {
        args.extend(["--node-name", HOLLOW_PREFIX]);
    }
    args.extend(["--data-dir", log_dir.to_str().expect("utf-8 path")]);
    args.extend_from_slice(extra);
    HollowAgent {
        proc: Proc::spawn(Kind::Agent, NANOKUBE, &args, 0, &log_dir, &log_dir),
        nodes: hollow_node_names(&prefix, nodes),
    }
}

/// Starts a hollow agent (see [`spawn_hollow_agent`]) and waits until all
/// its nodes are Ready in `kubectl get nodes`.
pub fn hollow_agent(server: &Proc, nodes: usize, extra: &[&str]) -> HollowAgent {
    let mut agent = spawn_hollow_agent(server, nodes, extra);
    wait_nodes_ready(server, &mut agent, HOLLOW_READY_TIMEOUT);
    agent
}

/// The Ready condition status ("True", "False", "Unknown") of every node.
pub fn node_readiness(server: &Proc) -> std::collections::HashMap<String, String> {
    let list = kubectl(server).json(&["get", "nodes"]);
    let mut out = std::collections::HashMap::new();
    for node in list["items"].as_array().into_iter().flatten() {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str())
            .unwrap_or("");
        out.insert(name.to_string(), ready.to_string());
    }
    out
}

/// Waits until every node of `agent` is Ready; panics with both logs.
pub fn wait_nodes_ready(server: &Proc, agent: &mut HollowAgent, timeout: Duration) {
    let names = agent.nodes.clone();
    let deadline = Instant::now() + timeout;
    loop {
        agent.assert_alive();
        let ready = node_readiness(server);
        if names
            .iter()
            .all(|n| ready.get(n).map(String::as_str) == Some("True"))
        {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "hollow nodes {names:?} not Ready within {timeout:?} (have {ready:?});\nagent stderr:\n{}\nserver stderr:\n{}",
                agent.log(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/usr/bin/kubectl` with the server's admin kubeconfig.
pub fn kubectl(server: &Proc) -> Kubectl<'_> {
    let mut k = server.kubectl(KUBECTL_NEWEST);
    k.bin = PathBuf::from("/usr/bin/kubectl");
    k
}
