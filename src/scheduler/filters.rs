//! The filters, in upstream's plugin order, each failing with upstream's
//! reason text; and the FailedScheduling message built from them.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::affinity::NodeSelector;
use super::cache::{Cache, NodeInfo};
use super::objects::{tolerated, PodInfo, Taint};
use super::resources::Resources;
use super::spread::{self, Counts, SpreadFailure};

pub const UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const TOO_MANY_PODS: &str = "Too many pods";
pub const VOLUME_AFFINITY: &str = "node(s) had volume node affinity conflict";
pub const SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const SPREAD_MISSING: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
pub const AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// Why a node cannot take the pod. `unresolvable`: removing pods would
/// not help (upstream UnschedulableAndUnresolvable), so preemption skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub reasons: Vec<String>,
    pub unresolvable: bool,
}

impl Status {
    fn new(reason: &str, unresolvable: bool) -> Status {
        Status {
            reasons: vec![reason.to_string()],
            unresolvable,
        }
    }
}

/// Requests of pods nominated to a node (reserved for preemptors).
pub type Nominated = HashMap<String, (Resources, i64)>;

/// What is computed once per pod before visiting nodes (upstream PreFilter).
pub struct PodContext<'a> {
    pub pod: &'a PodInfo,
    /// (topology key, value) pairs existing pods' anti-affinity forbids.
    existing_anti: HashSet<(String, String)>,
    /// Pods matching all required affinity terms, per (key, value).
    affinity_counts: HashMap<(String, String), u32>,
    /// Per required anti-affinity term: values with matching pods.
    anti_values: Vec<HashSet<String>>,
    self_affinity: bool,
    spread: Vec<(usize, Counts)>,
    pub volume_selectors: Vec<NodeSelector>,
    pub nominated: Nominated,
}

impl<'a> PodContext<'a> {
    pub fn new(pod: &'a PodInfo, cache: &Cache) -> PodContext<'a> {
        let ns = &cache.ns_labels;
        let mut existing_anti = HashSet::new();
        for (node, p) in cache.anti_affinity_pods() {
            for t in &p.anti_affinity {
                if t.matches(&pod.namespace, &pod.labels, ns) {
                    if let Some(v) = node
                        .spec
                        .labels
                        .get(&t.topology_key)
                        .and_then(Value::as_str)
                    {
                        existing_anti.insert((t.topology_key.clone(), v.to_string()));
                    }
                }
            }
        }
        let mut affinity_counts = HashMap::new();
        let mut anti_values = vec![HashSet::new(); pod.anti_affinity.len()];
        if !pod.affinity.is_empty() || !pod.anti_affinity.is_empty() {
            for (node, p) in cache.all_pods() {
                let label = |k: &str| node.spec.labels.get(k).and_then(Value::as_str);
                if !pod.affinity.is_empty()
                    && pod
                        .affinity
                        .iter()
                        .all(|t| t.matches(&p.namespace, &p.labels, ns))
                {
                    for t in &pod.affinity {
                        if let Some(v) = label(&t.topology_key) {
                            *affinity_counts
                                .entry((t.topology_key.clone(), v.to_string()))
                                .or_default() += 1;
                        }
                    }
                }
                for (i, t) in pod.anti_affinity.iter().enumerate() {
                    if t.matches(&p.namespace, &p.labels, ns) {
                        if let Some(v) = label(&t.topology_key) {
                            anti_values[i].insert(v.to_string());
                        }
                    }
                }
            }
        }
        let self_affinity = pod
            .affinity
            .iter()
            .all(|t| t.matches(&pod.namespace, &pod.labels, ns));
        PodContext {
            pod,
            existing_anti,
            affinity_counts,
            anti_values,
            self_affinity,
            spread: spread::count(pod, cache, true),
            volume_selectors: Vec::new(),
            nominated: Nominated::new(),
        }
    }

    /// Runs the filters on one node; the first failing one decides.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Status> {
        let pod = self.pod;
        if node.spec.unschedulable {
            let t = Taint {
                key: "node.kubernetes.io/unschedulable".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            };
            if !tolerated(&pod.tolerations, &t) {
                return Err(Status::new(UNSCHEDULABLE, true));
            }
        }
        if let Some(t) = untolerated_taint(pod, node) {
            let reason = format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value);
            return Err(Status::new(&reason, true));
        }
        if !matches_node_affinity(pod, node) {
            return Err(Status::new(NODE_AFFINITY, true));
        }
        if pod
            .ports
            .iter()
            .any(|p| node.ports.iter().any(|q| p.conflicts(q)))
        {
            return Err(Status::new(PORTS, false));
        }
        let reasons = insufficient(pod, node, self.nominated.get(&node.name));
        if !reasons.is_empty() {
            return Err(Status {
                reasons,
                unresolvable: false,
            });
        }
        if !self
            .volume_selectors
            .iter()
            .all(|s| s.matches(&node.spec.labels, &node.name))
        {
            return Err(Status::new(VOLUME_AFFINITY, true));
        }
        match spread::check(pod, &self.spread, node) {
            Some(SpreadFailure::MissingLabel) => return Err(Status::new(SPREAD_MISSING, true)),
            Some(SpreadFailure::Skew) => return Err(Status::new(SPREAD, false)),
            None => {}
        }
        self.inter_pod(node)
    }

    fn inter_pod(&self, node: &NodeInfo) -> Result<(), Status> {
        let pod = self.pod;
        let label = |k: &str| node.spec.labels.get(k).and_then(Value::as_str);
        if self
            .existing_anti
            .iter()
            .any(|(k, v)| label(k) == Some(v.as_str()))
        {
            return Err(Status::new(EXISTING_ANTI_AFFINITY, false));
        }
        if !pod.affinity.is_empty() {
            let mut exist = true;
            for t in &pod.affinity {
                let Some(v) = label(&t.topology_key) else {
                    return Err(Status::new(AFFINITY, true));
                };
                let key = (t.topology_key.clone(), v.to_string());
                if self.affinity_counts.get(&key).copied().unwrap_or(0) == 0 {
                    exist = false;
                }
            }
            // The first pod of a group with affinity to itself may go anywhere.
            let first_of_group = self.affinity_counts.is_empty() && self.self_affinity;
            if !(exist || first_of_group) {
                return Err(Status::new(AFFINITY, true));
            }
        }
        for (i, t) in pod.anti_affinity.iter().enumerate() {
            if label(&t.topology_key).is_some_and(|v| self.anti_values[i].contains(v)) {
                return Err(Status::new(ANTI_AFFINITY, false));
            }
        }
        Ok(())
    }
}

/// nodeSelector and required node affinity.
pub fn matches_node_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let labels = &node.spec.labels;
    pod.node_selector
        .iter()
        .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()))
        && pod
            .required_node_affinity
            .as_ref()
            .is_none_or(|s| s.matches(labels, &node.name))
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate,
/// including the not-ready taint of a node that is not Ready.
pub fn untolerated_taint(pod: &PodInfo, node: &NodeInfo) -> Option<Taint> {
    let hard = |t: &&Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
    if let Some(t) = node
        .spec
        .taints
        .iter()
        .filter(hard)
        .find(|t| !tolerated(&pod.tolerations, t))
    {
        return Some(t.clone());
    }
    let t = node.spec.condition_taint()?;
    let already = node.spec.taints.iter().any(|x| {
        x.key == "node.kubernetes.io/not-ready" || x.key == "node.kubernetes.io/unreachable"
    });
    (!already && !tolerated(&pod.tolerations, &t)).then_some(t)
}

/// Upstream NodeResourcesFit: pod count, then each requested resource.
pub fn insufficient(
    pod: &PodInfo,
    node: &NodeInfo,
    extra: Option<&(Resources, i64)>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let (extra_req, extra_pods) = extra.cloned().unwrap_or_default();
    if node.pods.len() as i64 + extra_pods + 1 > node.spec.allowed_pods {
        reasons.push(TOO_MANY_PODS.to_string());
    }
    let req = &pod.requests;
    if req.is_zero() {
        return reasons;
    }
    let mut used = node.requested.clone();
    used.add(&extra_req);
    let alloc = &node.spec.allocatable;
    if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if req.memory > 0 && req.memory > alloc.memory - used.memory {
        reasons.push("Insufficient memory".into());
    }
    if req.ephemeral > 0 && req.ephemeral > alloc.ephemeral - used.ephemeral {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, v) in &req.scalars {
        if *v > 0 && *v > alloc.scalar(name) - used.scalar(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

/// "3 Insufficient cpu, 1 node(s) ..." sorted as upstream sorts the
/// formatted strings.
pub fn histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    parts.join(", ")
}

/// Upstream FitError text: "0/N nodes are available: <prefilter or
/// histogram>. <postfilter>."
pub fn fit_message(total: usize, prefilter: Option<&str>, histogram: &str, post: &str) -> String {
    let mut msg = format!("0/{total} nodes are available:");
    let mut add = |part: &str| {
        msg.push(' ');
        msg.push_str(part);
        if !part.ends_with('.') {
            msg.push('.');
        }
    };
    match prefilter {
        Some(p) => add(p),
        None if !histogram.is_empty() => add(histogram),
        None => {}
    }
    if !post.is_empty() {
        add(post);
    }
    msg
}
