//! One exchange with the server: three ECDSA P-256 keys made here, their
//! signing requests sent to `node-credentials`, the signed certificates
//! checked and put together with the keys.

use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

use super::store::{cert_info, key_matches};
use super::{wire, CertKey, Error, NodeCredentials};
use crate::client::{ClientError, Remote, RemoteConfig};

/// How the request authenticates.
pub enum Auth<'a> {
    /// A join or bootstrap token (its secret part).
    Token(&'a str),
    /// The node's current kubelet client certificate.
    Cert(&'a CertKey),
}

/// What one exchange needs.
pub struct Exchange<'a> {
    pub server: &'a str,
    /// The server CA already trusted (checked against the token, or stored).
    pub server_ca_pem: &'a str,
    pub auth: Auth<'a>,
    pub node_name: &'a str,
    pub password: &'a str,
    pub addresses: &'a [IpAddr],
}

struct Pending {
    key_pem: String,
    csr_pem: String,
}

fn request(cn: &str) -> Result<Pending, Error> {
    let keys = |e: rcgen::Error| Error::Keys(e.to_string());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(keys)?;
    let mut params = CertificateParams::default();
    // The server decides the subject; this one only says what is meant.
    params.distinguished_name.push(DnType::CommonName, cn);
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(keys)?;
    Ok(Pending {
        key_pem: key.serialize_pem(),
        csr_pem,
    })
}

fn refused(e: ClientError) -> Error {
    match e.code() {
        Some(401) => Error::Unauthorized,
        Some(403) | Some(400) | Some(422) => Error::Refused(e.to_string()),
        _ => Error::Server(e.to_string()),
    }
}

/// The signed certificate for `pending`, checked to carry its key.
fn pair(what: &str, cert_pem: String, pending: Pending) -> Result<CertKey, Error> {
    let info = cert_info(&cert_pem)
        .ok_or_else(|| Error::Answer(format!("the {what} certificate is unreadable")))?;
    if !key_matches(&info, &pending.key_pem) {
        return Err(Error::Answer(format!(
            "the {what} certificate is not for the key sent"
        )));
    }
    Ok(CertKey {
        cert_pem,
        key_pem: pending.key_pem,
    })
}

/// Asks the server for new credentials.
pub async fn obtain(x: Exchange<'_>) -> Result<NodeCredentials, Error> {
    let (token, cert) = match &x.auth {
        Auth::Token(t) => (Some(t.to_string()), None),
        Auth::Cert(c) => (None, Some(*c)),
    };
    let client = Remote::new(RemoteConfig {
        server: x.server.to_string(),
        ca_pem: x.server_ca_pem.to_string(),
        client_cert_pem: cert.map(|c| c.cert_pem.clone()),
        client_key_pem: cert.map(|c| c.key_pem.clone()),
        token,
    })
    .map_err(|e| Error::Server(e.to_string()))?;
    let kubelet_client = request(&format!("system:node:{}", x.node_name))?;
    let kubelet_serving = request(x.node_name)?;
    let proxy_client = request(crate::pki::PROXY_CLIENT_CN)?;
    let ask = wire::Ask {
        node_name: x.node_name.to_string(),
        node_password: x.password.to_string(),
        addresses: x.addresses.to_vec(),
        kubelet_client_csr: kubelet_client.csr_pem.clone(),
        kubelet_serving_csr: kubelet_serving.csr_pem.clone(),
        proxy_client_csr: proxy_client.csr_pem.clone(),
    };
    let body = serde_json::to_value(&ask).map_err(|e| Error::Answer(e.to_string()))?;
    let answer = client.post_json(wire::PATH, &body).await.map_err(refused)?;
    let answer: wire::Answer =
        serde_json::from_value(answer).map_err(|e| Error::Answer(e.to_string()))?;
    // The CA we trusted is the one the server signs with; another one
    // would mean a server that is not the cluster's.
    if answer.server_ca.trim() != x.server_ca_pem.trim() {
        return Err(Error::Answer(
            "the server CA in the answer is not the one trusted".into(),
        ));
    }
    Ok(NodeCredentials {
        server_ca_pem: answer.server_ca,
        client_ca_pem: answer.client_ca,
        kubelet_client: pair("kubelet client", answer.kubelet_client_cert, kubelet_client)?,
        kubelet_serving: pair(
            "kubelet serving",
            answer.kubelet_serving_cert,
            kubelet_serving,
        )?,
        proxy_client: pair("proxy client", answer.proxy_client_cert, proxy_client)?,
        cluster: answer.cluster,
    })
}
