//! Scoring of feasible nodes: each plugin yields 0..=100 per node, summed
//! with upstream's default weights.

use std::collections::HashMap;

use serde_json::Value;

use super::cache::{Cache, NodeInfo};
use super::objects::{PodInfo, Taint, Toleration};
use super::spread::{self, Counts};

const MAX: i64 = 100;
const W_FIT: i64 = 1;
const W_BALANCED: i64 = 1;
const W_NODE_AFFINITY: i64 = 2;
const W_POD_AFFINITY: i64 = 2;
const W_TAINTS: i64 = 3;
const W_SPREAD: i64 = 2;
/// Stands in for upstream's default spreading of a controller's pods.
const W_OWNER_SPREAD: i64 = 2;

/// Per-pod state for scoring, computed once.
pub struct ScoreContext<'a> {
    pod: &'a PodInfo,
    soft_spread: Vec<(usize, Counts)>,
    /// Preferred (anti-)affinity weights per (topology key, value).
    pod_affinity: HashMap<(String, String), i64>,
}

impl<'a> ScoreContext<'a> {
    pub fn new(pod: &'a PodInfo, cache: &Cache) -> ScoreContext<'a> {
        let mut pod_affinity = HashMap::new();
        if !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty() {
            let ns = &cache.ns_labels;
            let terms = pod
                .preferred_affinity
                .iter()
                .map(|(w, t)| (*w, t))
                .chain(pod.preferred_anti_affinity.iter().map(|(w, t)| (-*w, t)));
            let terms: Vec<_> = terms.collect();
            for (node, p) in cache.all_pods() {
                for (w, t) in &terms {
                    if t.matches(&p.namespace, &p.labels, ns) {
                        if let Some(v) = node
                            .spec
                            .labels
                            .get(&t.topology_key)
                            .and_then(Value::as_str)
                        {
                            *pod_affinity
                                .entry((t.topology_key.clone(), v.to_string()))
                                .or_default() += *w;
                        }
                    }
                }
            }
        }
        ScoreContext {
            pod,
            soft_spread: spread::count(pod, cache, false),
            pod_affinity,
        }
    }

    /// Total score of each node, in the order given.
    pub fn score(&self, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
        let pod = self.pod;
        let mut total: Vec<i64> = nodes
            .iter()
            .map(|n| W_FIT * least_allocated(pod, n) + W_BALANCED * balanced(pod, n))
            .collect();
        if !pod.preferred_node_affinity.is_empty() {
            let raw: Vec<i64> = nodes
                .iter()
                .map(|n| {
                    pod.preferred_node_affinity
                        .iter()
                        .filter(|(_, s)| s.matches(&n.spec.labels, &n.name))
                        .map(|(w, _)| *w)
                        .sum()
                })
                .collect();
            add(&mut total, W_NODE_AFFINITY, &normalize_max(&raw, false));
        }
        let raw: Vec<i64> = nodes
            .iter()
            .map(|n| intolerable_prefer_no_schedule(&pod.tolerations, &n.spec.taints))
            .collect();
        add(&mut total, W_TAINTS, &normalize_max(&raw, true));
        if !self.pod_affinity.is_empty() {
            let raw: Vec<i64> = nodes
                .iter()
                .map(|n| {
                    self.pod_affinity
                        .iter()
                        .filter(|((k, v), _)| {
                            n.spec.labels.get(k).and_then(Value::as_str) == Some(v.as_str())
                        })
                        .map(|(_, w)| *w)
                        .sum()
                })
                .collect();
            add(&mut total, W_POD_AFFINITY, &normalize_min_max(&raw));
        }
        if !self.soft_spread.is_empty() {
            let raw: Vec<Option<f64>> = nodes
                .iter()
                .map(|n| spread::raw_score(pod, &self.soft_spread, n))
                .collect();
            let max = raw.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
            let min = raw.iter().flatten().fold(f64::MAX, |a, b| a.min(*b));
            let s: Vec<i64> = raw
                .iter()
                .map(|r| match r {
                    None => 0,
                    Some(_) if max <= 0.0 => MAX,
                    Some(v) => (MAX as f64 * (max + min - v) / max) as i64,
                })
                .collect();
            add(&mut total, W_SPREAD, &s);
        }
        if let Some(owner) = &pod.owner_uid {
            let raw: Vec<i64> = nodes
                .iter()
                .map(|n| i64::from(cache.owner_count(owner, &n.name)))
                .collect();
            add(&mut total, W_OWNER_SPREAD, &normalize_max(&raw, true));
        }
        total
    }
}

fn add(total: &mut [i64], weight: i64, scores: &[i64]) {
    for (t, s) in total.iter_mut().zip(scores) {
        *t += weight * s;
    }
}

/// Scales to 0..=100 by the maximum; `reverse`: fewer is better.
fn normalize_max(raw: &[i64], reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|r| match (max, reverse) {
            (m, true) if m <= 0 => MAX,
            (m, false) if m <= 0 => 0,
            (m, true) => MAX - r * MAX / m,
            (m, false) => r * MAX / m,
        })
        .collect()
}

fn normalize_min_max(raw: &[i64]) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    let min = raw.iter().copied().min().unwrap_or(0);
    raw.iter()
        .map(|r| {
            if max > min {
                (r - min) * MAX / (max - min)
            } else {
                0
            }
        })
        .collect()
}

fn fractions(pod: &PodInfo, n: &NodeInfo) -> [(i64, i64); 2] {
    let a = &n.spec.allocatable;
    [
        (n.nonzero.milli_cpu + pod.nonzero.milli_cpu, a.milli_cpu),
        (n.nonzero.memory + pod.nonzero.memory, a.memory),
    ]
}

/// Upstream LeastAllocated over cpu and memory (equal weights).
pub fn least_allocated(pod: &PodInfo, n: &NodeInfo) -> i64 {
    let s: i64 = fractions(pod, n)
        .iter()
        .map(|(req, cap)| {
            if *cap <= 0 || req > cap {
                0
            } else {
                ((cap - req) as i128 * MAX as i128 / *cap as i128) as i64
            }
        })
        .sum();
    s / 2
}

/// Upstream BalancedAllocation: 100 * (1 - standard deviation of the
/// cpu and memory fractions).
pub fn balanced(pod: &PodInfo, n: &NodeInfo) -> i64 {
    let f: Vec<f64> = fractions(pod, n)
        .iter()
        .map(|(req, cap)| {
            if *cap <= 0 {
                1.0
            } else {
                (*req as f64 / *cap as f64).min(1.0)
            }
        })
        .collect();
    let std = (f[0] - f[1]).abs() / 2.0;
    ((1.0 - std) * MAX as f64) as i64
}

fn intolerable_prefer_no_schedule(tolerations: &[Toleration], taints: &[Taint]) -> i64 {
    taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| {
            !tolerations.iter().any(|tol| {
                (tol.effect.is_empty() || tol.effect == "PreferNoSchedule") && tol.tolerates(t)
            })
        })
        .count() as i64
}
