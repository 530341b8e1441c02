//! Pod topology spread constraints: counting matching pods per topology
//! domain over the eligible nodes, the DoNotSchedule filter and the
//! ScheduleAnyway score.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::cache::{Cache, NodeInfo};
use super::filters;
use super::objects::PodInfo;
use crate::api::selector::LabelSelector;

#[derive(Debug, Clone)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// whenUnsatisfiable: DoNotSchedule.
    pub hard: bool,
    /// None: selects nothing (no or invalid selector).
    selector: Option<LabelSelector>,
    min_domains: usize,
    /// nodeAffinityPolicy Honor (the default).
    honor_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore).
    honor_taints: bool,
}

impl SpreadConstraint {
    pub fn parse(c: &Value, pod_labels: &Map<String, Value>) -> SpreadConstraint {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        let selector = match c.get("labelSelector") {
            None | Some(Value::Null) => None,
            Some(sel) => {
                // matchLabelKeys: the pod's own values join the selector.
                let mut sel = sel.clone();
                for key in c
                    .get("matchLabelKeys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let key = key.as_str().unwrap_or("");
                    if let (Some(v), Some(obj)) = (pod_labels.get(key), sel.as_object_mut()) {
                        if let Some(a) = obj
                            .entry("matchExpressions")
                            .or_insert(json!([]))
                            .as_array_mut()
                        {
                            a.push(json!({"key": key, "operator": "In", "values": [v]}));
                        }
                    }
                }
                LabelSelector::from_json(&sel).ok()
            }
        };
        SpreadConstraint {
            max_skew: c.get("maxSkew").and_then(Value::as_i64).unwrap_or(1).max(1),
            topology_key: s("topologyKey").to_string(),
            hard: s("whenUnsatisfiable") != "ScheduleAnyway",
            selector,
            min_domains: c.get("minDomains").and_then(Value::as_u64).unwrap_or(1) as usize,
            honor_affinity: s("nodeAffinityPolicy") != "Ignore",
            honor_taints: s("nodeTaintsPolicy") == "Honor",
        }
    }

    fn selects(&self, p: &PodInfo, namespace: &str) -> bool {
        p.namespace == namespace
            && !p.deleting
            && self.selector.as_ref().is_some_and(|s| s.matches(&p.labels))
    }
}

/// Counts for one constraint.
#[derive(Debug, Default)]
pub struct Counts {
    per_domain: HashMap<String, i64>,
    min: i64,
}

/// Per constraint of `pod` (hard or soft ones), matching pods per domain.
pub fn count(pod: &PodInfo, cache: &Cache, hard: bool) -> Vec<(usize, Counts)> {
    let wanted: Vec<usize> = (0..pod.spread.len())
        .filter(|i| pod.spread[*i].hard == hard)
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(usize, Counts)> = wanted.iter().map(|i| (*i, Counts::default())).collect();
    for node in cache.nodes() {
        let labels = &node.spec.labels;
        if !wanted
            .iter()
            .all(|i| labels.contains_key(&pod.spread[*i].topology_key))
        {
            continue;
        }
        for (i, counts) in out.iter_mut() {
            let c = &pod.spread[*i];
            if c.honor_affinity && !filters::matches_node_affinity(pod, node) {
                continue;
            }
            if c.honor_taints && filters::untolerated_taint(pod, node).is_some() {
                continue;
            }
            let Some(value) = labels.get(&c.topology_key).and_then(Value::as_str) else {
                continue;
            };
            let n = node
                .pods
                .values()
                .filter(|p| c.selects(p, &pod.namespace))
                .count() as i64;
            *counts.per_domain.entry(value.to_string()).or_default() += n;
        }
    }
    for (i, counts) in out.iter_mut() {
        let c = &pod.spread[*i];
        counts.min = if counts.per_domain.len() < c.min_domains {
            0
        } else {
            counts.per_domain.values().copied().min().unwrap_or(0)
        };
    }
    out
}

pub enum SpreadFailure {
    MissingLabel,
    Skew,
}

/// The DoNotSchedule check of one node.
pub fn check(pod: &PodInfo, counts: &[(usize, Counts)], node: &NodeInfo) -> Option<SpreadFailure> {
    for (i, c) in counts {
        let sc = &pod.spread[*i];
        let Some(value) = node
            .spec
            .labels
            .get(&sc.topology_key)
            .and_then(Value::as_str)
        else {
            return Some(SpreadFailure::MissingLabel);
        };
        let self_match = i64::from(sc.selects(pod, &pod.namespace));
        let here = c.per_domain.get(value).copied().unwrap_or(0);
        if here + self_match - c.min > sc.max_skew {
            return Some(SpreadFailure::Skew);
        }
    }
    None
}

/// Raw ScheduleAnyway score of a node: weighted matching pods in its domains
/// (lower is better); None when the node lacks a topology key.
pub fn raw_score(pod: &PodInfo, counts: &[(usize, Counts)], node: &NodeInfo) -> Option<f64> {
    let mut total = 0.0;
    for (i, c) in counts {
        let sc = &pod.spread[*i];
        let value = node.spec.labels.get(&sc.topology_key)?.as_str()?;
        // Upstream weighs constraints by log(domains + 2).
        let weight = ((c.per_domain.len() + 2) as f64).ln();
        let here = c.per_domain.get(value).copied().unwrap_or(0) as f64;
        total += (here + (sc.max_skew - 1) as f64) * weight;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::objects::NodeSpec;
    use std::sync::Arc;

    fn pod(name: &str, node: &str, spread: Value) -> Arc<PodInfo> {
        let obj = json!({"metadata": {"name": name, "namespace": "d", "labels": {"app": "w"}},
            "spec": {"nodeName": node, "topologySpreadConstraints": spread, "containers": [{}]}});
        Arc::new(PodInfo::parse(Arc::new(obj), |_| None))
    }

    #[test]
    fn skew_counts_domains() {
        let mut cache = Cache::default();
        for (n, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            let mut spec = NodeSpec::default();
            spec.labels.insert("zone".into(), zone.into());
            cache.set_node(n, spec);
        }
        cache.set_node("bare", NodeSpec::default());
        cache.add_pod(pod("p1", "n1", json!([])), false);
        cache.add_pod(pod("p2", "n2", json!([])), false);
        let c = json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "w"}}}]);
        let new = pod("new", "", c);
        let counts = count(&new, &cache, true);
        let node = |n: &str| cache.node(n).cloned().unwrap_or_default();
        assert!(matches!(
            check(&new, &counts, &node("n1")),
            Some(SpreadFailure::Skew)
        ));
        assert!(check(&new, &counts, &node("n3")).is_none());
        assert!(matches!(
            check(&new, &counts, &node("bare")),
            Some(SpreadFailure::MissingLabel)
        ));
        assert!(raw_score(&new, &counts, &node("n3")) < raw_score(&new, &counts, &node("n1")));
    }
}
