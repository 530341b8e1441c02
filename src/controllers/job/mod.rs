//! The Job controller: runs pods from a Job's template until enough of
//! them succeed (or too many fail, or a deadline passes), counting each
//! finished pod exactly once with the `batch.kubernetes.io/job-tracking`
//! finalizer and `status.uncountedTerminatedPods`, as upstream.
//! `pods.rs` creates and deletes pods, `status.rs` counts them and writes
//! the status, `policy.rs` has the pod failure policy and failure backoff,
//! `indexes.rs` the completion indexes of Indexed Jobs.

mod indexes;
mod manage;
mod pods;
mod policy;
mod status;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::objects::{self, condition_is_true};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};
use policy::BackoffStore;
pub(crate) use status::same_status;

const WORKERS: usize = 4;
/// Pod changes of one Job within this window make one sync (upstream
/// syncJobBatchPeriod).
const POD_BATCH: Duration = Duration::from_secs(1);
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";

pub fn jobs() -> ResourceId {
    ResourceId::new("batch", "v1", "jobs")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), jobs(), None, move |_, job| {
            if let Some(k) = ObjectKey::of(job) {
                q.add(k);
            }
        });
    }
    {
        let q = Arc::clone(&queue);
        runtime::watch(
            ctx.client.clone(),
            pods::pods(),
            None,
            move |change, pod| on_pod(&q, change, pod),
        );
    }
    let controller = Arc::new(JobController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("job-controller"),
        backoff: BackoffStore::default(),
    });
    runtime::run("job", queue, controller, WORKERS);
}

/// A pod change queues its Job; an orphan names its Job by label.
fn on_pod(queue: &Arc<WorkQueue<ObjectKey>>, change: Change, pod: &Arc<Value>) {
    let ns = objects::namespace(pod);
    let job = match objects::controller_ref(pod) {
        Some(r) if r.get("kind").and_then(Value::as_str) == Some("Job") => {
            r.get("name").and_then(Value::as_str)
        }
        Some(_) => return,
        None => objects::labels(pod)
            .and_then(|l| l.get(NAME_LABEL))
            .and_then(Value::as_str),
    };
    let Some(job) = job else { return };
    let key = ObjectKey::new(ns, job);
    if change == Change::Deleted || change == Change::Added {
        queue.add(key);
    } else {
        queue.add_after(key, POD_BATCH);
    }
}

pub(crate) struct JobController {
    client: Local,
    recorder: Recorder,
    backoff: BackoffStore,
}

impl Reconciler for JobController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let job = match self.client.get(&jobs(), key.ns(), &key.name).await {
            Ok(j) => j,
            Err(e) if e.is_not_found() => {
                self.backoff.remove(&key.to_string());
                self.release_orphans(key).await?;
                return Ok(Action::Done);
            }
            Err(e) => return Err(e.into()),
        };
        if is_finished(&job) {
            self.backoff.remove(&key.to_string());
            self.release_finished(&job).await?;
            return Ok(Action::Done);
        }
        tracing::debug!(job = %key, "syncing job");
        sync::run(self, key, &job).await
    }
}

impl JobController {
    /// Drops the tracking finalizer of pods whose Job is gone (upstream
    /// handles these as orphan pods).
    async fn release_orphans(&self, key: &ObjectKey) -> Result<(), Error> {
        let selector = LabelSelector::parse(&format!("{NAME_LABEL}={}", key.name))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let opts = ListOptions {
            label_selector: selector,
            ..Default::default()
        };
        let list = self.client.list(&pods::pods(), key.ns(), &opts).await?;
        let stranded: Vec<&Arc<Value>> = list
            .items
            .iter()
            .filter(|p| pods::has_finalizer(p))
            .filter(|p| {
                objects::controller_ref(p).is_none_or(|r| {
                    r.get("kind").and_then(Value::as_str) == Some("Job")
                        && r.get("name").and_then(Value::as_str) == Some(key.name.as_str())
                })
            })
            .collect();
        match pods::remove_finalizers(&self.client, &stranded).await.1 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A finished Job's pods keep no finalizer (all were counted).
    async fn release_finished(&self, job: &Value) -> Result<(), Error> {
        let selector = objects::spec_selector(job)?;
        let owned = pods::claim(&self.client, job, &selector).await?;
        let stranded: Vec<&Arc<Value>> = owned.iter().filter(|p| pods::has_finalizer(p)).collect();
        match pods::remove_finalizers(&self.client, &stranded).await.1 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Complete or Failed (upstream IsJobFinished).
pub fn is_finished(job: &Value) -> bool {
    condition_is_true(job, "Complete") || condition_is_true(job, "Failed")
}

pub fn is_indexed(job: &Value) -> bool {
    spec_str(job, "completionMode") == Some("Indexed")
}

fn spec_str<'a>(job: &'a Value, field: &str) -> Option<&'a str> {
    job.get("spec")?.get(field)?.as_str()
}

fn spec_i64(job: &Value, field: &str) -> Option<i64> {
    job.get("spec")?.get(field)?.as_i64()
}

fn is_suspended(job: &Value) -> bool {
    job.get("spec")
        .and_then(|s| s.get("suspend"))
        .and_then(Value::as_bool)
        == Some(true)
}
