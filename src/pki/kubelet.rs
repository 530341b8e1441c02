//! The certificates between the API server and the kubelets' HTTPS port
//! (logs, exec, attach, port-forward), as upstream sets them up:
//!
//! - the kubelet serves with a certificate for its node name and addresses,
//!   signed by the server CA, and requires client certificates signed by
//!   the client CA;
//! - the API server presents `kube-apiserver-kubelet-client` (group
//!   `system:masters`), signed by the client CA, and verifies the kubelet
//!   against the server CA.
//!
//! Both leaves are issued in memory at start by whoever holds the CA keys
//! (the server process): a fresh leaf each start never lacks a new node
//! address and never expires unnoticed, and no key of it touches the disk.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use time::{Duration, OffsetDateTime};

use super::{files, tls, Error, Pki};

/// The user the API server is when it calls a kubelet.
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Its group: kubelets let this group (or that user) in, nobody else.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

const LEAF_DAYS: i64 = 365;

/// One certificate and key, issued in memory.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> Error {
    move |source| Error::Generate { what, source }
}

/// Signs a leaf with the CA whose files are `ca_cert`/`ca_key`.
fn issue(
    ca_cert: &Path,
    ca_key: &Path,
    what: &'static str,
    mut params: CertificateParams,
) -> Result<Leaf, Error> {
    let ca_pem = files::read(ca_cert)?;
    let ca_key_pem = files::read(ca_key)?;
    let ca_key_pair = KeyPair::from_pem(&ca_key_pem).map_err(|e| Error::Parse {
        path: ca_key.to_path_buf(),
        message: format!("invalid private key: {e}"),
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key_pair).map_err(|e| Error::Parse {
        path: ca_cert.to_path_buf(),
        message: e.to_string(),
    })?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate(what))?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    // A little slack for clocks that differ between machines.
    let start = OffsetDateTime::now_utc() - Duration::minutes(5);
    params.not_before = start;
    params.not_after = start + Duration::days(LEAF_DAYS);
    let cert = params.signed_by(&key, &issuer).map_err(generate(what))?;
    Ok(Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// The subject alternative names of a kubelet's serving certificate.
pub(super) fn serving_sans(node_name: &str, ips: &[IpAddr]) -> Vec<String> {
    let mut sans = vec![node_name.to_ascii_lowercase(), "localhost".to_string()];
    let mut addrs: Vec<IpAddr> = ips.to_vec();
    addrs.push(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    addrs.sort();
    addrs.dedup();
    sans.extend(addrs.iter().map(IpAddr::to_string));
    sans.retain(|s| !s.is_empty());
    sans.dedup();
    sans
}

/// The kubelet's TLS configuration: a serving certificate for `node_name`,
/// `ips` and loopback signed by the server CA in `tls_dir`; client
/// certificates required and verified against the client CA (who may do
/// what is the kubelet server's decision, see [`KUBELET_CLIENT_CN`]).
/// HTTP/1.1 only: exec, attach and port-forward are HTTP/1.1 upgrades.
pub fn kubelet_serving_tls(
    tls_dir: &Path,
    node_name: &str,
    ips: &[IpAddr],
) -> Result<Arc<ServerConfig>, Error> {
    let pki = Pki::at(tls_dir);
    let what = "the kubelet serving certificate";
    let mut params =
        CertificateParams::new(serving_sans(node_name, ips)).map_err(generate(what))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{node_name}@kubelet"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = issue(&pki.server_ca_cert(), &pki.server_ca_key(), what, params)?;
    let provider = tls::provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(tls::roots(&pki.client_ca_cert())?),
        provider.clone(),
    )
    .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain, leaf.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Pki {
    /// The API server's TLS client configuration towards kubelets: the
    /// kubelet client certificate (issued now by the client CA) and the
    /// server CA as the only root. HTTP/1.1 (upgrades).
    pub fn kubelet_client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let what = "the kubelet client certificate";
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, KUBELET_CLIENT_GROUP);
        params
            .distinguished_name
            .push(DnType::CommonName, KUBELET_CLIENT_CN);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = issue(&self.client_ca_cert(), &self.client_ca_key(), what, params)?;
        let mut config = ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(tls::roots(&self.server_ca_cert())?)
            .with_client_auth_cert(leaf.chain, leaf.key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{client_identity, ClientIdentity};
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use crate::pki::tests::test_pki;

    #[test]
    fn sans_hold_name_addresses_and_loopback() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let sans = serving_sans("Node-1", &[ip, ip]);
        assert_eq!(sans, vec!["node-1", "localhost", "10.0.0.5", "127.0.0.1"]);
    }

    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> Result<Option<ClientIdentity>, String> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(server);
        let connector = TlsConnector::from(client);
        let server = tokio::spawn(async move {
            let mut tls = acceptor
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            let id = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(client_identity);
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(id)
        });
        let name = ServerName::try_from(name.to_string()).unwrap();
        match connector.connect(name, client_io).await {
            Ok(mut tls) => {
                // A client refused late (TLS 1.3) fails here, not in connect.
                let mut buf = [0u8; 4];
                let talk = async {
                    tls.write_all(b"ping").await?;
                    tls.flush().await?;
                    tls.read_exact(&mut buf).await
                };
                if let Err(e) = talk.await {
                    return Err(e.to_string());
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        server.await.unwrap()
    }

    #[tokio::test]
    async fn api_server_reaches_kubelet_by_ip_with_its_identity() {
        let (_dir, pki) = test_pki();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let server = kubelet_serving_tls(&pki.dir, "node-1", &[ip]).unwrap();
        let client = pki.kubelet_client_config().unwrap();
        for name in ["10.0.0.5", "127.0.0.1", "node-1"] {
            let id = handshake(server.clone(), client.clone(), name)
                .await
                .unwrap();
            assert_eq!(
                id,
                Some(ClientIdentity {
                    user: KUBELET_CLIENT_CN.into(),
                    groups: vec![KUBELET_CLIENT_GROUP.into()],
                })
            );
        }
        // A name the certificate does not carry is refused by the client.
        assert!(handshake(server, client, "10.9.9.9").await.is_err());
    }

    #[tokio::test]
    async fn kubelet_requires_a_client_certificate() {
        let (_dir, pki) = test_pki();
        let server = kubelet_serving_tls(&pki.dir, "node-1", &[]).unwrap();
        let anonymous = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(tls::roots(&pki.server_ca_cert()).unwrap())
            .with_no_client_auth();
        let res = handshake(server, Arc::new(anonymous), "node-1").await;
        assert!(res.is_err(), "{res:?}");
    }
}
