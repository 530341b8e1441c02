//! The etcd v3 gRPC API (KV, Watch, Lease, Maintenance, Cluster) over the
//! datastore, so etcdctl and the Kubernetes API server can use it as their
//! etcd. It is a single-member "cluster": membership is fixed and the raft
//! fields of responses are synthesised from the store revision.

mod authority;
mod convert;
mod forwarder;
mod kv;
mod lease;
mod maintenance;
mod status;
mod watch;

#[cfg(test)]
mod e2e_tests;

use std::future::Future;
use std::sync::Arc;

use etcd_client::proto::{
    PbClusterServer, PbKvServer, PbLeaseServer, PbMaintenanceServer, PbResponseHeader,
    PbWatchServer,
};
use futures::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::datastore::Backend;

/// etcd's default `--max-request-bytes`: larger writes are refused.
pub(crate) const MAX_REQUEST_BYTES: usize = 1_572_864;
/// What gRPC accepts on the wire: etcd adds 512 KiB for framing and headers
/// so that an over-sized request gets etcd's own error, not a transport one.
const MAX_DECODING_BYTES: usize = MAX_REQUEST_BYTES + 512 * 1024;
/// etcd sends responses of any size (math.MaxInt32); a big Range must work.
const MAX_ENCODING_BYTES: usize = i32::MAX as usize;
/// How long shutdown waits for open connections before giving up on them.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who this server says it is in response headers and member lists.
#[derive(Debug, Clone)]
pub struct EtcdInfo {
    pub name: String,
    pub client_urls: Vec<String>,
    pub member_id: u64,
    pub cluster_id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("etcd grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// What every service needs: the store, the identity, and a signal that the
/// server is shutting down (long-lived streams end on it so that graceful
/// shutdown does not wait for clients forever).
pub(crate) struct Context<B> {
    pub backend: Arc<B>,
    pub info: Arc<EtcdInfo>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl<B> Clone for Context<B> {
    fn clone(&self) -> Self {
        Context {
            backend: self.backend.clone(),
            info: self.info.clone(),
            stop: self.stop.clone(),
        }
    }
}

impl<B: Backend> Context<B> {
    /// The header etcd puts on every response; raft_term is fixed because
    /// there is never an election.
    pub fn header(&self, revision: i64) -> Option<PbResponseHeader> {
        Some(PbResponseHeader {
            cluster_id: self.info.cluster_id,
            member_id: self.info.member_id,
            revision,
            raft_term: 1,
        })
    }

    /// A header at the store's current revision, for operations without one.
    pub fn current_header(&self) -> Option<PbResponseHeader> {
        self.header(self.backend.current_revision())
    }

    /// Resolves once the server is shutting down.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone, which also means shutdown.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// Serves the etcd API on a TCP listener until `shutdown` resolves.
pub async fn serve_tcp<B: Backend>(
    backend: Arc<B>,
    info: EtcdInfo,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, member = %info.name, "etcd api listening on tcp");
    // Watch and lease traffic is many small frames; Nagle would delay them.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
        })
    });
    serve(backend, info, incoming, shutdown).await
}

/// Serves the etcd API on a Unix socket until `shutdown` resolves.
pub async fn serve_unix<B: Backend>(
    backend: Arc<B>,
    info: EtcdInfo,
    listener: tokio::net::UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()));
    tracing::info!(?path, member = %info.name, "etcd api listening on unix socket");
    // Old Go gRPC clients send the socket path as :authority, which h2 refuses.
    let incoming =
        UnixListenerStream::new(listener).map(|conn| conn.map(authority::FixAuthority::new));
    serve(backend, info, incoming, shutdown).await
}

async fn serve<B, I, IO, IE>(
    backend: Arc<B>,
    info: EtcdInfo,
    incoming: I,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error>
where
    B: Backend,
    I: futures::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut drain_started = stop_rx.clone();
    let ctx = Context {
        backend,
        info: Arc::new(info),
        stop: stop_rx,
    };
    let shutdown = async move {
        shutdown.await;
        tracing::info!("etcd api shutting down");
        // Ends watch and keep-alive streams so the graceful drain finishes.
        let _ = stop_tx.send(true);
    };

    let server = tonic::transport::Server::builder()
        // etcd allows any number of streams per connection; the API server
        // multiplexes hundreds of watches over a few connections.
        .max_concurrent_streams(u32::MAX)
        .add_service(
            PbKvServer::new(kv::KvApi::new(ctx.clone()))
                .max_decoding_message_size(MAX_DECODING_BYTES)
                .max_encoding_message_size(MAX_ENCODING_BYTES),
        )
        .add_service(
            PbWatchServer::new(watch::WatchApi::new(ctx.clone()))
                .max_decoding_message_size(MAX_DECODING_BYTES)
                .max_encoding_message_size(MAX_ENCODING_BYTES),
        )
        .add_service(
            PbLeaseServer::new(lease::LeaseApi::new(ctx.clone()))
                .max_decoding_message_size(MAX_DECODING_BYTES)
                .max_encoding_message_size(MAX_ENCODING_BYTES),
        )
        .add_service(
            PbMaintenanceServer::new(maintenance::MaintenanceApi::new(ctx.clone()))
                .max_decoding_message_size(MAX_DECODING_BYTES)
                .max_encoding_message_size(MAX_ENCODING_BYTES),
        )
        .add_service(
            PbClusterServer::new(maintenance::ClusterApi::new(ctx))
                .max_decoding_message_size(MAX_DECODING_BYTES)
                .max_encoding_message_size(MAX_ENCODING_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown);
    // tonic's graceful shutdown waits for every connection to close; a client
    // that keeps one open must not hold up the process exit.
    let drain_deadline = async move {
        let _ = drain_started.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        res = server => res?,
        () = drain_deadline => {
            tracing::warn!("etcd api connections still open after shutdown; leaving them")
        }
    }
    tracing::info!("etcd api stopped");
    Ok(())
}
