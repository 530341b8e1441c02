//! The CronJob controller (upstream cronjob_controllerv2): creates a Job
//! named `<cronjob>-<minutes since epoch>` at each scheduled time, honours
//! the concurrency policy, starting deadline and suspension, tracks active
//! Jobs in status, prunes finished Jobs beyond the history limits, and
//! sleeps until the next scheduled time (nothing is written meanwhile).

mod fields;
mod missed;
mod schedule;

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

use super::job::{is_finished, jobs, same_status};
use super::objects::{self, condition_is_true, name, uid};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, DeleteOptions, ListOptions, Local, Recorder, ResourceId};
use fields::{
    active_refs, in_active, job_from_template, remove_active, rfc3339, spec, timestamp_at,
};
use missed::Missed;

const WORKERS: usize = 2;

fn cronjobs() -> ResourceId {
    ResourceId::new("batch", "v1", "cronjobs")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), cronjobs(), None, move |_, cj| {
            if let Some(k) = ObjectKey::of(cj) {
                q.add(k);
            }
        });
    }
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), jobs(), None, move |_, job| {
            let Some(owner) = objects::controller_ref(job) else {
                return;
            };
            if owner.get("kind").and_then(Value::as_str) == Some("CronJob") {
                if let Some(n) = owner.get("name").and_then(Value::as_str) {
                    q.add(ObjectKey::new(objects::namespace(job), n));
                }
            }
        });
    }
    let controller = Arc::new(CronJobController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("cronjob-controller"),
    });
    runtime::run("cronjob", queue, controller, WORKERS);
}

struct CronJobController {
    client: Local,
    recorder: Recorder,
}

impl Reconciler for CronJobController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let cj = match self.client.get(&cronjobs(), key.ns(), &key.name).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let list = self
            .client
            .list(&jobs(), key.ns(), &ListOptions::default())
            .await?;
        let children: Vec<Arc<Value>> = list
            .items
            .into_iter()
            .filter(|j| objects::is_controlled_by(j, uid(&cj)))
            .collect();
        let mut copy = (*cj).clone();
        if !copy.get("status").is_some_and(Value::is_object) {
            copy["status"] = json!({});
        }
        let outcome = self.sync(&mut copy, &children).await;
        self.cleanup(&mut copy, &children).await;
        let old = cj.get("status").cloned().unwrap_or_else(|| json!({}));
        if !same_status(&old, &copy["status"]) {
            self.client
                .update(&cronjobs(), key.ns(), &key.name, copy, Some("status"))
                .await?;
        }
        match outcome? {
            Some(wait) => Ok(Action::RequeueAfter(wait)),
            None => Ok(Action::Done),
        }
    }
}

impl CronJobController {
    /// Upstream syncCronJob; returns when to look again.
    async fn sync(
        &self,
        cj: &mut Value,
        children: &[Arc<Value>],
    ) -> Result<Option<Duration>, Error> {
        for job in children {
            let found = in_active(cj, uid(job));
            if !found && !is_finished(job) {
                self.recorder.warning(
                    cj,
                    "UnexpectedJob",
                    &format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        name(job)
                    ),
                );
            } else if found && is_finished(job) {
                let condition = if condition_is_true(job, "Complete") {
                    "Complete"
                } else {
                    "Failed"
                };
                remove_active(cj, uid(job));
                self.recorder.normal(
                    cj,
                    "SawCompletedJob",
                    &format!("Saw completed job: {}, condition: {condition}", name(job)),
                );
            } else if condition_is_true(job, "Complete") {
                let done = timestamp_at(job, &["status", "completionTime"]);
                let last = timestamp_at(cj, &["status", "lastSuccessfulTime"]);
                if let Some(done) = done.filter(|d| last.is_none_or(|l| *d > l)) {
                    cj["status"]["lastSuccessfulTime"] = json!(rfc3339(done));
                }
            }
        }
        for r in active_refs(cj) {
            let job_uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            if children.iter().any(|j| uid(j) == job_uid) {
                continue;
            }
            let job_name = r.get("name").and_then(Value::as_str).unwrap_or("");
            match self
                .client
                .get(&jobs(), Some(objects::namespace(cj)), job_name)
                .await
            {
                Err(e) if e.is_not_found() => {
                    self.recorder.normal(
                        cj,
                        "MissingJob",
                        &format!("Active job went missing: {job_name}"),
                    );
                    remove_active(cj, job_uid);
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        if objects::is_deleting(cj) {
            return Ok(None);
        }
        let tz = match spec(cj, "timeZone").and_then(Value::as_str) {
            Some(zone) => match TimeZone::get(zone) {
                Ok(tz) => tz,
                Err(e) => {
                    self.recorder.warning(
                        cj,
                        "UnknownTimeZone",
                        &format!("invalid timeZone: {zone:?}: {e}"),
                    );
                    return Ok(None);
                }
            },
            None => TimeZone::system(),
        };
        if spec(cj, "suspend").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        let text = spec(cj, "schedule").and_then(Value::as_str).unwrap_or("");
        let sched = match schedule::parse(text, tz) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "UnparseableSchedule",
                    &format!("unparseable schedule: {text:?} : {e}"),
                );
                return Ok(None);
            }
        };
        let now = Timestamp::now();
        let earliest = timestamp_at(cj, &["status", "lastScheduleTime"])
            .or_else(|| timestamp_at(cj, &["metadata", "creationTimestamp"]))
            .unwrap_or(now);
        let deadline = spec(cj, "startingDeadlineSeconds").and_then(Value::as_i64);
        let due = match missed::most_recent(&sched, earliest, now, deadline) {
            Ok(d) => d,
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "InvalidSchedule",
                    &format!("invalid schedule: {text} : {e}"),
                );
                return Ok(None);
            }
        };
        let next = |cj: &Value| {
            let earliest = timestamp_at(cj, &["status", "lastScheduleTime"]).unwrap_or(earliest);
            missed::until_next(&sched, earliest, now)
        };
        let Some(scheduled) = due.most_recent else {
            return Ok(next(cj));
        };
        if due.missed == Missed::Many {
            self.recorder.warning(
                cj,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            );
        }
        if deadline.is_some_and(|d| scheduled.as_second() + d < now.as_second()) {
            let when = scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000");
            self.recorder.warning(
                cj,
                "MissSchedule",
                &format!("Missed scheduled time to start a job: {when}"),
            );
            return Ok(next(cj));
        }
        let job_name = format!("{}-{}", name(cj), scheduled.as_second().div_euclid(60));
        let already = active_refs(cj)
            .iter()
            .any(|r| r.get("name").and_then(Value::as_str) == Some(job_name.as_str()))
            || timestamp_at(cj, &["status", "lastScheduleTime"]) == Some(scheduled);
        if already {
            return Ok(next(cj));
        }
        let policy = spec(cj, "concurrencyPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Allow");
        if policy == "Forbid" && !active_refs(cj).is_empty() {
            self.recorder.normal(
                cj,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            );
            return Ok(next(cj));
        }
        if policy == "Replace" {
            for r in active_refs(cj) {
                let n = r.get("name").and_then(Value::as_str).unwrap_or("");
                let job = match self
                    .client
                    .get(&jobs(), Some(objects::namespace(cj)), n)
                    .await
                {
                    Ok(j) => j,
                    Err(e) => {
                        self.recorder
                            .warning(cj, "FailedGet", &format!("Get job: {e}"));
                        return Err(e.into());
                    }
                };
                if !self.delete_job(cj, &job).await {
                    return Err(Error::Invalid(format!(
                        "could not replace job {}/{}",
                        objects::namespace(&job),
                        name(&job)
                    )));
                }
            }
        }
        let body = job_from_template(cj, &job_name, scheduled);
        let ns = objects::namespace(cj).to_string();
        let created = match self.client.create(&jobs(), Some(&ns), body).await {
            Ok(j) => {
                self.recorder
                    .normal(cj, "SuccessfulCreate", &format!("Created job {}", name(&j)));
                tracing::info!(cronjob = %format!("{ns}/{}", name(cj)), job = name(&j), "created job");
                j
            }
            Err(e) if e.is_already_exists() => {
                let j = (*self.client.get(&jobs(), Some(&ns), &job_name).await?).clone();
                if !objects::is_controlled_by(&j, uid(cj)) || in_active(cj, uid(&j)) {
                    return Ok(None);
                }
                j
            }
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedCreate", &format!("Error creating job: {e}"));
                return Err(e.into());
            }
        };
        let mut refs = active_refs(cj);
        refs.push(
            json!({"apiVersion": "batch/v1", "kind": "Job", "namespace": ns,
            "name": name(&created), "uid": uid(&created),
            "resourceVersion": objects::meta_str(&created, "resourceVersion")}),
        );
        cj["status"]["active"] = Value::Array(refs);
        cj["status"]["lastScheduleTime"] = json!(rfc3339(scheduled));
        Ok(next(cj))
    }

    /// Deletes a Job (and, in the background, its pods); drops it from
    /// the active list. Returns whether it went.
    async fn delete_job(&self, cj: &mut Value, job: &Value) -> bool {
        let opts = DeleteOptions {
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        let ns = Some(objects::namespace(job));
        match self.client.delete(&jobs(), ns, name(job), &opts).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedDelete", &format!("Deleted job: {e}"));
                return false;
            }
        }
        remove_active(cj, uid(job));
        self.recorder.normal(
            cj,
            "SuccessfulDelete",
            &format!("Deleted job {}", name(job)),
        );
        true
    }

    /// Keeps the newest finished Jobs within the history limits.
    async fn cleanup(&self, cj: &mut Value, children: &[Arc<Value>]) {
        for (limit_field, condition) in [
            ("successfulJobsHistoryLimit", "Complete"),
            ("failedJobsHistoryLimit", "Failed"),
        ] {
            let Some(limit) = spec(cj, limit_field).and_then(Value::as_i64) else {
                continue;
            };
            let mut finished: Vec<&Arc<Value>> = children
                .iter()
                .filter(|j| !objects::is_deleting(j) && condition_is_true(j, condition))
                .collect();
            let excess = finished.len().saturating_sub(limit.max(0) as usize);
            if excess == 0 {
                continue;
            }
            // Oldest first: by start time (unstarted last), then name.
            finished.sort_by_key(|j| {
                let start = timestamp_at(j, &["status", "startTime"]);
                (start.is_none(), start, name(j).to_string())
            });
            for job in finished.into_iter().take(excess) {
                self.delete_job(cj, job).await;
            }
        }
    }
}
