//! Cluster DNS, served in process on every node at the cluster DNS
//! address. Work in progress (issue 6): this door is the fixed API.

#![allow(dead_code)] // scaffolding until filled in (issue 6)

use std::future::Future;
use std::net::IpAddr;

use crate::client::Client;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The cluster DNS address (`--cluster-dns`), UDP and TCP port 53.
    pub address: IpAddr,
    pub cluster_domain: String,
    /// This agent's instance id (8 hex digits), for names of what it
    /// creates on the host (e.g. a dummy interface holding `address`).
    pub instance: String,
}

/// Serves DNS until `shutdown`, then removes what it set up on the host.
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let _ = (client, settings);
    shutdown.await;
    Ok(())
}
