//! Namespaces: PodSecurity label values are validated (422 on create, and
//! on update when they changed), and raising the enforce level warns about
//! the existing pods that break it (upstream `ValidateNamespace`).

use serde_json::Value;

use super::{evaluate, policy, Level, LevelVersion, Request, EXEMPT_NAMESPACES};
use crate::api::validation;
use crate::api::{Api, ApiError};

/// Upstream's cap on the pods checked when a namespace's enforce level rises.
const MAX_PODS_TO_CHECK: usize = 3000;

fn labels_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("labels")
}

/// Label validation on create and on changed labels; on a stricter
/// enforce level, warnings naming the existing pods that break it.
pub(super) fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if req.subresource.is_some() {
        return Ok(());
    }
    let (new_policy, new_causes) = policy(labels_of(obj));
    let Some(old) = old else {
        if !new_causes.is_empty() {
            return Err(ApiError::invalid(req.resource, req.name, new_causes));
        }
        return Ok(());
    };
    let (old_policy, old_causes) = policy(labels_of(old));
    if !new_causes.is_empty() && (old_causes.is_empty() || new_causes != old_causes) {
        return Err(ApiError::invalid(req.resource, req.name, new_causes));
    }
    let (new, old) = (&new_policy.enforce, &old_policy.enforce);
    if new == old
        || new.level == Level::Privileged
        || (new.version == old.version && new.level <= old.level)
        || EXEMPT_NAMESPACES.contains(&req.name)
    {
        return Ok(());
    }
    for w in existing_pod_warnings(api, req.name, new) {
        req.warn(w);
    }
    Ok(())
}

/// Upstream `EvaluatePodsInNamespace`: one warning per distinct set of
/// failed checks, named by its first pod, after a summary line.
fn existing_pod_warnings(api: &Api, ns: &str, enforce: &LevelVersion) -> Vec<String> {
    let Some(cache) = api
        .registry()
        .find("", "v1", "pods")
        .and_then(|r| api.store.cache(r.storage))
    else {
        return vec!["failed to list pods while checking new PodSecurity enforce level".into()];
    };
    let (stored, _) = cache.snapshot(Some(ns), None, 0);
    let pods = prioritize(stored.iter().map(|s| s.object.as_ref()).collect());
    let total = pods.len();
    // (reasons, lexically first pod name, count), in first-seen order
    let mut found: Vec<(String, String, usize)> = Vec::new();
    for pod in pods.iter().take(MAX_PODS_TO_CHECK) {
        let meta = pod.get("metadata").unwrap_or(&Value::Null);
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let failed = evaluate(enforce.level, meta, spec);
        if failed.is_empty() {
            continue;
        }
        let reasons: Vec<&str> = failed.iter().map(|v| v.reason.as_str()).collect();
        let reasons = reasons.join(", ");
        let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
        match found.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some(entry) => {
                if name < entry.1.as_str() {
                    entry.1 = name.to_string();
                }
                entry.2 += 1;
            }
            None => found.push((reasons, name.to_string(), 1)),
        }
    }
    let mut out = Vec::new();
    if total > MAX_PODS_TO_CHECK {
        out.push(format!(
            "new PodSecurity enforce level only checked against the first {MAX_PODS_TO_CHECK} of {total} existing pods"
        ));
    }
    if !found.is_empty() {
        out.push(format!(
            "existing pods in namespace {} violate the new PodSecurity enforce level {}",
            validation::go_quote(ns),
            validation::go_quote(&enforce.to_string())
        ));
    }
    let mut pod_warnings: Vec<String> = found
        .into_iter()
        .map(|(reasons, name, count)| match count {
            1 => format!("{name}: {reasons}"),
            2 => format!("{name} (and 1 other pod): {reasons}"),
            n => format!("{name} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    pod_warnings.sort();
    out.extend(pod_warnings);
    out
}

/// Upstream `prioritizePods`: one pod per controller first, then the
/// other replicas.
pub(super) fn prioritize(pods: Vec<&Value>) -> Vec<&Value> {
    let mut seen = std::collections::HashSet::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for pod in pods {
        let controller = pod
            .get("metadata")
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            })
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str);
        match controller {
            Some(uid) if !seen.insert(uid.to_string()) => rest.push(pod),
            _ => first.push(pod),
        }
    }
    first.extend(rest);
    first
}
