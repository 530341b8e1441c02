//! tcpSocket probes: a connection opened within the timeout is success.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, TCPSocketAction};
use tokio::net::TcpStream;

use super::{resolve, Probed, Target};

pub(super) async fn probe(
    action: &TCPSocketAction,
    container: &Container,
    target: &Target,
    timeout: Duration,
) -> Probed {
    let port = match resolve::port(&action.port, container) {
        Ok(port) => port,
        Err(err) => return Probed::Error(err.to_string()),
    };
    let host = match action.host.as_deref().filter(|h| !h.is_empty()) {
        Some(host) => host.to_string(),
        None => target.default_host().to_string(),
    };
    check(&host, port, timeout).await
}

/// Upstream's DoTCPProbe, with Go's error texts
/// (`dial tcp 10.42.0.7:8080: connect: connection refused`).
pub(super) async fn check(host: &str, port: u16, timeout: Duration) -> Probed {
    let addr = resolve::join_host_port(host, port);
    match tokio::time::timeout(timeout, connect(host, port)).await {
        Err(_) => Probed::Failure(format!("dial tcp {addr}: i/o timeout")),
        Ok(Err(err)) => Probed::Failure(format!("dial tcp {addr}: {}", resolve::go_io_error(&err))),
        // Closing at once is all upstream does with the connection.
        Ok(Ok(_stream)) => Probed::Success,
    }
}

/// Connects to an IP literal directly; a name (only ever from the user's
/// `host` field) is looked up first, as Go's dialer does.
pub(super) async fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return TcpStream::connect(SocketAddr::new(ip, port)).await;
    }
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("lookup {host}: no such host"),
    );
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use crate::agent::cri::Cri;
    use crate::agent::kubelet::probes::{run_once, Kind, Outcome};
    use k8s_openapi::api::core::v1::Probe;

    fn target() -> Target {
        Target {
            cri: Cri::new("/nonexistent/cri.sock").unwrap(),
            container_id: "c1".into(),
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            host_ip: None,
        }
    }

    #[tokio::test]
    async fn open_and_closed_ports() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let container = Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("svc".into()),
                container_port: i32::from(port),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("svc".into()),
            }),
            ..Default::default()
        };
        let t = target();
        assert_eq!(
            run_once(Kind::Liveness, &probe, &container, &t).await,
            Outcome::Success
        );
        drop(listener);
        let Outcome::Failure(msg) = run_once(Kind::Liveness, &probe, &container, &t).await else {
            panic!("a closed port must fail");
        };
        assert_eq!(
            msg,
            format!(
                "Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        );
        let unnamed = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("nope".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            run_once(Kind::Readiness, &unnamed, &container, &t).await,
            Outcome::Unknown(
                "Readiness probe errored and resulted in unknown state: port \"nope\" not found"
                    .into()
            )
        );
    }
}
