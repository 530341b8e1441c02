//! A joined node's own credentials: its kubelet client certificate
//! (`system:node:<name>`, group `system:nodes`), the serving certificate of
//! its kubelet port, the proxy/DNS client certificate (`system:kube-proxy`),
//! and the CAs — obtained once with the join token (after the CA check in
//! `join`), kept under `<agent-dir>/credentials/`, used again at restart
//! without the token, and renewed before expiry with the client
//! certificate itself.
//!
//! The keys are made here (ECDSA P-256) and never leave the machine: the
//! server signs requests at `POST /nanokube/v1/node-credentials`
//! (`wire.rs`; upstream's CSR flow with auto-approval, as k3s serves it).
//! A random node password (`<agent-dir>/node-password`) goes with every
//! request: the server remembers it, so a second machine cannot take this
//! node's name.

mod background;
mod obtain;
mod renew;
mod store;
pub mod wire;

use std::net::IpAddr;
use std::path::Path;

use obtain::{Auth, Exchange};
use renew::Decision;

pub use background::{spawn_renewal, Renewal};

/// A certificate chain and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything an agent needs to talk to the API and serve its kubelet port.
#[derive(Debug, Clone)]
pub struct NodeCredentials {
    /// Verifies the API server (and kubelets' serving certificates).
    pub server_ca_pem: String,
    /// Verifies the API server's client certificate on the kubelet port.
    pub client_ca_pem: String,
    /// `system:node:<name>` in `system:nodes`.
    pub kubelet_client: CertKey,
    /// The kubelet port's certificate: node name and addresses.
    pub kubelet_serving: CertKey,
    /// `system:kube-proxy`: the service proxy and the cluster DNS.
    pub proxy_client: CertKey,
    /// The cluster's settings every node follows.
    pub cluster: ClusterInfo,
}

/// The server's cluster-wide settings an agent needs (k3s agents get them
/// from the server too).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// `--cluster-cidr`, e.g. 10.42.0.0/16.
    pub cluster_cidr: String,
    /// `--service-cidr`, e.g. 10.43.0.0/16.
    pub service_cidr: String,
    /// The cluster DNS address, e.g. 10.43.0.10; `None` with `--disable dns`.
    pub cluster_dns: Option<std::net::IpAddr>,
    pub cluster_domain: String,
    /// `vxlan`, `host-gw` or `none`.
    pub flannel_backend: String,
}

/// What obtaining credentials needs.
pub struct Request<'a> {
    /// `https://host:port` of a server.
    pub server: &'a str,
    /// The join token; `None` once joined (the stored credentials are used).
    pub token: Option<&'a str>,
    pub node_name: &'a str,
    /// Addresses for the serving certificate.
    pub addresses: &'a [IpAddr],
    /// `<data-dir>/agent`.
    pub agent_dir: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this node has not joined yet: pass --token ({0})")]
    NotJoined(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Files(#[from] crate::pki::Error),
    #[error("stored credentials {path}: {message}")]
    Stored { path: String, message: String },
    #[error("generating keys: {0}")]
    Keys(String),
    #[error("invalid join token: {0}")]
    Token(String),
    #[error("the server's CA certificate (sha256 {actual}) does not match the CA hash in the join token ({expected}): possible man-in-the-middle attack; refusing to join")]
    CaMismatch { expected: String, actual: String },
    #[error("the server refused the join token (401 Unauthorized): check --token")]
    Unauthorized,
    #[error("the server refused the node credentials: {0}")]
    Refused(String),
    #[error("asking the server for node credentials: {0}")]
    Server(String),
    #[error("unexpected node credentials from the server: {0}")]
    Answer(String),
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The stored credentials when still valid, else new ones from the server:
/// renewed with the stored client certificate when it is still good,
/// obtained with the token otherwise. Stored credentials that are due for
/// renewal but still valid are used when the server cannot renew them.
pub async fn load_or_obtain(req: Request<'_>) -> Result<NodeCredentials, Error> {
    let dir = store::dir(req.agent_dir);
    let stored = store::load(&dir).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "stored node credentials are unusable");
        None
    });
    let password = store::password(req.agent_dir)?;
    let decision = match &stored {
        Some(c) => renew::decide(c, req.node_name, req.addresses, now()),
        None => Decision::Rejoin("no stored credentials".into()),
    };
    let reason = match (decision, stored) {
        (Decision::Use, Some(creds)) => {
            tracing::info!(dir = %dir.display(), "using the stored node credentials");
            return Ok(creds);
        }
        (Decision::Renew(reason), Some(creds)) => {
            tracing::info!(%reason, "renewing the node credentials");
            let exchange = Exchange {
                server: req.server,
                server_ca_pem: &creds.server_ca_pem,
                auth: Auth::Cert(&creds.kubelet_client),
                node_name: req.node_name,
                password: &password,
                addresses: req.addresses,
            };
            match obtain::obtain(exchange).await {
                Ok(new) => {
                    store::save(&dir, &new)?;
                    return Ok(new);
                }
                Err(e) if req.token.is_none() => {
                    tracing::warn!(error = %e, "renewing the node credentials failed; the stored ones are still valid");
                    return Ok(creds);
                }
                Err(e) => format!("renewal failed: {e}"),
            }
        }
        (Decision::Rejoin(reason), _) => reason,
        (_, None) => "no stored credentials".into(),
    };
    let Some(token) = req.token else {
        return Err(Error::NotJoined(reason));
    };
    tracing::info!(%reason, "obtaining node credentials with the join token");
    let creds = with_token(&req, token, &password).await?;
    store::save(&dir, &creds)?;
    Ok(creds)
}

/// The server CA checked against the token's hash, then the exchange
/// authenticated with the token.
async fn with_token(
    req: &Request<'_>,
    token: &str,
    password: &str,
) -> Result<NodeCredentials, Error> {
    let parsed = crate::pki::JoinToken::parse(token).map_err(|e| Error::Token(e.to_string()))?;
    let ca = super::join::fetch_cacerts(req.server)
        .await
        .map_err(|e| Error::Server(e.to_string()))?;
    let actual = crate::pki::ca_hash(&ca)?;
    if let Some(expected) = parsed.ca_hash.filter(|h| *h != actual) {
        return Err(Error::CaMismatch { expected, actual });
    }
    let ca =
        String::from_utf8(ca).map_err(|_| Error::Server("the CA bundle is not text".into()))?;
    obtain::obtain(Exchange {
        server: req.server,
        server_ca_pem: &ca,
        auth: Auth::Token(&parsed.secret),
        node_name: req.node_name,
        password,
        addresses: req.addresses,
    })
    .await
}

#[cfg(test)]
mod tests;
