//! TLS of HTTPS probes and hooks.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;

/// The TLS settings of HTTPS probes and hooks. Upstream's prober sets
/// `InsecureSkipVerify`: a pod's serving certificate is usually self-signed
/// or issued for a name the kubelet does not dial, so the certificate is
/// NOT verified. Handshake signatures still are (the peer holds the key of
/// the certificate it showed).
pub(super) fn insecure_tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::pki::AnyServerCert(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}
