//! The node agent. `nanokube server` runs the kubelet (`kubelet/`) for its
//! own machine in process; `nanokube agent --server URL --token T` joins
//! another machine as a node (`joined.rs`); both run the node the same way
//! (`node.rs`). `nanokube agent --hollow` registers fake nodes that "run"
//! pods without containers (like kubemark's hollow kubelets) for tests and
//! scale benchmarks.
//!
//! Joining follows k3s: fetch the server CA from `/cacerts` without
//! trusting it, check its SHA-256 against the hash in the join token, then
//! talk to the API over TLS verified by that CA, with the token as bearer.

pub mod credentials;
mod cri;
mod hollow;
mod join;
mod joined;
mod kubelet;
mod network;
mod node;
mod proxy;
mod renewing;
mod runtime;
mod serving;

use std::future::Future;

use crate::client::ClientError;
use crate::config::AgentArgs;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--server is required: the URL of the server to join, e.g. --server https://10.0.0.1:6443"
    )]
    MissingServer,
    #[error("--token is required: the join token from the server's <data-dir>/server/token")]
    MissingToken,
    #[error("reading the join token from {path}: {message}")]
    TokenFile { path: String, message: String },
    #[error("node credentials: {0}")]
    Credentials(#[from] credentials::Error),
    #[error("creating {path}: {message}")]
    DataDir { path: String, message: String },
    #[error("the kubelet port's tls: {0}")]
    Tls(String),
    #[error("invalid join token: {0}")]
    Token(#[from] crate::pki::Error),
    #[error("invalid server URL {0:?}: expected https://host:port")]
    ServerUrl(String),
    #[error("fetching the server CA from {url}: {message}")]
    CaFetch { url: String, message: String },
    #[error("the server's CA certificate (sha256 {actual}) does not match the CA hash in the join token ({expected}): the token belongs to another cluster or someone may be in the middle (possible man-in-the-middle attack); refusing to join")]
    CaMismatch { expected: String, actual: String },
    #[error("the server refused the join token (401 Unauthorized): check --token")]
    Unauthorized,
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("{0}")]
    Runtime(#[from] runtime::Error),
    #[error("{0}")]
    Kubelet(#[from] kubelet::Error),
}

/// `nanokube images import|list` against this node's containerd.
pub async fn images(args: crate::config::ImagesArgs) -> Result<(), Error> {
    let agent_dir = args.common.data_dir().join("agent");
    let cmd = match args.command {
        crate::config::ImagesCommand::Import { files } => runtime::ImagesCommand::Import { files },
        crate::config::ImagesCommand::List => runtime::ImagesCommand::List,
    };
    runtime::images_command(&agent_dir, cmd).await?;
    Ok(())
}

/// The server's own node.
pub struct LocalNode {
    pub data_dir: std::path::PathBuf,
    pub node: crate::config::NodeArgs,
    pub node_name: String,
    pub cluster_domain: String,
    pub tls: std::sync::Arc<rustls::ServerConfig>,
    /// Pod network (traffic from outside it to services is masqueraded).
    pub cluster_cidr: String,
    /// Service IP range(s), comma-separated.
    pub service_cidr: String,
    /// Runs the in-process cluster DNS at `node.cluster_dns`.
    pub dns: bool,
    /// The pod network between nodes (`--flannel-backend`).
    pub flannel_backend: crate::config::FlannelBackend,
}

/// Runs the node agent inside the server process, with the in-process
/// client, until `shutdown`.
pub async fn run_local(
    client: crate::client::Local,
    node: LocalNode,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let plan = node::NodePlan {
        data_dir: node.data_dir,
        cluster_dns: node.dns.then_some(node.node.cluster_dns),
        node: node.node,
        node_name: node.node_name,
        server_role: true,
        tls: node.tls,
        cluster_cidr: node.cluster_cidr,
        service_cidr: node.service_cidr,
        cluster_domain: node.cluster_domain,
        flannel_backend: node.flannel_backend,
    };
    node::run(client.clone(), client, plan, shutdown).await
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    args: AgentArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if !args.hollow {
        return joined::run(args, shutdown).await;
    }
    let server = args.server.clone().ok_or(Error::MissingServer)?;
    let token = args.token.clone().ok_or(Error::MissingToken)?;
    if args.hollow_nodes == 0 {
        return Err(Error::Invalid("--hollow-nodes must be at least 1".into()));
    }
    if !(args.hollow_run_seconds.is_finite() && args.hollow_run_seconds >= 0.0) {
        return Err(Error::Invalid(
            "--hollow-run-seconds must be a number of seconds".into(),
        ));
    }
    let client = join::connect(&server, &token).await?;
    let prefix = args
        .node
        .node_name
        .clone()
        .unwrap_or_else(hostname)
        .to_ascii_lowercase();
    let settings = hollow::Settings {
        prefix,
        nodes: args.hollow_nodes,
        cpu: args.hollow_cpu.clone(),
        memory: args.hollow_memory.clone(),
        pods: args.hollow_pods,
        run_seconds: args.hollow_run_seconds,
    };
    hollow::run(client, settings, shutdown).await;
    Ok(())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "nanokube".into())
}
