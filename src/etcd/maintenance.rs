//! The Maintenance and Cluster services of a single-member "cluster":
//! status and hashes come from the datastore, membership is fixed, and the
//! raft-specific operations are answered as a lone leader would.

use etcd_client::proto::{
    PbAlarmRequest, PbAlarmResponse, PbClusterService, PbDefragmentRequest, PbDefragmentResponse,
    PbDowngradeRequest, PbDowngradeResponse, PbHashKvRequest, PbHashKvResponse, PbHashRequest,
    PbHashResponse, PbMaintenanceService, PbMember, PbMemberAddRequest, PbMemberAddResponse,
    PbMemberListRequest, PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse,
    PbMemberRemoveRequest, PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
    PbMoveLeaderRequest, PbMoveLeaderResponse, PbSnapshotRequest, PbSnapshotResponse,
    PbStatusRequest, PbStatusResponse,
};
use tonic::{Request, Response, Status};

use super::status::{to_status, SINGLE_MEMBER};
use super::Context;
use crate::datastore::{Backend, RangeRequest};

/// The etcd version we claim; clients gate features on it (3.5 API).
pub(crate) const ETCD_VERSION: &str = "3.5.16";

pub(crate) struct MaintenanceApi<B> {
    ctx: Context<B>,
}

impl<B: Backend> MaintenanceApi<B> {
    pub fn new(ctx: Context<B>) -> Self {
        MaintenanceApi { ctx }
    }

    /// Hash of every key and value at `revision` (0 = now) and the revision
    /// the read was served at. Not etcd's hash, but stable for equal data,
    /// which is all a single member's consistency check can compare.
    async fn hash_at(&self, revision: i64) -> Result<(u32, i64), Status> {
        let resp = self
            .ctx
            .backend
            .range(RangeRequest {
                // key "\0" with range_end "\0" is etcd's "every key".
                key: vec![0],
                range_end: vec![0],
                revision,
                ..Default::default()
            })
            .await
            .map_err(to_status)?;
        let mut hash = Fnv1a::new();
        for kv in &resp.kvs {
            hash.write(&kv.key);
            hash.write(&kv.value);
        }
        // The response header carries the current revision; the hash is of
        // the requested one.
        let hashed = if revision > 0 {
            revision
        } else {
            resp.revision
        };
        Ok((hash.finish(), hashed))
    }
}

/// 32-bit FNV-1a: tiny, dependency-free, good enough to spot differences.
struct Fnv1a(u32);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }

    fn finish(&self) -> u32 {
        self.0
    }
}

#[tonic::async_trait]
impl<B: Backend> PbMaintenanceService for MaintenanceApi<B> {
    async fn alarm(
        &self,
        request: Request<PbAlarmRequest>,
    ) -> Result<Response<PbAlarmResponse>, Status> {
        // No space quota and no corruption checks, so nothing ever alarms;
        // activating or disarming is accepted and has no effect.
        tracing::debug!(action = request.get_ref().action, "alarm");
        Ok(Response::new(PbAlarmResponse {
            header: self.ctx.current_header(),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: Request<PbStatusRequest>,
    ) -> Result<Response<PbStatusResponse>, Status> {
        tracing::debug!("status");
        let st = self.ctx.backend.status();
        // Every write is one "raft entry", so the revision stands in for the
        // raft index.
        let index = u64::try_from(st.revision).unwrap_or(0);
        Ok(Response::new(PbStatusResponse {
            header: self.ctx.header(st.revision),
            version: ETCD_VERSION.to_string(),
            db_size: st.db_size,
            leader: self.ctx.info.member_id,
            raft_index: index,
            raft_term: 1,
            raft_applied_index: index,
            errors: Vec::new(),
            db_size_in_use: st.db_size_in_use,
            is_learner: false,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _request: Request<PbDefragmentRequest>,
    ) -> Result<Response<PbDefragmentResponse>, Status> {
        // The datastore reclaims space on its own; nothing to do on demand.
        tracing::debug!("defragment");
        Ok(Response::new(PbDefragmentResponse {
            header: self.ctx.current_header(),
        }))
    }

    async fn hash(
        &self,
        _request: Request<PbHashRequest>,
    ) -> Result<Response<PbHashResponse>, Status> {
        tracing::debug!("hash");
        let (hash, rev) = self.hash_at(0).await?;
        Ok(Response::new(PbHashResponse {
            header: self.ctx.header(rev),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<PbHashKvRequest>,
    ) -> Result<Response<PbHashKvResponse>, Status> {
        let revision = request.into_inner().revision;
        tracing::debug!(revision, "hash kv");
        let (hash, rev) = self.hash_at(revision).await?;
        Ok(Response::new(PbHashKvResponse {
            header: self.ctx.current_header(),
            hash,
            compact_revision: self.ctx.backend.status().compact_revision,
            hash_revision: rev,
        }))
    }

    type SnapshotStream = tokio_stream::Empty<Result<PbSnapshotResponse, Status>>;

    async fn snapshot(
        &self,
        _request: Request<PbSnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(Status::unimplemented(
            "snapshot is not supported; copy <data-dir>/server/db/state.db with sqlite3 .backup instead",
        ))
    }

    async fn move_leader(
        &self,
        request: Request<PbMoveLeaderRequest>,
    ) -> Result<Response<PbMoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        tracing::debug!(target, "move leader");
        // Like etcd: moving to the current leader succeeds at once; any other
        // id is not a member.
        if target != self.ctx.info.member_id {
            return Err(Status::failed_precondition(
                "etcdserver: bad leader transferee",
            ));
        }
        Ok(Response::new(PbMoveLeaderResponse {
            header: self.ctx.current_header(),
        }))
    }

    async fn downgrade(
        &self,
        _request: Request<PbDowngradeRequest>,
    ) -> Result<Response<PbDowngradeResponse>, Status> {
        Err(Status::unimplemented(
            "etcdserver: downgrade is not supported by the nanokube datastore",
        ))
    }
}

pub(crate) struct ClusterApi<B> {
    ctx: Context<B>,
}

impl<B: Backend> ClusterApi<B> {
    pub fn new(ctx: Context<B>) -> Self {
        ClusterApi { ctx }
    }

    fn me(&self) -> PbMember {
        let info = &self.ctx.info;
        PbMember {
            id: info.member_id,
            name: info.name.clone(),
            // There is no peer port; the client URLs are the only addresses.
            peer_ur_ls: info.client_urls.clone(),
            client_ur_ls: info.client_urls.clone(),
            is_learner: false,
        }
    }
}

fn single_member() -> Status {
    Status::failed_precondition(SINGLE_MEMBER)
}

#[tonic::async_trait]
impl<B: Backend> PbClusterService for ClusterApi<B> {
    async fn member_add(
        &self,
        _request: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        Err(single_member())
    }

    async fn member_remove(
        &self,
        _request: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        Err(single_member())
    }

    async fn member_update(
        &self,
        _request: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        Err(single_member())
    }

    async fn member_list(
        &self,
        _request: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        tracing::debug!("member list");
        Ok(Response::new(PbMemberListResponse {
            header: self.ctx.current_header(),
            members: vec![self.me()],
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        Err(single_member())
    }
}

#[cfg(test)]
mod tests {
    use super::Fnv1a;

    #[test]
    fn fnv1a_known_values() {
        let mut h = Fnv1a::new();
        assert_eq!(h.finish(), 0x811c_9dc5);
        h.write(b"a");
        assert_eq!(h.finish(), 0xe40c_292c);
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0xbf9c_f968);
    }
}
