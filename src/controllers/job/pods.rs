//! The pods of a Job: finding and adopting them, creating them from the
//! template (with the tracking finalizer and, for Indexed Jobs, their
//! index), deleting them and dropping the finalizer once counted.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::{json, Value};

use super::indexes::{self, INDEX_KEY};
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, ListOptions, Local, PatchType, Recorder, ResourceId};
use crate::controllers::objects::{self, is_deleting, name, uid};
use crate::controllers::Error;

pub const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

pub fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

pub fn has_finalizer(pod: &Value) -> bool {
    pod.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(FINALIZER)))
}

/// Whether failed pods only (not terminating ones) are replaced.
pub fn only_replace_failed(job: &Value) -> bool {
    let spec = job.get("spec");
    spec.and_then(|s| s.get("podReplacementPolicy"))
        .and_then(Value::as_str)
        == Some("Failed")
        || spec
            .and_then(|s| s.get("podFailurePolicy"))
            .is_some_and(|p| !p.is_null())
}

/// A failed pod, or (unless only failed pods are replaced) one deleted
/// before it could succeed: orphans never reach a terminal phase.
pub fn is_failed(pod: &Value, job: &Value) -> bool {
    match objects::pod_phase(pod) {
        "Failed" => true,
        "Succeeded" => false,
        _ => !only_replace_failed(job) && is_deleting(pod),
    }
}

pub fn is_succeeded(pod: &Value) -> bool {
    objects::pod_phase(pod) == "Succeeded"
}

/// Being deleted but not finished yet (upstream IsPodTerminating).
pub fn is_terminating(pod: &Value) -> bool {
    is_deleting(pod) && !matches!(objects::pod_phase(pod), "Succeeded" | "Failed")
}

/// The pods the Job controls after adopting matching orphans.
pub async fn claim(
    client: &Local,
    job: &Value,
    selector: &LabelSelector,
) -> Result<Vec<Arc<Value>>, Error> {
    if selector.is_everything() {
        return Ok(Vec::new());
    }
    let opts = ListOptions {
        label_selector: selector.clone(),
        ..Default::default()
    };
    let list = client
        .list(&pods(), Some(objects::namespace(job)), &opts)
        .await?;
    let job_uid = uid(job);
    let mut owned = Vec::new();
    for pod in list.items {
        match objects::controller_ref(&pod) {
            Some(r) if r.get("uid").and_then(Value::as_str) == Some(job_uid) => owned.push(pod),
            Some(_) => {}
            None if !is_deleting(job) && !is_deleting(&pod) => {
                let mut refs = objects::owner_references(&pod).to_vec();
                refs.push(objects::controller_reference(job));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid(&pod),
                    "resourceVersion": objects::meta_str(&pod, "resourceVersion")}});
                match patch_pod(client, &pod, PatchType::Merge, &patch).await {
                    Ok(p) => owned.push(Arc::new(p)),
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e),
                }
            }
            None => {}
        }
    }
    Ok(owned)
}

async fn patch_pod(
    client: &Local,
    pod: &Value,
    kind: PatchType,
    patch: &Value,
) -> Result<Value, Error> {
    let ns = Some(objects::namespace(pod));
    Ok(client
        .patch(&pods(), ns, name(pod), kind, patch, None)
        .await?)
}

/// Drops the tracking finalizer; per pod, whether it is gone (a missing pod
/// counts as done), and the first error.
pub async fn remove_finalizers(client: &Local, pods: &[&Arc<Value>]) -> (Vec<bool>, Option<Error>) {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [FINALIZER]}});
    let results = join_all(
        pods.iter()
            .map(|p| patch_pod(client, p, PatchType::Strategic, &patch)),
    )
    .await;
    let mut done = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Ok(_) => done.push(true),
            Err(e) if e.is_not_found() => done.push(true),
            Err(e) => {
                done.push(false);
                first_error.get_or_insert(e);
            }
        }
    }
    (done, first_error)
}

/// Deletes pods, first dropping their finalizer when `release` (pods
/// removed while the Job goes on are not counted as failures). Returns how
/// many were deleted and the first error.
pub async fn delete(
    client: &Local,
    recorder: &Recorder,
    job: &Value,
    victims: &[&Arc<Value>],
    release: bool,
) -> (usize, Option<Error>) {
    let results = join_all(victims.iter().map(|pod| async move {
        if release && has_finalizer(pod) {
            let (done, err) = remove_finalizers(client, &[*pod]).await;
            if let Some(e) = err.filter(|_| !done[0]) {
                return Err(e);
            }
        }
        let opts = DeleteOptions {
            precondition_uid: Some(uid(pod).to_string()),
            ..Default::default()
        };
        match client
            .delete(&pods(), Some(objects::namespace(pod)), name(pod), &opts)
            .await
        {
            Ok(()) => {
                recorder.normal(
                    job,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(pod)),
                );
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => {
                recorder.warning(job, "FailedDelete", &format!("Error deleting: {e}"));
                Err(Error::from(e))
            }
        }
    }))
    .await;
    let mut deleted = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(()) => deleted += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (deleted, first_error)
}

/// The pod for `index` (Indexed Jobs) or any pod (NonIndexed).
pub fn new_pod(job: &Value, index: Option<i64>) -> Value {
    let mut template = job
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(meta) = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})))
    {
        let finalizers = meta
            .as_object_mut()
            .map(|m| m.entry("finalizers").or_insert_with(|| json!([])));
        if let Some(list) = finalizers.and_then(Value::as_array_mut) {
            if !list.iter().any(|f| f.as_str() == Some(FINALIZER)) {
                list.push(json!(FINALIZER));
            }
        }
        if let Some(ix) = index {
            for key in ["annotations", "labels"] {
                if let Some(m) = meta.as_object_mut() {
                    let map = m.entry(key).or_insert_with(|| json!({}));
                    if let Some(map) = map.as_object_mut() {
                        map.insert(INDEX_KEY.into(), json!(ix.to_string()));
                    }
                }
            }
        }
    }
    if let (Some(ix), Some(spec)) = (index, template.get_mut("spec")) {
        spec["hostname"] = json!(format!("{}-{ix}", name(job)));
        add_index_env(spec);
    }
    let mut pod = objects::pod_from_template(&template, job, None);
    if let Some(ix) = index {
        pod["metadata"]["generateName"] = json!(format!("{}-{ix}-", name(job)));
    }
    pod
}

/// `JOB_COMPLETION_INDEX` from the index annotation, in every container.
fn add_index_env(spec: &mut Value) {
    let env = json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": format!("metadata.annotations['{INDEX_KEY}']")}}});
    for key in ["initContainers", "containers"] {
        let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            let vars = c.entry("env").or_insert_with(|| json!([]));
            if let Some(vars) = vars.as_array_mut() {
                if !vars
                    .iter()
                    .any(|v| v.get("name").and_then(Value::as_str) == Some("JOB_COMPLETION_INDEX"))
                {
                    vars.push(env.clone());
                }
            }
        }
    }
}

/// Active pods to remove: for Indexed Jobs those with a missing, out of
/// range or repeated index first, then (up to `at_least`) the least
/// advanced (unscheduled, pending, not ready, newest).
pub fn for_removal<'a>(
    job: &Value,
    active: &[&'a Arc<Value>],
    at_least: usize,
    completions: Option<i64>,
) -> Vec<&'a Arc<Value>> {
    let mut left: Vec<&Arc<Value>> = active.to_vec();
    left.sort_by_key(|p| objects::deletion_rank(p));
    let mut remove = Vec::new();
    if let (true, Some(completions)) = (super::is_indexed(job), completions) {
        let mut seen = std::collections::HashSet::new();
        // Keep the most advanced pod of each index: walk from the back.
        let mut keep = Vec::new();
        for pod in left.into_iter().rev() {
            match indexes::completion_index(pod) {
                Some(ix) if ix < completions && seen.insert(ix) => keep.push(pod),
                _ => remove.push(pod),
            }
        }
        keep.reverse();
        left = keep;
    }
    let more = at_least.saturating_sub(remove.len()).min(left.len());
    remove.extend(left.into_iter().take(more));
    remove
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(mode: &str) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"completionMode": mode, "completions": 3, "template": {
                "metadata": {"labels": {"job-name": "pi"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    #[test]
    fn indexed_pods_carry_index_hostname_and_env() {
        let pod = new_pod(&job("Indexed"), Some(2));
        assert_eq!(pod["metadata"]["generateName"], "pi-2-");
        assert_eq!(pod["metadata"]["annotations"][INDEX_KEY], "2");
        assert_eq!(pod["metadata"]["labels"][INDEX_KEY], "2");
        assert_eq!(pod["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(pod["metadata"]["finalizers"], json!([FINALIZER]));
        assert_eq!(pod["spec"]["hostname"], "pi-2");
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
        assert!(objects::is_controlled_by(&pod, "u1"));
        let plain = new_pod(&job("NonIndexed"), None);
        assert_eq!(plain["metadata"]["generateName"], "pi-");
        assert!(plain["spec"].get("hostname").is_none());
    }

    #[test]
    fn repeated_and_out_of_range_indexes_go_first() {
        let pod = |ix: &str, ready: bool| {
            Arc::new(json!({"metadata": {"annotations": {INDEX_KEY: ix}},
                "spec": {"nodeName": "n"}, "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
        };
        let pods = [
            pod("0", true),
            pod("0", false),
            pod("7", true),
            pod("1", true),
        ];
        let refs: Vec<&Arc<Value>> = pods.iter().collect();
        let rm = for_removal(&job("Indexed"), &refs, 0, Some(3));
        assert_eq!(rm.len(), 2);
        assert!(rm
            .iter()
            .any(|p| p["metadata"]["annotations"][INDEX_KEY] == "7"));
        assert!(rm
            .iter()
            .any(|p| p["status"]["conditions"][0]["status"] == "False"));
    }

    #[test]
    fn deleted_pods_count_as_failed_unless_only_failed_are_replaced() {
        let mut j = job("NonIndexed");
        let pod = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running"}});
        assert!(is_failed(&pod, &j) && is_terminating(&pod));
        j["spec"]["podReplacementPolicy"] = json!("Failed");
        assert!(!is_failed(&pod, &j));
    }
}
