//! The HTTPS server of the Kubernetes API: TLS with client certificates,
//! HTTP/1.1 and HTTP/2, routing to discovery, OpenAPI, health and the
//! resource handlers over [`crate::api::Api`].

mod auth;
mod codec;
mod discovery;
mod health;
mod proto;
mod query;
mod resource;
mod route;
mod stream;
mod translate;
/// Streaming passthrough, shared with the kubelet's server.
pub mod upgrade;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::openapi::{OpenApi, ServedKind};
use crate::api::{Api, ApiError, MAX_BODY_BYTES};
use crate::pki::{client_identity, ClientIdentity};
use codec::{Body, Output};
use route::Route;

pub use auth::Join;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("accepting connections failed: {0}")]
    Accept(#[from] std::io::Error),
}

/// What every request handler shares.
pub struct Server {
    api: Arc<Api>,
    openapi: OpenApi,
    /// How clients reach us, for /api's serverAddressByClientCIDRs.
    address: String,
    started: Instant,
    /// Join-token authentication and the CA served at `/cacerts`.
    join: Join,
    /// TLS towards kubelets (logs, exec, attach, port-forward); `None`
    /// answers those with an error.
    kubelet: Option<Arc<rustls::ClientConfig>>,
}

impl Server {
    /// A server without join tokens (the client tests use it).
    #[allow(dead_code)]
    pub fn new(api: Arc<Api>, address: String) -> Arc<Server> {
        Self::with_join(api, address, Join::default())
    }

    /// A server that also accepts the cluster join token as a bearer token.
    pub fn with_join(api: Arc<Api>, address: String, join: Join) -> Arc<Server> {
        Self::with_kubelet_client(api, address, join, None)
    }

    /// Also proxies pods' logs, exec, attach and port-forward to kubelets
    /// with `kubelet` (see `Pki::kubelet_client_config`).
    pub fn with_kubelet_client(
        api: Arc<Api>,
        address: String,
        join: Join,
        kubelet: Option<Arc<rustls::ClientConfig>>,
    ) -> Arc<Server> {
        let kinds = api
            .registry()
            .all()
            .iter()
            .filter_map(|r| {
                Some(ServedKind {
                    group: r.group,
                    version: r.version,
                    kind: r.kind,
                    plural: r.plural,
                    namespaced: r.namespaced,
                    verbs: r.verbs,
                    subresources: SUBRESOURCE_NAMES
                        .iter()
                        .copied()
                        .filter(|s| r.subresource(s).is_some())
                        .collect::<Vec<_>>()
                        .leak(),
                    definition: r.definition?,
                })
            })
            .collect();
        Arc::new(Server {
            openapi: OpenApi::new(kinds),
            api,
            address,
            started: Instant::now(),
            join,
            kubelet,
        })
    }
}

const SUBRESOURCE_NAMES: &[&str] = &[
    "attach",
    "binding",
    "eviction",
    "exec",
    "finalize",
    "log",
    "portforward",
    "scale",
    "status",
    "token",
];

/// Serves HTTPS on `listener` until `shutdown` completes.
pub async fn serve(
    server: Arc<Server>,
    tls: Arc<rustls::ServerConfig>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        connections.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(client_identity)
                .map(Arc::new);
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                let identity = identity.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req, identity).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
        // Reap finished connection tasks so the set does not grow forever.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    Ok(())
}

impl Server {
    async fn handle(
        &self,
        req: Request<Incoming>,
        identity: Option<Arc<ClientIdentity>>,
    ) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resp = match self.route(req, identity).await {
            Ok(r) => r,
            Err(e) => codec::error(&e),
        };
        tracing::debug!(%method, path, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
        resp
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        identity: Option<Arc<ClientIdentity>>,
    ) -> Result<Response<Body>, ApiError> {
        let route = route::parse(req.uri().path());
        let query = query::Query::parse(req.uri().query());
        if let Route::Resource(p) = &route {
            if stream::handles(p) {
                // Streams need the request itself (upgrades), unread.
                if identity.is_none() && self.authenticate(req.headers()).await.is_none() {
                    return Err(ApiError::Unauthorized);
                }
                return stream::handle(self, req, p).await;
            }
        }
        let (parts, body) = req.into_parts();
        // The body is read before any answer: answering first makes HTTP/2
        // reset the stream the client is still sending on.
        let body = read_body(body).await?;
        let req = Request::from_parts(parts, ());
        if let Route::Health(kind) = route {
            return Ok(health::respond(
                self,
                kind,
                query.get("verbose").is_some(),
                None,
            ));
        }
        if let Route::HealthCheck(kind, check) = &route {
            return Ok(health::respond(self, kind, false, Some(check)));
        }
        if req.uri().path() == "/cacerts" && req.method() == Method::GET {
            // Unauthenticated, as in k3s: the agent checks it against its
            // token's hash before trusting anything from this server.
            if let Some(pem) = &self.join.ca_pem {
                return Ok(codec::raw(200, pem.clone(), "text/plain"));
            }
        }
        let identity = match identity {
            Some(id) => Some(id),
            None => self.authenticate(req.headers()).await,
        };
        if identity.is_none() {
            return Err(ApiError::Unauthorized);
        }
        let header = |name: http::header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let accept = header(http::header::ACCEPT);
        let content_type = header(http::header::CONTENT_TYPE);
        let method = req.method().clone();
        if method == Method::GET {
            if let Some(resp) = self.serve_meta(&route, accept.as_deref())? {
                return Ok(resp);
            }
        }
        let Route::Resource(path) = route else {
            return Err(match route {
                Route::Unknown => ApiError::NoRoute,
                _ => ApiError::MethodNotAllowed,
            });
        };
        let output = codec::negotiate(accept.as_deref())?;
        let call = resource::Call {
            method: &method,
            path,
            query,
            content_type: content_type.as_deref(),
            output,
            body,
        };
        resource::handle(&self.api, call).await
    }

    /// Discovery, version and OpenAPI documents.
    fn serve_meta(
        &self,
        route: &Route,
        accept: Option<&str>,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let reg = self.api.registry();
        let json = |v: serde_json::Value| Ok(Some(codec::respond(200, &v, Output::Json)));
        match route {
            Route::Version => json(discovery::version_info()),
            Route::LegacyRoot | Route::GroupsRoot => {
                let legacy = matches!(route, Route::LegacyRoot);
                if let Some(which) = accept.and_then(discovery::wants_aggregated) {
                    let doc = discovery::aggregated(reg, legacy, which);
                    let body = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
                    return Ok(Some(codec::raw(
                        200,
                        body,
                        discovery::aggregated_content_type(which),
                    )));
                }
                if legacy {
                    json(discovery::legacy_versions(&self.address))
                } else {
                    json(discovery::group_list(reg))
                }
            }
            Route::Group(g) => match discovery::group(reg, g) {
                Some(v) => json(v),
                None => Err(ApiError::NoRoute),
            },
            Route::GroupVersion { group, version } => {
                match discovery::resource_list(reg, group, version) {
                    Some(v) => json(v),
                    None => Err(ApiError::NoRoute),
                }
            }
            Route::OpenApiV2 => match self.openapi.v2_for_accept(accept) {
                Some(rep) => {
                    let mut resp = codec::raw(200, rep.body, rep.content_type);
                    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", rep.etag)) {
                        resp.headers_mut().insert(http::header::ETAG, v);
                    }
                    resp.headers_mut()
                        .insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
                    Ok(Some(resp))
                }
                None => Ok(Some(codec::raw(406, Bytes::new(), "text/plain"))),
            },
            Route::Metrics => Ok(Some(codec::raw(
                200,
                format!(
                    "{}{}",
                    crate::metrics::render(),
                    translate::render_metrics()
                )
                .into(),
                "text/plain; version=0.0.4; charset=utf-8",
            ))),
            Route::OpenApiV3Index => Ok(Some(codec::raw(
                200,
                self.openapi.v3_index(),
                "application/json",
            ))),
            Route::OpenApiV3(path) => match self.openapi.v3_group_version(path) {
                Some((body, etag)) => {
                    let mut resp = codec::raw(200, body, "application/json");
                    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                        resp.headers_mut().insert(http::header::ETAG, v);
                    }
                    resp.headers_mut().insert(
                        http::header::CACHE_CONTROL,
                        http::HeaderValue::from_static("public, immutable"),
                    );
                    Ok(Some(resp))
                }
                None => Err(ApiError::NoRoute),
            },
            _ => Ok(None),
        }
    }
}

/// Reads a request body, refusing more than upstream's 3 MiB.
async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge)
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body failed: {e}"
        ))),
    }
}
