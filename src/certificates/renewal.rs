//! The server's daily renewal of leaf certificates: what expires within
//! 90 days is issued again in place. New TLS connections to the API server
//! get a renewed serving certificate at once (the TLS configuration asks
//! the PKI for it at every handshake); a renewed admin certificate is
//! written to the admin kubeconfig.

use std::path::PathBuf;
use std::time::Duration;

use crate::pki::Pki;

/// How often the certificates are looked at.
const EVERY: Duration = Duration::from_secs(24 * 3600);
/// The kubelet's in-memory certificates live 365 days from start; past
/// this uptime a restart is needed to renew them.
const KUBELET_RESTART_AFTER: Duration = Duration::from_secs((365 - 90) * 24 * 3600);

/// Started by the server (inside its runtime): renews leaf certificates
/// that expire soon, once a day (the start itself renewed what was due).
pub fn spawn_renewal(pki: Pki, data_dir: PathBuf) {
    tracing::info!(data_dir = %data_dir.display(), "certificate renewal: daily check");
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(started + EVERY, EVERY);
        loop {
            tick.tick().await;
            let p = pki.clone();
            match tokio::task::spawn_blocking(move || p.renew_due()).await {
                Ok(Ok(renewed)) => {
                    for (leaf, reason) in renewed {
                        tracing::info!(service = leaf.name(), %reason, "renewed certificate");
                    }
                }
                Ok(Err(err)) => tracing::warn!(%err, "certificate renewal failed"),
                Err(err) => tracing::warn!(%err, "certificate renewal task failed"),
            }
            if started.elapsed() > KUBELET_RESTART_AFTER {
                tracing::warn!(
                    "the kubelet certificates issued at start expire within 90 days: restart the server to renew them"
                );
            }
        }
    });
}
