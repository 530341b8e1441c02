//! Upstream manageJob: creating and deleting pods so that the right
//! number are active, with slow-start creation and the failure backoff.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::Value;

use super::indexes;
use super::sync::State;
use super::{is_indexed, is_suspended, pods, spec_i64, JobController};
use crate::client::Client;
use crate::controllers::objects::{self, name};
use crate::controllers::Error;

/// Pods created or deleted per sync at most (upstream MaxPodCreateDeletePerSync).
const MAX_PODS_PER_SYNC: usize = 500;

/// Upstream manageJob: keeps min(parallelism, remaining completions) pods
/// active, or none while suspended; waits out the failure backoff.
pub(super) async fn manage(
    ctl: &JobController,
    st: &mut State,
    active: &[Arc<Value>],
) -> Result<(), Error> {
    let job = st.job.clone();
    let refs: Vec<&Arc<Value>> = active.iter().collect();
    if is_suspended(&job) {
        let (removed, err) = pods::delete(&ctl.client, &ctl.recorder, &job, &refs, true).await;
        account_removed(st, &refs, removed);
        return err.map_or(Ok(()), Err);
    }
    let parallelism = spec_i64(&job, "parallelism").unwrap_or(1).max(0);
    let want = match st.completions {
        None if st.succeeded > 0 => st.active,
        None => parallelism,
        Some(c) => (c - st.succeeded).min(parallelism).max(0),
    };
    let rm_at_least = (st.active - want).max(0) as usize;
    let mut victims = pods::for_removal(&job, &refs, rm_at_least, st.completions);
    victims.truncate(MAX_PODS_PER_SYNC);
    if !victims.is_empty() {
        let (removed, err) = pods::delete(&ctl.client, &ctl.recorder, &job, &victims, true).await;
        account_removed(st, &victims, removed);
        return err.map_or(Ok(()), Err);
    }
    let terminating = if pods::only_replace_failed(&job) {
        st.terminating
    } else {
        0
    };
    let diff = want - terminating - st.active;
    if diff <= 0 {
        return Ok(());
    }
    let wait = st.backoff.remaining(st.now);
    if !wait.is_zero() {
        st.requeue_after(wait);
        return Ok(());
    }
    let count = (diff as usize).min(MAX_PODS_PER_SYNC);
    let mut slots: Vec<Option<i64>> = vec![None; count];
    if is_indexed(&job) {
        let busy = st
            .succeeded_indexes
            .with_indexes(active.iter().filter_map(|p| indexes::completion_index(p)));
        slots = busy
            .first_missing(count, st.completions.unwrap_or(0))
            .into_iter()
            .map(Some)
            .collect();
    }
    create(ctl, st, &job, slots).await
}

fn account_removed(st: &mut State, victims: &[&Arc<Value>], removed: usize) {
    let ready = victims
        .iter()
        .take(removed)
        .filter(|p| objects::pod_is_ready(p))
        .count();
    st.active -= removed as i64;
    st.terminating += removed as i64;
    st.ready -= ready as i64;
}

/// Creates one pod per slot in slow-start batches (1, 2, 4, …) so a
/// failing template fails once, not hundreds of times.
async fn create(
    ctl: &JobController,
    st: &mut State,
    job: &Value,
    slots: Vec<Option<i64>>,
) -> Result<(), Error> {
    let ns = objects::namespace(job);
    let res = pods::pods();
    let mut rest = slots.as_slice();
    let mut batch = 1;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        rest = later;
        let results = join_all(
            now.iter()
                .map(|ix| ctl.client.create(&res, Some(ns), pods::new_pod(job, *ix))),
        )
        .await;
        let mut failed = None;
        for r in results {
            match r {
                Ok(pod) => {
                    st.active += 1;
                    ctl.recorder.normal(
                        job,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&pod)),
                    );
                }
                Err(e) => {
                    ctl.recorder
                        .warning(job, "FailedCreate", &format!("Error creating: {e}"));
                    failed.get_or_insert(Error::from(e));
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        batch *= 2;
    }
    Ok(())
}
