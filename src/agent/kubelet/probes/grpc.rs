//! grpc probes: the standard `grpc.health.v1.Health/Check` over plain
//! HTTP/2, SERVING is success. The two messages are written by hand (no
//! generated code for two fields), with a small prost codec for tonic.

use std::time::Duration;

use k8s_openapi::api::core::v1::GRPCAction;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use super::{resolve, Probed, Target, KUBE_VERSION};

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

#[derive(Clone, PartialEq, Message)]
pub(super) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct HealthCheckResponse {
    /// ServingStatus: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

const SERVING: i32 = 1;

fn status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => other.to_string(),
    }
}

/// tonic codec for the health check's request and response.
#[derive(Clone, Copy, Default)]
struct HealthCodec;

struct RequestEncoder;
struct ResponseDecoder;

impl Codec for HealthCodec {
    type Encode = HealthCheckRequest;
    type Decode = HealthCheckResponse;
    type Encoder = RequestEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RequestEncoder {
        RequestEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RequestEncoder {
    type Item = HealthCheckRequest;
    type Error = Status;

    fn encode(&mut self, item: HealthCheckRequest, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for ResponseDecoder {
    type Item = HealthCheckResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<HealthCheckResponse>, Status> {
        HealthCheckResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

pub(super) async fn probe(action: &GRPCAction, target: &Target, timeout: Duration) -> Probed {
    let Ok(port) = u16::try_from(action.port) else {
        return Probed::Error(super::Error::InvalidPort(i64::from(action.port)).to_string());
    };
    // Upstream's grpc action has no host: always the pod.
    let host = target.default_host().to_string();
    let service = action.service.clone().unwrap_or_default();
    check(&host, port, &service, timeout).await
}

/// Upstream's grpc prober, with its texts: every problem is a failure.
pub(super) async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Probed {
    let addr = resolve::join_host_port(host, port);
    let within = resolve::go_duration(timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    let endpoint = match Endpoint::from_shared(format!("http://{addr}"))
        .and_then(|e| e.user_agent(format!("kube-probe/{KUBE_VERSION}")))
    {
        Ok(e) => e.connect_timeout(timeout),
        Err(err) => {
            return Probed::Failure(format!(
                "error: failed to connect service at {addr:?}: {err}"
            ))
        }
    };
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Err(_) => {
            return Probed::Failure(format!(
                "timeout: failed to connect service {addr:?} within {within}: context deadline exceeded"
            ))
        }
        Ok(Err(err)) => {
            return Probed::Failure(format!(
                "error: failed to connect service at {addr:?}: {}",
                error_chain(&err, &addr)
            ))
        }
        Ok(Ok(channel)) => channel,
    };
    let call = async {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(error_chain(&e, &addr)))?;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        request.set_timeout(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let path = http::uri::PathAndQuery::from_static(CHECK_PATH);
        grpc.unary(request, path, HealthCodec).await
    };
    let answer = match tokio::time::timeout_at(deadline, call).await {
        Err(_) => {
            return Probed::Failure(format!(
                "timeout: health rpc did not complete within {within}"
            ))
        }
        Ok(answer) => answer,
    };
    match answer {
        Ok(resp) if resp.get_ref().status == SERVING => Probed::Success,
        Ok(resp) => Probed::Failure(format!(
            "service unhealthy (responded with {:?})",
            status_name(resp.get_ref().status)
        )),
        Err(status) => Probed::Failure(match status.code() {
            Code::Unimplemented => format!(
                "error: this server does not implement the grpc health protocol \
                 (grpc.health.v1.Health): {}",
                status.message()
            ),
            // tonic cancels a call past its grpc-timeout ("Timeout expired").
            Code::DeadlineExceeded | Code::Cancelled if out_of_time(deadline) => {
                format!("timeout: health rpc did not complete within {within}")
            }
            code => format!(
                "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                status.message()
            ),
        }),
    }
}

/// Whether the call's deadline has (all but) passed.
fn out_of_time(deadline: tokio::time::Instant) -> bool {
    tokio::time::Instant::now() + Duration::from_millis(50) >= deadline
}

/// The deepest cause of a connection error; a socket error in Go's words
/// (`dial tcp 10.42.0.7:9000: connect: connection refused`).
fn error_chain(err: &(dyn std::error::Error + 'static), addr: &str) -> String {
    let mut source = Some(err);
    let mut last = err.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return format!("dial tcp {addr}: {}", resolve::go_io_error(io));
        }
        last = e.to_string();
        source = e.source();
    }
    last
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
