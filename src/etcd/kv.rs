//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService,
    PbPutRequest, PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse,
    PbTxnRequest, PbTxnResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::status::to_status;
use super::{convert, Context, MAX_REQUEST_BYTES};
use crate::datastore::{Backend, Error};

pub(crate) struct KvApi<B> {
    ctx: Context<B>,
}

impl<B: Backend> KvApi<B> {
    pub fn new(ctx: Context<B>) -> Self {
        KvApi { ctx }
    }

    async fn do_range(&self, req: PbRangeRequest) -> Result<PbRangeResponse, Status> {
        tracing::debug!(
            key = %String::from_utf8_lossy(&req.key),
            range_end = %String::from_utf8_lossy(&req.range_end),
            revision = req.revision,
            limit = req.limit,
            "range"
        );
        let resp = self
            .ctx
            .backend
            .range(convert::range_request(req))
            .await
            .map_err(to_status)?;
        Ok(convert::range_response(resp, &|rev| self.ctx.header(rev)))
    }
}

/// etcd refuses writes whose raft entry would exceed --max-request-bytes;
/// the encoded request is a close stand-in for that entry.
fn check_size(msg: &impl Message) -> Result<(), Status> {
    if msg.encoded_len() > MAX_REQUEST_BYTES {
        return Err(to_status(Error::RequestTooLarge));
    }
    Ok(())
}

#[tonic::async_trait]
impl<B: Backend> PbKvService for KvApi<B> {
    async fn range(
        &self,
        request: Request<PbRangeRequest>,
    ) -> Result<Response<PbRangeResponse>, Status> {
        self.do_range(request.into_inner()).await.map(Response::new)
    }

    type RangeStreamStream = tokio_stream::Once<Result<PbRangeStreamResponse, Status>>;

    /// Newer clients may stream big ranges in chunks; one chunk holding the
    /// whole answer is a valid stream (the merge of all chunks is the answer).
    async fn range_stream(
        &self,
        request: Request<PbRangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        let resp = self.do_range(request.into_inner()).await?;
        Ok(Response::new(tokio_stream::once(Ok(
            PbRangeStreamResponse {
                range_response: Some(resp),
            },
        ))))
    }

    async fn put(&self, request: Request<PbPutRequest>) -> Result<Response<PbPutResponse>, Status> {
        let req = request.into_inner();
        check_size(&req)?;
        tracing::debug!(
            key = %String::from_utf8_lossy(&req.key),
            len = req.value.len(),
            lease = req.lease,
            "put"
        );
        let resp = self
            .ctx
            .backend
            .put(convert::put_request(req))
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::put_response(resp, &|rev| {
            self.ctx.header(rev)
        })))
    }

    async fn delete_range(
        &self,
        request: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        let req = request.into_inner();
        check_size(&req)?;
        tracing::debug!(
            key = %String::from_utf8_lossy(&req.key),
            range_end = %String::from_utf8_lossy(&req.range_end),
            "delete range"
        );
        let resp = self
            .ctx
            .backend
            .delete_range(convert::delete_request(req))
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::delete_response(resp, &|rev| {
            self.ctx.header(rev)
        })))
    }

    async fn txn(&self, request: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        let req = request.into_inner();
        convert::check_txn_ops(&req).map_err(to_status)?;
        check_size(&req)?;
        tracing::debug!(
            compares = req.compare.len(),
            success = req.success.len(),
            failure = req.failure.len(),
            "txn"
        );
        let txn = convert::txn_request(req)?;
        let resp = self.ctx.backend.txn(txn).await.map_err(to_status)?;
        Ok(Response::new(convert::txn_response(resp, &|rev| {
            self.ctx.header(rev)
        })))
    }

    async fn compact(
        &self,
        request: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        // `physical` (wait until the compaction is on disk) needs no special
        // handling: the datastore's compact is awaited either way.
        let req = request.into_inner();
        tracing::debug!(revision = req.revision, "compact");
        let rev = self
            .ctx
            .backend
            .compact(req.revision)
            .await
            .map_err(to_status)?;
        Ok(Response::new(PbCompactionResponse {
            header: self.ctx.header(rev),
        }))
    }
}
