use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, HTTPHeader, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::agent::kubelet::probes::testing::{serve_http, target};
use crate::agent::kubelet::probes::{run_once, Kind, Outcome};

fn probe(port: u16, path: &str, https: bool) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            scheme: https.then(|| "HTTPS".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn once(p: &Probe) -> Outcome {
    run_once(Kind::Liveness, p, &Container::default(), &target()).await
}

#[tokio::test]
async fn status_codes_and_redirects() {
    let s = serve_http(false).await;
    let p = s.port;
    assert_eq!(once(&probe(p, "/ok", false)).await, Outcome::Success);
    assert_eq!(
        once(&probe(p, "/fail", false)).await,
        Outcome::Failure("Liveness probe failed: HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        once(&probe(p, "/missing", false)).await,
        Outcome::Failure("Liveness probe failed: HTTP probe failed with statuscode: 404".into())
    );
    // Same host: followed to the final answer.
    assert_eq!(once(&probe(p, "/same", false)).await, Outcome::Success);
    assert_eq!(once(&probe(p, "/abs-same", false)).await, Outcome::Success);
    assert_eq!(once(&probe(p, "/rel/a", false)).await, Outcome::Success);
    // Another host: not followed, success with a warning.
    assert_eq!(
        once(&probe(p, "/other", false)).await,
        Outcome::Warning(
            "Liveness probe warning: Probe terminated redirects, Response body: moved".into()
        )
    );
    let paths = s.paths();
    assert!(!paths.iter().any(|p| p == "/x"), "{paths:?}");
    assert_eq!(
        once(&probe(p, "/loop", false)).await,
        Outcome::Failure(format!(
            "Liveness probe failed: Get \"http://127.0.0.1:{p}/loop\": stopped after 10 redirects"
        ))
    );
    assert_eq!(s.paths().iter().filter(|p| *p == "/loop").count(), 10);
    // A large body is cut at 10 KiB and does not matter.
    assert_eq!(once(&probe(p, "/big", false)).await, Outcome::Success);
}

#[tokio::test]
async fn headers_as_upstream() {
    let s = serve_http(false).await;
    let mut p = probe(s.port, "/ok?x=1", false);
    assert_eq!(once(&p).await, Outcome::Success);
    let seen = s.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.path, "/ok?x=1");
    assert_eq!(seen.headers["user-agent"], "kube-probe/1.33");
    assert_eq!(seen.headers["accept"], "*/*");
    assert_eq!(seen.headers["host"], format!("127.0.0.1:{}", s.port));

    p.http_get.as_mut().unwrap().http_headers = Some(vec![
        HTTPHeader {
            name: "Host".into(),
            value: "example.test".into(),
        },
        HTTPHeader {
            name: "X-Custom".into(),
            value: "a".into(),
        },
        HTTPHeader {
            name: "X-Custom".into(),
            value: "b".into(),
        },
        HTTPHeader {
            name: "accept".into(),
            value: "".into(),
        },
        HTTPHeader {
            name: "User-Agent".into(),
            value: "mine".into(),
        },
    ]);
    assert_eq!(once(&p).await, Outcome::Success);
    let seen = s.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.headers["host"], "example.test");
    let custom: Vec<_> = seen.headers.get_all("x-custom").iter().collect();
    assert_eq!(custom, ["a", "b"]);
    assert!(seen.headers.get("accept").is_none());
    assert_eq!(seen.headers["user-agent"], "mine");
}

#[tokio::test]
async fn named_port_and_https_without_verification() {
    let s = serve_http(true).await;
    let container = Container {
        name: "web".into(),
        ports: Some(vec![ContainerPort {
            name: Some("https".into()),
            container_port: i32::from(s.port),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let mut p = probe(0, "/ok", true);
    p.http_get.as_mut().unwrap().port = IntOrString::String("https".into());
    let t = target();
    assert_eq!(
        run_once(Kind::Readiness, &p, &container, &t).await,
        Outcome::Success
    );
    p.http_get.as_mut().unwrap().path = Some("/fail".into());
    assert_eq!(
        run_once(Kind::Readiness, &p, &container, &t).await,
        Outcome::Failure("Readiness probe failed: HTTP probe failed with statuscode: 500".into())
    );
    // HTTPS asked of a plain server fails with Go's text.
    let plain = serve_http(false).await;
    let Outcome::Failure(msg) = once(&probe(plain.port, "/ok", true)).await else {
        panic!("https to a plain server must fail");
    };
    assert!(msg.ends_with(PLAIN_HTTP_ANSWER), "{msg}");
}

#[tokio::test]
async fn timeouts_and_refusals() {
    let s = serve_http(false).await;
    let started = Instant::now();
    let p = probe(s.port, "/slow", false);
    assert_eq!(
        once(&p).await,
        Outcome::Failure(format!(
            "Liveness probe failed: Get \"http://127.0.0.1:{}/slow\": context deadline exceeded \
             (Client.Timeout exceeded while awaiting headers)",
            s.port
        ))
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    assert_eq!(
        once(&probe(port, "/ok", false)).await,
        Outcome::Failure(format!(
            "Liveness probe failed: Get \"http://127.0.0.1:{port}/ok\": dial tcp 127.0.0.1:{port}: \
             connect: connection refused"
        ))
    );
}

#[test]
fn urls() {
    let base = Url {
        https: false,
        host: "10.0.0.1".into(),
        port: 8080,
        path: "/a/b?q=1".into(),
    };
    let (u, rel) = base.join("c").unwrap();
    assert_eq!(
        (u.to_string().as_str(), rel),
        ("http://10.0.0.1:8080/a/c", true)
    );
    let (u, _) = base.join("/z#frag").unwrap();
    assert_eq!(u.to_string(), "http://10.0.0.1:8080/z");
    let (u, rel) = base.join("https://10.0.0.1/y").unwrap();
    assert_eq!(
        (u.to_string().as_str(), rel),
        ("https://10.0.0.1:443/y", false)
    );
    let (u, _) = base.join("//[fd00::1]:9/").unwrap();
    assert_eq!(u.to_string(), "http://[fd00::1]:9/");
    assert_eq!(escape_path("healthz"), "/healthz");
    assert_eq!(escape_path("/a b"), "/a%20b");
    assert_eq!(escape_path(""), "/");
}
