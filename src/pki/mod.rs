//! The cluster PKI: certificate authorities, the API server's serving
//! certificate, the admin client certificate and the admin kubeconfig, all
//! kept under `<data-dir>/server/tls/` (k3s's layout and names).
//!
//! [`ensure`] creates what is missing and reuses what is still good; a
//! serving certificate missing a now-needed name or expiring within 90 days
//! is re-issued by the same CA. [`Pki::server_config`] and
//! [`client_identity`] are what an HTTPS listener needs.

mod files;
mod issue;
mod kubeconfig;
mod live;
mod pem;
// Used by main.rs and the kubelet once they are wired (issue 5).
mod kubelet;
mod names;
mod node_certs;
mod sa_token;
mod tls;
mod token;

use std::path::{Path, PathBuf};

pub use kubeconfig::{default_kubeconfig_path, parse_mode, write_kubeconfig};
// The kubelet's HTTPS port and the API server's client towards it.
pub use kubelet::{kubelet_serving_tls, KUBELET_CLIENT_CN, KUBELET_CLIENT_GROUP};
// A joining node's certificates, signed from its requests; agents write
// their keys with the same atomic, exact-mode writes.
pub use files::{ensure_private_dir, write_atomic};
// What a certificate says about itself (agents check their stored ones).
pub use issue::inspect as inspect_certificate;
// Renewal in a running server, rotation of a stopped one.
pub use live::LeafCert;
pub use names::{default_route_address, local_addresses, serving_names, ServingNames};
pub use node_certs::{NodeCsrs, NODES_GROUP, NODE_USER_PREFIX, PROXY_CLIENT_CN};
pub use pem::{certificates as pem_certificates, private_key as pem_private_key};
// The HTTPS listener (API-server issue) authenticates clients with these.
pub use tls::{client_identity, AnyServerCert, ClientIdentity};
// Service-account tokens (TokenRequest, bearer JWT authentication).
pub use sa_token::{
    ensure_service_account_key, Claims as TokenClaims, KubernetesClaim, LegacyClaims,
    Ref as TokenRef, ServiceAccountKey, Verified as VerifiedToken,
    ISSUER as SERVICE_ACCOUNT_ISSUER,
};
pub use token::{
    ca_hash, ensure_agent_token, ensure_server_token, random_secret, read_token_file,
    secrets_equal, token_path, write_rotated_server_token, BootstrapToken, JoinToken,
};

/// Everything that can go wrong in the PKI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid service cidr {0:?}")]
    ServiceCidr(String),
    #[error("invalid tls san {0:?}")]
    TlsSan(String),
    #[error("invalid kubeconfig mode {0:?}: expected an octal mode such as 600 or 644")]
    Mode(String),
    #[error("building the tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("join token: {0}")]
    Token(String),
    #[error("invalid {what} certificate signing request: {message}")]
    Csr { what: &'static str, message: String },
    #[error("building the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{0} lock poisoned")]
    Lock(&'static str),
}

/// The PKI files under one directory (`<data-dir>/server/tls`), and what
/// a running server needs to renew them in place (shared by clones).
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    live: std::sync::Arc<live::Live>,
}

impl Pki {
    /// The PKI files under `dir`, whatever exists there (nothing created).
    pub fn at(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
            live: Default::default(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn server_ca_cert(&self) -> PathBuf {
        self.file("server-ca.crt")
    }
    pub fn server_ca_key(&self) -> PathBuf {
        self.file("server-ca.key")
    }
    pub fn client_ca_cert(&self) -> PathBuf {
        self.file("client-ca.crt")
    }
    pub fn client_ca_key(&self) -> PathBuf {
        self.file("client-ca.key")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.file("serving-kube-apiserver.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.file("serving-kube-apiserver.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.file("client-admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.file("client-admin.key")
    }

    /// The TLS configuration of the API server: TLS 1.2 and 1.3, ALPN `h2`
    /// and `http/1.1`, the serving certificate (swapped for new handshakes
    /// when [`Pki::renew_due`] renews it), and optional client certificates
    /// verified against the client CA.
    pub fn server_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, Error> {
        tls::server_config(self)
    }
}

/// The TLS directory of a data directory.
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("tls")
}

/// Creates or reuses the CAs, the serving certificate (for `names`) and the
/// admin client certificate under `dir`; leaves expiring within 90 days
/// are issued again.
pub fn ensure(dir: &Path, names: &ServingNames) -> Result<Pki, Error> {
    files::ensure_private_dir(dir)?;
    let pki = Pki::at(dir);
    pki.remember_names(names);
    let server_ca = issue::ensure_ca(
        &pki.server_ca_cert(),
        &pki.server_ca_key(),
        "nanokube-server-ca",
    )?;
    let client_ca = issue::ensure_ca(
        &pki.client_ca_cert(),
        &pki.client_ca_key(),
        "nanokube-client-ca",
    )?;
    issue::ensure_serving(&pki.serving_cert(), &pki.serving_key(), &server_ca, names)?;
    issue::ensure_admin(&pki.admin_cert(), &pki.admin_key(), &client_ca)?;
    Ok(pki)
}

#[cfg(test)]
mod tests;
