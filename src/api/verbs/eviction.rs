//! pods/eviction: a delete that honours PodDisruptionBudgets (upstream
//! EvictionREST). A pod covered by a budget with no disruptions left is
//! refused with 429; otherwise the budget's `disruptionsAllowed` is taken
//! down by one (with the pod noted in `disruptedPods`) before the pod is
//! marked a DisruptionTarget and deleted.

use serde_json::{json, Value};

use crate::api::error::{success_status, ApiError};
use crate::api::meta;
use crate::api::registry::Resource;
use crate::api::selector::LabelSelector;
use crate::api::{Api, DeleteOptions, ListOptions, WriteOptions};

/// Upstream MaxDisruptedPodSize.
const MAX_DISRUPTED_PODS: usize = 2000;
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// The delete options inside an Eviction body.
fn delete_options(eviction: &Value) -> DeleteOptions {
    let o = eviction.get("deleteOptions");
    let text = |path: &[&str]| {
        let mut v = o?;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    };
    DeleteOptions {
        dry_run: o
            .and_then(|o| o.get("dryRun"))
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty()),
        grace_period_seconds: o
            .and_then(|o| o.get("gracePeriodSeconds"))
            .and_then(Value::as_i64),
        precondition_uid: text(&["preconditions", "uid"]),
        precondition_resource_version: text(&["preconditions", "resourceVersion"]),
        ..Default::default()
    }
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Pods a budget does not protect: not running yet, finished, or already
/// going (upstream canIgnorePDB).
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || meta::is_deleting(pod)
}

/// Whether `pdb` selects `pod` (policy/v1: a missing selector selects
/// nothing, an empty one everything).
fn selects(pdb: &Value, pod: &Value) -> bool {
    match pdb.pointer("/spec/selector") {
        None | Some(Value::Null) => false,
        Some(sel) => LabelSelector::from_json(sel).is_ok_and(|s| s.matches_object(pod)),
    }
}

fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb.get("status")
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The refusal kubectl drain waits on and retries (429 TooManyRequests
/// with a DisruptionBudget cause).
fn refused(cause: String) -> ApiError {
    ApiError::TooManyRequests {
        message: REFUSED.to_string(),
        causes: vec![("DisruptionBudget".to_string(), cause)],
    }
}

/// Upstream checkAndDecrement on the stored budget: refuses, or returns
/// the budget with one disruption fewer and the pod noted as disrupted.
fn decrement(pdb: &Value, pod_name: &str, now: &str) -> Result<Value, ApiError> {
    let name = meta::name(pdb);
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status_i64(pdb, "observedGeneration") < generation {
        return Err(refused(format!(
            "The disruption budget {name} is still being processed by the server."
        )));
    }
    let allowed = status_i64(pdb, "disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::Forbidden(format!(
            "poddisruptionbudgets.policy \"{name}\" is forbidden: pdb disruptions allowed is negative"
        )));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::Forbidden(format!(
            "poddisruptionbudgets.policy \"{name}\" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )));
    }
    if allowed == 0 {
        return Err(refused(format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            status_i64(pdb, "desiredHealthy"),
            status_i64(pdb, "currentHealthy")
        )));
    }
    let mut new = pdb.clone();
    let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) else {
        return Err(ApiError::internal("poddisruptionbudget without status"));
    };
    status.insert("disruptionsAllowed".into(), json!(allowed - 1));
    let map = status.entry("disruptedPods").or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    map[pod_name] = json!(now);
    if allowed == 1 {
        if let Some(conds) = status.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in conds.iter_mut() {
                if c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed") {
                    c["status"] = json!("False");
                    c["reason"] = json!("InsufficientPods");
                    c["lastTransitionTime"] = json!(now);
                }
            }
        }
    }
    Ok(new)
}

impl Api {
    /// pods/eviction (upstream EvictionREST.Create).
    pub async fn evict(
        &self,
        pods: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        eviction: &Value,
    ) -> Result<Value, ApiError> {
        let mut opts = delete_options(eviction);
        let pod = self.get(pods, namespace, name).await?;
        if !can_ignore_budget(&pod) {
            let budgets = self.budgets_of(namespace, &pod).await?;
            match budgets.as_slice() {
                [] => {}
                [pdb] => {
                    let unhealthy_ok = !is_ready(&pod)
                        && match pdb.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str) {
                            Some("AlwaysAllow") => true,
                            _ => {
                                let desired = status_i64(pdb, "desiredHealthy");
                                status_i64(pdb, "currentHealthy") >= desired && desired > 0
                            }
                        };
                    if unhealthy_ok {
                        // Only while the pod stays unready.
                        opts.precondition_resource_version =
                            meta::meta_str(&pod, "resourceVersion").map(str::to_string);
                    } else {
                        self.take_disruption(pdb, name, opts.dry_run).await?;
                    }
                }
                _ => {
                    return Err(ApiError::internal(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    ))
                }
            }
        }
        self.delete_evicted(pods, namespace, name, &pod, opts).await
    }

    async fn budgets_of(
        &self,
        namespace: Option<&str>,
        pod: &Value,
    ) -> Result<Vec<Value>, ApiError> {
        let Some(r) = self.registry().find("policy", "v1", "poddisruptionbudgets") else {
            return Ok(Vec::new());
        };
        let list = self.list(r, namespace, &ListOptions::default()).await?;
        Ok(list
            .items
            .iter()
            .filter(|pdb| selects(pdb, pod))
            .map(|pdb| (**pdb).clone())
            .collect())
    }

    /// Takes one disruption from the budget (retried on conflict by the
    /// guarded update, which re-reads the budget each time).
    async fn take_disruption(
        &self,
        pdb: &Value,
        pod_name: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let Some(r) = self.registry().find("policy", "v1", "poddisruptionbudgets") else {
            return Ok(());
        };
        let opts = WriteOptions {
            dry_run,
            ..Default::default()
        };
        let now = meta::now();
        let ns = meta::meta_str(pdb, "namespace");
        self.guaranteed_update(
            r,
            ns,
            meta::name(pdb),
            None,
            &opts,
            |stored| decrement(stored, pod_name, &now),
            Some("status"),
        )
        .await?;
        Ok(())
    }

    /// Marks the pod a DisruptionTarget (best effort), then deletes it.
    async fn delete_evicted(
        &self,
        pods: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        pod: &Value,
        mut opts: DeleteOptions,
    ) -> Result<Value, ApiError> {
        let rv = meta::meta_str(pod, "resourceVersion").unwrap_or("");
        if opts
            .precondition_resource_version
            .as_deref()
            .is_some_and(|want| want != rv)
        {
            return Err(ApiError::conflict(
                pods,
                name,
                &format!("Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {rv}", opts.precondition_resource_version.as_deref().unwrap_or("")),
            ));
        }
        if !opts.dry_run && !meta::is_deleting(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
        {
            let write = WriteOptions::default();
            let marked = self
                .guaranteed_update(
                    pods,
                    namespace,
                    name,
                    None,
                    &write,
                    |old| Ok(with_disruption_target(old)),
                    Some("status"),
                )
                .await;
            match marked {
                Ok(new) if opts.precondition_resource_version.is_some() => {
                    opts.precondition_resource_version =
                        meta::meta_str(&new, "resourceVersion").map(str::to_string);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(pod = name, error = %e, "cannot mark disruption target"),
            }
        }
        self.delete(pods, namespace, name, &opts).await?;
        Ok(success_status(pods, name, None))
    }
}

/// The pod with condition DisruptionTarget (reason EvictionByEvictionAPI).
fn with_disruption_target(pod: &Value) -> Value {
    let mut new = pod.clone();
    let condition = json!({"type": "DisruptionTarget", "status": "True",
        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
        "lastProbeTime": null, "lastTransitionTime": meta::now()});
    let Some(map) = new.as_object_mut() else {
        return new;
    };
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let conds = &mut status["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    if let Some(list) = conds.as_array_mut() {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some("DisruptionTarget"));
        list.push(condition);
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(allowed: i64) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2},
            "status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                "desiredHealthy": 2, "currentHealthy": 2 + allowed, "expectedPods": 2 + allowed,
                "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}]}})
    }

    #[test]
    fn an_exhausted_budget_refuses_with_upstream_texts() {
        let e = decrement(&budget(0), "p", "T").unwrap_err();
        assert!(e.to_string().starts_with(REFUSED), "{e}");
        // The cause is in the message or in the status details.
        let text = e.status().to_string();
        assert!(
            text.contains("The disruption budget web needs 2 healthy pods and has 2 currently"),
            "{text}"
        );
        let mut stale = budget(1);
        stale["metadata"]["generation"] = json!(2);
        assert!(decrement(&stale, "p", "T")
            .unwrap_err()
            .status()
            .to_string()
            .contains("still being processed"));
    }

    #[test]
    fn an_eviction_takes_one_disruption_and_notes_the_pod() {
        let b = decrement(&budget(1), "p", "T").unwrap();
        assert_eq!(b["status"]["disruptionsAllowed"], 0);
        assert_eq!(b["status"]["disruptedPods"]["p"], "T");
        assert_eq!(b["status"]["conditions"][0]["status"], "False");
        assert_eq!(b["status"]["conditions"][0]["reason"], "InsufficientPods");
        let b = decrement(&budget(3), "q", "T").unwrap();
        assert_eq!(b["status"]["disruptionsAllowed"], 2);
        assert_eq!(b["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn selection_and_budget_free_pods() {
        let pod = json!({"metadata": {"labels": {"app": "web"}}, "status": {"phase": "Running"}});
        assert!(selects(&budget(0), &pod));
        assert!(
            !selects(&json!({"spec": {}}), &pod),
            "no selector selects nothing"
        );
        assert!(
            selects(&json!({"spec": {"selector": {}}}), &pod),
            "empty selects all"
        );
        assert!(!can_ignore_budget(&pod));
        assert!(can_ignore_budget(&json!({"status": {"phase": "Pending"}})));
        assert!(can_ignore_budget(
            &json!({"metadata": {"deletionTimestamp": "T"}, "status": {"phase": "Running"}})
        ));
        let marked = with_disruption_target(&pod);
        assert_eq!(
            marked["status"]["conditions"][0]["reason"],
            "EvictionByEvictionAPI"
        );
    }
}
