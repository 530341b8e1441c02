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

    /// Deletes the pods [`roll_plan`] picks; returns how many.
    async fn roll(&mut self, replicas: &[Replica]) -> Result<i64, Error> {
        let plan = roll_plan(self.set, replicas, &self.update_rev);
        for &i in &plan {
            self.delete_pod(&replicas[i].pod).await?;
        }
        Ok(plan.len() as i64)
    }
}

/// The replicas a rolling update deletes now: those whose revision is not
/// the update revision, from the highest ordinal down to the partition;
/// one at a time waiting for health, or up to maxUnavailable when set.
pub fn roll_plan(set: &Value, replicas: &[Replica], update_rev: &str) -> Vec<usize> {
    let update_min = set
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as usize;
    let stale = |r: &Replica| identity::revision_of(&r.pod) != update_rev && !is_deleting(&r.pod);
    let targets = (update_min..replicas.len()).rev();
    let max_unavailable = set
        .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
        .filter(|v| !v.is_null());
    let Some(max_unavailable) = max_unavailable else {
        for i in targets {
            if stale(&replicas[i]) {
                return vec![i];
            }
            if !healthy(&replicas[i]) {
                break;
            }
        }
        return Vec::new();
    };
    let max = objects::scaled_value(Some(max_unavailable), replicas.len() as i64, false, 1).max(1);
    let unavailable = replicas.iter().filter(|r| !healthy(r)).count() as i64;
    let room = (max - unavailable).max(0) as usize;
    targets
        .filter(|&i| stale(&replicas[i]))
        .take(room)
        .collect()
}

/// The set with the template stored in `revision` (upstream `ApplyRevision`).
pub fn apply_revision(set: &Value, revision: &Value) -> Value {
    let mut s = set.clone();
    s["spec"]["template"] = history::template_of(revision);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(ord: usize, rev: &str, ready: bool) -> Replica {
        let status = if ready { "True" } else { "False" };
        Replica {
            pod: Arc::new(json!({
                "metadata": {"name": format!("web-{ord}"),
                    "labels": {identity::REVISION_LABEL: rev}},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": status}]}})),
            created: true,
        }
    }

    fn set(rolling: Value) -> Value {
        json!({"spec": {"replicas": 3,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}})
    }

    #[test]
    fn rolling_updates_go_from_the_highest_ordinal_one_at_a_time() {
        let s = set(json!({"partition": 0}));
        let all_old: Vec<Replica> = (0..3).map(|i| replica(i, "web-a", true)).collect();
        assert_eq!(roll_plan(&s, &all_old, "web-b"), [2]);
        let mut one_new = all_old.clone();
        one_new[2] = replica(2, "web-b", false);
        // web-2 updated but not ready yet: wait.
        assert!(roll_plan(&s, &one_new, "web-b").is_empty());
        one_new[2] = replica(2, "web-b", true);
        assert_eq!(roll_plan(&s, &one_new, "web-b"), [1]);
    }

    #[test]
    fn partitions_keep_lower_ordinals() {
        let s = set(json!({"partition": 2}));
        let mut replicas: Vec<Replica> = (0..3).map(|i| replica(i, "web-a", true)).collect();
        assert_eq!(roll_plan(&s, &replicas, "web-b"), [2]);
        replicas[2] = replica(2, "web-b", true);
        assert!(roll_plan(&s, &replicas, "web-b").is_empty());
    }

    #[test]
    fn max_unavailable_deletes_several_at_once() {
        let s = set(json!({"partition": 0, "maxUnavailable": 2}));
        let mut replicas: Vec<Replica> = (0..3).map(|i| replica(i, "web-a", true)).collect();
        assert_eq!(roll_plan(&s, &replicas, "web-b"), [2, 1]);
        replicas[2] = replica(2, "web-b", false);
        assert_eq!(roll_plan(&s, &replicas, "web-b"), [1]);
    }

    #[test]
    fn counts_skip_pods_not_yet_created() {
        let mut status = json!({"currentRevision": "web-a", "updateRevision": "web-b"});
        let mut pending = replica(2, "web-b", false);
        pending.created = false;
        let replicas = [
            replica(0, "web-a", true),
            replica(1, "web-b", false),
            pending,
        ];
        count(&mut status, 0, &replicas);
        assert_eq!(status["replicas"], 2);
        assert_eq!(status["readyReplicas"], 1);
        assert_eq!(status["availableReplicas"], 1);
        assert_eq!(status["currentReplicas"], 1);
        assert_eq!(status["updatedReplicas"], 1);
    }
}
