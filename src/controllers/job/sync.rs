//! One sync of one Job (upstream syncJob and manageJob): count the pods,
//! decide whether the Job has succeeded or failed, create or delete pods,
//! then hand over to `status.rs` to record it all.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::indexes::{self, Intervals};
use super::policy::{self, Action as PolicyAction, BackoffRecord};
use super::status::{self, Cond};
use super::{is_indexed, is_suspended, manage, pods, spec_i64, JobController};
use crate::controllers::objects::{self, uid};
use crate::controllers::runtime::{Action, ObjectKey};
use crate::controllers::Error;

/// What one sync knows and decides.
pub(super) struct State {
    /// The Job as it will be written: its status changes as the sync goes.
    pub job: Value,
    pub pods: Vec<Arc<Value>>,
    /// UIDs in `status.uncountedTerminatedPods` when the sync started.
    pub uncounted_succeeded: HashSet<String>,
    pub uncounted_failed: HashSet<String>,
    /// The condition the Job is heading to, if decided.
    pub finished: Option<Cond>,
    pub active: i64,
    pub ready: i64,
    pub terminating: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub completions: Option<i64>,
    pub prev_succeeded_indexes: Intervals,
    pub succeeded_indexes: Intervals,
    pub backoff: BackoffRecord,
    pub requeue: Option<Duration>,
    pub now: SystemTime,
}

impl State {
    pub fn requeue_after(&mut self, d: Duration) {
        let d = d.max(Duration::from_millis(100));
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    fn policy(&self) -> Option<&Value> {
        self.job
            .get("spec")
            .and_then(|s| s.get("podFailurePolicy"))
            .filter(|p| !p.is_null())
    }

    /// Whether a failed pod counts (the pod failure policy may ignore it).
    pub fn counts_failure(&self, pod: &Value) -> bool {
        self.policy()
            .and_then(|p| policy::match_policy(p, pod))
            .is_none_or(|a| a.counts())
    }

    /// Whether a pod has the tracking finalizer and, for Indexed Jobs, a
    /// valid index: only those are counted.
    fn countable(&self, pod: &Value) -> bool {
        pods::has_finalizer(pod) && self.valid_index(pod)
    }

    pub fn valid_index(&self, pod: &Value) -> bool {
        !is_indexed(&self.job)
            || indexes::completion_index(pod)
                .zip(self.completions)
                .is_some_and(|(ix, c)| ix < c)
    }
}

pub(super) async fn run(
    ctl: &JobController,
    key: &ObjectKey,
    job: &Arc<Value>,
) -> Result<Action, Error> {
    let selector = objects::spec_selector(job)?;
    let owned = pods::claim(&ctl.client, job, &selector).await?;
    let mut job_copy = (**job).clone();
    if !job_copy.get("status").is_some_and(Value::is_object) {
        job_copy["status"] = json!({});
    }
    let uncounted = |kind: &str| -> HashSet<String> {
        job.get("status")
            .and_then(|s| s.get("uncountedTerminatedPods"))
            .and_then(|u| u.get(kind))
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let status_i64 = |f: &str| {
        job.get("status")
            .and_then(|s| s.get(f))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut st = State {
        job: job_copy,
        uncounted_succeeded: uncounted("succeeded"),
        uncounted_failed: uncounted("failed"),
        finished: None,
        active: 0,
        ready: 0,
        terminating: owned.iter().filter(|p| pods::is_terminating(p)).count() as i64,
        succeeded: 0,
        failed: 0,
        completions: spec_i64(job, "completions"),
        prev_succeeded_indexes: Intervals::default(),
        succeeded_indexes: Intervals::default(),
        backoff: BackoffRecord::default(),
        requeue: None,
        now: SystemTime::now(),
        pods: owned,
    };
    let active: Vec<Arc<Value>> = st
        .pods
        .iter()
        .filter(|p| objects::pod_is_active(p))
        .cloned()
        .collect();
    st.active = active.len() as i64;
    st.ready = active.iter().filter(|p| objects::pod_is_ready(p)).count() as i64;

    let new_succeeded: Vec<&Arc<Value>> = st
        .pods
        .iter()
        .filter(|p| {
            st.countable(p) && !st.uncounted_succeeded.contains(uid(p)) && pods::is_succeeded(p)
        })
        .collect();
    let new_failed: Vec<&Arc<Value>> = st
        .pods
        .iter()
        .filter(|p| {
            st.countable(p) && !st.uncounted_failed.contains(uid(p)) && pods::is_failed(p, job)
        })
        .collect();
    st.succeeded =
        status_i64("succeeded") + new_succeeded.len() as i64 + st.uncounted_succeeded.len() as i64;
    st.failed = status_i64("failed")
        + new_failed.iter().filter(|p| st.counts_failure(p)).count() as i64
        + st.uncounted_failed.len() as i64;
    let times = |list: &[&Arc<Value>]| {
        list.iter()
            .map(|p| policy::finished_time(p))
            .collect::<Vec<_>>()
    };
    st.backoff = ctl
        .backoff
        .get(&key.to_string())
        .with_finished(&times(&new_succeeded), &times(&new_failed));

    let suspended = is_suspended(job);
    if objects::time_at(job, &["status", "startTime"]).is_none() && !suspended {
        st.job["status"]["startTime"] = json!(objects::timestamp(st.now));
    }
    decide_failure(&mut st, suspended);
    if is_indexed(job) {
        if let Some(completions) = st.completions {
            let prev = job
                .get("status")
                .and_then(|s| s.get("completedIndexes"))
                .and_then(Value::as_str)
                .unwrap_or("");
            st.prev_succeeded_indexes = Intervals::parse(prev, completions);
            let fresh: Vec<i64> = st
                .pods
                .iter()
                .filter(|p| pods::is_succeeded(p) && pods::has_finalizer(p) && st.valid_index(p))
                .filter_map(|p| indexes::completion_index(p))
                .collect();
            st.succeeded_indexes = st.prev_succeeded_indexes.with_indexes(fresh);
            st.succeeded = st.succeeded_indexes.total();
        }
    }

    let mut manage_error = None;
    if st.finished.is_some() {
        let victims: Vec<&Arc<Value>> = active.iter().collect();
        let (deleted, err) = pods::delete(&ctl.client, &ctl.recorder, job, &victims, false).await;
        if deleted != victims.len() {
            // Not finished until every pod is accounted for.
            st.finished = None;
        }
        let deleted_ready = victims
            .iter()
            .take(deleted)
            .filter(|p| objects::pod_is_ready(p))
            .count();
        st.active -= deleted as i64;
        st.terminating += deleted as i64;
        st.ready -= deleted_ready as i64;
        manage_error = err;
    } else {
        let mut managed = false;
        if !objects::is_deleting(job) {
            manage_error = manage::manage(ctl, &mut st, &active).await.err();
            managed = true;
        }
        let complete = match st.completions {
            None => st.succeeded > 0 && st.active == 0,
            Some(c) => st.succeeded >= c && st.active == 0,
        };
        if complete {
            st.finished = Some(Cond::new(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
        } else if managed {
            suspend_condition(ctl, &mut st, suspended);
        }
    }
    st.job["status"]["active"] = json!(st.active);
    st.job["status"]["ready"] = json!(st.ready);
    st.job["status"]["terminating"] = json!(st.terminating);
    status::track(ctl, key, &mut st, job).await?;
    if let Some(e) = manage_error {
        return Err(e);
    }
    Ok(st.requeue.map_or(Action::Done, Action::RequeueAfter))
}

/// Failure decisions in upstream's order: a recorded target, the pod
/// failure policy, the backoff limit, the active deadline.
fn decide_failure(st: &mut State, suspended: bool) {
    let job = &st.job;
    if let Some(c) = true_condition(job, "SuccessCriteriaMet") {
        st.finished = Some(c);
        return;
    }
    if let Some(c) = true_condition(job, "FailureTarget") {
        st.finished = Some(Cond {
            kind: "Failed".into(),
            ..c
        });
        return;
    }
    if let Some(policy) = st.policy() {
        let message = st
            .pods
            .iter()
            .filter(|p| pods::is_failed(p, job))
            .find_map(|p| match policy::match_policy(policy, p) {
                Some(PolicyAction::FailJob(m)) => Some(m),
                _ => None,
            });
        if let Some(m) = message {
            st.finished = Some(Cond::new("FailureTarget", "PodFailurePolicy", &m));
            return;
        }
    }
    let backoff_limit = spec_i64(job, "backoffLimit").unwrap_or(6);
    if st.failed > backoff_limit || past_backoff_limit_on_failure(job, &st.pods, backoff_limit) {
        st.finished = Some(Cond::new(
            "FailureTarget",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
        return;
    }
    let (Some(deadline), Some(started)) = (
        spec_i64(job, "activeDeadlineSeconds"),
        objects::time_at(job, &["status", "startTime"]),
    ) else {
        return;
    };
    if suspended {
        return;
    }
    let allowed = Duration::from_secs(deadline.max(0) as u64);
    let ran = st.now.duration_since(started).unwrap_or_default();
    if ran >= allowed {
        st.finished = Some(Cond::new(
            "FailureTarget",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ));
    } else {
        st.requeue_after(allowed - ran);
    }
}

fn true_condition(job: &Value, kind: &str) -> Option<Cond> {
    let c = objects::condition(job, kind).filter(|_| objects::condition_is_true(job, kind))?;
    let text = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    Some(Cond {
        kind: kind.to_string(),
        reason: text("reason"),
        message: text("message"),
    })
}

/// With restartPolicy OnFailure failures are container restarts of
/// running pods: their sum reaching the backoff limit fails the Job.
pub fn past_backoff_limit_on_failure(job: &Value, pods: &[Arc<Value>], limit: i64) -> bool {
    let policy = job
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str);
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(objects::pod_phase(p), "Running" | "Pending"))
        .flat_map(|p| {
            ["initContainerStatuses", "containerStatuses"]
                .into_iter()
                .filter_map(|k| {
                    p.get("status")
                        .and_then(|s| s.get(k))
                        .and_then(Value::as_array)
                })
                .flatten()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .collect::<Vec<_>>()
        })
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// The Suspended condition follows `spec.suspend`; resuming restarts the
/// active deadline clock.
fn suspend_condition(ctl: &JobController, st: &mut State, suspended: bool) {
    let now = objects::timestamp(st.now);
    let status = &mut st.job["status"];
    if suspended {
        if status::ensure_condition(
            status,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            &now,
        ) {
            ctl.recorder.normal(&st.job, "Suspended", "Job suspended");
        }
    } else if status::ensure_condition(
        status,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        &now,
    ) {
        st.job["status"]["startTime"] = json!(now);
        ctl.recorder.normal(&st.job, "Resumed", "Job resumed");
    }
}
