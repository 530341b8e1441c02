//! The ReplicaSets of a Deployment: claiming (adopt/release), finding or
//! creating the new one with its revision, scaling with events, and
//! cleaning up old ones beyond `revisionHistoryLimit`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::hash::{self, HASH_LABEL};
use super::status::{self, PROGRESSING};
use super::util::{self, spec_replicas};
use super::{replica_sets, Sync};
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, ListOptions, PatchType};
use crate::controllers::{objects, Error};

impl Sync<'_> {
    /// The ReplicaSets this Deployment controls after adopting matching
    /// orphans and releasing owned ones that stopped matching (upstream
    /// `ClaimReplicaSets`).
    pub(super) async fn claim_replica_sets(
        &self,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<Value>>, Error> {
        let list = self
            .client()
            .list(&replica_sets(), Some(self.ns()), &ListOptions::default())
            .await?;
        let d_uid = objects::uid(&self.d).to_string();
        let deleting = objects::is_deleting(&self.d);
        let mut owned = Vec::new();
        for rs in list.items {
            let matches = selector.matches_object(&rs);
            match objects::controller_ref(&rs) {
                Some(r) if r.get("uid").and_then(Value::as_str) == Some(d_uid.as_str()) => {
                    if matches || deleting {
                        owned.push(rs);
                    } else {
                        self.release(&rs, &d_uid).await?;
                    }
                }
                Some(_) => {}
                None if matches && !deleting && !objects::is_deleting(&rs) => {
                    let mut refs = objects::owner_references(&rs).to_vec();
                    refs.push(self.controller_ref());
                    let patch = json!({"metadata": {"ownerReferences": refs,
                        "uid": objects::uid(&rs),
                        "resourceVersion": objects::meta_str(&rs, "resourceVersion")}});
                    match self.patch_rs(&rs, &patch).await {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(e) if e.is_not_found() || e.is_conflict() => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {}
            }
        }
        Ok(owned)
    }

    async fn release(&self, rs: &Value, owner_uid: &str) -> Result<(), Error> {
        let refs: Vec<Value> = objects::owner_references(rs)
            .iter()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
            .cloned()
            .collect();
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": objects::uid(rs)}});
        match self.patch_rs(rs, &patch).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn patch_rs(&self, rs: &Value, patch: &Value) -> Result<Value, Error> {
        Ok(self
            .client()
            .patch(
                &replica_sets(),
                Some(self.ns()),
                objects::name(rs),
                PatchType::Merge,
                patch,
                None,
            )
            .await?)
    }

    fn controller_ref(&self) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "name": objects::name(&self.d), "uid": objects::uid(&self.d),
            "controller": true, "blockOwnerDeletion": true})
    }

    /// The ReplicaSet running the current template, with its revision and
    /// annotations brought up to date; created (when `create`) if missing
    /// (upstream `getNewReplicaSet`).
    pub(super) async fn new_replica_set(
        &mut self,
        rs_list: &[Arc<Value>],
        olds: &[Arc<Value>],
        create: bool,
    ) -> Result<Option<Arc<Value>>, Error> {
        let old_refs: Vec<&Value> = olds.iter().map(|r| r.as_ref()).collect();
        let new_revision = util::max_revision(&old_refs) + 1;
        if let Some(existing) = find_new(&self.d, rs_list) {
            let mut copy = (*existing).clone();
            let annotated = util::set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = util::int_at(&self.d, "/spec/minReadySeconds");
            if annotated || util::int_at(&copy, "/spec/minReadySeconds") != min_ready {
                copy["spec"]["minReadySeconds"] = json!(min_ready);
                let updated = self.update_rs(copy).await?;
                return Ok(Some(updated));
            }
            let rs_revision = objects::annotation(&copy, util::REVISION)
                .unwrap_or("")
                .to_string();
            let mut needs_update = self.set_revision(&rs_revision);
            let status = self.d.get("status").cloned().unwrap_or(json!({}));
            if status::progress_deadline(&self.d).is_some()
                && status::get_condition(&status, PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set \"{}\"", objects::name(&copy));
                self.set_condition(status::new_condition(
                    PROGRESSING,
                    "True",
                    status::FOUND_NEW_RS,
                    &msg,
                ));
                needs_update = true;
            }
            if needs_update {
                self.write_status().await?;
            }
            return Ok(Some(existing));
        }
        if !create {
            return Ok(None);
        }
        self.create_new_replica_set(olds, new_revision)
            .await
            .map(Some)
    }

    async fn create_new_replica_set(
        &mut self,
        olds: &[Arc<Value>],
        new_revision: i64,
    ) -> Result<Arc<Value>, Error> {
        let d = &self.d;
        let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let collisions = d.pointer("/status/collisionCount").and_then(Value::as_i64);
        let hash = hash::compute_hash(&template, collisions);
        template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let rs_name = format!("{}-{hash}", objects::name(d));
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": self.ns(),
                "ownerReferences": [self.controller_ref()],
                "labels": template["metadata"]["labels"],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)),
                "selector": selector,
                "template": template,
            },
        });
        let mut all: Vec<&Value> = olds.iter().map(|r| r.as_ref()).collect();
        all.push(&rs);
        let replicas = util::new_rs_new_replicas(d, &all, &rs);
        rs["spec"]["replicas"] = json!(replicas);
        util::set_new_rs_annotations(d, &mut rs, new_revision, false);
        let created = self
            .client()
            .create(&replica_sets(), Some(self.ns()), rs)
            .await;
        let (created, already_existed) = match created {
            Ok(rs) => (Arc::new(rs), false),
            Err(e) if e.is_already_exists() => {
                let found = self
                    .client()
                    .get(&replica_sets(), Some(self.ns()), &rs_name)
                    .await?;
                let template = self.d.pointer("/spec/template").unwrap_or(&Value::Null);
                let ours = objects::is_controlled_by(&found, objects::uid(&self.d))
                    && hash::equal_ignore_hash(
                        template,
                        found.pointer("/spec/template").unwrap_or(&Value::Null),
                    );
                if !ours {
                    // A hash collision: another template has this name.
                    let count = collisions.unwrap_or(0) + 1;
                    self.d["status"]["collisionCount"] = json!(count);
                    tracing::info!(deployment = %objects::name(&self.d), count, "pod template hash collision");
                    self.write_status().await?;
                    return Err(e.into());
                }
                (found, true)
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set \"{rs_name}\": {e}");
                if status::progress_deadline(&self.d).is_some() {
                    self.set_condition(status::new_condition(
                        PROGRESSING,
                        "False",
                        status::FAILED_RS_CREATE,
                        &msg,
                    ));
                    let _ = self.write_status().await;
                }
                self.recorder()
                    .warning(&self.d, status::FAILED_RS_CREATE, &msg);
                return Err(e.into());
            }
        };
        if !already_existed && replicas > 0 {
            let msg = format!("Scaled up replica set {rs_name} to {replicas}");
            self.recorder().normal(&self.d, "ScalingReplicaSet", &msg);
        }
        let mut needs_update = self.set_revision(&new_revision.to_string());
        if !already_existed && status::progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set \"{rs_name}\"");
            self.set_condition(status::new_condition(
                PROGRESSING,
                "True",
                status::NEW_RS_CREATED,
                &msg,
            ));
            needs_update = true;
        }
        if needs_update {
            self.write_status().await?;
        }
        Ok(created)
    }

    /// Sets the Deployment's revision annotation; true when it changed.
    fn set_revision(&mut self, revision: &str) -> bool {
        if objects::annotation(&self.d, util::REVISION) == Some(revision) {
            return false;
        }
        if !self.d["metadata"]["annotations"].is_object() {
            self.d["metadata"]["annotations"] = json!({});
        }
        self.d["metadata"]["annotations"][util::REVISION] = json!(revision);
        true
    }

    async fn update_rs(&self, rs: Value) -> Result<Arc<Value>, Error> {
        let name = objects::name(&rs).to_string();
        let updated = self
            .client()
            .update(&replica_sets(), Some(self.ns()), &name, rs, None)
            .await?;
        Ok(Arc::new(updated))
    }

    /// Scales `rs` to `new_scale` unless it is there; true when scaled.
    pub(super) async fn scale_and_record(
        &self,
        rs: &Arc<Value>,
        new_scale: i64,
    ) -> Result<(bool, Arc<Value>), Error> {
        let current = spec_replicas(rs);
        if current == new_scale {
            return Ok((false, Arc::clone(rs)));
        }
        let op = if current < new_scale { "up" } else { "down" };
        self.scale_replica_set(rs, new_scale, op).await
    }

    /// Sets `rs`'s size and replica annotations (when either changed) and
    /// records the scaling event (upstream `scaleReplicaSet`).
    pub(super) async fn scale_replica_set(
        &self,
        rs: &Arc<Value>,
        new_scale: i64,
        op: &str,
    ) -> Result<(bool, Arc<Value>), Error> {
        let desired = spec_replicas(&self.d);
        let max = desired + util::max_surge(&self.d);
        let old_scale = spec_replicas(rs);
        let resize = old_scale != new_scale;
        if !resize && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, Arc::clone(rs)));
        }
        let mut copy = (**rs).clone();
        copy["spec"]["replicas"] = json!(new_scale);
        util::set_replicas_annotations(&mut copy, desired, max);
        let updated = self.update_rs(copy).await?;
        if resize {
            let msg = format!(
                "Scaled {op} replica set {} to {new_scale} from {old_scale}",
                objects::name(rs)
            );
            self.recorder().normal(&self.d, "ScalingReplicaSet", &msg);
        }
        Ok((resize, updated))
    }

    /// Deletes the oldest scaled-down old ReplicaSets beyond
    /// `revisionHistoryLimit` (upstream `cleanupDeployment`).
    pub(super) async fn cleanup(&self, olds: &[Arc<Value>]) -> Result<(), Error> {
        let Some(limit) = self
            .d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .filter(|l| *l != i64::from(i32::MAX))
        else {
            return Ok(());
        };
        let mut alive: Vec<&Arc<Value>> =
            olds.iter().filter(|rs| !objects::is_deleting(rs)).collect();
        let excess = alive.len() as i64 - limit;
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| {
            util::revision(a)
                .cmp(&util::revision(b))
                .then_with(|| util::by_creation(a, b))
        });
        for rs in alive.into_iter().take(excess as usize) {
            let settled = util::int_at(rs, "/metadata/generation")
                <= util::int_at(rs, "/status/observedGeneration");
            if util::int_at(rs, "/status/replicas") != 0 || spec_replicas(rs) != 0 || !settled {
                continue;
            }
            tracing::debug!(replicaset = %objects::name(rs), "deleting old replica set");
            let opts = DeleteOptions {
                precondition_uid: Some(objects::uid(rs).to_string()),
                ..Default::default()
            };
            match self
                .client()
                .delete(&replica_sets(), Some(self.ns()), objects::name(rs), &opts)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The oldest ReplicaSet whose template equals the Deployment's, ignoring
/// the hash label (upstream `FindNewReplicaSet`).
pub fn find_new(d: &Value, rs_list: &[Arc<Value>]) -> Option<Arc<Value>> {
    let template = d.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut sorted: Vec<&Arc<Value>> = rs_list.iter().collect();
    sorted.sort_by(|a, b| util::by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| {
            hash::equal_ignore_hash(
                rs.pointer("/spec/template").unwrap_or(&Value::Null),
                template,
            )
        })
        .cloned()
}
