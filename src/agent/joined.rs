//! `nanokube agent --server URL --token T`: a machine joining the cluster
//! as a node. The first start checks the server's CA against the token and
//! obtains the node's own certificates; later starts use the stored ones
//! (no token needed). The node then runs as the server's own node does,
//! with HTTPS clients: the kubelet as `system:node:<name>`, proxy and DNS
//! with the proxy certificate.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::credentials::{self, CertKey, NodeCredentials};
use super::node::{self, NodePlan};
use super::renewing::Renewing;
use super::serving::{serving_key, serving_tls, ServingCert};
use super::{join, Error};
use crate::api::selector::FieldSelector;
use crate::client::{
    follow_selected, Client, EventKind, Followed, Remote, RemoteConfig, ResourceId,
};
use crate::config::{AgentArgs, FlannelBackend};

/// Joins (or rejoins) and runs the node until `shutdown`.
pub async fn run(
    args: AgentArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let started = Instant::now();
    let server = args.server.clone().ok_or(Error::MissingServer)?;
    let server = server.trim_end_matches('/').to_string();
    let token = token(&args)?;
    let node_name = args
        .node
        .node_name
        .clone()
        .unwrap_or_else(super::hostname)
        .to_ascii_lowercase();
    let data_dir = args.common.data_dir();
    let agent_dir = data_dir.join("agent");
    std::fs::create_dir_all(&agent_dir).map_err(|e| Error::DataDir {
        path: agent_dir.display().to_string(),
        message: e.to_string(),
    })?;
    tracing::info!(server, node = node_name, "joining");
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let mut addresses: Vec<IpAddr> = args.node.node_ip.into_iter().collect();
    addresses.extend(crate::pki::local_addresses());
    // The server may come up after its agents (boot order, a restart): a
    // join that cannot reach it waits and tries again; refusals end it.
    let mut wait = JOIN_RETRY_FIRST;
    let creds = loop {
        let request = credentials::Request {
            server: &server,
            token: token.as_deref(),
            node_name: &node_name,
            addresses: &addresses,
            agent_dir: &agent_dir,
        };
        match join_once(&server, token.as_deref(), request, started).await {
            Err(Error::Credentials(credentials::Error::Server(e))) => {
                tracing::warn!(error = e, retry_in = ?wait, "cannot reach the server to join; waiting for it");
                tokio::select! {
                    _ = shutdown.clone() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(JOIN_RETRY_MAX);
            }
            other => break other?,
        }
    };
    tracing::info!(elapsed = ?started.elapsed(), "node credentials ready");
    let kubelet_client = Renewing::new(client(
        &server,
        &creds.server_ca_pem,
        &creds.kubelet_client,
    )?);
    let proxy_client = Renewing::new(client(&server, &creds.server_ca_pem, &creds.proxy_client)?);
    let (tls, serving) = serving_tls(&creds)?;
    let renewal = credentials::Renewal {
        server: server.clone(),
        node_name: node_name.clone(),
        addresses,
        agent_dir,
    };
    follow_renewals(
        server.clone(),
        credentials::spawn_renewal(renewal, creds.clone()),
        kubelet_client.clone(),
        proxy_client.clone(),
        serving,
    );
    let plan = NodePlan {
        data_dir,
        node: args.node,
        node_name: node_name.clone(),
        server_role: false,
        tls,
        cluster_cidr: creds.cluster.cluster_cidr.clone(),
        service_cidr: creds.cluster.service_cidr.clone(),
        cluster_dns: creds.cluster.cluster_dns,
        cluster_domain: creds.cluster.cluster_domain.clone(),
        flannel_backend: flannel_backend(&creds.cluster.flannel_backend)?,
    };
    report_ready(kubelet_client.clone(), node_name, started);
    node::run(kubelet_client, proxy_client, plan, shutdown).await
}

/// First wait between join attempts when the server cannot be reached.
const JOIN_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between join attempts.
const JOIN_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(15);

/// One join attempt: the CA check against the token (when there is one),
/// then the stored or new node credentials.
async fn join_once(
    server: &str,
    token: Option<&str>,
    request: credentials::Request<'_>,
    started: Instant,
) -> Result<NodeCredentials, Error> {
    if let Some(token) = token {
        // Refuses a server whose CA is not the token's before anything
        // is sent to it. A server that cannot be asked now does not stop
        // a node that joined before (its stored credentials decide next).
        match join::connect(server, token).await {
            Ok(_) => tracing::info!(
                elapsed = ?started.elapsed(),
                "server CA checked against the join token"
            ),
            Err(e @ (Error::CaFetch { .. } | Error::Client(_))) => {
                tracing::warn!(error = %e, "cannot check the server now; trying the stored node credentials")
            }
            Err(e) => return Err(e),
        }
    }
    // Without a token and stored credentials this says to pass --token.
    Ok(credentials::load_or_obtain(request).await?)
}

/// `--token`/`NANOKUBE_TOKEN`, else `--token-file`; `None` when neither.
fn token(args: &AgentArgs) -> Result<Option<String>, Error> {
    if let Some(t) = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(t.to_string()));
    }
    let Some(path) = &args.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::TokenFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    match text.trim() {
        "" => Err(Error::TokenFile {
            path: path.display().to_string(),
            message: "the file is empty".into(),
        }),
        t => Ok(Some(t.to_string())),
    }
}

/// The cluster's `--flannel-backend` as the server reported it.
fn flannel_backend(name: &str) -> Result<FlannelBackend, Error> {
    <FlannelBackend as clap::ValueEnum>::from_str(name, true).map_err(|_| {
        Error::Invalid(format!(
            "the server reported an unknown flannel backend {name:?}"
        ))
    })
}

/// Renewed credentials go to the clients and the kubelet port as they
/// come (the renewal task has stored them: a restart uses them too).
fn follow_renewals(
    server: String,
    mut updates: tokio::sync::watch::Receiver<NodeCredentials>,
    kubelet_client: Renewing,
    proxy_client: Renewing,
    serving: Arc<ServingCert>,
) {
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let creds = updates.borrow_and_update().clone();
            let ca = &creds.server_ca_pem;
            let applied = client(&server, ca, &creds.kubelet_client)
                .map(|c| kubelet_client.replace(c))
                .and_then(|()| client(&server, ca, &creds.proxy_client))
                .map(|c| proxy_client.replace(c))
                .and_then(|()| serving_key(&creds))
                .map(|k| serving.replace(k));
            match applied {
                Ok(()) => tracing::info!("using the renewed node credentials"),
                Err(e) => tracing::error!(error = %e, "cannot use the renewed node credentials"),
            }
        }
    });
}

/// An API client verifying the server by its CA, presenting `cert`.
fn client(server: &str, ca_pem: &str, cert: &CertKey) -> Result<Remote, Error> {
    Ok(Remote::new(RemoteConfig {
        server: server.to_string(),
        ca_pem: ca_pem.to_string(),
        client_cert_pem: Some(cert.cert_pem.clone()),
        client_key_pem: Some(cert.key_pem.clone()),
        token: None,
    })?)
}

/// Logs the join time once the node is Ready (from its Node's watch).
fn report_ready<C: Client + Clone>(client: C, node_name: String, started: Instant) {
    let fields = match FieldSelector::parse(&format!("metadata.name={node_name}")) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the node's readiness");
            return;
        }
    };
    let nodes = ResourceId::new("", "v1", "nodes");
    follow_selected(client, nodes, fields, move |change| {
        let ready = match change {
            Followed::Listed(items) => items.iter().any(|n| is_ready(n)),
            Followed::Event {
                kind: EventKind::Deleted,
                ..
            } => false,
            Followed::Event { object, .. } => is_ready(&object),
        };
        if ready {
            tracing::info!(node = node_name, elapsed = ?started.elapsed(), "node Ready: joined");
        }
        !ready
    });
}

fn is_ready(node: &Value) -> bool {
    let conditions = node.pointer("/status/conditions").and_then(Value::as_array);
    conditions.into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Ready")
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flannel_backend_names_are_the_flags() {
        assert_eq!(flannel_backend("vxlan").unwrap(), FlannelBackend::Vxlan);
        assert_eq!(flannel_backend("host-gw").unwrap(), FlannelBackend::HostGw);
        assert_eq!(flannel_backend("none").unwrap(), FlannelBackend::None);
        assert!(flannel_backend("wireguard").is_err());
    }

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        let ready = serde_json::json!({"status": {"conditions": [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True"}]}});
        let not_ready = serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}});
        assert!(is_ready(&ready));
        assert!(!is_ready(&not_ready));
        assert!(!is_ready(&serde_json::json!({})));
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "K10abc::server:secret\n").unwrap();
        let mut args = test_args();
        args.token_file = Some(path.clone());
        assert_eq!(
            token(&args).unwrap().as_deref(),
            Some("K10abc::server:secret")
        );
        args.token = Some("given".into());
        assert_eq!(token(&args).unwrap().as_deref(), Some("given"));
        std::fs::write(&path, "\n").unwrap();
        args.token = None;
        assert!(matches!(token(&args), Err(Error::TokenFile { .. })));
        args.token_file = None;
        assert_eq!(token(&args).unwrap(), None);
    }

    fn test_args() -> AgentArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            agent: AgentArgs,
        }
        Cli::parse_from(["agent"]).agent
    }
}
