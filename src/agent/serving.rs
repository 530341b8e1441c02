//! The kubelet port's TLS for a joined node: its serving certificate
//! (picked per handshake from [`ServingCert`], so a renewal applies
//! without a restart), client certificates required and verified against
//! the cluster's client CA (the API server's kubelet client certificate is
//! signed by it).

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use super::credentials::NodeCredentials;
use super::Error;

/// The kubelet port's certificate, replaceable between handshakes.
#[derive(Debug)]
pub struct ServingCert(RwLock<Arc<CertifiedKey>>);

impl ServingCert {
    pub fn new(key: CertifiedKey) -> ServingCert {
        ServingCert(RwLock::new(Arc::new(key)))
    }

    pub fn replace(&self, key: CertifiedKey) {
        match self.0.write() {
            Ok(mut k) => *k = Arc::new(key),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
        }
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.0.read() {
            Ok(k) => Some(k.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// The kubelet port's TLS: the node's serving certificate (replaceable
/// through the returned [`ServingCert`]); client certificates required and
/// verified against the cluster's client CA (the API server's kubelet
/// client certificate is signed by it). HTTP/1.1 only: exec, attach and
/// port-forward are upgrades.
pub fn serving_tls(
    creds: &NodeCredentials,
) -> Result<(Arc<rustls::ServerConfig>, Arc<ServingCert>), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pki::pem_certificates(&creds.client_ca_pem) {
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("the client CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Tls(format!("the client CA: {e}")))?;
    let serving = Arc::new(ServingCert::new(serving_key(creds)?));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(serving.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), serving))
}

/// The kubelet serving certificate and key, ready to serve.
pub fn serving_key(creds: &NodeCredentials) -> Result<CertifiedKey, Error> {
    let fail = |m: &str| Error::Tls(format!("the kubelet serving certificate: {m}"));
    let chain = crate::pki::pem_certificates(&creds.kubelet_serving.cert_pem);
    if chain.is_empty() {
        return Err(fail("no certificate"));
    }
    let key = crate::pki::pem_private_key(&creds.kubelet_serving.key_pem)
        .ok_or_else(|| fail("no private key"))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| fail(&e.to_string()))?;
    Ok(CertifiedKey::new(chain, signing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::credentials::{CertKey, ClusterInfo};

    #[test]
    fn incomplete_credentials_are_refused() {
        let creds = incomplete_credentials();
        assert!(matches!(serving_tls(&creds), Err(Error::Tls(_))));
        assert!(matches!(serving_key(&creds), Err(Error::Tls(_))));
    }

    /// A CA and PEM leaves signed by it (rcgen, ECDSA P-256).
    struct TestCa {
        pem: String,
        key: rcgen::KeyPair,
    }

    impl TestCa {
        fn new() -> TestCa {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let pem = params.self_signed(&key).unwrap().pem();
            TestCa { pem, key }
        }

        fn leaf(&self, cn: &str, server: bool) -> CertKey {
            let issuer = rcgen::Issuer::from_ca_cert_pem(&self.pem, &self.key).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            params.extended_key_usages = vec![if server {
                rcgen::ExtendedKeyUsagePurpose::ServerAuth
            } else {
                rcgen::ExtendedKeyUsagePurpose::ClientAuth
            }];
            CertKey {
                cert_pem: params.signed_by(&key, &issuer).unwrap().pem(),
                key_pem: key.serialize_pem(),
            }
        }
    }

    /// One handshake against `config`; the server's leaf (DER) or the error.
    async fn handshake(
        config: Arc<rustls::ServerConfig>,
        ca_pem: &str,
        client_cert: Option<&CertKey>,
    ) -> Result<Vec<u8>, String> {
        let (a, b) = tokio::io::duplex(64 << 10);
        let server = tokio::spawn(async move {
            // Held open: only a refused handshake closes it.
            if let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(b).await {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                drop(tls);
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        for c in crate::pki::pem_certificates(ca_pem) {
            roots.add(c).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let client = match client_cert {
            Some(c) => builder
                .with_client_auth_cert(
                    crate::pki::pem_certificates(&c.cert_pem),
                    crate::pki::pem_private_key(&c.key_pem).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let result = match connector.connect(name, a).await {
            Ok(mut tls) => {
                // TLS 1.3: a refused client certificate shows on first read.
                use tokio::io::AsyncReadExt;
                let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                let mut buf = [0u8; 1];
                match tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    tls.read(&mut buf),
                )
                .await
                {
                    Ok(Err(e)) => Err(e.to_string()),
                    _ => Ok(leaf),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        server.abort();
        result
    }

    #[tokio::test]
    async fn kubelet_port_serves_the_renewed_certificate_to_verified_clients() {
        let ca = TestCa::new();
        let first = ca.leaf("node-a@kubelet", true);
        let client = ca.leaf("kube-apiserver-kubelet-client", false);
        let mut creds = incomplete_credentials();
        creds.client_ca_pem = ca.pem.clone();
        creds.kubelet_serving = first.clone();
        let (config, serving) = serving_tls(&creds).unwrap();
        let der = |c: &CertKey| crate::pki::pem_certificates(&c.cert_pem)[0].to_vec();

        let seen = handshake(config.clone(), &ca.pem, Some(&client)).await;
        assert_eq!(seen.unwrap(), der(&first));
        assert!(handshake(config.clone(), &ca.pem, None).await.is_err());

        let renewed = ca.leaf("node-a@kubelet", true);
        creds.kubelet_serving = renewed.clone();
        serving.replace(serving_key(&creds).unwrap());
        let seen = handshake(config, &ca.pem, Some(&client)).await;
        assert_eq!(seen.unwrap(), der(&renewed));
    }

    fn incomplete_credentials() -> NodeCredentials {
        let empty = || CertKey {
            cert_pem: String::new(),
            key_pem: String::new(),
        };
        NodeCredentials {
            server_ca_pem: String::new(),
            client_ca_pem: String::new(),
            kubelet_client: empty(),
            kubelet_serving: empty(),
            proxy_client: empty(),
            cluster: ClusterInfo {
                cluster_cidr: "10.42.0.0/16".into(),
                service_cidr: "10.43.0.0/16".into(),
                cluster_dns: None,
                cluster_domain: "cluster.local".into(),
                flannel_backend: "none".into(),
            },
        }
    }
}
