//! The kubelet's HTTPS port (10250): what the API server proxies pods'
//! logs, exec, attach and port-forward to. Only the API server may call
//! (client certificate `kube-apiserver-kubelet-client` or group
//! `system:masters`, verified against the client CA by the TLS layer).
//!
//! Endpoints, as upstream's kubelet:
//! - `GET /healthz`
//! - `GET /containerLogs/{ns}/{pod}/{container}` (`follow`, `previous`,
//!   `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes`)
//! - `GET|POST /exec/{ns}/{pod}[/{uid}]/{container}?command=…` and
//!   `/attach/…` (`input`, `output`, `error`, `tty`), `/portForward/{ns}/{pod}[/{uid}]`:
//!   HTTP/1.1 upgrades (SPDY/3.1 or WebSocket) passed to the runtime.

mod logs;
mod logstream;
mod lookup;
mod params;
mod streaming;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::agent::cri::Cri;
use crate::apiserver::upgrade::{self, Body};
use crate::pki::{client_identity, ClientIdentity, KUBELET_CLIENT_CN, KUBELET_CLIENT_GROUP};

use params::Endpoint;
use streaming::Kind;

/// What the server needs: the port, its TLS configuration (from
/// `pki::kubelet_serving_tls`) and the runtime.
pub struct ServerSettings {
    pub port: u16,
    pub tls: Arc<rustls::ServerConfig>,
    pub cri: Cri,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on the kubelet port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
}

/// Serves the kubelet port until `shutdown` completes.
pub async fn serve(
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, settings.port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            port: settings.port,
            source,
        })?;
    tracing::info!(%addr, "kubelet server listening");
    let acceptor = TlsAcceptor::from(settings.tls);
    let cri = settings.cri;
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let cri = cri.clone();
        connections.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "kubelet tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(client_identity);
            let identity = Arc::new(identity);
            let service = hyper::service::service_fn(move |req| {
                let cri = cri.clone();
                let identity = identity.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(&cri, identity.as_ref().as_ref(), req).await,
                    )
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "kubelet connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    tracing::info!("kubelet server stopped");
    Ok(())
}

/// Only the API server may use this port.
fn allowed(identity: Option<&ClientIdentity>) -> Result<(), String> {
    match identity {
        Some(id)
            if id.user == KUBELET_CLIENT_CN
                || id.groups.iter().any(|g| g == KUBELET_CLIENT_GROUP) =>
        {
            Ok(())
        }
        other => Err(format!(
            "Forbidden (user={}, verb=get, resource=nodes, subresource=proxy)",
            other.map_or("system:anonymous", |id| id.user.as_str())
        )),
    }
}

async fn handle(
    cri: &Cri,
    identity: Option<&ClientIdentity>,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = route(cri, identity, req).await;
    tracing::debug!(%method, path, status = resp.status().as_u16(), "kubelet request");
    resp
}

async fn route(
    cri: &Cri,
    identity: Option<&ClientIdentity>,
    req: Request<Incoming>,
) -> Response<Body> {
    if let Err(text) = allowed(identity) {
        return upgrade::text(StatusCode::FORBIDDEN, &text);
    }
    let endpoint = params::parse_path(req.uri().path());
    let get_or_post = matches!(*req.method(), Method::GET | Method::POST);
    let result = match endpoint {
        Endpoint::Healthz if req.method() == Method::GET => Ok(upgrade::text(StatusCode::OK, "ok")),
        Endpoint::Logs(t) if req.method() == Method::GET => {
            let q = params::query_pairs(req.uri().query());
            match params::log_options(&q, jiff::Timestamp::now()) {
                Ok(opts) => logstream::serve(cri, &t, opts).await.map(|body| {
                    let mut resp = Response::new(body);
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain"),
                    );
                    resp
                }),
                Err(text) => Err((StatusCode::BAD_REQUEST, text)),
            }
        }
        Endpoint::Exec(t) if get_or_post => streaming::serve(cri, Kind::Exec, &t, req).await,
        Endpoint::Attach(t) if get_or_post => streaming::serve(cri, Kind::Attach, &t, req).await,
        Endpoint::PortForward(t) if get_or_post => {
            streaming::serve(cri, Kind::PortForward, &t, req).await
        }
        Endpoint::Unknown => Err((StatusCode::NOT_FOUND, "404 page not found".into())),
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "405: Method Not Allowed".into(),
        )),
    };
    result.unwrap_or_else(logstream::refusal_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_server_gets_in() {
        let id = |user: &str, groups: &[&str]| ClientIdentity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert!(allowed(Some(&id(KUBELET_CLIENT_CN, &[]))).is_ok());
        assert!(allowed(Some(&id("system:admin", &["system:masters"]))).is_ok());
        let err = allowed(Some(&id("bob", &["devs"]))).unwrap_err();
        assert_eq!(
            err,
            "Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)"
        );
        assert!(allowed(None).is_err());
    }
}
