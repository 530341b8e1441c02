//! The TTL-after-finished controller: deletes a finished Job
//! `spec.ttlSecondsAfterFinished` seconds after its Complete or Failed
//! condition, waking exactly at expiry. As upstream, the deletion is
//! Foreground (the Job goes after its pods) and pinned to the Job's uid.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::job::{is_finished, jobs};
use super::objects::{self, is_deleting, name, uid};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, DeleteOptions, Local};

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), jobs(), None, move |_, job| {
            if needs_cleanup(job) {
                if let Some(k) = ObjectKey::of(job) {
                    q.add(k);
                }
            }
        });
    }
    let controller = Arc::new(TtlController {
        client: ctx.client.clone(),
    });
    runtime::run("ttl-after-finished", queue, controller, 2);
}

fn ttl(job: &Value) -> Option<i64> {
    job.get("spec")?.get("ttlSecondsAfterFinished")?.as_i64()
}

fn needs_cleanup(job: &Value) -> bool {
    ttl(job).is_some() && is_finished(job) && !is_deleting(job)
}

/// When the Job finished: the transition time of its true Complete or
/// Failed condition.
fn finish_time(job: &Value) -> Result<SystemTime, Error> {
    let conditions = job
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array);
    let finished = conditions.into_iter().flatten().find(|c| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("Complete" | "Failed")
        ) && c.get("status").and_then(Value::as_str) == Some("True")
    });
    let Some(c) = finished else {
        return Err(Error::Invalid(format!(
            "unable to find the status of the finished Job {}/{}",
            objects::namespace(job),
            name(job)
        )));
    };
    objects::time_at(c, &["lastTransitionTime"]).ok_or_else(|| {
        Error::Invalid(format!(
            "unable to find the time when the Job {}/{} finished",
            objects::namespace(job),
            name(job)
        ))
    })
}

/// How long until the Job expires (zero when it already has); None when it
/// needs no cleanup.
fn time_left(job: &Value, now: SystemTime) -> Result<Option<Duration>, Error> {
    let Some(secs) = ttl(job).filter(|_| needs_cleanup(job)) else {
        return Ok(None);
    };
    let expires = finish_time(job)? + Duration::from_secs(secs.max(0) as u64);
    Ok(Some(expires.duration_since(now).unwrap_or_default()))
}

struct TtlController {
    client: Local,
}

impl Reconciler for TtlController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        // A consistent read: the TTL may have changed since the event.
        let job = match self.client.get(&jobs(), key.ns(), &key.name).await {
            Ok(j) => j,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        match time_left(&job, SystemTime::now())? {
            None => Ok(Action::Done),
            Some(left) if !left.is_zero() => Ok(Action::RequeueAfter(left)),
            Some(_) => {
                let opts = DeleteOptions {
                    propagation_policy: Some("Foreground".into()),
                    precondition_uid: Some(uid(&job).to_string()),
                    ..Default::default()
                };
                match self
                    .client
                    .delete(&jobs(), key.ns(), &key.name, &opts)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(job = %key, "deleted finished job past its ttl");
                        Ok(Action::Done)
                    }
                    Err(e) if e.is_not_found() || e.is_conflict() => Ok(Action::Done),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(ttl: Option<i64>, cond: &str, at: &str) -> Value {
        json!({"metadata": {"name": "j", "namespace": "ns"},
            "spec": {"ttlSecondsAfterFinished": ttl},
            "status": {"conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": cond, "status": "True", "lastTransitionTime": at}]}})
    }

    #[test]
    fn expiry_counts_from_the_terminal_condition() {
        let at = objects::parse_time("2024-01-01T00:00:10Z").unwrap();
        let j = job(Some(30), "Complete", "2024-01-01T00:00:10Z");
        assert_eq!(time_left(&j, at).unwrap(), Some(Duration::from_secs(30)));
        let later = at + Duration::from_secs(25);
        assert_eq!(time_left(&j, later).unwrap(), Some(Duration::from_secs(5)));
        let past = at + Duration::from_secs(99);
        assert_eq!(time_left(&j, past).unwrap(), Some(Duration::ZERO));
        let failed = job(Some(0), "Failed", "2024-01-01T00:00:10Z");
        assert_eq!(time_left(&failed, at).unwrap(), Some(Duration::ZERO));
    }

    #[test]
    fn unfinished_or_ttl_less_jobs_are_left_alone() {
        let at = SystemTime::now();
        assert_eq!(
            time_left(&job(None, "Complete", "2024-01-01T00:00:10Z"), at).unwrap(),
            None
        );
        assert_eq!(
            time_left(&job(Some(5), "Suspended", "2024-01-01T00:00:10Z"), at).unwrap(),
            None
        );
        let mut deleting = job(Some(5), "Complete", "2024-01-01T00:00:10Z");
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:20Z");
        assert_eq!(time_left(&deleting, at).unwrap(), None);
    }
}
