//! Leaf certificates renewed while the server runs, and rotated while it
//! is stopped. A running server remembers what it needs to re-issue in
//! place: the names of its serving certificate, where the admin
//! kubeconfig goes, and the serving certificate new TLS handshakes get
//! (swapped on renewal, so no restart is needed).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::issue::{self, Ca};
use super::{files, kubeconfig, tls, Error, Pki, ServingNames};

/// A leaf certificate kept on disk (the kubelet's certificates are issued
/// in memory at every start and need no rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeafCert {
    /// The API server's serving certificate (server CA).
    ApiServer,
    /// The admin client certificate in the admin kubeconfig (client CA).
    Admin,
}

impl LeafCert {
    pub const ALL: [LeafCert; 2] = [LeafCert::ApiServer, LeafCert::Admin];

    /// The service name on the command line (k3s's names).
    pub fn name(self) -> &'static str {
        match self {
            LeafCert::ApiServer => "api-server",
            LeafCert::Admin => "admin",
        }
    }

    fn files(self, pki: &Pki) -> (PathBuf, PathBuf) {
        match self {
            LeafCert::ApiServer => (pki.serving_cert(), pki.serving_key()),
            LeafCert::Admin => (pki.admin_cert(), pki.admin_key()),
        }
    }
}

/// Where the admin kubeconfig was written, to write it again on renewal.
#[derive(Debug, Clone)]
struct KubeconfigTarget {
    path: PathBuf,
    port: u16,
    mode: u32,
}

/// The running server's part of a [`Pki`] (shared by its clones).
#[derive(Default)]
pub(super) struct Live {
    names: Mutex<Option<ServingNames>>,
    kubeconfig: Mutex<Option<KubeconfigTarget>>,
    serving: RwLock<Option<Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// Hands every new TLS handshake the current serving certificate.
#[derive(Debug)]
pub(super) struct ServingResolver(pub(super) Arc<Live>);

impl ResolvesServerCert for ServingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.serving.read().ok()?.clone()
    }
}

impl Pki {
    pub(super) fn remember_names(&self, names: &ServingNames) {
        if let Ok(mut n) = self.live.names.lock() {
            *n = Some(names.clone());
        }
    }

    pub(super) fn remember_kubeconfig(&self, path: &Path, port: u16, mode: u32) {
        if let Ok(mut k) = self.live.kubeconfig.lock() {
            *k = Some(KubeconfigTarget {
                path: path.to_path_buf(),
                port,
                mode,
            });
        }
    }

    /// Loads the serving certificate and key from disk into what new
    /// handshakes get.
    pub(super) fn load_serving(&self) -> Result<(), Error> {
        let mut chain = tls::load_certs(&self.serving_cert())?;
        chain.truncate(1);
        let key = tls::load_key(&self.serving_key())?;
        let certified = CertifiedKey::from_der(chain, key, &tls::provider())?;
        *self
            .live
            .serving
            .write()
            .map_err(|_| Error::Lock("serving certificate"))? = Some(Arc::new(certified));
        Ok(())
    }

    fn ca_for(&self, leaf: LeafCert) -> Result<Ca, Error> {
        let (cert, key) = match leaf {
            LeafCert::ApiServer => (self.server_ca_cert(), self.server_ca_key()),
            LeafCert::Admin => (self.client_ca_cert(), self.client_ca_key()),
        };
        issue::load_ca(&cert, &key)?.ok_or_else(|| Error::Parse {
            path: cert,
            message: "certificate authority missing: start the server once to create it".into(),
        })
    }

    /// The names the serving certificate must carry: those the server
    /// started with, else those of the current certificate.
    fn serving_names(&self) -> Result<Option<ServingNames>, Error> {
        if let Some(n) = self.live.names.lock().ok().and_then(|n| n.clone()) {
            return Ok(Some(n));
        }
        let path = self.serving_cert();
        Ok(match files::read_optional(&path)? {
            Some(pem) => {
                let info = issue::inspect(&path, &pem)?;
                Some(ServingNames {
                    dns: info.dns,
                    ips: info.ips,
                })
            }
            None => None,
        })
    }

    /// Issues `leaf` again now; `false` when the serving certificate is
    /// missing and its names are unknown (the next start issues it).
    fn reissue(&self, leaf: LeafCert, days: i64) -> Result<bool, Error> {
        let ca = self.ca_for(leaf)?;
        let (cert, key) = leaf.files(self);
        match leaf {
            LeafCert::ApiServer => {
                let Some(names) = self.serving_names()? else {
                    return Ok(false);
                };
                issue::issue_serving(&cert, &key, &ca, &names, days)?;
                // Only a server that built its TLS configuration has a slot.
                if self.live.serving.read().is_ok_and(|s| s.is_some()) {
                    self.load_serving()?;
                }
            }
            LeafCert::Admin => {
                issue::issue_admin(&cert, &key, &ca, days)?;
                let target = self.live.kubeconfig.lock().ok().and_then(|k| k.clone());
                if let Some(t) = target {
                    kubeconfig::write_kubeconfig(self, &t.path, t.port, t.mode)?;
                }
            }
        }
        Ok(true)
    }

    /// Re-issues the leaves that expire within 90 days (or are missing,
    /// broken or lack a name); returns each renewed one with its reason.
    pub fn renew_due(&self) -> Result<Vec<(LeafCert, String)>, Error> {
        let mut renewed = Vec::new();
        for leaf in LeafCert::ALL {
            let ca = self.ca_for(leaf)?;
            let (cert, key) = leaf.files(self);
            let names = match leaf {
                LeafCert::ApiServer => self.live.names.lock().ok().and_then(|n| n.clone()),
                LeafCert::Admin => None,
            };
            if let Some(reason) = issue::leaf_problem(&cert, &key, &ca, names.as_ref())? {
                if self.reissue(leaf, issue::LEAF_VALIDITY_DAYS)? {
                    renewed.push((leaf, reason));
                }
            }
        }
        Ok(renewed)
    }

    /// Issues `leaves` again now (same names and subjects, same CAs);
    /// returns those issued. For a stopped server: `certificate rotate`.
    pub fn rotate(&self, leaves: &[LeafCert]) -> Result<Vec<LeafCert>, Error> {
        let mut done = Vec::new();
        for leaf in leaves {
            if self.reissue(*leaf, issue::LEAF_VALIDITY_DAYS)? {
                done.push(*leaf);
            }
        }
        Ok(done)
    }

    /// Test hook: issues `leaf` valid for `days` only.
    #[cfg(test)]
    pub fn issue_short(&self, leaf: LeafCert, days: i64) -> Result<(), Error> {
        self.reissue(leaf, days).map(|_| ())
    }

    /// Copies every file of the TLS directory into `to` (created 0700,
    /// modes kept); the number of files copied.
    pub fn backup(&self, to: &Path) -> Result<usize, Error> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        files::ensure_private_dir(to)?;
        let mut n = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io("reading", &self.dir))? {
            let entry = entry.map_err(io("reading", &self.dir))?;
            let from = entry.path();
            if !from.is_file() {
                continue;
            }
            let dest = to.join(entry.file_name());
            // fs::copy keeps the permission bits (keys stay 0600).
            std::fs::copy(&from, &dest).map_err(io("copying", &from))?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::tests::test_pki;
    use rustls::pki_types::ServerName;
    use rustls::ClientConfig;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// The serial of the certificate a new handshake is shown.
    async fn served_serial(pki: &Pki, acceptor: &TlsAcceptor) -> String {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = acceptor.clone();
        let server = tokio::spawn(async move { acceptor.accept(server_io).await.is_ok() });
        let config = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(tls::roots(&pki.server_ca_cert()).unwrap())
            .with_no_client_auth();
        let name = ServerName::try_from("kubernetes.default.svc").unwrap();
        let conn = TlsConnector::from(Arc::new(config))
            .connect(name, client_io)
            .await
            .unwrap();
        let der = conn.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert!(server.await.unwrap());
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        cert.raw_serial_as_string()
    }

    fn serial(path: &Path) -> (String, i64) {
        let info = issue::inspect(path, &files::read(path).unwrap()).unwrap();
        (info.serial, info.not_after)
    }

    #[tokio::test]
    async fn renewed_serving_certificate_is_served_without_restart() {
        let (_dir, pki) = test_pki();
        let acceptor = TlsAcceptor::from(pki.server_config().unwrap());
        let first = served_serial(&pki, &acceptor).await;
        assert_eq!(first, serial(&pki.serving_cert()).0);
        assert!(pki.renew_due().unwrap().is_empty(), "nothing is due yet");

        pki.issue_short(LeafCert::ApiServer, 30).unwrap();
        let short = served_serial(&pki, &acceptor).await;
        assert_ne!(short, first);
        let renewed = pki.renew_due().unwrap();
        assert_eq!(
            renewed,
            vec![(LeafCert::ApiServer, "expires within 90 days".to_string())]
        );
        let (now_serial, not_after) = serial(&pki.serving_cert());
        assert_eq!(served_serial(&pki, &acceptor).await, now_serial);
        assert_ne!(now_serial, short);
        assert!(not_after - jiff::Timestamp::now().as_second() > 300 * 86_400);
    }

    #[test]
    fn renewed_admin_certificate_is_written_to_the_kubeconfig() {
        let (dir, pki) = test_pki();
        let path = dir.path().join("kube").join("config.yaml");
        kubeconfig::write_kubeconfig(&pki, &path, 6443, 0o600).unwrap();
        pki.issue_short(LeafCert::Admin, 10).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let renewed = pki.renew_due().unwrap();
        assert_eq!(renewed.len(), 1);
        assert_eq!(renewed[0].0, LeafCert::Admin);
        let after = std::fs::read_to_string(&path).unwrap();
        assert_ne!(before, after);
        use base64::Engine;
        let cert = base64::engine::general_purpose::STANDARD
            .encode(files::read(&pki.admin_cert()).unwrap());
        assert!(after.contains(&cert));
    }

    #[test]
    fn rotation_keeps_names_and_cas_and_backs_up() {
        let (dir, pki) = test_pki();
        let ca = files::read(&pki.server_ca_cert()).unwrap();
        let pem = files::read(&pki.serving_cert()).unwrap();
        let old = issue::inspect(&pki.serving_cert(), &pem).unwrap();
        // A stopped server: a fresh handle knows nothing but the files.
        let stopped = Pki::at(&pki.dir);
        let backup = dir.path().join("tls-1");
        assert!(stopped.backup(&backup).unwrap() >= 6);
        assert_eq!(
            files::read(&backup.join("serving-kube-apiserver.crt")).unwrap(),
            pem
        );
        assert_eq!(
            stopped.rotate(&LeafCert::ALL).unwrap(),
            LeafCert::ALL.to_vec()
        );
        let new_pem = files::read(&pki.serving_cert()).unwrap();
        let new = issue::inspect(&pki.serving_cert(), &new_pem).unwrap();
        assert_ne!(new.serial, old.serial);
        assert_eq!((new.dns, new.ips), (old.dns, old.ips));
        assert_eq!(files::read(&pki.server_ca_cert()).unwrap(), ca);
    }
}
