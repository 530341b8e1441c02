//! PEM text → rustls's DER types, for every TLS client and server built
//! from PEM held in memory (kubeconfigs, a joined node's credentials).

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every PEM block of `text` as (label, DER).
fn blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let (mut rest, mut out) = (text.as_bytes(), Vec::new());
    while let Ok((next, pem)) = x509_parser::pem::parse_x509_pem(rest) {
        out.push((pem.label, pem.contents));
        if next.len() == rest.len() {
            break;
        }
        rest = next;
    }
    out
}

/// The `CERTIFICATE` blocks of `pem`, in order.
pub fn certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    blocks(pem)
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der.into())
        .collect()
}

/// The first private key of `pem`: PKCS#8 (ours), PKCS#1 and SEC1
/// (kubeadm's).
pub fn private_key(pem: &str) -> Option<PrivateKeyDer<'static>> {
    blocks(pem)
        .into_iter()
        .find_map(|(label, der)| match label.as_str() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(der.into())),
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(der.into())),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(der.into())),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_and_keys_are_picked_by_label() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let both = format!("{}{}{}", cert.pem(), key.serialize_pem(), cert.pem());
        assert_eq!(certificates(&both).len(), 2);
        assert!(matches!(private_key(&both), Some(PrivateKeyDer::Pkcs8(_))));
        assert!(certificates("junk").is_empty());
        assert!(private_key(&cert.pem()).is_none());
    }
}
