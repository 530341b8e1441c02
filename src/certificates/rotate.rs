//! `nanokube certificate rotate`: on a stopped server, back up the TLS
//! directory and issue the chosen leaves again (same names, same CAs). The
//! next start writes the admin kubeconfig from the new admin certificate.

use std::io::Write;
use std::path::Path;

use crate::pki::{self, LeafCert, Pki};

use super::{Error, Service};

/// Refuses when a server answers on the data dir's datastore socket.
fn refuse_running(data_dir: &Path) -> Result<(), Error> {
    let sock = data_dir.join("server").join("etcd.sock");
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        return Err(Error::ServerRunning(sock));
    }
    Ok(())
}

/// The leaves `services` name (all of them when empty).
fn leaves(services: &[Service]) -> Vec<LeafCert> {
    let mut out: Vec<LeafCert> = if services.is_empty() {
        LeafCert::ALL.to_vec()
    } else {
        services
            .iter()
            .filter_map(|s| match s {
                Service::ApiServer => Some(LeafCert::ApiServer),
                Service::Admin => Some(LeafCert::Admin),
                Service::Kubelet => None,
            })
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

pub fn run(data_dir: &Path, services: &[Service]) -> Result<(), Error> {
    refuse_running(data_dir)?;
    let dir = pki::tls_dir(data_dir);
    let tls = Pki::at(&dir);
    if !tls.server_ca_cert().is_file() || !tls.client_ca_cert().is_file() {
        return Err(Error::NoPki(dir));
    }
    let stamp = jiff::Timestamp::now().as_second();
    let backup = data_dir.join("server").join(format!("tls-{stamp}"));
    let copied = tls.backup(&backup)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "backed up {copied} files of {} to {}",
        dir.display(),
        backup.display()
    );
    let wanted = leaves(services);
    let done = tls.rotate(&wanted)?;
    for leaf in &wanted {
        if done.contains(leaf) {
            tracing::info!(service = leaf.name(), "rotated certificate");
            let _ = writeln!(out, "rotated {}", leaf.name());
        } else {
            let _ = writeln!(
                out,
                "{}: no certificate yet, the next start issues it",
                leaf.name()
            );
        }
    }
    if services.is_empty() || services.contains(&Service::Kubelet) {
        let _ = writeln!(
            out,
            "kubelet: its certificates are issued anew at every start"
        );
    }
    let _ = writeln!(
        out,
        "start the server to use the new certificates (certificate authorities unchanged)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_every_leaf_and_kubelet_is_not_on_disk() {
        assert_eq!(leaves(&[]), LeafCert::ALL.to_vec());
        assert_eq!(leaves(&[Service::Kubelet]), Vec::<LeafCert>::new());
        assert_eq!(
            leaves(&[Service::Admin, Service::ApiServer, Service::Admin]),
            vec![LeafCert::ApiServer, LeafCert::Admin]
        );
    }

    #[test]
    fn refuses_without_pki() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("start the server once"), "{err}");
    }
}
