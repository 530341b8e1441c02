//! The configuration: one clap structure fed, in order of precedence, by
//! command-line flags, `NANOKUBE_*` environment variables and a YAML file
//! whose keys are the long flag names (as in k3s).

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub const DEFAULT_CONFIG: &str = "/etc/nanokube/config.yaml";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key {key:?} is not a flag of `nanokube {command}`")]
    UnknownKey {
        path: PathBuf,
        key: String,
        command: String,
    },
}

#[derive(Debug, Parser)]
#[command(
    name = "nanokube",
    version,
    about = "A whole Kubernetes distribution in one executable",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start; boxing the server's flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane (datastore, etcd API) on this machine
    Server(ServerArgs),
    /// Join this machine to a cluster as a worker node
    Agent(AgentArgs),
    /// Run only the datastore: an etcd v3 API over SQLite
    Datastore(DatastoreArgs),
    /// Import or list container images on this node (air-gap images)
    Images(ImagesArgs),
    /// Show or rotate the key that encrypts Secrets in the datastore
    SecretsEncrypt(SecretsEncryptArgs),
    /// Manage bootstrap tokens for joining nodes, or rotate the server token
    Token(TokenArgs),
    /// Check this machine for what nanokube needs: kernel, cgroups, binaries, sysctls
    CheckConfig(crate::ops::CheckConfigArgs),
    /// Run kubectl from PATH with the admin kubeconfig
    #[command(disable_help_flag = true)]
    Kubectl(crate::ops::KubectlArgs),
    /// Rotate or check the cluster's certificates
    Certificate(crate::certificates::CertificateArgs),
    /// Print the version
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags every long-running command has.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// YAML config file; keys are long flag names
    #[arg(long, env = "NANOKUBE_CONFIG_FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Log at debug level
    #[arg(long, env = "NANOKUBE_DEBUG")]
    pub debug: bool,
    /// Log line format
    #[arg(long, env = "NANOKUBE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Where state lives (default /var/lib/nanokube as root, ~/.nanokube otherwise)
    #[arg(long, short = 'd', env = "NANOKUBE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl CommonArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/lib/nanokube")
    } else {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".nanokube"))
            .unwrap_or_else(|| PathBuf::from(".nanokube"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct CompactionArgs {
    /// Seconds between automatic compactions (0 disables them)
    #[arg(long, env = "NANOKUBE_COMPACTION_INTERVAL", default_value_t = 60)]
    pub compaction_interval: u64,
    /// Seconds of history kept by automatic compaction
    #[arg(long, env = "NANOKUBE_COMPACTION_RETENTION", default_value_t = 300)]
    pub compaction_retention: u64,
    /// Revisions of history always kept by automatic compaction
    #[arg(
        long,
        env = "NANOKUBE_COMPACTION_MIN_REVISIONS",
        default_value_t = 1000
    )]
    pub compaction_min_revisions: i64,
}

/// The node agent's flags, shared by `server` (its own node) and `agent`.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Node name (default: the host name); with --hollow, the prefix of the hollow nodes' names
    #[arg(long, env = "NANOKUBE_NODE_NAME")]
    pub node_name: Option<String>,
    /// IP address to advertise for the node (default: the first non-loopback IPv4 address)
    #[arg(long, env = "NANOKUBE_NODE_IP")]
    pub node_ip: Option<IpAddr>,
    /// CRI socket of a container runtime that is already running (default: start containerd)
    #[arg(long, env = "NANOKUBE_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// HTTPS port of the node agent (logs, exec, attach, port-forward)
    #[arg(long, env = "NANOKUBE_KUBELET_PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Cluster DNS server address given to pods
    #[arg(long, env = "NANOKUBE_CLUSTER_DNS", default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,
    /// Upstream resolvers for names outside the cluster (default: /etc/resolv.conf, loopback stubs skipped)
    #[arg(long, env = "NANOKUBE_RESOLV_CONF")]
    pub resolv_conf: Option<std::path::PathBuf>,
    /// Resources reserved for Kubernetes daemons, e.g. cpu=100m,memory=256Mi
    #[arg(long, env = "NANOKUBE_KUBE_RESERVED")]
    pub kube_reserved: Option<String>,
    /// Resources reserved for the system, e.g. cpu=100m,memory=256Mi
    #[arg(long, env = "NANOKUBE_SYSTEM_RESERVED")]
    pub system_reserved: Option<String>,
    /// Most pods this node runs
    #[arg(long, env = "NANOKUBE_MAX_PODS", default_value_t = 110)]
    pub max_pods: u32,
    /// Disk usage percent of the image filesystem that starts image garbage collection
    #[arg(long, env = "NANOKUBE_IMAGE_GC_HIGH_THRESHOLD", default_value_t = 85)]
    pub image_gc_high_threshold: u8,
    /// Disk usage percent image garbage collection frees down to
    #[arg(long, env = "NANOKUBE_IMAGE_GC_LOW_THRESHOLD", default_value_t = 80)]
    pub image_gc_low_threshold: u8,
    /// Hard eviction thresholds, e.g. memory.available<100Mi,nodefs.available<10%
    /// (replaces the defaults: signals left out have none)
    #[arg(long, env = "NANOKUBE_EVICTION_HARD")]
    pub eviction_hard: Option<String>,
    /// Node label to register with, key=value (repeatable)
    #[arg(
        long = "node-label",
        env = "NANOKUBE_NODE_LABEL",
        value_delimiter = ','
    )]
    pub node_labels: Vec<String>,
    /// Node taint to register with, key=value:Effect (repeatable)
    #[arg(
        long = "node-taint",
        env = "NANOKUBE_NODE_TAINT",
        value_delimiter = ','
    )]
    pub node_taints: Vec<String>,
    /// Directories holding the CNI plugin binaries (default: /usr/lib/cni, /opt/cni/bin)
    #[arg(long, env = "NANOKUBE_CNI_BIN_DIR", value_delimiter = ',')]
    pub cni_bin_dir: Vec<PathBuf>,
    /// Leave containerd and the pods running when the agent stops
    #[arg(long, env = "NANOKUBE_LEAVE_PODS_RUNNING")]
    pub leave_pods_running: bool,
    /// How the service proxy programs the node
    #[arg(long, env = "NANOKUBE_PROXY_MODE", value_enum, default_value_t = ProxyMode::Nftables)]
    pub proxy_mode: ProxyMode,
    /// Interface whose address carries pod traffic to other nodes (default: the node IP's)
    #[arg(long, env = "NANOKUBE_FLANNEL_IFACE")]
    pub flannel_iface: Option<String>,
}

/// The pod network between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlannelBackend {
    /// VXLAN overlay (VNI 1, UDP 8472), flannel-compatible
    Vxlan,
    /// Routes to other nodes' pod networks through their addresses (nodes on one L2 network)
    #[value(name = "host-gw")]
    HostGw,
    /// No pod network between nodes and no CNI configuration: bring your own CNI
    None,
}

/// The service proxy's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyMode {
    /// iptables-restore (with the nft backend where the system uses it)
    Iptables,
    /// native nftables
    Nftables,
}

/// Packaged components `--disable` turns off (k3s's names where they exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Component {
    /// the in-process cluster DNS (k3s's name)
    Coredns,
    /// the in-process cluster DNS
    Dns,
    /// the built-in service load balancer
    Servicelb,
}

impl ServerArgs {
    /// Whether the in-process cluster DNS runs (`--disable coredns|dns`).
    pub fn dns_enabled(&self) -> bool {
        !self
            .disable
            .iter()
            .any(|c| matches!(c, Component::Coredns | Component::Dns))
    }

    /// Whether the built-in service load balancer runs.
    pub fn servicelb_enabled(&self) -> bool {
        !self.disable.contains(&Component::Servicelb)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also serve the etcd API on this TCP address (it is always on <data-dir>/server/etcd.sock)
    #[arg(long, env = "NANOKUBE_DATASTORE_LISTEN_ADDRESS")]
    pub datastore_listen_address: Option<SocketAddr>,
    #[command(flatten)]
    pub compaction: CompactionArgs,
    /// HTTPS port of the API server
    #[arg(long, env = "NANOKUBE_HTTPS_LISTEN_PORT", default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server binds to
    #[arg(long, env = "NANOKUBE_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Extra host name or IP in the serving certificate (repeatable or comma-separated)
    #[arg(long, env = "NANOKUBE_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Cluster DNS domain
    #[arg(long, env = "NANOKUBE_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Service IP range(s), comma-separated; the first address is the `kubernetes` service
    #[arg(long, env = "NANOKUBE_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// Where to write the admin kubeconfig (default /etc/nanokube/nanokube.yaml as root, <data-dir>/nanokube.yaml otherwise)
    #[arg(long, short = 'o', env = "NANOKUBE_WRITE_KUBECONFIG")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Octal file mode of the admin kubeconfig, e.g. 644
    #[arg(long, env = "NANOKUBE_WRITE_KUBECONFIG_MODE", default_value = "600")]
    pub write_kubeconfig_mode: String,
    /// Run only the control plane: no node agent on this machine
    #[arg(long, env = "NANOKUBE_DISABLE_AGENT")]
    pub disable_agent: bool,
    /// Packaged components not to run (repeatable or comma-separated)
    #[arg(long, env = "NANOKUBE_DISABLE", value_enum, value_delimiter = ',')]
    pub disable: Vec<Component>,
    /// Port range of NodePort services
    #[arg(
        long,
        env = "NANOKUBE_SERVICE_NODE_PORT_RANGE",
        default_value = "30000-32767"
    )]
    pub service_node_port_range: String,
    /// Join token (default: created on first start, kept in <data-dir>/server/token)
    #[arg(long, short = 't', env = "NANOKUBE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the join token
    #[arg(long, env = "NANOKUBE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Token agents join with (may not join as servers); kept in <data-dir>/server/agent-token
    #[arg(long, env = "NANOKUBE_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// File holding the agent token
    #[arg(long, env = "NANOKUBE_AGENT_TOKEN_FILE")]
    pub agent_token_file: Option<PathBuf>,
    /// Elect one server to run the controllers and the scheduler (for several servers sharing one datastore)
    #[arg(long, env = "NANOKUBE_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Pod network; each node gets a /24 of it
    #[arg(long, env = "NANOKUBE_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Seconds without a node Lease renewal before the node is marked NotReady (Unknown)
    #[arg(long, env = "NANOKUBE_NODE_MONITOR_GRACE_PERIOD", default_value_t = 40)]
    pub node_monitor_grace_period: u64,
    /// tolerationSeconds added to pods for the node.kubernetes.io/not-ready:NoExecute taint
    #[arg(
        long,
        env = "NANOKUBE_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        default_value_t = 300
    )]
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds added to pods for the node.kubernetes.io/unreachable:NoExecute taint
    #[arg(
        long,
        env = "NANOKUBE_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        default_value_t = 300
    )]
    pub default_unreachable_toleration_seconds: i64,
    /// How pod networks of different nodes reach each other; agents follow the server (k3s's flag name)
    #[arg(long, env = "NANOKUBE_FLANNEL_BACKEND", value_enum, default_value_t = FlannelBackend::Vxlan)]
    pub flannel_backend: FlannelBackend,
    #[command(flatten)]
    pub security: SecurityArgs,
    #[command(flatten)]
    pub snapshots: crate::snapshots::ScheduleArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Authentication, authorization, secrets at rest and audit of the API server.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Authorizers in order, comma-separated: Node, RBAC, AlwaysAllow
    #[arg(
        long,
        env = "NANOKUBE_AUTHORIZATION_MODE",
        value_delimiter = ',',
        default_value = "Node,RBAC"
    )]
    pub authorization_mode: Vec<String>,
    /// Let requests without credentials through as system:anonymous (RBAC then decides); health, version and /cacerts are always served
    #[arg(long, env = "NANOKUBE_ANONYMOUS_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// Static bearer tokens, CSV lines `token,user,uid,"group1,group2"`
    #[arg(long, env = "NANOKUBE_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// Encrypt Secret values in the datastore (AES-GCM, key under <data-dir>/server/cred/)
    #[arg(long, env = "NANOKUBE_SECRETS_ENCRYPTION")]
    pub secrets_encryption: bool,
    /// Write audit events (audit.k8s.io/v1, one JSON per line) to this file; `-` is stdout
    #[arg(long, env = "NANOKUBE_AUDIT_LOG_PATH")]
    pub audit_log_path: Option<PathBuf>,
    /// Audit level for every request: None, Metadata, Request or RequestResponse
    #[arg(long, env = "NANOKUBE_AUDIT_LEVEL", default_value = "Metadata")]
    pub audit_level: String,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of a server to join, e.g. https://10.0.0.1:6443
    #[arg(long, short = 's', env = "NANOKUBE_URL")]
    pub server: Option<String>,
    /// Join token (needed only for the first join; the node then keeps its own credentials)
    #[arg(long, short = 't', env = "NANOKUBE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the join token
    #[arg(long, env = "NANOKUBE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Cluster DNS domain
    #[arg(long, env = "NANOKUBE_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Register fake nodes that run pods without containers (for tests and scale benchmarks, like kubemark)
    #[arg(long)]
    pub hollow: bool,
    /// How many hollow nodes to register
    #[arg(long, default_value_t = 1)]
    pub hollow_nodes: usize,
    /// Seconds a hollow pod that is meant to finish (restartPolicy Never/OnFailure) runs before it exits
    #[arg(long, default_value_t = 3.0)]
    pub hollow_run_seconds: f64,
    /// CPU capacity of each hollow node
    #[arg(long, default_value = "4")]
    pub hollow_cpu: String,
    /// Memory capacity of each hollow node
    #[arg(long, default_value = "8Gi")]
    pub hollow_memory: String,
    /// Pod capacity of each hollow node
    #[arg(long, default_value_t = 110)]
    pub hollow_pods: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ImagesCommand {
    /// Import OCI or docker-archive tarballs (.tar, .tar.gz, .tar.zst) into the node's containerd
    Import {
        /// Image tarballs
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the images the node's containerd has
    List,
}

#[derive(Debug, Clone, Args)]
pub struct SecretsEncryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Kubeconfig of a cluster admin (default: the server's admin kubeconfig)
    #[arg(long, env = "KUBECONFIG", global = true)]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SecretsEncryptCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SecretsEncryptCommand {
    /// Print whether encryption is on, the active key and how many Secrets each key holds
    Status,
    /// Make a new key the active one and re-encrypt every Secret with it
    Rotate,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Kubeconfig of a cluster admin (default: the server's admin kubeconfig)
    #[arg(long, env = "KUBECONFIG", global = true)]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}) and print the join token
    Create {
        /// The token to create (default: a random one)
        token: Option<String>,
        /// Lifetime, e.g. 24h, 30m, 0 for never (default 24h)
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Comma-separated usages: authentication, signing
        #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
        usages: Vec<String>,
        /// Extra groups the token authenticates as (system:bootstrappers:...)
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Human-readable description
        #[arg(long)]
        description: Option<String>,
    },
    /// List bootstrap tokens
    List {
        /// Output format: text, json or yaml
        #[arg(long, short = 'o', default_value = "text")]
        output: String,
    },
    /// Delete bootstrap tokens by id or whole token
    Delete {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
    /// Replace the server token (nodes already joined keep their credentials)
    Rotate {
        /// The current server token (default: read from <data-dir>/server/token)
        #[arg(long, short = 't')]
        token: Option<String>,
        /// The new token (default: a random one)
        #[arg(long)]
        new_token: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DatastoreArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// TCP address of the etcd v3 API
    #[arg(
        long,
        env = "NANOKUBE_LISTEN_ADDRESS",
        default_value = "127.0.0.1:2379"
    )]
    pub listen_address: SocketAddr,
    #[command(flatten)]
    pub compaction: CompactionArgs,
    #[command(subcommand)]
    pub command: Option<DatastoreCommand>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DatastoreCommand {
    /// Save, list, restore or prune datastore snapshots
    Snapshot(crate::snapshots::SnapshotArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Server(_) => "server",
            Command::Agent(_) => "agent",
            Command::Datastore(_) => "datastore",
            Command::Images(_) => "images",
            Command::SecretsEncrypt(_) => "secrets-encrypt",
            Command::Token(_) => "token",
            Command::CheckConfig(_) => "check-config",
            Command::Kubectl(_) => "kubectl",
            Command::Certificate(_) => "certificate",
            Command::Version => "version",
        }
    }

    fn common(&self) -> Option<&CommonArgs> {
        match self {
            Command::Server(a) => Some(&a.common),
            Command::Agent(a) => Some(&a.common),
            Command::Datastore(a) => Some(&a.common),
            Command::Images(a) => Some(&a.common),
            Command::SecretsEncrypt(a) => Some(&a.common),
            Command::Token(a) => Some(&a.common),
            Command::Certificate(a) => Some(&a.common),
            Command::CheckConfig(_) | Command::Kubectl(_) | Command::Version => None,
        }
    }
}

/// Parses the command line, then folds in the config file: its keys become
/// flags placed before the user's own, so flags given on the command line
/// win, and keys whose environment variable is set are skipped so the
/// environment wins over the file.
pub fn load(args: Vec<OsString>) -> Result<Cli, Error> {
    let first = Cli::parse_from(args.clone());
    let Some(common) = first.command.common() else {
        return Ok(first);
    };
    let path = common.config.clone();
    let explicit = args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--config" || a.starts_with("--config=")
    }) || std::env::var_os("NANOKUBE_CONFIG_FILE").is_some();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(first),
        Err(source) => return Err(Error::Read { path, source }),
    };
    let extra = file_args(&path, &text, first.command.name())?;
    if extra.is_empty() {
        return Ok(first);
    }
    // argv[0], the subcommand, the file's flags, then the user's flags.
    let pos = args
        .iter()
        .position(|a| a.to_string_lossy() == first.command.name())
        .unwrap_or(1);
    let mut merged: Vec<OsString> = args[..=pos].to_vec();
    merged.extend(extra.into_iter().map(OsString::from));
    merged.extend(args[pos + 1..].iter().cloned());
    Ok(Cli::parse_from(merged))
}

fn file_args(path: &Path, text: &str, command: &str) -> Result<Vec<String>, Error> {
    let parse_err = |message: String| Error::Parse {
        path: path.to_path_buf(),
        message,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let map = match doc {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(parse_err(
                "expected a mapping of flag names to values".into(),
            ))
        }
    };
    let cli = Cli::command();
    let sub = cli
        .find_subcommand(command)
        .ok_or_else(|| parse_err(format!("unknown command {command}")))?;
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(arg) = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            // The file is the server's or the agent's (as k3s's): the other
            // commands read what they share with it and skip the rest.
            if !matches!(command, "server" | "agent") {
                continue;
            }
            return Err(Error::UnknownKey {
                path: path.to_path_buf(),
                key,
                command: command.into(),
            });
        };
        if let Some(env) = arg.get_env() {
            if std::env::var_os(env).is_some() {
                continue;
            }
        }
        let flag = format!("--{key}");
        let takes_value = arg.get_action().takes_values();
        let values = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        for v in values {
            match (v, takes_value) {
                (serde_json::Value::Bool(true), false) => out.push(flag.clone()),
                (serde_json::Value::Bool(false), false) | (serde_json::Value::Null, _) => {}
                (serde_json::Value::String(s), true) => out.push(format!("{flag}={s}")),
                (serde_json::Value::Number(n), true) => out.push(format!("{flag}={n}")),
                (serde_json::Value::Bool(b), true) => out.push(format!("{flag}={b}")),
                (other, _) => {
                    return Err(parse_err(format!("key {key:?}: unsupported value {other}")));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_keys_become_flags_and_cli_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "listen-address: 127.0.0.1:3000\ndebug: true\ncompaction-retention: 10\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let cli = load(args(&[
            "nanokube",
            "datastore",
            "--config",
            p,
            "--compaction-retention",
            "20",
        ]))
        .unwrap();
        let Command::Datastore(d) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(d.listen_address.port(), 3000);
        assert!(d.common.debug);
        assert_eq!(d.compaction.compaction_retention, 20);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "no-such-flag: 1\n").unwrap();
        let err = load(args(&[
            "nanokube",
            "server",
            "--config",
            path.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("no-such-flag"), "{err}");
        // Other commands share the server's file and skip what is not theirs.
        std::fs::write(
            &path,
            "tls-san: a.example\nlisten-address: 127.0.0.1:3000\n",
        )
        .unwrap();
        let cli = load(args(&[
            "nanokube",
            "datastore",
            "--config",
            path.to_str().unwrap(),
        ]))
        .unwrap();
        let Command::Datastore(d) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(d.listen_address.port(), 3000);
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_explicit_file_is_not() {
        assert!(load(args(&["nanokube", "datastore"])).is_ok());
        assert!(load(args(&[
            "nanokube",
            "datastore",
            "--config",
            "/nonexistent/x.yaml"
        ]))
        .is_err());
    }
}
