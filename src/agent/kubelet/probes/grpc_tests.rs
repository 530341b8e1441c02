//! Against a raw HTTP/2 gRPC health server on 127.0.0.1 (see testing.rs).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use k8s_openapi::api::core::v1::{Container, GRPCAction, Probe};

use super::*;
use crate::agent::kubelet::probes::testing::{serve_grpc_tcp, target, GrpcHandler};
use crate::agent::kubelet::probes::{run_once, Kind, Outcome};

/// Services: "" and "app" SERVING, "down" NOT_SERVING, "slow" answers
/// after 30 s, "old" as a server without the health service
/// (UNIMPLEMENTED), anything else NOT_FOUND.
async fn health(path: String, headers: HeaderMap, data: Bytes) -> Result<Vec<u8>, (u32, String)> {
    assert_eq!(path, CHECK_PATH);
    let ua = headers["user-agent"].to_str().unwrap();
    assert!(ua.starts_with("kube-probe/1.33"), "{ua}");
    let asked = HealthCheckRequest::decode(data).unwrap();
    let status = match asked.service.as_str() {
        "" | "app" => SERVING,
        "down" => 2,
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            SERVING
        }
        "old" => return Err((12, "unknown service grpc.health.v1.Health".into())),
        _ => return Err((5, "unknown service".into())),
    };
    Ok(HealthCheckResponse { status }.encode_to_vec())
}

async fn serve() -> u16 {
    let handler: GrpcHandler =
        Arc::new(|path, headers, data| Box::pin(health(path, headers, data)));
    serve_grpc_tcp(handler).await
}

fn probe(port: u16, service: Option<&str>) -> Probe {
    Probe {
        grpc: Some(GRPCAction {
            port: i32::from(port),
            service: service.map(str::to_string),
        }),
        ..Default::default()
    }
}

async fn once(p: &Probe) -> Outcome {
    run_once(Kind::Liveness, p, &Container::default(), &target()).await
}

#[tokio::test]
async fn health_statuses() {
    let port = serve().await;
    assert_eq!(once(&probe(port, None)).await, Outcome::Success);
    assert_eq!(once(&probe(port, Some("app"))).await, Outcome::Success);
    assert_eq!(
        once(&probe(port, Some("down"))).await,
        Outcome::Failure(
            "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")".into()
        )
    );
    assert_eq!(
        once(&probe(port, Some("old"))).await,
        Outcome::Failure(
            "Liveness probe failed: error: this server does not implement the grpc health \
             protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
                .into()
        )
    );
    assert_eq!(
        once(&probe(port, Some("other"))).await,
        Outcome::Failure(
            "Liveness probe failed: error: health rpc probe failed: rpc error: code = NotFound \
             desc = unknown service"
                .into()
        )
    );
}

#[tokio::test]
async fn timeouts_and_refusals() {
    let port = serve().await;
    let started = std::time::Instant::now();
    assert_eq!(
        once(&probe(port, Some("slow"))).await,
        Outcome::Failure(
            "Liveness probe failed: timeout: health rpc did not complete within 1s".into()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    assert_eq!(
        once(&probe(closed, None)).await,
        Outcome::Failure(format!(
            "Liveness probe failed: error: failed to connect service at \"127.0.0.1:{closed}\": \
             dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
}
