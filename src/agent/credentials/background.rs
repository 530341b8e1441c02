//! The background renewal: sleeps until the first certificate is due
//! (a third of its lifetime before the end, at most 90 days), renews with
//! the current client certificate, stores and publishes the result, and
//! retries with back-off when the server cannot be reached.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::obtain::{self, Auth, Exchange};
use super::{now, renew, store, Error, NodeCredentials};

/// What the renewal task needs.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub server: String,
    pub node_name: String,
    pub addresses: Vec<IpAddr>,
    pub agent_dir: PathBuf,
}

const RETRY_FIRST: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// Due times are looked at again at least this often (suspend, clock jumps).
const RECHECK: i64 = 3600;

/// Renews `current` in the background when its certificates are due,
/// authenticating with the client certificate; every renewal is stored and
/// sent on the returned channel. The task ends when every receiver is gone.
pub fn spawn_renewal(r: Renewal, current: NodeCredentials) -> watch::Receiver<NodeCredentials> {
    let (tx, rx) = watch::channel(current);
    tokio::spawn(async move {
        let mut retry = RETRY_FIRST;
        loop {
            let creds = tx.borrow().clone();
            let left = renew::due_at(&creds).map_or(0, |due| due - now());
            if left > 0 {
                let nap = Duration::from_secs(left.min(RECHECK) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(nap) => continue,
                    _ = tx.closed() => return,
                }
            }
            match renew_now(&r, &creds).await {
                Ok(new) => {
                    tracing::info!(node = %r.node_name, "renewed the node credentials");
                    retry = RETRY_FIRST;
                    if tx.send(new).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?retry, "renewing the node credentials failed");
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = tx.closed() => return,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    });
    rx
}

/// One renewal with the current client certificate, stored.
pub async fn renew_now(r: &Renewal, creds: &NodeCredentials) -> Result<NodeCredentials, Error> {
    let password = store::password(&r.agent_dir)?;
    let new = obtain::obtain(Exchange {
        server: &r.server,
        server_ca_pem: &creds.server_ca_pem,
        auth: Auth::Cert(&creds.kubelet_client),
        node_name: &r.node_name,
        password: &password,
        addresses: &r.addresses,
    })
    .await?;
    store::save(&store::dir(&r.agent_dir), &new)?;
    Ok(new)
}
