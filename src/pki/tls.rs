//! What the HTTPS listener needs: the rustls server configuration (ring
//! provider only) and the mapping from a verified client certificate to a
//! Kubernetes user and groups.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::{files, Error, Pki};

/// The one crypto provider of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, as DER.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let text = files::read(path)?;
    let mut rest = text.as_bytes();
    let mut out = Vec::new();
    while let Ok((next, pem)) = x509_parser::pem::parse_x509_pem(rest) {
        if pem.label == "CERTIFICATE" {
            out.push(CertificateDer::from(pem.contents));
        }
        if next.len() == rest.len() {
            break;
        }
        rest = next;
    }
    if out.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            message: "no certificate found".into(),
        });
    }
    Ok(out)
}

/// A PKCS#8 PEM private key, as DER.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let text = files::read(path)?;
    let key = rcgen::KeyPair::from_pem(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: format!("invalid private key: {e}"),
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    )))
}

/// A root store holding the certificates of one PEM file.
pub fn roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, the serving certificate,
/// and client certificates optional but verified against the client CA.
pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&pki.client_ca_cert())?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    pki.load_serving()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(super::live::ServingResolver(pki.live.clone())));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The Kubernetes identity of a client certificate: user from the CN,
/// groups from the O attributes (as kube-apiserver's x509 authenticator).
#[allow(dead_code)] // used by the HTTPS listener (API-server issue)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

/// Maps the chain a client presented (already verified by the server
/// config's verifier, leaf first) to its identity; `None` without a
/// certificate or without a CN.
#[allow(dead_code)] // used by the HTTPS listener (API-server issue)
pub fn client_identity(chain: &[CertificateDer<'_>]) -> Option<ClientIdentity> {
    let leaf = chain.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let text =
        |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
    let user = cert.subject().iter_common_name().next().and_then(text)?;
    if user.is_empty() {
        return None;
    }
    let groups = cert
        .subject()
        .iter_organization()
        .filter_map(text)
        .collect();
    Some(ClientIdentity { user, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::ClientConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use crate::pki::tests::test_pki;

    fn client_config(pki: &Pki, with_cert: bool) -> Arc<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&pki.server_ca_cert()).unwrap());
        let mut config = if with_cert {
            builder
                .with_client_auth_cert(
                    load_certs(&pki.admin_cert()).unwrap(),
                    load_key(&pki.admin_key()).unwrap(),
                )
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    /// Handshakes over an in-memory pipe; returns what the server saw.
    async fn handshake(pki: &Pki, with_cert: bool) -> (Option<ClientIdentity>, Option<Vec<u8>>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(pki.server_config().unwrap());
        let connector = TlsConnector::from(client_config(pki, with_cert));
        let server = tokio::spawn(async move {
            let mut tls = acceptor.accept(server_io).await.unwrap();
            let (_, conn) = tls.get_ref();
            let id = conn.peer_certificates().and_then(client_identity);
            let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.unwrap();
            tls.write_all(b"pong").await.unwrap();
            tls.flush().await.unwrap();
            (id, alpn, buf)
        });
        let name = ServerName::try_from("kubernetes.default.svc").unwrap();
        let mut tls = connector.connect(name, client_io).await.unwrap();
        tls.write_all(b"ping").await.unwrap();
        tls.flush().await.unwrap();
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        let (id, alpn, got) = server.await.unwrap();
        assert_eq!(&got, b"ping");
        (id, alpn)
    }

    #[tokio::test]
    async fn admin_cert_is_seen_as_system_admin() {
        let (_dir, pki) = test_pki();
        let (id, alpn) = handshake(&pki, true).await;
        assert_eq!(
            id,
            Some(ClientIdentity {
                user: "system:admin".into(),
                groups: vec!["system:masters".into()],
            })
        );
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    }

    #[tokio::test]
    async fn handshake_without_client_cert_completes_anonymously() {
        let (_dir, pki) = test_pki();
        let (id, _) = handshake(&pki, false).await;
        assert_eq!(id, None);
    }

    #[test]
    fn no_chain_means_no_identity() {
        assert_eq!(client_identity(&[]), None);
        assert_eq!(
            client_identity(&[CertificateDer::from(vec![1, 2, 3])]),
            None
        );
    }
}

/// Accepts any server certificate; handshake signatures are still checked,
/// so the peer holds the key of what it showed. For an agent's first fetch
/// of `/cacerts` (checked against the join token's hash afterwards) and for
/// HTTPS probes, which upstream runs with InsecureSkipVerify.
#[derive(Debug)]
pub struct AnyServerCert(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
