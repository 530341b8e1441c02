//! The certificates of a joining node, signed from the node's own
//! certificate signing requests (k3s's `/v1-k3s/client-kubelet.crt` and
//! friends): the keys never leave the node; the server only signs.
//!
//! The request proves possession of each key (its signature is checked)
//! but says nothing else the server trusts: subject, names and usages are
//! the server's choice, as upstream's CSR signers decide them:
//!
//! - kubelet client: `CN=system:node:<name>, O=system:nodes`, client CA,
//!   client auth (what the Node authorizer recognises);
//! - kubelet serving: the node name, its addresses and loopback, server CA,
//!   server auth (what the API server verifies when it dials the kubelet);
//! - proxy client: `CN=system:kube-proxy`, client CA, client auth.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::{files, kubelet, Error, Pki};

/// The service proxy's and cluster DNS's user (upstream binds
/// `system:node-proxier` to it).
pub const PROXY_CLIENT_CN: &str = "system:kube-proxy";
/// The kubelet client certificate's user prefix and group.
pub const NODE_USER_PREFIX: &str = "system:node:";
pub const NODES_GROUP: &str = "system:nodes";

/// How long node certificates last; agents renew them well before.
pub const NODE_CERT_DAYS: i64 = 365;

/// The PEM certificate signing requests of one node.
#[derive(Debug, Clone, Copy)]
pub struct NodeCsrs<'a> {
    pub kubelet_client: &'a str,
    pub kubelet_serving: &'a str,
    pub proxy_client: &'a str,
}

/// What the server hands a node: its certificates (PEM) and both CAs.
#[derive(Debug, Clone)]
pub struct SignedNode {
    pub kubelet_client: String,
    pub kubelet_serving: String,
    pub proxy_client: String,
    pub server_ca: String,
    pub client_ca: String,
}

/// One CA loaded from its files.
struct Signer {
    cert_pem: String,
    key: KeyPair,
}

impl Signer {
    fn load(cert: &Path, key: &Path) -> Result<Signer, Error> {
        let cert_pem = files::read(cert)?;
        let key_pem = files::read(key)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::Parse {
            path: key.to_path_buf(),
            message: format!("invalid private key: {e}"),
        })?;
        Ok(Signer { cert_pem, key })
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, Error> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| Error::Csr {
            what: "ca",
            message: e.to_string(),
        })
    }
}

/// The request's public key, its signature checked; everything else in
/// the request is ignored.
fn parse_csr(what: &'static str, pem: &str) -> Result<CertificateSigningRequestParams, Error> {
    CertificateSigningRequestParams::from_pem(pem).map_err(|e| Error::Csr {
        what,
        message: e.to_string(),
    })
}

/// Signs `csr` with `signer` under the server's own parameters.
fn sign(
    what: &'static str,
    csr: &str,
    signer: &Signer,
    subject: &[(DnType, &str)],
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
) -> Result<String, Error> {
    let mut request = parse_csr(what, csr)?;
    let generate = |source| Error::Generate { what, source };
    let mut params = CertificateParams::new(sans).map_err(generate)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in subject {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    // A little slack for clocks that differ between machines.
    let start = OffsetDateTime::now_utc() - Duration::minutes(5);
    params.not_before = start;
    params.not_after = start + Duration::days(NODE_CERT_DAYS);
    request.params = params;
    let cert = request.signed_by(&signer.issuer()?).map_err(generate)?;
    Ok(cert.pem())
}

impl Pki {
    /// Signs the three certificates of node `node_name` (a name the caller
    /// has already validated) for `addresses`.
    pub fn sign_node(
        &self,
        node_name: &str,
        addresses: &[IpAddr],
        csrs: &NodeCsrs<'_>,
    ) -> Result<SignedNode, Error> {
        // Every request is checked before anything is signed.
        parse_csr("kubelet client", csrs.kubelet_client)?;
        parse_csr("kubelet serving", csrs.kubelet_serving)?;
        parse_csr("proxy client", csrs.proxy_client)?;
        let client_ca = Signer::load(&self.client_ca_cert(), &self.client_ca_key())?;
        let server_ca = Signer::load(&self.server_ca_cert(), &self.server_ca_key())?;
        let user = format!("{NODE_USER_PREFIX}{node_name}");
        let kubelet_client = sign(
            "kubelet client",
            csrs.kubelet_client,
            &client_ca,
            &[
                (DnType::OrganizationName, NODES_GROUP),
                (DnType::CommonName, &user),
            ],
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let serving_cn = format!("{node_name}@kubelet");
        let kubelet_serving = sign(
            "kubelet serving",
            csrs.kubelet_serving,
            &server_ca,
            &[(DnType::CommonName, &serving_cn)],
            kubelet::serving_sans(node_name, addresses),
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let proxy_client = sign(
            "proxy client",
            csrs.proxy_client,
            &client_ca,
            &[(DnType::CommonName, PROXY_CLIENT_CN)],
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(SignedNode {
            kubelet_client,
            kubelet_serving,
            proxy_client,
            server_ca: server_ca.cert_pem,
            client_ca: client_ca.cert_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::issue::inspect;
    use rcgen::{PublicKeyData, PKCS_ECDSA_P256_SHA256};

    use crate::pki::tests::test_pki;

    /// A CSR asking for far more than it may get.
    fn greedy_csr() -> (KeyPair, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        (key, csr)
    }

    #[test]
    fn signs_with_the_servers_subjects_names_and_usages() {
        let (_dir, pki) = test_pki();
        let (k1, c1) = greedy_csr();
        let (k2, c2) = greedy_csr();
        let (_k3, c3) = greedy_csr();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let signed = pki
            .sign_node(
                "node-a",
                &[ip],
                &NodeCsrs {
                    kubelet_client: &c1,
                    kubelet_serving: &c2,
                    proxy_client: &c3,
                },
            )
            .unwrap();
        let p = Path::new("t");
        let client = inspect(p, &signed.kubelet_client).unwrap();
        assert_eq!(client.subject_cn.as_deref(), Some("system:node:node-a"));
        assert_eq!(client.subject_o, ["system:nodes"]);
        assert!(client.client_auth && !client.server_auth);
        assert!(client.dns.is_empty());
        assert_eq!(client.public_key, k1.subject_public_key_info());
        let client_ca = inspect(p, &signed.client_ca).unwrap();
        assert_eq!(client.issuer, client_ca.subject);

        let serving = inspect(p, &signed.kubelet_serving).unwrap();
        assert!(serving.server_auth && !serving.client_auth);
        assert!(serving.dns.contains("node-a") && !serving.dns.contains("evil.example"));
        assert!(serving.ips.contains(&ip));
        assert_eq!(serving.public_key, k2.subject_public_key_info());
        let server_ca = inspect(p, &signed.server_ca).unwrap();
        assert_eq!(serving.issuer, server_ca.subject);
        let days = (serving.not_after - OffsetDateTime::now_utc().unix_timestamp()) / 86400;
        assert!(
            (NODE_CERT_DAYS - 1..=NODE_CERT_DAYS).contains(&days),
            "{days}"
        );

        let proxy = inspect(p, &signed.proxy_client).unwrap();
        assert_eq!(proxy.subject_cn.as_deref(), Some(PROXY_CLIENT_CN));
        assert!(proxy.subject_o.is_empty());
        assert_eq!(proxy.issuer, client_ca.subject);
    }

    #[test]
    fn garbage_or_forged_requests_are_refused() {
        let (_dir, pki) = test_pki();
        let (_k, good) = greedy_csr();
        let bad = |csrs: NodeCsrs<'_>| match pki.sign_node("n", &[], &csrs) {
            Err(Error::Csr { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        let garbage =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(
            bad(NodeCsrs {
                kubelet_client: &good,
                kubelet_serving: garbage,
                proxy_client: &good,
            }),
            "kubelet serving"
        );
        // A request whose signature does not match its key.
        let mut forged = good.clone().into_bytes();
        let at = forged.len() - 40;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(
            bad(NodeCsrs {
                kubelet_client: &forged,
                kubelet_serving: &good,
                proxy_client: &good,
            }),
            "kubelet client"
        );
        assert_eq!(
            bad(NodeCsrs {
                kubelet_client: &good,
                kubelet_serving: &good,
                proxy_client: "",
            }),
            "proxy client"
        );
    }
}
