//! Cluster DNS, served in process on every node at the cluster DNS
//! address (UDP and TCP 53 on a host link of its own), answering from the
//! watch cache per the Kubernetes DNS specification and forwarding other
//! names to the node's upstream resolvers.

mod answer;
mod forward;
mod index;
mod link;
mod server;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::client::{follow, Client, EventKind, Followed, ResourceId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("cannot serve dns on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The cluster DNS address (`--cluster-dns`), UDP and TCP port 53.
    pub address: IpAddr,
    pub cluster_domain: String,
    /// This agent's instance id (8 hex digits), for names of what it
    /// creates on the host (e.g. a dummy interface holding `address`).
    pub instance: String,
    /// Upstream resolvers (`--resolv-conf`); `None`: the system's.
    pub resolv_conf: Option<PathBuf>,
}

/// Receive loops sharing the UDP socket (one per core here).
const UDP_LOOPS: usize = 2;

/// Serves DNS until `shutdown`, then removes what it set up on the host.
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let link = link::name(&settings.instance);
    link::create(&link, settings.address).await?;
    let served = serve(client, &settings, shutdown).await;
    link::remove(&link).await;
    served
}

async fn serve<C: Client + Clone>(
    client: C,
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let address = SocketAddr::new(settings.address, 53);
    let bind_err = |source| Error::Bind { address, source };
    let udp = Arc::new(
        tokio::net::UdpSocket::bind(address)
            .await
            .map_err(bind_err)?,
    );
    let tcp = tokio::net::TcpListener::bind(address)
        .await
        .map_err(bind_err)?;
    let (path, explicit) = match &settings.resolv_conf {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("/etc/resolv.conf"), false),
    };
    let upstreams = forward::upstreams(&path, explicit);
    let index = Arc::new(RwLock::new(index::Index::default()));
    let stop = Arc::new(AtomicBool::new(false));
    feed(client, &index, &stop);
    let server = Arc::new(server::Server {
        index,
        domain: settings
            .cluster_domain
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        forwarder: forward::Forwarder::new(upstreams),
    });
    tracing::info!(%address, upstreams = ?server.forwarder.upstreams(), "cluster dns serving");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UDP_LOOPS {
        tasks.spawn(server::serve_udp(udp.clone(), server.clone()));
    }
    tasks.spawn(server::serve_tcp(tcp, server.clone()));
    shutdown.await;
    stop.store(true, Ordering::Relaxed);
    tasks.shutdown().await;
    tracing::info!(%address, "cluster dns stopped");
    Ok(())
}

/// Follows Services, EndpointSlices and Pods into the index.
fn feed<C: Client + Clone>(client: C, index: &Arc<RwLock<index::Index>>, stop: &Arc<AtomicBool>) {
    type Put = fn(&mut index::Index, &serde_json::Value);
    type Set = fn(&mut index::Index, &[Arc<serde_json::Value>]);
    let kinds: [(ResourceId, Set, Put, Put); 3] = [
        (
            ResourceId::new("", "v1", "services"),
            index::Index::set_services,
            index::Index::put_service,
            index::Index::delete_service,
        ),
        (
            ResourceId::new("discovery.k8s.io", "v1", "endpointslices"),
            index::Index::set_slices,
            index::Index::put_slice,
            index::Index::delete_slice,
        ),
        (
            ResourceId::new("", "v1", "pods"),
            index::Index::set_pods,
            index::Index::put_pod,
            index::Index::delete_pod,
        ),
    ];
    for (res, set, put, delete) in kinds {
        let (index, stop) = (index.clone(), stop.clone());
        follow(client.clone(), res, move |f| {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let Ok(mut index) = index.write() else {
                return false;
            };
            match f {
                Followed::Listed(items) => set(&mut index, &items),
                Followed::Event { kind, object } => match kind {
                    EventKind::Added | EventKind::Modified => put(&mut index, &object),
                    EventKind::Deleted => delete(&mut index, &object),
                },
            }
            true
        });
    }
}

#[cfg(test)]
mod tests;
