//! ResourceQuota: a create (or an update that grows usage: service type,
//! PVC size) is refused when it would take a namespace past a quota's hard
//! limits, with upstream's texts. The usage is charged in the quota's
//! `status.used` by a compare-and-swap write before the object is written,
//! so concurrent creates cannot both pass the last unit; the quota
//! controller recomputes the truth afterwards. Dry runs check without
//! charging.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{Operation, Request};
use crate::api::quota::quantity::Quantity;
use crate::api::quota::usage;
use crate::api::store::StoreError;
use crate::api::{Api, ApiError, ListOptions, Resource};

/// Quota writes lost to concurrent charges before giving up.
const RETRIES: usize = 8;

/// Resources a pod must request explicitly when a quota tracks them
/// (upstream's backward-compatible pod constraint).
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

pub(super) async fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(ns) = req.namespace else {
        return Ok(());
    };
    let r = req.resource;
    let (group, plural) = (r.group, r.plural);
    let updates_count = req.is("", "services") || req.is("", "persistentvolumeclaims");
    if req.subresource.is_some() || (req.op == Operation::Update && !updates_count) {
        return Ok(());
    }
    let delta = delta(group, plural, obj, old);
    if delta.is_empty() {
        return Ok(());
    }
    let Some(quotas_r) = api.registry().find("", "v1", "resourcequotas") else {
        return Ok(());
    };
    let quotas = cached(api, quotas_r, ns).await?;
    if quotas.is_empty() {
        return Ok(());
    }
    let own_source = usage::source(delta.keys().next().map_or("", String::as_str));
    let is_pod = req.is("", "pods");
    let mut charges = Vec::new();
    for quota in &quotas {
        if is_pod && !usage::pod_in_scope(quota, obj) {
            continue;
        }
        let hard = hard(quota);
        let tracked: Vec<&str> = hard
            .keys()
            .map(String::as_str)
            .filter(|k| usage::source(k) == own_source)
            .collect();
        if tracked.is_empty() {
            continue;
        }
        if is_pod && req.op == Operation::Create {
            if let Some(missing) = missing_requests(&tracked, obj) {
                return Err(forbidden(
                    r,
                    req.name,
                    &format!("failed quota: {}: must specify {missing}", name(quota)),
                ));
            }
        }
        let requested: BTreeMap<String, Quantity> = delta
            .iter()
            .filter(|(k, _)| hard.contains_key(*k))
            .map(|(k, q)| (k.clone(), *q))
            .collect();
        if !requested.is_empty() {
            charges.push((name(quota).to_string(), requested));
        }
    }
    for (quota, requested) in charges {
        charge(api, quotas_r, req, ns, &quota, &requested).await?;
    }
    Ok(())
}

/// What the write adds: the new object's usage, less the old one's on an
/// update (never negative), zeros dropped (upstream's deltaUsage).
fn delta(
    group: &str,
    plural: &str,
    obj: &Value,
    old: Option<&Value>,
) -> BTreeMap<String, Quantity> {
    let mut delta = usage::object_usage(group, plural, obj);
    if let Some(old) = old {
        let before = usage::object_usage(group, plural, old);
        for (k, q) in delta.iter_mut() {
            if let Some(b) = before.get(k) {
                *q = *q - *b;
            }
            if q.nanos < 0 {
                q.nanos = 0;
            }
        }
    }
    delta.retain(|_, q| q.nanos != 0);
    delta
}

/// Checks the quota with `requested` added and charges it (compare and
/// swap on the quota's resourceVersion, re-read on conflict).
async fn charge(
    api: &Api,
    quotas_r: &'static Resource,
    req: &Request<'_>,
    ns: &str,
    quota_name: &str,
    requested: &BTreeMap<String, Quantity>,
) -> Result<(), ApiError> {
    for _ in 0..RETRIES {
        let key = quotas_r.key(Some(ns), quota_name);
        let Some(current) = api.store.read(&key).await.map_err(ApiError::internal)? else {
            // Deleted meanwhile: nothing left to enforce.
            return Ok(());
        };
        let quota = current.object;
        let hard = hard(&quota);
        let mut used = BTreeMap::new();
        for k in requested.keys() {
            let recorded = quota
                .pointer("/status/used")
                .and_then(|u| u.get(k))
                .and_then(Value::as_str)
                .and_then(Quantity::parse);
            let base = match recorded {
                Some(q) => q,
                // Not counted yet by the controller: count now.
                None => live_usage(api, req, ns, &quota, k).await?,
            };
            used.insert(k.clone(), base);
        }
        let exceeded: Vec<&String> = requested
            .iter()
            .filter(|(k, q)| {
                let total = used.get(*k).copied().unwrap_or_default() + **q;
                hard.get(*k).is_some_and(|h| total.nanos > h.nanos)
            })
            .map(|(k, _)| k)
            .collect();
        if !exceeded.is_empty() {
            let show = |m: &BTreeMap<String, Quantity>| {
                exceeded
                    .iter()
                    .map(|k| {
                        let v = m.get(*k).map_or("0".into(), Quantity::canonical);
                        format!("{k}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(forbidden(
                req.resource,
                req.name,
                &format!(
                    "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                    show(requested),
                    show(&used),
                    show(&hard)
                ),
            ));
        }
        if req.dry_run {
            return Ok(());
        }
        let mut status_used = quota
            .pointer("/status/used")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, q) in requested {
            let total = used.get(k).copied().unwrap_or_default() + *q;
            status_used.insert(k.clone(), json!(total.canonical()));
        }
        let spec_hard = quota
            .pointer("/spec/hard")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut body = quota;
        body["status"] = json!({"hard": spec_hard, "used": status_used});
        if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        // Straight to the store: a status charge by the system, which
        // needs no admission of its own.
        let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
        match api.store.update(&key, bytes, current.mod_revision).await {
            Ok(_) => {
                tracing::debug!(quota = quota_name, ns, object = req.name, "quota charged");
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::modified(quotas_r, quota_name))
}

/// The namespace's objects of `r` as the watch cache holds them (no wait
/// for the cache to catch up: every create asks, and the charge itself
/// reads the quota from the store); a consistent list when not cached.
pub(super) async fn cached(
    api: &Api,
    r: &'static Resource,
    ns: &str,
) -> Result<Vec<Arc<Value>>, ApiError> {
    match api.store.cache(r.storage) {
        Some(cache) if r.strategy.from_storage.is_none() => Ok(cache
            .snapshot(Some(ns), None, 0)
            .0
            .into_iter()
            .map(|s| s.object)
            .collect()),
        _ => Ok(api.list(r, Some(ns), &ListOptions::default()).await?.items),
    }
}

/// The namespace's current usage of `resource`, from the objects of the
/// kind being written (what the controller would count).
async fn live_usage(
    api: &Api,
    req: &Request<'_>,
    ns: &str,
    quota: &Value,
    resource: &str,
) -> Result<Quantity, ApiError> {
    let r = req.resource;
    let items = api.list(r, Some(ns), &ListOptions::default()).await?.items;
    let pods = r.group.is_empty() && r.plural == "pods";
    let objs = items
        .iter()
        .map(|o| o.as_ref())
        .filter(|o| !pods || usage::pod_in_scope(quota, o));
    Ok(usage::sum_usage(r.group, r.plural, resource, objs))
}

fn name(quota: &Value) -> &str {
    quota
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The quota's hard limits (spec, the truth the controller copies to status).
fn hard(quota: &Value) -> BTreeMap<String, Quantity> {
    quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .map(|m: &Map<String, Value>| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn forbidden(r: &Resource, name: &str, why: &str) -> ApiError {
    ApiError::Forbidden(format!("{} \"{name}\" is forbidden: {why}", r.qualified()))
}

/// Upstream's pod Constraints: every container must request what the
/// quota tracks of cpu and memory; "requests.cpu for: a,b; …" when not.
fn missing_requests(tracked: &[&str], pod: &Value) -> Option<String> {
    let required: BTreeSet<&str> = tracked
        .iter()
        .copied()
        .filter(|k| MUST_SPECIFY.contains(k))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let lists = ["/spec/containers", "/spec/initContainers"];
    let containers = lists
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let has = |kind: &str, res: &str| {
            c.get("resources")
                .and_then(|r| r.get(kind))
                .and_then(|m| m.get(res))
                .is_some()
        };
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        for k in &required {
            let present = match *k {
                "cpu" | "requests.cpu" => has("requests", "cpu"),
                "memory" | "requests.memory" => has("requests", "memory"),
                "limits.cpu" => has("limits", "cpu"),
                _ => has("limits", "memory"),
            };
            if !present {
                missing.entry(k).or_default().insert(name);
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(k, names)| {
            let names: Vec<&str> = names.iter().copied().collect();
            format!("{k} for: {}", names.join(","))
        })
        .collect();
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_must_request_tracked_compute() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}],
            "initContainers": [{"name": "i", "resources": {"limits": {"memory": "1Gi"}}}]}});
        assert_eq!(
            missing_requests(&["requests.cpu", "pods"], &pod).as_deref(),
            Some("requests.cpu for: b,i")
        );
        assert_eq!(
            missing_requests(&["limits.memory", "cpu"], &pod).as_deref(),
            Some("cpu for: b,i; limits.memory for: a,b")
        );
        assert_eq!(missing_requests(&["pods", "requests.storage"], &pod), None);
    }

    #[test]
    fn updates_charge_only_growth() {
        let svc = |t: &str, n: usize| {
            let ports: Vec<Value> = (0..n).map(|p| json!({"port": 80 + p})).collect();
            json!({"spec": {"type": t, "ports": ports}})
        };
        let d = delta(
            "",
            "services",
            &svc("NodePort", 2),
            Some(&svc("ClusterIP", 2)),
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["services.nodeports"]);
        assert_eq!(d["services.nodeports"].canonical(), "2");
        assert!(delta(
            "",
            "services",
            &svc("ClusterIP", 1),
            Some(&svc("NodePort", 1))
        )
        .is_empty());
        let claim = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        let d = delta(
            "",
            "persistentvolumeclaims",
            &claim("2Gi"),
            Some(&claim("1Gi")),
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["requests.storage"]);
        assert_eq!(d["requests.storage"].canonical(), "1Gi");
    }
}
