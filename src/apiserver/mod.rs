//! The HTTPS server of the Kubernetes API: TLS with client certificates,
//! HTTP/1.1 and HTTP/2, routing to discovery, OpenAPI, health and the
//! resource handlers over [`crate::api::Api`]. Every request is
//! authenticated (`authn/`), authorized (`attributes.rs` →
//! `Api::authorize`) and audited (`audit.rs`) before it is served.

mod attributes;
pub mod audit;
pub mod authn;
mod codec;
mod discovery;
mod health;
mod node_credentials;
mod proto;
mod query;
mod resource;
mod route;
mod secrets_encrypt;
mod stream;
mod translate;
/// Streaming passthrough, shared with the kubelet's server.
pub mod upgrade;
mod watch;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::authz::{Decision, UserInfo};
use crate::api::openapi::{OpenApi, ServedKind};
use crate::api::{Api, ApiError, MAX_BODY_BYTES};
use crate::pki::client_identity;
use audit::{Audit, Record};
use authn::{Authn, Outcome};
use codec::{Body, Output};
use route::Route;

pub use authn::Join;
pub use node_credentials::NodeIssuer;

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
    /// Authentication (certificates are checked by TLS), and the CA
    /// served at `/cacerts`.
    authn: Authn,
    audit: Audit,
    /// TLS towards kubelets (logs, exec, attach, port-forward); `None`
    /// answers those with an error.
    kubelet: Option<Arc<rustls::ClientConfig>>,
    /// Signs joining nodes' certificates; unset answers 404.
    node_issuer: std::sync::OnceLock<NodeIssuer>,
}

impl Server {
    /// The served custom resource versions, for the OpenAPI documents.
    fn custom_kinds(&self, reg: &crate::api::Registry) -> Vec<crate::api::openapi::CustomKind> {
        reg.all()
            .iter()
            .filter_map(|r| {
                let c = r.custom?;
                Some(crate::api::openapi::CustomKind {
                    served: ServedKind {
                        group: r.group,
                        version: r.version,
                        kind: r.kind,
                        plural: r.plural,
                        namespaced: r.namespaced,
                        verbs: r.verbs,
                        subresources: c.subresource_names(),
                        definition: c.openapi_name(),
                    },
                    schema: c.schema(),
                })
            })
            .collect()
    }
}

impl Server {
    /// A server for client certificates only, without audit (the client
    /// tests use it).
    #[allow(dead_code)]
    pub fn new(api: Arc<Api>, address: String) -> Arc<Server> {
        Self::build(api, address, Authn::default(), Audit::default(), None)
    }

    /// A server authenticating with `authn`, auditing to `audit`, and
    /// proxying pods' logs, exec, attach and port-forward to kubelets with
    /// `kubelet` (see `Pki::kubelet_client_config`).
    pub fn build(
        api: Arc<Api>,
        address: String,
        authn: Authn,
        audit: Audit,
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
            authn,
            audit,
            kubelet,
            node_issuer: std::sync::OnceLock::new(),
        })
    }

    /// Serves `/nanokube/v1/node-credentials` with `issuer` (once; a second
    /// call is ignored).
    pub fn set_node_issuer(&self, issuer: NodeIssuer) {
        let _ = self.node_issuer.set(issuer);
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
            // The certificate's user, once per connection.
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(client_identity)
                .map(|id| authn::from_certificate(&id));
            let ip = peer.ip();
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                let identity = identity.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(server.handle(req, identity, ip).await)
                }
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

/// Why a request is not served.
enum Refusal {
    Error(ApiError),
    /// Upstream's 403 `Status` (see `attributes::forbidden_status`).
    Forbidden(serde_json::Value),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Error(e)
    }
}

/// Who a request runs as.
enum Admitted {
    /// Health, version and `/cacerts`: served to anyone, even without a
    /// credential.
    Public,
    User(Arc<UserInfo>),
}

/// Paths served without a credential (upstream's system:public-info-viewer
/// set, plus k3s's `/cacerts`).
fn is_public(route: &Route, method: &Method, path: &str) -> bool {
    matches!(
        route,
        Route::Health(_) | Route::HealthCheck(..) | Route::Version
    ) || (path == "/cacerts" && method == Method::GET)
}

impl Server {
    async fn handle(
        &self,
        req: Request<Incoming>,
        identity: Option<Arc<UserInfo>>,
        peer: IpAddr,
    ) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let mut rec = self.audit.begin(req.uri(), req.headers(), peer);
        rec.verb = method.as_str().to_ascii_lowercase();
        let mut long_running = false;
        let resp = match self.route(req, identity, &mut rec, &mut long_running).await {
            Ok(r) => r,
            Err(Refusal::Error(e)) => {
                rec.status = Some(e.status());
                codec::error(&e)
            }
            Err(Refusal::Forbidden(status)) => {
                let resp = codec::respond(403, &status, Output::Json);
                rec.status = Some(status);
                resp
            }
        };
        let resp = rec.finish(resp, long_running).await;
        tracing::debug!(%method, path, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
        resp
    }

    /// Authentication, impersonation and authorization of a request.
    async fn admit(
        &self,
        req: &Request<impl Sized>,
        route: &Route,
        query: &query::Query,
        identity: Option<Arc<UserInfo>>,
        rec: &mut Record,
    ) -> Result<Admitted, Refusal> {
        let user = match identity {
            Some(u) => Some(u),
            None => match self.authn.authenticate(&self.api, req.headers()).await {
                Outcome::User(u) => Some(u),
                Outcome::Nobody => None,
                Outcome::Refused => return Err(ApiError::Unauthorized.into()),
            },
        };
        if is_public(route, req.method(), req.uri().path()) {
            rec.user = user;
            return Ok(Admitted::Public);
        }
        let mut user = match user {
            Some(u) => u,
            None if self.authn.anonymous => authn::anonymous(),
            None => return Err(ApiError::Unauthorized.into()),
        };
        rec.user = Some(user.clone());
        if authn::wants_impersonation(req.headers()) {
            match authn::impersonate(&self.api, &user, req.headers()).await {
                Ok(as_user) => {
                    tracing::debug!(user = %user.name, as_user = %as_user.name, "impersonating");
                    user = Arc::new(as_user);
                    rec.impersonated = Some(user.clone());
                }
                Err(authn::Refused::Forbidden(attrs, reason)) => {
                    return Err(Refusal::Forbidden(attributes::forbidden_status(
                        &attrs, &reason,
                    )));
                }
                Err(authn::Refused::Invalid(why)) => return Err(ApiError::Internal(why).into()),
            }
        }
        let attrs = attributes::of(req.method(), req.uri().path(), route, query, user.clone());
        rec.verb = attrs.verb.clone();
        rec.set_attributes(&attrs);
        rec.received();
        let mut decision = self.api.authorize(&attrs).await;
        let mut decided = attrs;
        if decision == Decision::Allow {
            if let Some(create) = attributes::upgrade_create(&decided) {
                decision = self.api.authorize(&create).await;
                decided = create;
            }
        }
        match decision {
            Decision::Allow => {
                rec.decision = Some(("allow", String::new()));
                Ok(Admitted::User(user))
            }
            Decision::NoOpinion(reason) => {
                tracing::debug!(user = %user.name, verb = %decided.verb, resource = %decided.resource, path = %decided.path, "forbidden");
                let status = attributes::forbidden_status(&decided, &reason);
                rec.decision = Some(("forbid", reason));
                Err(Refusal::Forbidden(status))
            }
        }
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        identity: Option<Arc<UserInfo>>,
        rec: &mut Record,
        long_running: &mut bool,
    ) -> Result<Response<Body>, Refusal> {
        let route = route::parse(req.uri().path());
        let query = query::Query::parse(req.uri().query());
        if let Route::Resource(p) = &route {
            if stream::handles(p) {
                // Streams need the request itself (upgrades), unread.
                let user = match self.admit(&req, &route, &query, identity, rec).await? {
                    Admitted::User(u) => Some(u),
                    Admitted::Public => None,
                };
                *long_running = true;
                return Ok(stream::handle(self, req, p, user).await?);
            }
        }
        let (parts, body) = req.into_parts();
        // The body is read before any answer: answering first makes HTTP/2
        // reset the stream the client is still sending on.
        let body = read_body(body).await?;
        let req = Request::from_parts(parts, ());
        let user = match self.admit(&req, &route, &query, identity, rec).await? {
            Admitted::Public => return Ok(self.serve_public(&route, &query, &req)?),
            Admitted::User(u) => u,
        };
        if let Route::SecretsEncrypt(op) = &route {
            return Ok(secrets_encrypt::handle(&self.api, req.method(), op, &user).await?);
        }
        if route == Route::NodeCredentials {
            let issuer = self.node_issuer.get();
            return Ok(
                node_credentials::handle(&self.api, issuer, req.method(), &user, &body).await?,
            );
        }
        if let Route::Token(op) = &route {
            let join = &self.authn.join;
            return Ok(authn::rotate::handle(join, req.method(), op, &user, &body)?);
        }
        let header = |name: http::header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let accept = header(http::header::ACCEPT);
        let content_type = header(http::header::CONTENT_TYPE);
        rec.request_body(content_type.as_deref(), &body);
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
            }
            .into());
        };
        *long_running = rec.verb == "watch";
        let output = codec::negotiate(accept.as_deref())?;
        let annotations = crate::api::AuditAnnotations::default();
        let call = resource::Call {
            method: &method,
            path,
            query,
            content_type: content_type.as_deref(),
            output,
            body,
            user: Some(user),
            audit_annotations: annotations.clone(),
            user_agent: header(http::header::USER_AGENT),
        };
        let result = resource::handle(&self.api, call).await;
        if let Ok(mut added) = annotations.lock() {
            rec.annotations.append(&mut added);
        }
        Ok(result?)
    }

    /// Health, version and `/cacerts`.
    fn serve_public(
        &self,
        route: &Route,
        query: &query::Query,
        req: &Request<()>,
    ) -> Result<Response<Body>, ApiError> {
        match route {
            Route::Health(kind) => Ok(health::respond(
                self,
                kind,
                query.get("verbose").is_some(),
                None,
            )),
            Route::HealthCheck(kind, check) => Ok(health::respond(self, kind, false, Some(check))),
            Route::Version if req.method() == Method::GET => Ok(codec::respond(
                200,
                &discovery::version_info(),
                Output::Json,
            )),
            Route::Version => Err(ApiError::MethodNotAllowed),
            // Unauthenticated, as in k3s: the agent checks it against its
            // token's hash before trusting anything from this server.
            _ => match &self.authn.join.ca_pem {
                Some(pem) => Ok(codec::raw(200, pem.clone(), "text/plain")),
                None => Err(ApiError::NoRoute),
            },
        }
    }

    /// Discovery, version and OpenAPI documents.
    fn serve_meta(
        &self,
        route: &Route,
        accept: Option<&str>,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let reg = &*self.api.registry();
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
                    "{}{}{}",
                    crate::metrics::render(),
                    translate::render_metrics(),
                    self.audit.render_metrics()
                )
                .into(),
                "text/plain; version=0.0.4; charset=utf-8",
            ))),
            Route::OpenApiV3Index => {
                let reg = self.api.registry();
                let custom = self.custom_kinds(&reg);
                Ok(Some(codec::raw(
                    200,
                    self.openapi.v3_index_with(&custom),
                    "application/json",
                )))
            }
            Route::OpenApiV3(path) => match self.openapi.v3_group_version(path).or_else(|| {
                let reg = self.api.registry();
                self.openapi.v3_custom(path, &self.custom_kinds(&reg))
            }) {
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
