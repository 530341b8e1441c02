//! The Lease service: grant, revoke, keep-alive stream, time-to-live, list.

use etcd_client::proto::{
    PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseKeepAliveRequest, PbLeaseKeepAliveResponse,
    PbLeaseLeasesRequest, PbLeaseLeasesResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse,
    PbLeaseService, PbLeaseStatus, PbLeaseTimeToLiveRequest, PbLeaseTimeToLiveResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::status::{server_stopped, to_status};
use super::Context;
use crate::datastore::{Backend, Error};

/// Responses a keep-alive stream may hold while the client is slow to read.
const KEEPALIVE_BUFFER: usize = 16;

pub(crate) struct LeaseApi<B> {
    ctx: Context<B>,
}

impl<B: Backend> LeaseApi<B> {
    pub fn new(ctx: Context<B>) -> Self {
        LeaseApi { ctx }
    }
}

type KeepAliveItem = Result<PbLeaseKeepAliveResponse, Status>;

#[tonic::async_trait]
impl<B: Backend> PbLeaseService for LeaseApi<B> {
    async fn lease_grant(
        &self,
        request: Request<PbLeaseGrantRequest>,
    ) -> Result<Response<PbLeaseGrantResponse>, Status> {
        let req = request.into_inner();
        tracing::debug!(id = req.id, ttl = req.ttl, "lease grant");
        let grant = self
            .ctx
            .backend
            .lease_grant(req.id, req.ttl)
            .await
            .map_err(to_status)?;
        Ok(Response::new(PbLeaseGrantResponse {
            header: self.ctx.current_header(),
            id: grant.id,
            ttl: grant.ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<PbLeaseRevokeRequest>,
    ) -> Result<Response<PbLeaseRevokeResponse>, Status> {
        let id = request.into_inner().id;
        tracing::debug!(id, "lease revoke");
        let rev = self.ctx.backend.lease_revoke(id).await.map_err(to_status)?;
        Ok(Response::new(PbLeaseRevokeResponse {
            header: self.ctx.header(rev),
        }))
    }

    type LeaseKeepAliveStream = ReceiverStream<KeepAliveItem>;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<PbLeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(KEEPALIVE_BUFFER);
        tokio::spawn(keep_alive_loop(self.ctx.clone(), inbound, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<PbLeaseTimeToLiveRequest>,
    ) -> Result<Response<PbLeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        tracing::debug!(id = req.id, keys = req.keys, "lease time to live");
        // A missing lease is TTL -1 without an error, as etcd answers.
        let ttl = self.ctx.backend.lease_time_to_live(req.id, req.keys);
        Ok(Response::new(PbLeaseTimeToLiveResponse {
            header: self.ctx.current_header(),
            id: req.id,
            ttl: ttl.ttl,
            granted_ttl: ttl.granted_ttl,
            keys: ttl.keys,
        }))
    }

    async fn lease_leases(
        &self,
        _request: Request<PbLeaseLeasesRequest>,
    ) -> Result<Response<PbLeaseLeasesResponse>, Status> {
        tracing::debug!("lease leases");
        let leases = self
            .ctx
            .backend
            .leases()
            .into_iter()
            .map(|id| PbLeaseStatus { id })
            .collect();
        Ok(Response::new(PbLeaseLeasesResponse {
            header: self.ctx.current_header(),
            leases,
        }))
    }
}

/// Answers each keep-alive with the renewed TTL until the client goes away,
/// its stream fails, or the server stops.
async fn keep_alive_loop<B: Backend>(
    ctx: Context<B>,
    mut inbound: Streaming<PbLeaseKeepAliveRequest>,
    tx: mpsc::Sender<KeepAliveItem>,
) {
    loop {
        let req = tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(%status, "lease keep-alive stream ended");
                    break;
                }
            },
            () = tx.closed() => break,
            () = ctx.stopped() => {
                let _ = tx.send(Err(server_stopped())).await;
                break;
            }
        };
        let ttl = match ctx.backend.lease_keep_alive(req.id) {
            Ok(ttl) => ttl,
            // etcd reports an unknown lease as TTL 0 so the client stops.
            Err(Error::LeaseNotFound) => 0,
            Err(err) => {
                let _ = tx.send(Err(to_status(err))).await;
                break;
            }
        };
        tracing::debug!(id = req.id, ttl, "lease keep-alive");
        let resp = PbLeaseKeepAliveResponse {
            header: ctx.current_header(),
            id: req.id,
            ttl,
        };
        if tx.send(Ok(resp)).await.is_err() {
            break;
        }
    }
}
