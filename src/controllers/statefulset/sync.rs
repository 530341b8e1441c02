//! One pass of upstream `updateStatefulSet`: replace failed pods, create
//! missing ordinals (in order and only behind Running and Ready
//! predecessors under OrderedReady), remove ordinals beyond the replica
//! count from the highest down, then roll pods whose revision differs.

use std::sync::Arc;

use serde_json::{json, Value};

use super::identity::{self, in_range, ordinal};
use super::pods::PodControl;
use super::{history, min_ready_seconds, SetController};
use crate::controllers::objects::{self, is_deleting, name, pod_phase};
use crate::controllers::Error;

/// The status computed by a pass, and whether the pass failed.
pub struct Outcome {
    pub status: Value,
    pub result: Result<(), Error>,
}

/// A replica slot: an existing pod, or one this pass would create
/// (upstream tells them apart by the empty phase of the latter).
#[derive(Clone)]
pub struct Replica {
    pub pod: Arc<Value>,
    pub created: bool,
}

pub fn running_and_ready(pod: &Value) -> bool {
    pod_phase(pod) == "Running" && objects::pod_is_ready(pod)
}

/// Ready for `min_ready` seconds (upstream `IsPodAvailable`).
pub fn available(pod: &Value, min_ready: i64) -> bool {
    if !objects::pod_is_ready(pod) {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    objects::condition(pod, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(objects::parse_time)
        .is_some_and(|t| objects::age(t).as_secs() as i64 >= min_ready)
}

fn healthy(r: &Replica) -> bool {
    r.created && running_and_ready(&r.pod) && !is_deleting(&r.pod)
}

pub async fn run(
    ctl: &SetController,
    set: &Value,
    current: &Value,
    update: &Value,
    collisions: i64,
    pods: &[Arc<Value>],
) -> Outcome {
    let mut status = json!({
        "observedGeneration": set.pointer("/metadata/generation").cloned().unwrap_or(json!(0)),
        "currentRevision": name(current),
        "updateRevision": name(update),
        "collisionCount": collisions,
    });
    let min_ready = min_ready_seconds(set);
    let all: Vec<Replica> = pods
        .iter()
        .map(|p| Replica {
            pod: Arc::clone(p),
            created: true,
        })
        .collect();
    if is_deleting(set) {
        count(&mut status, min_ready, &all);
        return Outcome {
            status,
            result: Ok(()),
        };
    }
    let mut control = match PodControl::new(ctl, set, current, update).await {
        Ok(c) => c,
        Err(e) => {
            count(&mut status, min_ready, &all);
            return Outcome {
                status,
                result: Err(e),
            };
        }
    };
    let (mut replicas, condemned) = partition(&control, pods);
    let exited = control.process(&mut replicas, &condemned).await;
    let everything: Vec<Replica> = replicas.iter().chain(&condemned).cloned().collect();
    count(&mut status, min_ready, &everything);
    let result = match exited {
        Err(e) => Err(e),
        Ok(true) => Ok(()),
        Ok(false) if strategy_type(set) == "OnDelete" => Ok(()),
        Ok(false) => match control.roll(&replicas).await {
            Ok(deleted) => {
                let current = status["currentReplicas"].as_i64().unwrap_or(0);
                status["currentReplicas"] = json!(current - deleted);
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    Outcome { status, result }
}

pub fn strategy_type(set: &Value) -> &str {
    set.pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
}

/// Splits pods into the slots of the wanted ordinals (missing ones filled
/// with pods to create) and the condemned ones beyond, highest first.
/// Pods without an ordinal are ignored.
fn partition(control: &PodControl<'_>, pods: &[Arc<Value>]) -> (Vec<Replica>, Vec<Replica>) {
    let set = control.set;
    let start = identity::start_ordinal(set);
    let n = identity::replicas(set) as usize;
    let mut slots: Vec<Option<Replica>> = vec![None; n];
    let mut condemned = Vec::new();
    for pod in pods {
        let replica = Replica {
            pod: Arc::clone(pod),
            created: true,
        };
        match ordinal(pod) {
            Some(o) if in_range(set, o) => slots[(o - start) as usize] = Some(replica),
            Some(_) => condemned.push(replica),
            None => {}
        }
    }
    let replicas = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.unwrap_or_else(|| control.new_versioned(start + i as i64)))
        .collect();
    condemned.sort_by_key(|r| std::cmp::Reverse(ordinal(&r.pod)));
    (replicas, condemned)
}

/// Upstream `updateStatus`: counts of created pods only.
fn count(status: &mut Value, min_ready: i64, replicas: &[Replica]) {
    let current_rev = status["currentRevision"].as_str().unwrap_or("").to_string();
    let update_rev = status["updateRevision"].as_str().unwrap_or("").to_string();
    let (mut total, mut ready, mut avail, mut current, mut updated) = (0, 0, 0, 0, 0);
    for r in replicas.iter().filter(|r| r.created) {
        total += 1;
        if running_and_ready(&r.pod) {
            ready += 1;
            if available(&r.pod, min_ready) {
                avail += 1;
            }
        }
        if !is_deleting(&r.pod) {
            let rev = identity::revision_of(&r.pod);
            current += i64::from(rev == current_rev);
            updated += i64::from(rev == update_rev);
        }
    }
    status["replicas"] = json!(total);
    status["readyReplicas"] = json!(ready);
    status["availableReplicas"] = json!(avail);
    status["currentReplicas"] = json!(current);
    status["updatedReplicas"] = json!(updated);
}

impl PodControl<'_> {
    /// Replicas, then claims of condemned pods, then condemned pods
    /// (upstream's three `runForAll` passes). Ok(true): the pass stopped
    /// early (waiting on a pod), so no rolling update this time.
    async fn process(
        &mut self,
        replicas: &mut [Replica],
        condemned: &[Replica],
    ) -> Result<bool, Error> {
        let first_unhealthy = replicas
            .iter()
            .chain(condemned.iter().rev())
            .find(|r| !healthy(r))
            .map(|r| name(&r.pod).to_string());
        for i in 0..replicas.len() {
            if self.process_replica(replicas, i).await? && self.monotonic {
                return Ok(true);
            }
        }
        for r in condemned {
            if !self.claims_match(&r.pod) {
                self.update_claims(&r.pod).await?;
            }
        }
        for r in condemned {
            let first = first_unhealthy.as_deref() == Some(name(&r.pod));
            if self.process_condemned(&r.pod, first).await? && self.monotonic {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Ok(true) when OrderedReady must stop here.
    async fn process_replica(&mut self, replicas: &mut [Replica], i: usize) -> Result<bool, Error> {
        let set = self.set;
        let ord = identity::start_ordinal(set) + i as i64;
        let phase = pod_phase(&replicas[i].pod).to_string();
        if replicas[i].created && (phase == "Failed" || phase == "Succeeded") {
            let pod = name(&replicas[i].pod).to_string();
            let (ns, sts) = (objects::namespace(set), name(set));
            if phase == "Failed" {
                let msg = format!("StatefulSet {ns}/{sts} is recreating failed Pod {pod}");
                self.ctl.recorder.warning(set, "RecreatingFailedPod", &msg);
            } else {
                let msg = format!("StatefulSet {ns}/{sts} is recreating terminated Pod {pod}");
                self.ctl
                    .recorder
                    .normal(set, "RecreatingTerminatedPod", &msg);
            }
            let victim = Arc::clone(&replicas[i].pod);
            self.delete_pod(&victim).await?;
            replicas[i] = self.new_versioned(ord);
        }
        if !replicas[i].created {
            if self.claim_is_stale(&replicas[i].pod) {
                return Ok(true);
            }
            let pod = Arc::clone(&replicas[i].pod);
            self.create_pod(&pod).await?;
            return Ok(true);
        }
        let pod = Arc::clone(&replicas[i].pod);
        if pod_phase(&pod) == "Pending" {
            self.create_claims(&pod).await?;
            self.update_claims(&pod).await?;
        }
        let min_ready = min_ready_seconds(set);
        if self.monotonic
            && (is_deleting(&pod) || !running_and_ready(&pod) || !available(&pod, min_ready))
        {
            tracing::debug!(pod = name(&pod), "statefulset waits for pod");
            return Ok(true);
        }
        let retention_match = self.claims_match(&pod);
        if identity::identity_matches(set, &pod)
            && identity::storage_matches(set, &pod)
            && retention_match
        {
            return Ok(false);
        }
        self.update_pod(&pod, retention_match).await?;
        Ok(false)
    }

    async fn process_condemned(
        &mut self,
        pod: &Arc<Value>,
        first_unhealthy: bool,
    ) -> Result<bool, Error> {
        if is_deleting(pod) {
            return Ok(true);
        }
        let min_ready = min_ready_seconds(self.set);
        if self.monotonic
            && !first_unhealthy
            && (!running_and_ready(pod) || !available(pod, min_ready))
        {
            return Ok(true);
        }
        tracing::debug!(
            pod = name(pod),
            "statefulset pod terminating for scale down"
        );
        self.delete_pod(pod).await?;
        Ok(true)
    }

    /// Deletes pods whose revision is not the update revision, from the
    /// highest ordinal down to the partition; one at a time waiting for
    /// health, or up to maxUnavailable when set. Returns how many.
    async fn roll(&mut self, replicas: &[Replica]) -> Result<i64, Error> {
        let set = self.set;
        let update_min = set
            .pointer("/spec/updateStrategy/rollingUpdate/partition")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as usize;
        let max_unavailable = set.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable");
        let update_rev = self.update_rev.clone();
        let stale =
            |r: &Replica| identity::revision_of(&r.pod) != update_rev && !is_deleting(&r.pod);
        let Some(max_unavailable) = max_unavailable.filter(|v| !v.is_null()) else {
            for r in replicas.iter().skip(update_min).rev() {
                if stale(r) {
                    self.delete_pod(&r.pod).await?;
                    return Ok(1);
                }
                if !healthy(r) {
                    return Ok(0);
                }
            }
            return Ok(0);
        };
        let max =
            objects::scaled_value(Some(max_unavailable), replicas.len() as i64, false, 1).max(1);
        let unavailable = replicas.iter().filter(|r| !healthy(r)).count() as i64;
        if unavailable >= max {
            return Ok(0);
        }
        let mut deleted = 0;
        for r in replicas.iter().skip(update_min).rev() {
            if deleted >= max - unavailable {
                break;
            }
            if stale(r) {
                self.delete_pod(&r.pod).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// The set with the template stored in `revision` (upstream `ApplyRevision`).
pub fn apply_revision(set: &Value, revision: &Value) -> Value {
    let mut s = set.clone();
    s["spec"]["template"] = history::template_of(revision);
    s
}
