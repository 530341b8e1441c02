//! The node Lease `kube-node-lease/<node>`: renewed every 10 s with the
//! object last written (one write per renewal, as the kubelet's lease
//! controller does), re-read or created when that fails. The API keeps
//! renewals that only move `renewTime` in memory (see ARCHITECTURE.md).

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{Client, ClientError, ResourceId};

pub const RENEW_EVERY: Duration = Duration::from_secs(10);
const DURATION_SECONDS: i64 = 40;
const NAMESPACE: &str = "kube-node-lease";

fn leases() -> ResourceId {
    ResourceId::new("coordination.k8s.io", "v1", "leases")
}

/// `metav1.MicroTime` now: `2006-01-02T15:04:05.000000Z`.
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The Lease last written, reused for the next renewal.
#[derive(Default)]
pub struct Lease {
    last: Option<Value>,
}

impl Lease {
    /// Renews the Lease of `node` (owned by the Node with `node_uid`).
    pub async fn renew<C: Client>(
        &mut self,
        client: &C,
        node: &str,
        node_uid: &str,
    ) -> Result<(), ClientError> {
        let ns = Some(NAMESPACE);
        if let Some(mut lease) = self.last.take() {
            lease["spec"]["renewTime"] = json!(now_micro());
            match client.update(&leases(), ns, node, lease, None).await {
                Ok(v) => {
                    self.last = Some(v);
                    return Ok(());
                }
                Err(e) if e.is_conflict() || e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let owner = json!([{
            "apiVersion": "v1",
            "kind": "Node",
            "name": node,
            "uid": node_uid,
        }]);
        let spec = json!({
            "holderIdentity": node,
            "leaseDurationSeconds": DURATION_SECONDS,
            "renewTime": now_micro(),
        });
        let lease = match client.get(&leases(), ns, node).await {
            Ok(cur) => {
                let mut lease = (*cur).clone();
                lease["metadata"]["ownerReferences"] = owner;
                lease["spec"] = spec;
                client.update(&leases(), ns, node, lease, None).await?
            }
            Err(e) if e.is_not_found() => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": node, "namespace": NAMESPACE, "ownerReferences": owner},
                    "spec": spec,
                });
                client.create(&leases(), ns, lease).await?
            }
            Err(e) => return Err(e),
        };
        self.last = Some(lease);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn micro_time_format() {
        let m = super::now_micro();
        assert_eq!(m.len(), "2006-01-02T15:04:05.000000Z".len(), "{m}");
        assert!(m.ends_with('Z') && m.as_bytes()[19] == b'.', "{m}");
    }
}
