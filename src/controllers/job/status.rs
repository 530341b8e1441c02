//! Recording a sync (upstream trackJobStatusAndRemoveFinalizers): finished
//! pods go into `status.uncountedTerminatedPods` (written first), then lose
//! their finalizer, then move into the `succeeded`/`failed` counters — so a
//! pod is counted once even if the controller stops between any two steps.
//! The terminal condition is added once nothing is uncounted or terminating.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::indexes;
use super::sync::State;
use super::{is_indexed, jobs, pods, JobController};
use crate::client::Client;
use crate::controllers::objects::{self, uid};
use crate::controllers::runtime::ObjectKey;
use crate::controllers::Error;

/// UIDs added to the uncounted lists per sync at most (keeps the status small).
const MAX_UNCOUNTED: usize = 500;

/// A Job condition to set (status True).
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub kind: String,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(kind: &str, reason: &str, message: &str) -> Self {
        Cond {
            kind: kind.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Sets condition `kind` (upstream ensureJobConditionStatus): a missing one
/// is only added when not False; returns whether anything changed.
pub fn ensure_condition(
    status: &mut Value,
    kind: &str,
    state: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    let fresh = json!({"type": kind, "status": state, "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now});
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return false;
    };
    let text = |c: &Value, f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(c) = list.iter_mut().find(|c| text(c, "type") == kind) {
        if text(c, "status") != state
            || text(c, "reason") != reason
            || text(c, "message") != message
        {
            *c = fresh;
            return true;
        }
        return false;
    }
    if state != "False" {
        list.push(fresh);
        return true;
    }
    false
}

fn uncounted_list(status: &Value, kind: &str) -> Vec<String> {
    status
        .get("uncountedTerminatedPods")
        .and_then(|u| u.get(kind))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn set_uncounted(status: &mut Value, succeeded: &[String], failed: &[String]) {
    let mut u = Map::new();
    if !succeeded.is_empty() {
        u.insert("succeeded".into(), json!(succeeded));
    }
    if !failed.is_empty() {
        u.insert("failed".into(), json!(failed));
    }
    status["uncountedTerminatedPods"] = Value::Object(u);
}

/// Moves uncounted UIDs of pods that no longer have the finalizer into the
/// counters; returns whether anything moved.
fn count_released(status: &mut Value, with_finalizer: &HashSet<String>) -> bool {
    let mut changed = false;
    let mut lists = Vec::new();
    for (kind, counter) in [("succeeded", "succeeded"), ("failed", "failed")] {
        let all = uncounted_list(status, kind);
        let (keep, gone): (Vec<String>, Vec<String>) =
            all.into_iter().partition(|u| with_finalizer.contains(u));
        if !gone.is_empty() {
            changed = true;
            let n = status.get(counter).and_then(Value::as_i64).unwrap_or(0);
            status[counter] = json!(n + gone.len() as i64);
        }
        lists.push(keep);
    }
    set_uncounted(status, &lists[0], &lists[1]);
    changed
}

/// Status equality ignoring what the API may leave out (zero counts, empty
/// lists and objects, nulls).
pub fn same_status(a: &Value, b: &Value) -> bool {
    fn trimmed(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), trimmed(v)))
                    .filter(|(_, v)| !is_empty(v))
                    .collect(),
            ),
            Value::Array(l) => Value::Array(l.iter().map(trimmed).collect()),
            other => other.clone(),
        }
    }
    fn is_empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Number(n) => n.as_i64() == Some(0),
            Value::String(s) => s.is_empty(),
            Value::Array(l) => l.is_empty(),
            Value::Object(m) => m.is_empty(),
            Value::Bool(_) => false,
        }
    }
    trimmed(a) == trimmed(b)
}

pub(super) async fn track(
    ctl: &JobController,
    key: &ObjectKey,
    st: &mut State,
    original: &Value,
) -> Result<(), Error> {
    let indexed = is_indexed(&st.job);
    let mut pods_sorted: Vec<Arc<Value>> = st.pods.clone();
    if indexed {
        pods_sorted.sort_by_key(|p| indexes::completion_index(p).unwrap_or(i64::MAX));
    }
    let mut with_finalizer: HashSet<String> = pods_sorted
        .iter()
        .filter(|p| pods::has_finalizer(p))
        .map(|p| uid(p).to_string())
        .collect();
    count_released(&mut st.job["status"], &with_finalizer);
    let mut add_succeeded = uncounted_list(&st.job["status"], "succeeded");
    let mut add_failed = uncounted_list(&st.job["status"], "failed");
    let mut new_indexes = Vec::new();
    let mut to_release: Vec<&Arc<Value>> = Vec::new();
    let failing_job = st
        .finished
        .as_ref()
        .is_some_and(|c| c.kind != "SuccessCriteriaMet");
    for pod in &pods_sorted {
        if !pods::has_finalizer(pod) {
            continue;
        }
        let failed = pods::is_failed(pod, &st.job);
        let succeeded = pods::is_succeeded(pod);
        let job_ending = objects::is_deleting(&st.job) || st.finished.is_some();
        if !(job_ending || succeeded || failed) {
            continue;
        }
        to_release.push(pod);
        let id = uid(pod).to_string();
        if succeeded && !st.uncounted_failed.contains(&id) {
            if indexed {
                if let Some(ix) = indexes::completion_index(pod).filter(|_| st.valid_index(pod)) {
                    if !st.prev_succeeded_indexes.has(ix) {
                        new_indexes.push(ix);
                    }
                }
            } else if !st.uncounted_succeeded.contains(&id) {
                add_succeeded.push(id);
            }
        } else if (failed || failing_job)
            && !st.uncounted_failed.contains(&id)
            && st.valid_index(pod)
            && st.counts_failure(pod)
        {
            add_failed.push(id);
        }
        if new_indexes.len() + add_succeeded.len() + add_failed.len() >= MAX_UNCOUNTED {
            break;
        }
    }
    set_uncounted(&mut st.job["status"], &add_succeeded, &add_failed);
    if indexed {
        st.succeeded_indexes = st.succeeded_indexes.with_indexes(new_indexes);
        st.job["status"]["succeeded"] = json!(st.succeeded_indexes.total());
        st.job["status"]["completedIndexes"] = json!(st.succeeded_indexes.to_string());
    }
    let now = objects::timestamp(st.now);
    let mut final_cond = st.finished.clone();
    if let Some(c) = st.finished.clone() {
        let interim = match c.kind.as_str() {
            "FailureTarget" => Some("Failed"),
            "SuccessCriteriaMet" => Some("Complete"),
            _ => None,
        };
        if let Some(final_kind) = interim {
            ensure_condition(
                &mut st.job["status"],
                &c.kind,
                "True",
                &c.reason,
                &c.message,
                &now,
            );
            final_cond = Some(Cond {
                kind: final_kind.into(),
                ..c
            });
        }
    }
    // 1: record what is about to be counted.
    let old_status = original.get("status").cloned().unwrap_or_else(|| json!({}));
    if !same_status(&old_status, &st.job["status"]) {
        write(ctl, st).await?;
    }
    ctl.backoff.set(&key.to_string(), st.backoff.clone());
    // 2: release the pods; 3: count those released.
    let (done, rm_error) = pods::remove_finalizers(&ctl.client, &to_release).await;
    for (pod, ok) in to_release.iter().zip(&done) {
        if *ok {
            with_finalizer.remove(uid(pod));
        }
    }
    let before = st.job["status"].clone();
    count_released(&mut st.job["status"], &with_finalizer);
    let finished = rm_error.is_none() && final_cond.as_ref().is_some_and(|c| enact(st, c, &now));
    if !same_status(&before, &st.job["status"]) {
        write(ctl, st).await?;
        if finished {
            if let Some(c) = &final_cond {
                record_finished(ctl, st, c);
            }
        }
    }
    tracing::debug!(job = %key, "job status tracked");
    rm_error.map_or(Ok(()), Err)
}

/// Adds the terminal condition once every pod is counted and none is
/// still terminating.
fn enact(st: &mut State, cond: &Cond, now: &str) -> bool {
    let status = &st.job["status"];
    if !uncounted_list(status, "succeeded").is_empty()
        || !uncounted_list(status, "failed").is_empty()
    {
        return false;
    }
    if st.terminating > 0 {
        return false;
    }
    ensure_condition(
        &mut st.job["status"],
        &cond.kind,
        "True",
        &cond.reason,
        &cond.message,
        now,
    );
    if cond.kind == "Complete" {
        st.job["status"]["completionTime"] = json!(now);
    }
    true
}

fn record_finished(ctl: &JobController, st: &State, cond: &Cond) {
    let job = &st.job;
    if cond.kind == "Complete" {
        let succeeded = job["status"]["succeeded"].as_i64().unwrap_or(0);
        if st.completions.is_some_and(|c| succeeded > c) {
            ctl.recorder.warning(
                job,
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached",
            );
        }
        ctl.recorder.normal(job, "Completed", "Job completed");
    } else {
        ctl.recorder.warning(job, &cond.reason, &cond.message);
    }
    tracing::info!(job = %format!("{}/{}", objects::namespace(job), objects::name(job)),
        condition = %cond.kind, reason = %cond.reason, "job finished");
}

async fn write(ctl: &JobController, st: &mut State) -> Result<(), Error> {
    let ns = objects::namespace(&st.job).to_string();
    let name = objects::name(&st.job).to_string();
    let status = st.job["status"].clone();
    let stored = ctl
        .client
        .update(&jobs(), Some(&ns), &name, st.job.clone(), Some("status"))
        .await?;
    // Keep our view of the status; take the new resourceVersion.
    st.job = stored;
    st.job["status"] = status;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_added_changed_or_left() {
        let mut s = json!({});
        assert!(!ensure_condition(
            &mut s,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            "t0"
        ));
        assert!(ensure_condition(
            &mut s,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            "t0"
        ));
        assert!(!ensure_condition(
            &mut s,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            "t1"
        ));
        assert!(ensure_condition(
            &mut s,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            "t2"
        ));
        assert_eq!(s["conditions"].as_array().map(Vec::len), Some(1));
        assert_eq!(s["conditions"][0]["lastTransitionTime"], "t2");
    }

    #[test]
    fn released_pods_move_from_uncounted_to_counters() {
        let mut s = json!({"succeeded": 2, "uncountedTerminatedPods": {
            "succeeded": ["a", "b"], "failed": ["c"]}});
        let still: HashSet<String> = ["b".to_string()].into();
        assert!(count_released(&mut s, &still));
        assert_eq!(s["succeeded"], 3);
        assert_eq!(s["failed"], 1);
        assert_eq!(s["uncountedTerminatedPods"], json!({"succeeded": ["b"]}));
        assert!(!count_released(&mut s, &still));
    }

    #[test]
    fn zero_counts_and_empty_lists_compare_equal_to_missing() {
        let a = json!({"active": 2, "uncountedTerminatedPods": {}, "ready": 0});
        let b = json!({"active": 2});
        assert!(same_status(&a, &b));
        assert!(!same_status(&a, &json!({"active": 1})));
    }
}
