//! Syncing one claim or one volume (upstream syncClaim / syncVolume), and
//! the binding itself: the volume's claimRef first, then the claim's
//! volumeName, then both statuses, so a crash half way is finished by the
//! next sync of either.

use std::sync::Arc;

use serde_json::{json, Value};

use super::matching::{self, bound_to, has_claim_ref};
use super::{claims, volumes, Binder, BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE};
use crate::client::{Client, DeleteOptions, ListOptions, PatchType};
use crate::controllers::objects::{self, name, namespace};
use crate::controllers::runtime::{Action, ObjectKey};
use crate::controllers::Error;

fn phase(obj: &Value) -> &str {
    obj.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn volume_name(claim: &Value) -> &str {
    claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Binder {
    pub(super) async fn sync_claim(&self, key: &ObjectKey) -> Result<Action, Error> {
        let claim = match self.client.get(&claims(), key.ns(), &key.name).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if !volume_name(&claim).is_empty() {
            return self.sync_named_claim(&claim).await;
        }
        let default_class = match claim.pointer("/spec/storageClassName") {
            Some(Value::String(_)) => None,
            _ => self.default_class().await?,
        };
        let class_name = matching::claim_class(&claim, default_class.as_deref());
        let class = self.class(&class_name).await?;
        let wait_for_consumer = class
            .as_ref()
            .and_then(|c| c.get("volumeBindingMode"))
            .and_then(Value::as_str)
            == Some("WaitForFirstConsumer");
        if wait_for_consumer && objects::annotation(&claim, SELECTED_NODE).is_none() {
            self.set_claim_phase(&claim, "Pending").await?;
            self.report(
                &claim,
                false,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            );
            return Ok(Action::Done);
        }
        let list = self
            .client
            .list(&volumes(), None, &ListOptions::default())
            .await?;
        let pvs: Vec<&Value> = list.items.iter().map(|p| p.as_ref()).collect();
        if let Some(pv) = matching::best_match(&pvs, &claim, &class_name) {
            return self.bind(pv, &claim).await;
        }
        self.set_claim_phase(&claim, "Pending").await?;
        match (class_name.as_str(), &class) {
            ("", _) => self.report(
                &claim,
                false,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            ),
            (_, None) => self.report(
                &claim,
                true,
                "ProvisioningFailed",
                &format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            ),
            (_, Some(c)) => {
                let provisioner = c.get("provisioner").and_then(Value::as_str).unwrap_or("");
                self.report(&claim, false, "ExternalProvisioning", &format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."));
            }
        }
        Ok(Action::Done)
    }

    /// A claim naming its volume: bind to it when free and fitting.
    async fn sync_named_claim(&self, claim: &Value) -> Result<Action, Error> {
        let wanted = volume_name(claim);
        let pv = match self.client.get(&volumes(), None, wanted).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => {
                if phase(claim) == "Bound" || phase(claim) == "Lost" {
                    self.set_claim_phase(claim, "Lost").await?;
                    self.report(
                        claim,
                        true,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    );
                } else {
                    self.set_claim_phase(claim, "Pending").await?;
                }
                return Ok(Action::Done);
            }
            Err(e) => return Err(e.into()),
        };
        if bound_to(&pv, claim) {
            return self.bind(&pv, claim).await;
        }
        if !has_claim_ref(&pv) {
            let default_class = match claim.pointer("/spec/storageClassName") {
                Some(Value::String(_)) => None,
                _ => self.default_class().await?,
            };
            let class = matching::claim_class(claim, default_class.as_deref());
            if let Some(why) = matching::mismatch(&pv, claim, &class) {
                self.set_claim_phase(claim, "Pending").await?;
                self.report(
                    claim,
                    true,
                    "VolumeMismatch",
                    &format!("Cannot bind to requested volume \"{wanted}\": {why}"),
                );
                return Ok(Action::Done);
            }
            return self.bind(&pv, claim).await;
        }
        // The volume belongs to another claim.
        if objects::annotation(claim, BIND_COMPLETED).is_some() {
            self.set_claim_phase(claim, "Lost").await?;
            self.report(
                claim,
                true,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            );
        } else {
            self.set_claim_phase(claim, "Pending").await?;
        }
        Ok(Action::Done)
    }

    /// Binds `pv` and `claim`, writing only what is missing.
    async fn bind(&self, pv: &Value, claim: &Value) -> Result<Action, Error> {
        let claim_ref = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": namespace(claim), "name": name(claim), "uid": objects::uid(claim),
            "resourceVersion": objects::meta_str(claim, "resourceVersion")});
        let ref_uid = pv
            .pointer("/spec/claimRef/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let pv: Arc<Value> = if ref_uid != objects::uid(claim) {
            let mut patch = json!({"metadata": {"resourceVersion": objects::meta_str(pv, "resourceVersion")},
                "spec": {"claimRef": claim_ref}});
            if !has_claim_ref(pv) {
                patch["metadata"]["annotations"] = json!({BOUND_BY_CONTROLLER: "yes"});
            }
            let written = self
                .client
                .patch(&volumes(), None, name(pv), PatchType::Merge, &patch, None)
                .await?;
            tracing::info!(volume = name(pv), claim = %format!("{}/{}", namespace(claim), name(claim)), "volume bound");
            Arc::new(written)
        } else {
            Arc::new(pv.clone())
        };
        if phase(&pv) != "Bound" {
            self.set_volume_phase(&pv, "Bound", None).await?;
        }
        let ns = Some(namespace(claim));
        let complete = volume_name(claim) == name(&pv)
            && objects::annotation(claim, BIND_COMPLETED) == Some("yes");
        let claim: Value = if complete {
            claim.clone()
        } else {
            let mut annotations = json!({BIND_COMPLETED: "yes"});
            if volume_name(claim).is_empty() {
                annotations[BOUND_BY_CONTROLLER] = json!("yes");
            }
            let patch = json!({"metadata": {"resourceVersion": objects::meta_str(claim, "resourceVersion"),
                "annotations": annotations}, "spec": {"volumeName": name(&pv)}});
            self.client
                .patch(&claims(), ns, name(claim), PatchType::Merge, &patch, None)
                .await?
        };
        let status = json!({"phase": "Bound",
            "capacity": pv.pointer("/spec/capacity").cloned().unwrap_or(json!({})),
            "accessModes": pv.pointer("/spec/accessModes").cloned().unwrap_or(json!([]))});
        let same = ["phase", "capacity", "accessModes"]
            .iter()
            .all(|k| claim.get("status").and_then(|s| s.get(*k)) == status.get(*k));
        if !same {
            let patch = json!({"status": status});
            self.client
                .patch(
                    &claims(),
                    ns,
                    name(&claim),
                    PatchType::Merge,
                    &patch,
                    Some("status"),
                )
                .await?;
        }
        self.forget(&claim);
        Ok(Action::Done)
    }

    async fn set_claim_phase(&self, claim: &Value, to: &str) -> Result<(), Error> {
        if phase(claim) == to {
            return Ok(());
        }
        let patch = json!({"status": {"phase": to}});
        self.client
            .patch(
                &claims(),
                Some(namespace(claim)),
                name(claim),
                PatchType::Merge,
                &patch,
                Some("status"),
            )
            .await?;
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        pv: &Value,
        to: &str,
        message: Option<&str>,
    ) -> Result<(), Error> {
        if phase(pv) == to {
            return Ok(());
        }
        let mut status = json!({"phase": to, "lastPhaseTransitionTime": objects::now()});
        if let Some(m) = message {
            status["message"] = json!(m);
        }
        let patch = json!({"status": status});
        self.client
            .patch(
                &volumes(),
                None,
                name(pv),
                PatchType::Merge,
                &patch,
                Some("status"),
            )
            .await?;
        tracing::debug!(volume = name(pv), phase = to, "volume phase");
        Ok(())
    }

    pub(super) async fn sync_volume(&self, pv_name: &str) -> Result<Action, Error> {
        let pv = match self.client.get(&volumes(), None, pv_name).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(claim_ref) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) else {
            self.set_volume_phase(&pv, "Available", None).await?;
            return Ok(Action::Done);
        };
        let text = |k: &str| claim_ref.get(k).and_then(Value::as_str).unwrap_or("");
        if text("uid").is_empty() {
            // Reserved for a claim that has not bound yet; its sync binds.
            self.set_volume_phase(&pv, "Available", None).await?;
            return Ok(Action::Done);
        }
        let claim = match self
            .client
            .get(&claims(), Some(text("namespace")), text("name"))
            .await
        {
            Ok(c) if objects::uid(&c) == text("uid") => Some(c),
            Ok(_) => None,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let Some(claim) = claim else {
            return self.reclaim(&pv).await;
        };
        match volume_name(&claim) {
            n if n == pv_name => self.set_volume_phase(&pv, "Bound", None).await?,
            // Binding in progress: the claim's sync finishes it.
            "" => {}
            _ if objects::annotation(&pv, BOUND_BY_CONTROLLER).is_some() => {
                // We bound it to a claim that took another volume: free it.
                let patch = json!({"metadata": {"resourceVersion": objects::meta_str(&pv, "resourceVersion"),
                    "annotations": {BOUND_BY_CONTROLLER: null}}, "spec": {"claimRef": null}});
                let written = self
                    .client
                    .patch(&volumes(), None, pv_name, PatchType::Merge, &patch, None)
                    .await?;
                self.set_volume_phase(&written, "Available", None).await?;
            }
            _ => {}
        }
        Ok(Action::Done)
    }

    /// The claim is gone: Released, then the reclaim policy.
    async fn reclaim(&self, pv: &Value) -> Result<Action, Error> {
        if phase(pv) == "Failed" {
            return Ok(Action::Done);
        }
        self.set_volume_phase(pv, "Released", None).await?;
        let policy = pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Retain");
        match policy {
            "Delete" => {
                let opts = DeleteOptions {
                    precondition_uid: Some(objects::uid(pv).to_string()),
                    ..Default::default()
                };
                match self.client.delete(&volumes(), None, name(pv), &opts).await {
                    Ok(()) => tracing::info!(volume = name(pv), "released volume deleted"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            "Recycle" => {
                let message = "No recycler plugin found for the volume!";
                self.recorder.warning(pv, "VolumeFailedRecycle", message);
                let latest = self.client.get(&volumes(), None, name(pv)).await?;
                self.set_volume_phase(&latest, "Failed", Some(message))
                    .await?;
            }
            _ => {}
        }
        Ok(Action::Done)
    }
}
