//! nanokube: a whole Kubernetes distribution in one executable.

mod agent;
mod api;
mod apiserver;
mod certificates;
mod client;
mod config;
mod controllers;
mod datastore;
mod dns;
mod encryption;
mod etcd;
mod manifests;
mod metrics;
mod ops;
mod pki;
mod scheduler;
mod snapshots;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};

use config::{Command, CommonArgs, CompactionArgs, LogFormat};
use datastore::{SqliteBackend, SqliteOptions};

fn main() {
    let cli = match config::load(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("nanokube: {err}");
            std::process::exit(2);
        }
    };
    if let Err(err) = run(cli.command) {
        eprintln!("nanokube: {err:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version => {
            println!("nanokube version v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Server(args) => {
            init_logging(&args.common);
            runtime()?.block_on(server(args))
        }
        Command::Datastore(config::DatastoreArgs {
            common,
            command: Some(config::DatastoreCommand::Snapshot(args)),
            ..
        }) => {
            runtime()?.block_on(snapshots::command(args, &common))?;
            Ok(())
        }
        Command::Datastore(args) => {
            init_logging(&args.common);
            runtime()?.block_on(datastore_only(args))
        }
        Command::Agent(args) => {
            init_logging(&args.common);
            runtime()?.block_on(agent::run(args, shutdown_signal()))?;
            Ok(())
        }
        Command::Images(args) => {
            runtime()?.block_on(agent::images(args))?;
            Ok(())
        }
        Command::SecretsEncrypt(args) => {
            runtime()?.block_on(encryption::command(args))?;
            Ok(())
        }
        Command::Token(args) => {
            runtime()?.block_on(tokens::command(args))?;
            Ok(())
        }
        Command::CheckConfig(args) => Ok(ops::check_config(args)?),
        Command::Kubectl(args) => std::process::exit(ops::kubectl(args)?),
        Command::Certificate(args) => {
            runtime()?.block_on(certificates::command(args))?;
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Two workers are plenty for a small control plane and keep idle memory low.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_keep_alive(Duration::from_secs(10))
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging(common: &CommonArgs) {
    use tracing_subscriber::EnvFilter;
    let default = if common.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},h2=info,tower=info,hyper=info")));
    // Colours only for a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match common.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn store_options(c: &CompactionArgs) -> SqliteOptions {
    SqliteOptions {
        compaction_interval: Duration::from_secs(c.compaction_interval),
        compaction_retention: Duration::from_secs(c.compaction_retention),
        compaction_min_revisions: c.compaction_min_revisions,
    }
}

fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db").join("state.db")
}

fn etcd_info(name: &str, urls: Vec<String>) -> etcd::EtcdInfo {
    etcd::EtcdInfo {
        name: name.to_string(),
        client_urls: urls,
        member_id: 0x6e61_6e6f_6b75_6265 & 0x7fff_ffff_ffff_ffff,
        cluster_id: 0x636c_7573_7465_7231,
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "nanokube".into())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

async fn datastore_only(args: config::DatastoreArgs) -> anyhow::Result<()> {
    let data_dir = args.common.data_dir();
    let path = db_path(&data_dir);
    let store = SqliteBackend::open(&path, store_options(&args.compaction))
        .with_context(|| format!("opening datastore {}", path.display()))?;
    let listener = TcpListener::bind(args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, "datastore ready");
    let info = etcd_info(&hostname(), vec![url]);
    etcd::serve_tcp(store.clone(), info, listener, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

/// Creates or reuses the cluster PKI and writes the admin kubeconfig.
fn ensure_pki(args: &config::ServerArgs, data_dir: &Path) -> anyhow::Result<pki::Pki> {
    let mode = pki::parse_mode(&args.write_kubeconfig_mode)?;
    let mut addresses = pki::local_addresses();
    if !args.bind_address.is_unspecified() {
        addresses.push(args.bind_address);
    }
    let names = pki::serving_names(
        &hostname(),
        &addresses,
        &args.tls_san,
        &args.cluster_domain,
        &args.service_cidr,
    )?;
    let pki = pki::ensure(&pki::tls_dir(data_dir), &names)?;
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| pki::default_kubeconfig_path(data_dir));
    pki::write_kubeconfig(&pki, &kubeconfig, args.https_listen_port, mode)?;
    tracing::info!(path = %kubeconfig.display(), mode = format!("{mode:o}"), "wrote admin kubeconfig");
    Ok(pki)
}

/// A token given on the command line, else in its file.
fn given_token(text: &Option<String>, file: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    Ok(match (text.as_deref().map(str::trim), file) {
        (Some(t), _) if !t.is_empty() => Some(t.to_string()),
        (_, Some(path)) => Some(pki::read_token_file(path)?),
        _ => None,
    })
}

/// Creates or reuses the server and agent tokens (never logged: only
/// their paths are).
fn join_setup(
    args: &config::ServerArgs,
    server_dir: &Path,
    pki: &pki::Pki,
) -> anyhow::Result<apiserver::Join> {
    let ca = pki.server_ca_cert();
    let given = given_token(&args.token, &args.token_file)?;
    let token = pki::ensure_server_token(server_dir, &ca, given.as_deref())?;
    let given_agent = given_token(&args.agent_token, &args.agent_token_file)?;
    let agent = pki::ensure_agent_token(server_dir, &ca, given_agent.as_deref(), &token.secret)?;
    tracing::info!(path = %token.path.display(), agent_token = agent.is_some(), "join token ready");
    let ca_pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
    Ok(apiserver::Join::new(
        token.secret,
        agent,
        ca_pem.into(),
        server_dir.to_path_buf(),
    ))
}

/// The name of the server's own node.
fn local_node_name(args: &config::ServerArgs) -> String {
    args.node
        .node_name
        .clone()
        .unwrap_or_else(hostname)
        .to_ascii_lowercase()
}

/// The server's own node: its name, flags and kubelet TLS.
fn local_node(args: &config::ServerArgs, data_dir: &Path) -> anyhow::Result<agent::LocalNode> {
    let name = local_node_name(args);
    let mut ips: Vec<std::net::IpAddr> = args.node.node_ip.into_iter().collect();
    ips.extend(pki::local_addresses());
    let tls = pki::kubelet_serving_tls(&pki::tls_dir(data_dir), &name, &ips)
        .context("issuing the kubelet serving certificate")?;
    Ok(agent::LocalNode {
        data_dir: data_dir.to_path_buf(),
        node: args.node.clone(),
        node_name: name,
        cluster_domain: args.cluster_domain.clone(),
        tls,
        cluster_cidr: args.cluster_cidr.clone(),
        service_cidr: args.service_cidr.clone(),
        dns: args.dns_enabled(),
        flannel_backend: args.flannel_backend,
    })
}

/// `--service-node-port-range`: `30000-32767` (a single port is a range of one).
fn node_port_range(text: &str) -> anyhow::Result<(u16, u16)> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let parse = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p > 0);
    match (parse(first), parse(last)) {
        (Some(first), Some(last)) if first <= last => Ok((first, last)),
        _ => anyhow::bail!(
            "invalid --service-node-port-range {text:?}: expected two ports like 30000-32767"
        ),
    }
}

/// The address other machines and pods reach the API server at.
fn advertise_address(args: &config::ServerArgs) -> std::net::IpAddr {
    if !args.bind_address.is_unspecified() && !args.bind_address.is_loopback() {
        return args.bind_address;
    }
    pki::default_route_address()
        .into_iter()
        .chain(pki::local_addresses())
        .find(|a| !a.is_loopback() && a.is_ipv4())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

async fn server(args: config::ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.common.data_dir();
    let server_dir = data_dir.join("server");
    let path = db_path(&data_dir);
    let store = SqliteBackend::open(&path, store_options(&args.compaction))
        .with_context(|| format!("opening datastore {}", path.display()))?;

    let pki = ensure_pki(&args, &data_dir)?;
    let tls = pki
        .server_config()
        .context("building the api server tls configuration")?;
    let first_cidr = args
        .service_cidr
        .split(',')
        .next()
        .unwrap_or_default()
        .trim();
    let mut network = api::ServiceNetwork::parse(first_cidr).map_err(anyhow::Error::msg)?;
    network.node_ports = node_port_range(&args.service_node_port_range)?;
    let https_addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let https = TcpListener::bind(https_addr)
        .await
        .with_context(|| format!("listening on {https_addr}"))?;
    let encryption =
        encryption::Encryption::load(&server_dir, args.security.secrets_encryption, store.clone())?;
    let api = api::Api::open_with(store.clone(), network, Some(encryption))
        .await
        .context("starting the api layer")?;
    let modes = args
        .security
        .authorization_mode
        .iter()
        .map(|m| api::authz::Mode::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    api.set_authorization_modes(modes);
    let advertise = advertise_address(&args);
    api.bootstrap_with_dns(
        advertise,
        args.https_listen_port,
        args.dns_enabled().then_some(args.node.cluster_dns),
    )
    .await
    .context("creating the default namespaces and the kubernetes service")?;
    let sa_key = pki::ensure_service_account_key(&pki::tls_dir(&data_dir))
        .context("loading the service account signing key")?;
    api.set_service_account_key(std::sync::Arc::new(sa_key));
    api.set_toleration_defaults(
        args.default_not_ready_toleration_seconds,
        args.default_unreachable_toleration_seconds,
    );
    controllers::start(
        api.clone(),
        controllers::Settings {
            cluster_cidr: args.cluster_cidr.clone(),
            node_monitor_grace_period: std::time::Duration::from_secs(
                args.node_monitor_grace_period,
            ),
            leader_elect: args.leader_elect,
            identity: hostname(),
            server_ca_pem: std::fs::read_to_string(pki.server_ca_cert()).ok(),
            servicelb: args.servicelb_enabled(),
            ..Default::default()
        },
    );
    manifests::start(api.clone(), &args).await;
    snapshots::start(&args.snapshots, &data_dir, store.clone());
    certificates::spawn_renewal(pki.clone(), data_dir.clone());
    let join = join_setup(&args, &server_dir, &pki)?;
    let kubelet_client = pki
        .kubelet_client_config()
        .context("issuing the api server's kubelet client certificate")?;
    let authn = apiserver::authn::Authn {
        join,
        tokens: match &args.security.token_auth_file {
            Some(path) => {
                let tokens = apiserver::authn::TokenFile::load(path)?;
                tracing::info!(path = %path.display(), tokens = tokens.len(), "static tokens loaded");
                tokens
            }
            None => Default::default(),
        },
        anonymous: args.security.anonymous_auth,
    };
    let audit = match &args.security.audit_log_path {
        Some(path) => apiserver::audit::Audit::open(path, &args.security.audit_level).await?,
        None => Default::default(),
    };
    let apiserver = apiserver::Server::build(
        api.clone(),
        format!("{advertise}:{}", args.https_listen_port),
        authn,
        audit,
        Some(kubelet_client),
    );
    // Joining agents get their certificates and these settings from us.
    apiserver.set_node_issuer(apiserver::NodeIssuer {
        pki: pki.clone(),
        cluster: agent::credentials::ClusterInfo {
            cluster_cidr: args.cluster_cidr.clone(),
            service_cidr: args.service_cidr.clone(),
            cluster_dns: args.dns_enabled().then_some(args.node.cluster_dns),
            cluster_domain: args.cluster_domain.clone(),
            flannel_backend: clap::ValueEnum::to_possible_value(&args.flannel_backend)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
        },
        reserved: match args.disable_agent {
            true => Vec::new(),
            false => vec![local_node_name(&args)],
        },
    });

    let sock = server_dir.join("etcd.sock");
    // A socket left by a previous run would make bind fail.
    match std::fs::remove_file(&sock) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("removing {}", sock.display())),
    }
    let unix =
        UnixListener::bind(&sock).with_context(|| format!("listening on {}", sock.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    }
    let mut urls = vec![format!("unix://{}", sock.display())];
    let tcp = match args.datastore_listen_address {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            urls.push(format!("http://{}", l.local_addr()?));
            Some(l)
        }
        None => None,
    };
    let info = etcd_info(&hostname(), urls.clone());
    tracing::info!(?urls, api = %https_addr, "server ready");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    {
        let store = store.clone();
        let info = info.clone();
        let stop = wait(stop_rx.clone());
        tasks.spawn(async move {
            etcd::serve_unix(store, info, unix, stop)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if let Some(l) = tcp {
        let store = store.clone();
        let stop = wait(stop_rx.clone());
        tasks.spawn(async move {
            etcd::serve_tcp(store, info, l, stop)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    {
        let stop = wait(stop_rx.clone());
        tasks.spawn(async move {
            apiserver::serve(apiserver, tls, https, stop)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if !args.disable_agent {
        let node = local_node(&args, &data_dir)?;
        let client = client::Local::new(api.clone());
        let stop = wait(stop_rx.clone());
        tasks.spawn(async move {
            agent::run_local(client, node, stop).await.map_err(|e| {
                anyhow::anyhow!(
                    "node agent: {e} (run with --disable-agent for the control plane only)"
                )
            })
        });
    }
    tokio::select! {
        _ = shutdown_signal() => {}
        Some(res) = tasks.join_next() => {
            res.context("listener task")??;
        }
    }
    let _ = stop_tx.send(true);
    while let Some(res) = tasks.join_next().await {
        if let Ok(Err(err)) = res {
            tracing::warn!(%err, "listener stopped with an error");
        }
    }
    store.close().await;
    let _ = std::fs::remove_file(&sock);
    Ok(())
}
