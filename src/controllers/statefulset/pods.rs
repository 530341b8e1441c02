//! Writes of one StatefulSet pass (upstream `StatefulPodControl`): pods
//! with their claims created first, deletions, identity repairs and claim
//! owner references for the retention policy, each with upstream's events.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::identity::{self, claims};
use super::retention;
use super::sync::{apply_revision, Replica};
use super::{claims as claim_resource, pods, SetController};
use crate::client::{Client, DeleteOptions, ListOptions, PatchType};
use crate::controllers::objects::{self, is_deleting, name, namespace};
use crate::controllers::Error;

pub struct PodControl<'a> {
    pub ctl: &'a SetController,
    pub set: &'a Value,
    current_set: Value,
    update_set: Value,
    current_rev: String,
    pub update_rev: String,
    /// The namespace's claims by name (only read when the set has templates).
    claims: HashMap<String, Arc<Value>>,
    /// OrderedReady: one pod at a time, in order.
    pub monotonic: bool,
}

impl<'a> PodControl<'a> {
    pub async fn new(
        ctl: &'a SetController,
        set: &'a Value,
        current: &Value,
        update: &Value,
    ) -> Result<Self, Error> {
        let mut claims = HashMap::new();
        let has_templates = set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        if has_templates {
            let list = ctl
                .client
                .list(
                    &claim_resource(),
                    Some(namespace(set)),
                    &ListOptions::default(),
                )
                .await?;
            for c in list.items {
                claims.insert(name(&c).to_string(), c);
            }
        }
        Ok(PodControl {
            ctl,
            set,
            current_set: apply_revision(set, current),
            update_set: apply_revision(set, update),
            current_rev: name(current).to_string(),
            update_rev: name(update).to_string(),
            claims,
            monotonic: set
                .pointer("/spec/podManagementPolicy")
                .and_then(Value::as_str)
                != Some("Parallel"),
        })
    }

    /// A pod to create at `ord`: at the current revision below the
    /// partition, else at the update revision (`newVersionedStatefulSetPod`).
    pub fn new_versioned(&self, ord: i64) -> Replica {
        let at_current = identity::created_at_current(self.set, ord);
        let pod = if at_current {
            identity::new_pod(&self.current_set, ord, &self.current_rev)
        } else {
            identity::new_pod(&self.update_set, ord, &self.update_rev)
        };
        Replica {
            pod: Arc::new(pod),
            created: false,
        }
    }

    fn pod_event(&self, verb: &str, pod: &Value, err: Option<&Error>) {
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        let (pod, set) = (name(pod), name(self.set));
        match err {
            None => self.ctl.recorder.normal(
                self.set,
                &format!("Successful{title}"),
                &format!("{verb} Pod {pod} in StatefulSet {set} successful"),
            ),
            Some(e) => self.ctl.recorder.warning(
                self.set,
                &format!("Failed{title}"),
                &format!("{verb} Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
        }
    }

    /// Creates the pod's claims, then the pod (upstream `CreateStatefulPod`).
    pub async fn create_pod(&mut self, pod: &Value) -> Result<(), Error> {
        if let Err(e) = self.create_claims(pod).await {
            self.pod_event("create", pod, Some(&e));
            return Err(e);
        }
        let ns = Some(namespace(self.set));
        match self.ctl.client.create(&pods(), ns, pod.clone()).await {
            Ok(created) => {
                tracing::debug!(pod = name(pod), "created statefulset pod");
                self.pod_event("create", pod, None);
                self.update_claims(&created).await
            }
            // The old pod is still terminating; its deletion requeues us.
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => {
                let e = Error::from(e);
                self.pod_event("create", pod, Some(&e));
                Err(e)
            }
        }
    }

    pub async fn delete_pod(&mut self, pod: &Value) -> Result<(), Error> {
        let opts = DeleteOptions {
            precondition_uid: Some(objects::uid(pod).to_string()),
            ..Default::default()
        };
        let ns = Some(namespace(pod));
        match self.ctl.client.delete(&pods(), ns, name(pod), &opts).await {
            Ok(()) => {
                self.pod_event("delete", pod, None);
                Ok(())
            }
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => {
                let e = Error::from(e);
                self.pod_event("delete", pod, Some(&e));
                Err(e)
            }
        }
    }

    /// Creates the pod's missing claims (upstream `createPersistentVolumeClaims`).
    pub async fn create_claims(&mut self, pod: &Value) -> Result<(), Error> {
        let Some(ord) = identity::ordinal(pod) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        for (_, claim) in claims(self.set, ord) {
            let cname = name(&claim).to_string();
            if let Some(existing) = self.claims.get(&cname) {
                if is_deleting(existing) {
                    errors.push(format!("pvc {cname} is being deleted"));
                }
                continue;
            }
            let ns = Some(namespace(self.set));
            match self.ctl.client.create(&claim_resource(), ns, claim).await {
                Ok(created) => {
                    self.claim_event(pod, &cname, None);
                    self.claims.insert(cname, Arc::new(created));
                }
                Err(e) if e.is_already_exists() => {
                    errors.push(format!("failed to create PVC {cname}: {e}"))
                }
                Err(e) => {
                    self.claim_event(pod, &cname, Some(&e.to_string()));
                    errors.push(format!("failed to create PVC {cname}: {e}"));
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(Error::Invalid(errors.remove(0))),
            _ => Err(Error::Invalid(format!("[{}]", errors.join(", ")))),
        }
    }

    fn claim_event(&self, pod: &Value, claim: &str, err: Option<&str>) {
        let (pod, set) = (name(pod), name(self.set));
        match err {
            None => self.ctl.recorder.normal(
                self.set,
                "SuccessfulCreate",
                &format!("create Claim {claim} Pod {pod} in StatefulSet {set} success"),
            ),
            Some(e) => self.ctl.recorder.warning(
                self.set,
                "FailedCreate",
                &format!(
                    "create Claim {claim} for Pod {pod} in StatefulSet {set} failed error: {e}"
                ),
            ),
        }
    }

    fn pod_claims(&self, pod: &Value) -> Vec<Arc<Value>> {
        let Some(ord) = identity::ordinal(pod) else {
            return Vec::new();
        };
        claims(self.set, ord)
            .iter()
            .filter_map(|(_, c)| self.claims.get(name(c)).cloned())
            .collect()
    }

    /// Whether the pod's claims carry the owner references the retention
    /// policy wants (upstream `ClaimsMatchRetentionPolicy`).
    pub fn claims_match(&self, pod: &Value) -> bool {
        self.pod_claims(pod)
            .iter()
            .all(|c| retention::owner_up_to_date(c, &self.update_set, pod))
    }

    /// A pod about to be created whose claim still names an earlier pod of
    /// the same name: wait for the garbage collector.
    pub fn claim_is_stale(&self, pod: &Value) -> bool {
        retention::policy(self.set).delete_when_scaled
            && self
                .pod_claims(pod)
                .iter()
                .any(|c| retention::has_stale_pod_ref(c, pod))
    }

    /// Sets the claims' owner references per the retention policy.
    pub async fn update_claims(&mut self, pod: &Value) -> Result<(), Error> {
        for claim in self.pod_claims(pod) {
            if retention::has_unexpected_controller(&claim, &self.update_set, pod) {
                let msg = format!("PersistentVolumeClaim {} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim", name(&claim));
                self.ctl
                    .recorder
                    .warning(self.set, "ConflictingController", &msg);
            }
            if retention::owner_up_to_date(&claim, &self.update_set, pod) {
                continue;
            }
            let refs = retention::wanted_refs(&claim, &self.update_set, pod);
            let patch = json!({"metadata": {"ownerReferences": refs,
                "resourceVersion": objects::meta_str(&claim, "resourceVersion")}});
            let ns = Some(namespace(&claim));
            let updated = self
                .ctl
                .client
                .patch(
                    &claim_resource(),
                    ns,
                    name(&claim),
                    PatchType::Merge,
                    &patch,
                    None,
                )
                .await
                .map_err(|e| {
                    Error::Invalid(format!(
                        "could not update claim {} for delete policy ownerRefs: {e}",
                        name(&claim)
                    ))
                })?;
            self.claims
                .insert(name(&claim).to_string(), Arc::new(updated));
        }
        Ok(())
    }

    /// Restores the pod's identity labels and its claims' references
    /// (upstream `UpdateStatefulPod`; volumes of a running pod cannot change).
    pub async fn update_pod(&mut self, pod: &Value, retention_match: bool) -> Result<(), Error> {
        let mut result = Ok(());
        if !identity::identity_matches(self.set, pod) {
            let patch = identity::identity_patch(pod);
            let ns = Some(namespace(pod));
            result = self
                .ctl
                .client
                .patch(&pods(), ns, name(pod), PatchType::Merge, &patch, None)
                .await
                .map(|_| ())
                .map_err(Error::from);
        } else if retention_match {
            return Ok(());
        }
        if result.is_ok() && !retention_match {
            result = self.update_claims(pod).await;
        }
        self.pod_event("update", pod, result.as_ref().err());
        result
    }
}
