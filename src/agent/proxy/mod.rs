//! The service proxy: programs this node so that service addresses
//! (ClusterIP, NodePort, externalIPs, LoadBalancer ingress) reach ready
//! endpoints. Work in progress (issue 6): this door is the fixed API.

#![allow(dead_code)] // scaffolding until filled in (issue 6)

use std::future::Future;
use std::net::IpAddr;

use crate::client::Client;
use crate::config::ProxyMode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
}

/// What the proxy needs to know about its node and cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    /// `--node-ip`, when given (else the node's addresses from its status).
    pub node_ip: Option<IpAddr>,
    /// Pod network (traffic from outside it to services is masqueraded).
    pub cluster_cidr: String,
    /// Service IP range(s), comma-separated.
    pub service_cidr: String,
    /// The in-process cluster DNS address, when DNS runs: served locally,
    /// so the proxy leaves this ClusterIP alone.
    pub cluster_dns: Option<IpAddr>,
    pub mode: ProxyMode,
    /// This agent's instance id (8 hex digits): in every chain name, so
    /// several agents on one host (tests) never touch each other's rules.
    pub instance: String,
}

/// Runs the proxy until `shutdown`, then removes its rules.
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let _ = (client, settings);
    shutdown.await;
    Ok(())
}
