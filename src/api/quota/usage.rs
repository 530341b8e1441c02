//! What objects use, per quota resource name (upstream's quota
//! evaluators). One function, [`object_usage`], says what a single object
//! adds; the quota controller sums it over a namespace and admission
//! charges it for the object being written.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::quantity::Quantity;

/// The objects of one namespace the usage is computed from.
#[derive(Default)]
pub struct Objects {
    pub pods: Vec<Arc<Value>>,
    pub services: Vec<Arc<Value>>,
    pub claims: Vec<Arc<Value>>,
    /// Other counted kinds: "configmaps", "secrets", "deployments.apps", …
    pub counts: BTreeMap<String, usize>,
}

/// Which objects a quota resource name is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Pods,
    Services,
    Claims,
    /// Objects counted by kind: "configmaps", "deployments.apps", …
    Count(&'a str),
}

/// The source of quota resource `resource`.
pub fn source(resource: &str) -> Source<'_> {
    match resource {
        "pods" | "count/pods" | "cpu" | "memory" | "ephemeral-storage" => Source::Pods,
        "services" | "count/services" | "services.nodeports" | "services.loadbalancers" => {
            Source::Services
        }
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage" => {
            Source::Claims
        }
        r if r.contains(".storageclass.storage.k8s.io/") => Source::Claims,
        r if r.starts_with("requests.") || r.starts_with("limits.") => Source::Pods,
        r => Source::Count(r.strip_prefix("count/").unwrap_or(r)),
    }
}

/// The name kinds are counted by: `plural` (core) or `plural.group`.
pub fn count_key(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// Core kinds whose plain plural is also a quota resource name.
const LEGACY_COUNTS: &[&str] = &[
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
];

/// What one object of `group`/`plural` adds to its namespace's usage.
pub fn object_usage(group: &str, plural: &str, obj: &Value) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    let one = Quantity::from_count(1);
    match (group, plural) {
        ("", "pods") => return pod_usage(obj),
        ("", "services") => {
            out.insert("services".into(), one);
            out.insert("count/services".into(), one);
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            match text(obj, "/spec/type") {
                "NodePort" => {
                    out.insert("services.nodeports".into(), count(ports.len()));
                }
                "LoadBalancer" => {
                    // Ports not allocated yet count by intent; without
                    // allocation only explicit node ports count.
                    let allocate = obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        != Some(false);
                    let n = if allocate {
                        ports.len()
                    } else {
                        ports
                            .iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) > 0)
                            .count()
                    };
                    out.insert("services.nodeports".into(), count(n));
                    out.insert("services.loadbalancers".into(), one);
                }
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            out.insert("persistentvolumeclaims".into(), one);
            out.insert("count/persistentvolumeclaims".into(), one);
            let storage = obj
                .pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(Quantity::parse);
            if let Some(s) = storage {
                out.insert("requests.storage".into(), s);
            }
            let class = text(obj, "/spec/storageClassName");
            if !class.is_empty() {
                let prefix = format!("{class}.storageclass.storage.k8s.io/");
                out.insert(format!("{prefix}persistentvolumeclaims"), one);
                if let Some(s) = storage {
                    out.insert(format!("{prefix}requests.storage"), s);
                }
            }
        }
        _ => {
            let key = count_key(group, plural);
            if group.is_empty() && LEGACY_COUNTS.contains(&plural) {
                out.insert(key.clone(), one);
            }
            out.insert(format!("count/{key}"), one);
        }
    }
    out
}

fn count(n: usize) -> Quantity {
    Quantity::from_count(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Upstream QuotaV1Pod: pods that still hold resources.
fn counts_for_quota(pod: &Value) -> bool {
    !matches!(text(pod, "/status/phase"), "Succeeded" | "Failed")
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// Upstream PodUsageFunc: the pod, its requests and limits (cpu, memory,
/// ephemeral storage, hugepages and extended resources).
fn pod_usage(pod: &Value) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    if !counts_for_quota(pod) {
        return out;
    }
    out.insert("pods".into(), Quantity::from_count(1));
    out.insert("count/pods".into(), Quantity::from_count(1));
    for kind in ["requests", "limits"] {
        let mut names: Vec<String> = containers(pod)
            .chain(init_containers(pod))
            .filter_map(|c| c.pointer(&format!("/resources/{kind}")))
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        for res in names {
            let Some(q) = pod_amount(pod, kind, &res) else {
                continue;
            };
            let standard = matches!(res.as_str(), "cpu" | "memory" | "ephemeral-storage");
            if standard || res.starts_with("hugepages-") || res.contains('/') {
                out.insert(format!("{kind}.{res}"), q);
            }
            if kind == "requests" && standard {
                out.insert(res, q);
            }
        }
    }
    out
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
        .map_or(&[][..], Vec::as_slice);
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
    quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
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
    containers(pod).chain(init_containers(pod)).all(|c| {
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

fn init_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Upstream PodRequests/PodLimits for one resource: the sum over
/// containers or the largest init container, whichever is more, plus
/// overhead (also LimitRanger's per-Pod amounts).
pub fn pod_amount(pod: &Value, kind: &str, resource: &str) -> Option<Quantity> {
    let get = |c: &Value| {
        c.get("resources")
            .and_then(|r| r.get(kind))
            .and_then(|m| m.get(resource))
            .and_then(Value::as_str)
            .and_then(Quantity::parse)
    };
    let mut sum: Option<Quantity> = None;
    for c in containers(pod) {
        if let Some(q) = get(c) {
            sum = Some(sum.map_or(q, |s| s + q));
        }
    }
    for c in init_containers(pod) {
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
        .get("spec")
        .and_then(|s| s.get("overhead"))
        .and_then(|o| o.get(resource))
        .and_then(Value::as_str)
        .and_then(Quantity::parse);
    match (sum, overhead) {
        (Some(s), Some(o)) => Some(s + o),
        (s, o) => s.or(o),
    }
}

/// The sum of [`object_usage`] of `resource` over `items` (0 when none).
pub fn sum_usage<'a>(
    group: &str,
    plural: &str,
    resource: &str,
    items: impl Iterator<Item = &'a Value>,
) -> Quantity {
    let mut total: Option<Quantity> = None;
    for obj in items {
        if let Some(q) = object_usage(group, plural, obj).get(resource) {
            total = Some(total.map_or(*q, |t| t + *q));
        }
    }
    total.unwrap_or_default()
}

/// The used amount of quota resource `resource` (None: not one we track).
pub fn used(resource: &str, quota: &Value, objs: &Objects) -> Option<Quantity> {
    match source(resource) {
        Source::Pods => {
            let pods = objs
                .pods
                .iter()
                .map(|p| p.as_ref())
                .filter(|p| pod_in_scope(quota, p));
            Some(sum_usage("", "pods", resource, pods))
        }
        Source::Services => Some(sum_usage(
            "",
            "services",
            resource,
            objs.services.iter().map(|s| s.as_ref()),
        )),
        Source::Claims => Some(sum_usage(
            "",
            "persistentvolumeclaims",
            resource,
            objs.claims.iter().map(|c| c.as_ref()),
        )),
        Source::Count(key) => objs.counts.get(key).map(|n| count(*n)),
    }
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
        assert_eq!(u("cpu").as_deref(), Some("1500m"));
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
    fn one_object_usage() {
        let u = object_usage("", "configmaps", &json!({}));
        assert_eq!(
            u.keys().collect::<Vec<_>>(),
            ["configmaps", "count/configmaps"]
        );
        let u = object_usage("apps", "deployments", &json!({}));
        assert_eq!(u.keys().collect::<Vec<_>>(), ["count/deployments.apps"]);
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = object_usage("", "services", &lb);
        assert_eq!(u["services.nodeports"].canonical(), "2");
        let gpu =
            json!({"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}});
        let u = object_usage("", "pods", &gpu);
        assert_eq!(u["limits.nvidia.com/gpu"].canonical(), "1");
        assert!(!u.contains_key("cpu"));
        assert_eq!(source("requests.storage"), Source::Claims);
        assert_eq!(source("requests.cpu"), Source::Pods);
        assert_eq!(source("count/jobs.batch"), Source::Count("jobs.batch"));
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
