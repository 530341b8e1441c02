//! Leader election over a coordination.k8s.io Lease, as client-go's
//! leaderelection: only the holder runs the control loops. A single server
//! does not elect at all (nothing to compete with, nothing written); the
//! election runs when several servers share one datastore.
//!
//! Expiry is judged by when *we* last saw the lease change (our clock), not
//! by the holder's renewTime, so clock skew between servers does not matter.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{Client, ClientError, Local, ResourceId};

pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

pub struct Elector {
    client: Local,
    name: String,
    identity: String,
    /// (resourceVersion seen, when we saw it change).
    observed: Option<(String, Instant)>,
}

fn leases() -> ResourceId {
    ResourceId::new("coordination.k8s.io", "v1", "leases")
}

/// MicroTime, as Leases carry it.
fn micro_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

impl Elector {
    pub fn new(client: Local, name: &str, identity: &str) -> Self {
        Elector {
            client,
            name: name.to_string(),
            identity: identity.to_string(),
            observed: None,
        }
    }

    /// Returns once this process holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = self.name, identity = self.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// Renews every [`RETRY_PERIOD`]; returns when leadership is lost (no
    /// successful renewal within [`RENEW_DEADLINE`]).
    pub async fn keep(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "cannot renew the leader lease"),
            }
            if last_renewal.elapsed() > RENEW_DEADLINE {
                return;
            }
        }
    }

    /// One round: true if we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, ClientError> {
        let ns = Some(LEASE_NAMESPACE);
        let now = micro_now();
        let current = match self.client.get(&leases(), ns, &self.name).await {
            Ok(l) => l,
            Err(e) if e.is_not_found() => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                    "spec": {"holderIdentity": self.identity,
                        "leaseDurationSeconds": LEASE_DURATION.as_secs(),
                        "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
                });
                return match self.client.create(&leases(), ns, lease).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.is_already_exists() => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let rv = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let spec = &current["spec"];
        let holder = spec["holderIdentity"].as_str().unwrap_or("");
        let duration = spec["leaseDurationSeconds"]
            .as_u64()
            .map(Duration::from_secs)
            .unwrap_or(LEASE_DURATION);
        if self.observed.as_ref().map(|(v, _)| v) != Some(&rv) {
            self.observed = Some((rv.clone(), Instant::now()));
        }
        let ours = holder == self.identity;
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|(_, seen)| seen.elapsed() > duration);
        if !ours && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let mut lease: Value = (*current).clone();
        let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        lease["spec"]["holderIdentity"] = json!(self.identity);
        lease["spec"]["leaseDurationSeconds"] = json!(LEASE_DURATION.as_secs());
        lease["spec"]["renewTime"] = json!(now);
        if !ours {
            lease["spec"]["acquireTime"] = json!(now);
            lease["spec"]["leaseTransitions"] = json!(transitions + 1);
        }
        match self
            .client
            .update(&leases(), ns, &self.name, lease, None)
            .await
        {
            Ok(updated) => {
                let rv = updated["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                self.observed = Some((rv, Instant::now()));
                Ok(true)
            }
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Api, ServiceNetwork};
    use crate::datastore::{SqliteBackend, SqliteOptions};

    async fn local() -> (Local, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db =
            SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
        let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
            .await
            .unwrap();
        api.bootstrap("127.0.0.1".parse().unwrap(), 6443)
            .await
            .unwrap();
        (Local::new(api), dir)
    }

    #[tokio::test]
    async fn one_candidate_wins_and_the_other_waits_until_the_lease_expires() {
        let (client, _dir) = local().await;
        let mut a = Elector::new(client.clone(), "test-leader", "a");
        let mut b = Elector::new(client.clone(), "test-leader", "b");
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap());
        assert!(a.try_acquire_or_renew().await.unwrap(), "the holder renews");
        assert!(!b.try_acquire_or_renew().await.unwrap());
        // b saw the lease change just now; pretend it saw it long ago.
        if let Some((_, seen)) = b.observed.as_mut() {
            *seen -= LEASE_DURATION + Duration::from_secs(1);
        }
        assert!(
            b.try_acquire_or_renew().await.unwrap(),
            "expired lease taken over"
        );
        let lease = client
            .get(&leases(), Some(LEASE_NAMESPACE), "test-leader")
            .await
            .unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "b");
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
        assert!(
            !a.try_acquire_or_renew().await.unwrap(),
            "the old holder lost it"
        );
    }
}
