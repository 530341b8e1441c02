//! The node's credentials on disk, under `<agent-dir>/credentials/`
//! (keys 0600, the directory 0700), the node password at
//! `<agent-dir>/node-password` (0600), and what a stored certificate says
//! about itself (validity, names) for the renewal decisions.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{CertKey, ClusterInfo, Error, NodeCredentials};

const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
const PASSWORD_FILE: &str = "node-password";
const PASSWORD_BYTES: usize = 32;
const CLUSTER_FILE: &str = "cluster.json";
const SERVER_CA: &str = "server-ca.crt";
const CLIENT_CA: &str = "client-ca.crt";
/// (certificate, key) file stems of the three leaves.
const KUBELET_CLIENT: &str = "kubelet-client";
const KUBELET_SERVING: &str = "kubelet-serving";
const PROXY_CLIENT: &str = "proxy-client";

/// `<agent-dir>/credentials`.
pub fn dir(agent_dir: &Path) -> PathBuf {
    agent_dir.join("credentials")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// The node password, created once (256 random bits, hex) and kept.
pub fn password(agent_dir: &Path) -> Result<String, Error> {
    let path = agent_dir.join(PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {
            return Err(Error::Stored {
                path: path.display().to_string(),
                message: "the node password file is empty; remove it and delete this node's password Secret on the server to re-join".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("reading", &path)(e)),
    }
    let mut bytes = [0u8; PASSWORD_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Keys("no random bytes for the node password".into()))?;
    let password = hex::encode(bytes);
    crate::pki::ensure_private_dir(agent_dir)?;
    crate::pki::write_atomic(&path, password.as_bytes(), KEY_MODE)?;
    tracing::info!(path = %path.display(), "created the node password");
    Ok(password)
}

fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", path)(e)),
    }
}

fn load_pair(dir: &Path, stem: &str) -> Result<Option<CertKey>, Error> {
    let cert = read_optional(&dir.join(format!("{stem}.crt")))?;
    let key = read_optional(&dir.join(format!("{stem}.key")))?;
    Ok(cert
        .zip(key)
        .map(|(cert_pem, key_pem)| CertKey { cert_pem, key_pem }))
}

/// The stored credentials; `None` when any part is missing.
pub fn load(dir: &Path) -> Result<Option<NodeCredentials>, Error> {
    let cluster_path = dir.join(CLUSTER_FILE);
    let parts = (
        read_optional(&dir.join(SERVER_CA))?,
        read_optional(&dir.join(CLIENT_CA))?,
        load_pair(dir, KUBELET_CLIENT)?,
        load_pair(dir, KUBELET_SERVING)?,
        load_pair(dir, PROXY_CLIENT)?,
        read_optional(&cluster_path)?,
    );
    let (Some(server_ca_pem), Some(client_ca_pem), Some(kc), Some(ks), Some(pc), Some(cluster)) =
        parts
    else {
        return Ok(None);
    };
    let cluster: ClusterInfo = serde_json::from_str(&cluster).map_err(|e| Error::Stored {
        path: cluster_path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(Some(NodeCredentials {
        server_ca_pem,
        client_ca_pem,
        kubelet_client: kc,
        kubelet_serving: ks,
        proxy_client: pc,
        cluster,
    }))
}

/// Writes every file; keys first, so a crash never leaves a certificate
/// whose key is the old one's without the mismatch being seen at load.
pub fn save(dir: &Path, creds: &NodeCredentials) -> Result<(), Error> {
    crate::pki::ensure_private_dir(dir)?;
    let pairs = [
        (KUBELET_CLIENT, &creds.kubelet_client),
        (KUBELET_SERVING, &creds.kubelet_serving),
        (PROXY_CLIENT, &creds.proxy_client),
    ];
    for (stem, pair) in pairs {
        let key = dir.join(format!("{stem}.key"));
        crate::pki::write_atomic(&key, pair.key_pem.as_bytes(), KEY_MODE)?;
        let cert = dir.join(format!("{stem}.crt"));
        crate::pki::write_atomic(&cert, pair.cert_pem.as_bytes(), CERT_MODE)?;
    }
    let ca = [
        (SERVER_CA, &creds.server_ca_pem),
        (CLIENT_CA, &creds.client_ca_pem),
    ];
    for (name, pem) in ca {
        crate::pki::write_atomic(&dir.join(name), pem.as_bytes(), CERT_MODE)?;
    }
    let cluster = serde_json::to_vec_pretty(&creds.cluster).map_err(|e| Error::Stored {
        path: dir.join(CLUSTER_FILE).display().to_string(),
        message: e.to_string(),
    })?;
    crate::pki::write_atomic(&dir.join(CLUSTER_FILE), &cluster, CERT_MODE)?;
    Ok(())
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub common_name: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub public_key: Vec<u8>,
}

/// Parses the first certificate of a PEM text.
pub fn cert_info(pem: &str) -> Option<CertInfo> {
    let c = crate::pki::inspect_certificate(Path::new("stored certificate"), pem).ok()?;
    Some(CertInfo {
        common_name: c.subject_cn.unwrap_or_default(),
        not_before: c.not_before,
        not_after: c.not_after,
        dns: c.dns,
        ips: c.ips,
        public_key: c.public_key,
    })
}

/// Whether `key_pem` is the private key of `cert`.
pub fn key_matches(cert: &CertInfo, key_pem: &str) -> bool {
    use rcgen::PublicKeyData;
    rcgen::KeyPair::from_pem(key_pem).is_ok_and(|k| k.subject_public_key_info() == cert.public_key)
}
