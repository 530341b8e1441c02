//! What a namespace uses, per quota resource name (upstream's quota
//! evaluators): object counts, pod requests and limits over non-terminal
//! pods, claim storage, service node ports and load balancers, with
//! quota scopes applied to pods.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::quantity::Quantity;
use crate::controllers::objects;

/// The objects of one namespace the usage is computed from.
#[derive(Default)]
pub struct Objects {
    pub pods: Vec<Arc<Value>>,
    pub services: Vec<Arc<Value>>,
    pub claims: Vec<Arc<Value>>,
    /// Other counted kinds: "configmaps", "secrets", "deployments.apps", …
    pub counts: BTreeMap<String, usize>,
}

/// Upstream QuotaV1Pod: pods that still hold resources.
fn counts_for_quota(pod: &Value) -> bool {
    !matches!(objects::pod_phase(pod), "Succeeded" | "Failed")
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// Whether `pod` falls under the quota's scopes and scope selector.
pub fn pod_in_scope(quota: &Value, pod: &Value) -> bool {
    let terminating = pod
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| v.as_i64().is_some_and(|s| s >= 0));
    let best_effort = text(pod, "/status/qosClass") == "BestEffort"
        || (text(pod, "/status/qosClass").is_empty() && no_resources(pod));
    let scopes = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for scope in scopes.iter().filter_map(Value::as_str) {
        let ok = match scope {
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "BestEffort" => best_effort,
            "NotBestEffort" => !best_effort,
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    let exprs = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    exprs
        .iter()
        .all(|e| scope_expression_matches(e, pod, terminating, best_effort))
}

fn scope_expression_matches(
    expr: &Value,
    pod: &Value,
    terminating: bool,
    best_effort: bool,
) -> bool {
    let values: Vec<&str> = expr
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let op = text(expr, "/operator");
    let exists = op != "DoesNotExist";
    match text(expr, "/scopeName") {
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            match op {
                "In" => class.is_some_and(|c| values.contains(&c)),
                "NotIn" => class.is_none_or(|c| !values.contains(&c)),
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
                _ => false,
            }
        }
        // Exists selects pods in the scope, DoesNotExist those outside.
        "Terminating" => terminating == exists,
        "NotTerminating" => terminating != exists,
        "BestEffort" => best_effort == exists,
        "NotBestEffort" => best_effort != exists,
        _ => true,
    }
}

fn no_resources(pod: &Value) -> bool {
    containers(pod).all(|c| {
        ["requests", "limits"].iter().all(|k| {
            c.pointer(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty())
        })
    })
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Upstream PodRequests/PodLimits for one resource: the sum over
/// containers or the largest init container, whichever is more, plus overhead.
fn pod_amount(pod: &Value, kind: &str, resource: &str) -> Option<Quantity> {
    let get = |c: &Value| {
        c.pointer(&format!("/resources/{kind}/{resource}"))
            .and_then(Value::as_str)
            .and_then(Quantity::parse)
    };
    let mut sum: Option<Quantity> = None;
    for c in containers(pod) {
        if let Some(q) = get(c) {
            sum = Some(sum.map_or(q, |s| s + q));
        }
    }
    let inits = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for c in inits {
        if let Some(q) = get(c) {
            if sum.is_none_or(|s| q.nanos > s.nanos) {
                sum = Some(Quantity {
                    nanos: q.nanos,
                    format: sum.map_or(q.format, |s| s.format),
                });
            }
        }
    }
    let overhead = pod
        .pointer(&format!("/spec/overhead/{resource}"))
        .and_then(Value::as_str)
        .and_then(Quantity::parse);
    match (sum, overhead) {
        (Some(s), Some(o)) => Some(s + o),
        (s, o) => s.or(o),
    }
}

fn add(total: &mut Option<Quantity>, q: Option<Quantity>) {
    if let Some(q) = q {
        *total = Some(total.map_or(q, |t| t + q));
    }
}

/// The used amount of quota resource `resource` (None: not one we track).
pub fn used(resource: &str, quota: &Value, objs: &Objects) -> Option<Quantity> {
    let pods = || {
        objs.pods
            .iter()
            .filter(|p| counts_for_quota(p) && pod_in_scope(quota, p))
    };
    let pod_sum = |kind: &str, res: &str| {
        let mut total = None;
        for p in pods() {
            add(&mut total, pod_amount(p, kind, res));
        }
        Some(total.unwrap_or_default())
    };
    let count = |n: usize| Some(Quantity::from_count(n as i64));
    match resource {
        "pods" | "count/pods" => count(pods().count()),
        "cpu" | "requests.cpu" => pod_sum("requests", "cpu"),
        "memory" | "requests.memory" => pod_sum("requests", "memory"),
        "ephemeral-storage" | "requests.ephemeral-storage" => {
            pod_sum("requests", "ephemeral-storage")
        }
        "limits.cpu" => pod_sum("limits", "cpu"),
        "limits.memory" => pod_sum("limits", "memory"),
        "limits.ephemeral-storage" => pod_sum("limits", "ephemeral-storage"),
        "services" | "count/services" => count(objs.services.len()),
        "services.loadbalancers" => count(
            objs.services
                .iter()
                .filter(|s| text(s, "/spec/type") == "LoadBalancer")
                .count(),
        ),
        "services.nodeports" => count(
            objs.services
                .iter()
                .filter(|s| matches!(text(s, "/spec/type"), "NodePort" | "LoadBalancer"))
                .map(|s| {
                    s.pointer("/spec/ports")
                        .and_then(Value::as_array)
                        .map_or(0, |p| {
                            p.iter()
                                .filter(|p| {
                                    p.get("nodePort")
                                        .and_then(Value::as_i64)
                                        .is_some_and(|n| n > 0)
                                })
                                .count()
                        })
                })
                .sum(),
        ),
        "persistentvolumeclaims" | "count/persistentvolumeclaims" => count(objs.claims.len()),
        "requests.storage" => claim_storage(objs.claims.iter()),
        r => {
            if let Some(class) = r.strip_suffix(".storageclass.storage.k8s.io/requests.storage") {
                return claim_storage(
                    objs.claims
                        .iter()
                        .filter(|c| text(c, "/spec/storageClassName") == class),
                );
            }
            if let Some(class) =
                r.strip_suffix(".storageclass.storage.k8s.io/persistentvolumeclaims")
            {
                return count(
                    objs.claims
                        .iter()
                        .filter(|c| text(c, "/spec/storageClassName") == class)
                        .count(),
                );
            }
            let counted = r.strip_prefix("count/").unwrap_or(r);
            objs.counts
                .get(counted)
                .map(|n| Quantity::from_count(*n as i64))
        }
    }
}

fn claim_storage<'a>(claims: impl Iterator<Item = &'a Arc<Value>>) -> Option<Quantity> {
    let mut total = None;
    for c in claims {
        let q = c
            .pointer("/spec/resources/requests/storage")
            .and_then(Value::as_str)
            .and_then(Quantity::parse);
        add(&mut total, q);
    }
    Some(total.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(cpu: &str, mem: &str, phase: &str) -> Arc<Value> {
        Arc::new(json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"memory": mem}}},
            {"resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase, "qosClass": "Burstable"}}))
    }

    #[test]
    fn sums_over_non_terminal_pods() {
        let objs = Objects {
            pods: vec![
                pod("250m", "64Mi", "Running"),
                pod("500m", "128Mi", "Pending"),
                pod("1", "1Gi", "Succeeded"),
            ],
            services: vec![
                Arc::new(
                    json!({"spec": {"type": "NodePort", "ports": [{"nodePort": 30001}, {"nodePort": 30002}]}}),
                ),
                Arc::new(json!({"spec": {"type": "LoadBalancer", "ports": [{"nodePort": 30003}]}})),
            ],
            claims: vec![
                Arc::new(
                    json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}}),
                ),
                Arc::new(json!({"spec": {"resources": {"requests": {"storage": "512Mi"}}}})),
            ],
            counts: BTreeMap::from([
                ("configmaps".to_string(), 3),
                ("deployments.apps".to_string(), 1),
            ]),
        };
        let q = json!({"spec": {}});
        let u = |r: &str| used(r, &q, &objs).map(|q| q.canonical());
        assert_eq!(u("pods").as_deref(), Some("2"));
        assert_eq!(u("requests.cpu").as_deref(), Some("1500m"));
        assert_eq!(u("requests.memory").as_deref(), Some("192Mi"));
        assert_eq!(u("limits.memory").as_deref(), Some("192Mi"));
        assert_eq!(u("limits.cpu").as_deref(), Some("0"));
        assert_eq!(u("services.nodeports").as_deref(), Some("3"));
        assert_eq!(u("services.loadbalancers").as_deref(), Some("1"));
        assert_eq!(u("requests.storage").as_deref(), Some("1536Mi"));
        assert_eq!(
            u("gold.storageclass.storage.k8s.io/requests.storage").as_deref(),
            Some("1Gi")
        );
        assert_eq!(u("configmaps").as_deref(), Some("3"));
        assert_eq!(u("count/deployments.apps").as_deref(), Some("1"));
        assert_eq!(u("count/widgets.example.com"), None);
    }

    #[test]
    fn scopes_filter_pods() {
        let best_effort = json!({"spec": {"containers": [{}]}, "status": {"phase": "Running", "qosClass": "BestEffort"}});
        let mut deadline = best_effort.clone();
        deadline["spec"]["activeDeadlineSeconds"] = json!(30);
        deadline["spec"]["priorityClassName"] = json!("high");
        let scoped = |s: Value| json!({"spec": s});
        assert!(pod_in_scope(
            &scoped(json!({"scopes": ["BestEffort"]})),
            &best_effort
        ));
        assert!(!pod_in_scope(
            &scoped(json!({"scopes": ["NotBestEffort"]})),
            &best_effort
        ));
        assert!(pod_in_scope(
            &scoped(json!({"scopes": ["Terminating"]})),
            &deadline
        ));
        assert!(!pod_in_scope(
            &scoped(json!({"scopes": ["Terminating"]})),
            &best_effort
        ));
        let prio = scoped(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(pod_in_scope(&prio, &deadline));
        assert!(!pod_in_scope(&prio, &best_effort));
    }
}
