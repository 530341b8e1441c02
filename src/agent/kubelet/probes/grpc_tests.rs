//! Against a raw HTTP/2 gRPC health server on 127.0.0.1 written here.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Container, GRPCAction, Probe};

use super::*;
use crate::agent::kubelet::probes::testing::target;
use crate::agent::kubelet::probes::{run_once, Kind, Outcome};

type Body = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn trailers(status: u32, message: &str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(status));
    if !message.is_empty() {
        t.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    }
    t
}

/// Services: "" and "app" SERVING, "down" NOT_SERVING, "slow" answers
/// after 30 s, "old" as a server without the health service (a
/// trailers-only UNIMPLEMENTED), anything else NOT_FOUND.
async fn health(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let ua = req.headers().get("user-agent").cloned();
    let path = req.uri().path().to_string();
    let data = req.into_body().collect().await.unwrap().to_bytes();
    let asked = HealthCheckRequest::decode(&data[5..]).unwrap();
    assert_eq!(path, CHECK_PATH);
    assert!(ua.unwrap().to_str().unwrap().starts_with("kube-probe/1.33"));
    let frames = match asked.service.as_str() {
        "" | "app" | "down" | "slow" => {
            if asked.service == "slow" {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let status = if asked.service == "down" { 2 } else { SERVING };
            let msg = HealthCheckResponse { status }.encode_to_vec();
            let mut frame = BytesMut::new();
            frame.put_u8(0);
            frame.put_u32(msg.len() as u32);
            frame.put_slice(&msg);
            vec![
                Ok(Frame::data(frame.freeze())),
                Ok(Frame::trailers(trailers(0, ""))),
            ]
        }
        "old" => vec![Ok(Frame::trailers(trailers(
            12,
            "unknown service grpc.health.v1.Health",
        )))],
        _ => vec![Ok(Frame::trailers(trailers(5, "unknown service")))],
    };
    let body = StreamBody::new(futures::stream::iter(frames));
    Ok(Response::builder()
        .header("content-type", "application/grpc")
        .body(body)
        .unwrap())
}

async fn serve() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(health);
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    port
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
