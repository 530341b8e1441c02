//! Rollout strategies and scaling: RollingUpdate (surge the new
//! ReplicaSet, scale old ones down while enough stay available), Recreate
//! (old ones to zero, wait for their pods to go, then the new one), and
//! proportional scaling when `spec.replicas` changes mid-rollout.

use std::sync::Arc;

use serde_json::Value;

use super::util::{self, spec_replicas};
use super::Sync;
use crate::api::selector::LabelSelector;
use crate::client::{Client, ListOptions, ResourceId};
use crate::controllers::runtime::Action;
use crate::controllers::{objects, Error};

fn refs(rss: &[Arc<Value>]) -> Vec<&Value> {
    rss.iter().map(|r| r.as_ref()).collect()
}

fn active(rss: &[Arc<Value>]) -> Vec<Arc<Value>> {
    rss.iter()
        .filter(|rs| spec_replicas(rs) > 0)
        .cloned()
        .collect()
}

/// Replaces the ReplicaSet of the same name in `rss` with `updated`.
fn replace(rss: &mut [Arc<Value>], updated: Arc<Value>) {
    if let Some(slot) = rss
        .iter_mut()
        .find(|r| objects::name(r) == objects::name(&updated))
    {
        *slot = updated;
    }
}

impl Sync<'_> {
    /// Upstream `rolloutRolling`.
    pub(super) async fn rollout_rolling(
        &mut self,
        rs_list: &[Arc<Value>],
    ) -> Result<Action, Error> {
        let mut olds = self.old_replica_sets(rs_list);
        let Some(mut new_rs) = self.new_replica_set(rs_list, &olds, true).await? else {
            return Err(Error::Invalid(
                "new replica set missing after create".into(),
            ));
        };
        let mut all = olds.clone();
        all.push(Arc::clone(&new_rs));
        if self.reconcile_new(&all, &mut new_rs).await? {
            return self.sync_rollout_status(&olds, Some(&new_rs)).await;
        }
        all = olds.clone();
        all.push(Arc::clone(&new_rs));
        if self.reconcile_olds(&all, &mut olds, &new_rs).await? {
            return self.sync_rollout_status(&olds, Some(&new_rs)).await;
        }
        if super::status::complete(&self.d, self.d.get("status").unwrap_or(&Value::Null)) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(&olds, Some(&new_rs)).await
    }

    /// Grows (or shrinks) the new ReplicaSet within replicas + maxSurge.
    async fn reconcile_new(
        &self,
        all: &[Arc<Value>],
        new_rs: &mut Arc<Value>,
    ) -> Result<bool, Error> {
        let desired = spec_replicas(&self.d);
        let current = spec_replicas(new_rs);
        if current == desired {
            return Ok(false);
        }
        let target = if current > desired {
            desired
        } else {
            util::new_rs_new_replicas(&self.d, &refs(all), new_rs)
        };
        let (scaled, updated) = self.scale_and_record(new_rs, target).await?;
        *new_rs = updated;
        Ok(scaled)
    }

    /// Scales old ReplicaSets down as far as availability allows, unhealthy
    /// replicas first (upstream `reconcileOldReplicaSets`).
    async fn reconcile_olds(
        &self,
        all: &[Arc<Value>],
        olds: &mut [Arc<Value>],
        new_rs: &Value,
    ) -> Result<bool, Error> {
        let old_count = util::total_spec_replicas(&refs(olds));
        if old_count == 0 {
            return Ok(false);
        }
        let all_count = util::total_spec_replicas(&refs(all));
        let min_available = spec_replicas(&self.d) - util::max_unavailable(&self.d);
        let new_unavailable =
            spec_replicas(new_rs) - util::int_at(new_rs, "/status/availableReplicas");
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let cleaned = self.cleanup_unhealthy(olds, max_scaled_down).await?;
        let scaled = self.scale_down_olds(olds, new_rs).await?;
        Ok(cleaned + scaled > 0)
    }

    /// Scales down old replicas that are not available, oldest ReplicaSet
    /// first, at most `max` (upstream `cleanupUnhealthyReplicas`).
    async fn cleanup_unhealthy(&self, olds: &mut [Arc<Value>], max: i64) -> Result<i64, Error> {
        olds.sort_by(|a, b| util::by_creation(a, b));
        let mut total = 0;
        for slot in olds.iter_mut() {
            if total >= max {
                break;
            }
            let rs = Arc::clone(slot);
            let replicas = spec_replicas(&rs);
            let available = util::int_at(&rs, "/status/availableReplicas");
            if replicas == 0 || replicas == available {
                continue;
            }
            let count = (max - total).min(replicas - available);
            let (_, updated) = self.scale_and_record(&rs, replicas - count).await?;
            *slot = updated;
            total += count;
        }
        Ok(total)
    }

    /// Scales old ReplicaSets down while available replicas stay at least
    /// replicas - maxUnavailable (upstream `scaleDownOldReplicaSetsForRollingUpdate`).
    async fn scale_down_olds(&self, olds: &mut [Arc<Value>], new_rs: &Value) -> Result<i64, Error> {
        let min_available = spec_replicas(&self.d) - util::max_unavailable(&self.d);
        let mut all = refs(olds);
        all.push(new_rs);
        let available = util::total_status(&all, "availableReplicas");
        if available <= min_available {
            return Ok(0);
        }
        olds.sort_by(|a, b| util::by_creation(a, b));
        let wanted = available - min_available;
        let mut total = 0;
        for slot in olds.iter_mut() {
            if total >= wanted {
                break;
            }
            let rs = Arc::clone(slot);
            let replicas = spec_replicas(&rs);
            if replicas == 0 {
                continue;
            }
            let count = replicas.min(wanted - total);
            let (_, updated) = self.scale_and_record(&rs, replicas - count).await?;
            *slot = updated;
            total += count;
        }
        Ok(total)
    }

    /// Upstream `rolloutRecreate`.
    pub(super) async fn rollout_recreate(
        &mut self,
        rs_list: &[Arc<Value>],
    ) -> Result<Action, Error> {
        let mut olds = self.old_replica_sets(rs_list);
        let mut new_rs = self.new_replica_set(rs_list, &olds, false).await?;
        let mut scaled_down = false;
        for slot in olds.iter_mut() {
            let rs = Arc::clone(slot);
            if spec_replicas(&rs) == 0 {
                continue;
            }
            let (scaled, updated) = self.scale_and_record(&rs, 0).await?;
            scaled_down |= scaled;
            *slot = updated;
        }
        if scaled_down || self.old_pods_running(new_rs.as_deref(), &olds).await? {
            return self.sync_rollout_status(&olds, new_rs.as_ref()).await;
        }
        if new_rs.is_none() {
            new_rs = self.new_replica_set(rs_list, &olds, true).await?;
        }
        if let Some(rs) = &new_rs {
            let (_, updated) = self.scale_and_record(rs, spec_replicas(&self.d)).await?;
            new_rs = Some(updated);
        }
        if super::status::complete(&self.d, self.d.get("status").unwrap_or(&Value::Null)) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(&olds, new_rs.as_ref()).await
    }

    /// Whether pods of old ReplicaSets still exist (terminating included),
    /// so Recreate must wait (upstream `oldPodsRunning`).
    async fn old_pods_running(
        &self,
        new_rs: Option<&Value>,
        olds: &[Arc<Value>],
    ) -> Result<bool, Error> {
        if util::total_status(&refs(olds), "replicas") > 0 {
            return Ok(true);
        }
        let old_uids: Vec<&str> = olds.iter().map(|rs| objects::uid(rs)).collect();
        if old_uids.is_empty() {
            return Ok(false);
        }
        let selector = self.selector()?;
        let opts = ListOptions {
            label_selector: selector,
            ..Default::default()
        };
        let pods = self
            .client()
            .list(&ResourceId::new("", "v1", "pods"), Some(self.ns()), &opts)
            .await?;
        let new_uid = new_rs.map(objects::uid);
        Ok(pods.items.iter().any(|pod| {
            let owner = objects::controller_ref(pod)
                .and_then(|r| r.get("uid"))
                .and_then(Value::as_str);
            owner.is_some_and(|u| old_uids.contains(&u) && Some(u) != new_uid)
                && !matches!(objects::pod_phase(pod), "Succeeded" | "Failed")
        }))
    }

    pub(super) fn selector(&self) -> Result<LabelSelector, Error> {
        objects::spec_selector(&self.d)
    }

    /// Scaling without rollout progress: paused Deployments and changes of
    /// `spec.replicas` (upstream `sync`).
    pub(super) async fn sync_scaling(&mut self, rs_list: &[Arc<Value>]) -> Result<Action, Error> {
        let mut olds = self.old_replica_sets(rs_list);
        let mut new_rs = self.new_replica_set(rs_list, &olds, false).await?;
        self.scale(&mut new_rs, &mut olds).await?;
        if self.d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
            self.cleanup(&olds).await?;
        }
        self.sync_status_only(&olds, new_rs.as_ref()).await
    }

    /// Whether an active ReplicaSet was sized for another `spec.replicas`
    /// (upstream `isScalingEvent`).
    pub(super) fn is_scaling_event(&self, rs_list: &[Arc<Value>]) -> bool {
        let desired = spec_replicas(&self.d).to_string();
        rs_list
            .iter()
            .filter(|rs| spec_replicas(rs) > 0)
            .any(|rs| objects::annotation(rs, util::DESIRED_REPLICAS).is_some_and(|a| a != desired))
    }

    /// Upstream `scale`: the only active (or the newest) ReplicaSet gets
    /// everything; a saturated new one lets the old ones go; otherwise a
    /// rolling Deployment spreads the change over the active ones.
    async fn scale(
        &self,
        new_rs: &mut Option<Arc<Value>>,
        olds: &mut [Arc<Value>],
    ) -> Result<(), Error> {
        let desired = spec_replicas(&self.d);
        if let Some(target) = active_or_latest(new_rs.as_ref(), olds) {
            if spec_replicas(&target) == desired {
                return Ok(());
            }
            let (_, updated) = self.scale_and_record(&target, desired).await?;
            match new_rs {
                Some(n) if objects::name(n) == objects::name(&updated) => *n = updated,
                _ => replace(olds, updated),
            }
            return Ok(());
        }
        if util::is_saturated(&self.d, new_rs.as_deref()) {
            for slot in olds.iter_mut() {
                let rs = Arc::clone(slot);
                if spec_replicas(&rs) > 0 {
                    *slot = self.scale_and_record(&rs, 0).await?.1;
                }
            }
            return Ok(());
        }
        if !util::is_rolling(&self.d) {
            return Ok(());
        }
        let mut all: Vec<Arc<Value>> = active(olds);
        if let Some(n) = new_rs.as_ref().filter(|n| spec_replicas(n) > 0) {
            all.push(Arc::clone(n));
        }
        let current = util::total_spec_replicas(&refs(&all));
        let allowed = if desired > 0 {
            desired + util::max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - current;
        let op = match to_add.signum() {
            1 => "up",
            -1 => "down",
            _ => "",
        };
        all.sort_by(|a, b| util::by_size(a, b, to_add > 0));
        let mut sizes: Vec<i64> = Vec::with_capacity(all.len());
        let mut added = 0;
        for rs in &all {
            let share = util::proportion(rs, &self.d, to_add, added);
            sizes.push(spec_replicas(rs) + share);
            added += share;
        }
        if let Some(first) = sizes.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
        for (rs, size) in all.iter().zip(sizes) {
            let (_, updated) = self.scale_replica_set(rs, size, op).await?;
            match new_rs {
                Some(n) if objects::name(n) == objects::name(&updated) => *n = updated,
                _ => replace(olds, updated),
            }
        }
        Ok(())
    }
}

/// The only active ReplicaSet, or the newest when none is active; None
/// when several are active (upstream `FindActiveOrLatest`).
fn active_or_latest(new_rs: Option<&Arc<Value>>, olds: &[Arc<Value>]) -> Option<Arc<Value>> {
    let mut all: Vec<&Arc<Value>> = olds.iter().collect();
    all.extend(new_rs);
    let active: Vec<&&Arc<Value>> = all.iter().filter(|rs| spec_replicas(rs) > 0).collect();
    match active.len() {
        0 => new_rs
            .cloned()
            .or_else(|| olds.iter().max_by(|a, b| util::by_creation(a, b)).cloned()),
        1 => Some(Arc::clone(active[0])),
        _ => None,
    }
}
