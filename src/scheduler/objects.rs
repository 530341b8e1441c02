//! Pods and nodes as the scheduler sees them: parsed once per watch event
//! into plain structs, so a scheduling decision never walks JSON.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::affinity::{NodeSelector, PodAffinityTerm};
use super::resources::{pod_requests, quantity_value, Resources};
use super::spread::SpreadConstraint;

pub const SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub exists: bool,
    pub value: String,
    pub effect: String,
}

impl Toleration {
    /// Upstream `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        // An empty key with Exists tolerates everything.
        self.exists || self.value == t.value
    }
}

pub fn tolerated(tolerations: &[Toleration], t: &Taint) -> bool {
    tolerations.iter().any(|tol| tol.tolerates(t))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i64,
}

impl HostPort {
    /// Same port and protocol, and the addresses overlap (0.0.0.0 is all).
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let wild = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || wild(&self.ip) || wild(&o.ip))
    }
}

/// A pod, pending or assigned.
#[derive(Debug)]
pub struct PodInfo {
    /// "namespace/name".
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Map<String, Value>,
    pub node_name: String,
    pub scheduler_name: String,
    pub priority: i64,
    pub preempt_never: bool,
    pub requests: Resources,
    /// Requests with upstream's non-zero defaults, for scoring.
    pub nonzero: Resources,
    pub ports: Vec<HostPort>,
    pub node_selector: Vec<(String, String)>,
    pub required_node_affinity: Option<NodeSelector>,
    pub preferred_node_affinity: Vec<(i64, NodeSelector)>,
    pub affinity: Vec<PodAffinityTerm>,
    pub anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i64, PodAffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, PodAffinityTerm)>,
    pub tolerations: Vec<Toleration>,
    pub spread: Vec<SpreadConstraint>,
    /// Claims the pod's volumes use (ephemeral volumes included).
    pub claims: Vec<String>,
    pub owner_uid: Option<String>,
    pub deleting: bool,
    pub terminal: bool,
    /// Has scheduling gates: not to be scheduled yet.
    pub gated: bool,
    pub nominated_node: String,
    pub created: String,
    pub obj: Arc<Value>,
}

fn text<'a>(v: Option<&'a Value>, k: &str) -> &'a str {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn array<'a>(v: Option<&'a Value>, k: &str) -> &'a [Value] {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn parse_taints(spec: Option<&Value>) -> Vec<Taint> {
    array(spec, "taints")
        .iter()
        .map(|t| Taint {
            key: text(Some(t), "key").to_string(),
            value: text(Some(t), "value").to_string(),
            effect: text(Some(t), "effect").to_string(),
        })
        .collect()
}

pub fn pod_key(obj: &Value) -> String {
    let m = obj.get("metadata");
    format!("{}/{}", text(m, "namespace"), text(m, "name"))
}

impl PodInfo {
    /// `class_priority` resolves `priorityClassName` when admission left
    /// `spec.priority` unset.
    pub fn parse(obj: Arc<Value>, class_priority: impl Fn(&str) -> Option<i64>) -> PodInfo {
        let meta = obj.get("metadata");
        let spec = obj.get("spec");
        let status = obj.get("status");
        let (requests, nonzero) = spec.map(pod_requests).unwrap_or_default();
        let priority = spec
            .and_then(|s| s.get("priority"))
            .and_then(Value::as_i64)
            .or_else(|| class_priority(text(spec, "priorityClassName")))
            .unwrap_or(0);
        let mut ports = Vec::new();
        for c in array(spec, "containers")
            .iter()
            .chain(array(spec, "initContainers"))
        {
            for p in array(Some(c), "ports") {
                let port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                if port > 0 {
                    let proto = text(Some(p), "protocol");
                    ports.push(HostPort {
                        protocol: if proto.is_empty() { "TCP" } else { proto }.to_string(),
                        ip: text(Some(p), "hostIP").to_string(),
                        port,
                    });
                }
            }
        }
        let node_selector = spec
            .and_then(|s| s.get("nodeSelector"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let aff = spec.and_then(|s| s.get("affinity"));
        let node_aff = aff.and_then(|a| a.get("nodeAffinity"));
        let required_node_affinity = node_aff
            .and_then(|n| n.get("requiredDuringSchedulingIgnoredDuringExecution"))
            .filter(|v| !v.is_null())
            .map(NodeSelector::parse);
        let preferred_node_affinity =
            array(node_aff, "preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .map(|p| {
                    let w = p.get("weight").and_then(Value::as_i64).unwrap_or(0);
                    let term = p.get("preference").cloned().unwrap_or(Value::Null);
                    (w, NodeSelector::from_terms(std::slice::from_ref(&term)))
                })
                .collect();
        let pod_aff = aff.and_then(|a| a.get("podAffinity"));
        let pod_anti = aff.and_then(|a| a.get("podAntiAffinity"));
        let required = |v: Option<&Value>| -> Vec<PodAffinityTerm> {
            array(v, "requiredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .map(|t| PodAffinityTerm::parse(t, &obj))
                .collect()
        };
        let preferred = |v: Option<&Value>| -> Vec<(i64, PodAffinityTerm)> {
            array(v, "preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .map(|t| {
                    let w = t.get("weight").and_then(Value::as_i64).unwrap_or(0);
                    let term = t.get("podAffinityTerm").unwrap_or(&Value::Null);
                    (w, PodAffinityTerm::parse(term, &obj))
                })
                .collect()
        };
        let tolerations = array(spec, "tolerations")
            .iter()
            .map(|t| Toleration {
                key: text(Some(t), "key").to_string(),
                exists: text(Some(t), "operator") == "Exists",
                value: text(Some(t), "value").to_string(),
                effect: text(Some(t), "effect").to_string(),
            })
            .collect();
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let spread = array(spec, "topologySpreadConstraints")
            .iter()
            .map(|c| SpreadConstraint::parse(c, &labels))
            .collect();
        let name = text(meta, "name").to_string();
        let claims = array(spec, "volumes")
            .iter()
            .filter_map(|v| {
                if let Some(c) = v.get("persistentVolumeClaim") {
                    Some(text(Some(c), "claimName").to_string())
                } else if v.get("ephemeral").is_some() {
                    Some(format!("{name}-{}", text(Some(v), "name")))
                } else {
                    None
                }
            })
            .collect();
        let owner_uid = array(meta, "ownerReferences")
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .map(|r| text(Some(r), "uid").to_string());
        let phase = text(status, "phase");
        PodInfo {
            key: pod_key(&obj),
            uid: text(meta, "uid").to_string(),
            namespace: text(meta, "namespace").to_string(),
            name,
            labels,
            node_name: text(spec, "nodeName").to_string(),
            scheduler_name: text(spec, "schedulerName").to_string(),
            priority,
            preempt_never: text(spec, "preemptionPolicy") == "Never",
            requests,
            nonzero,
            ports,
            node_selector,
            required_node_affinity,
            preferred_node_affinity,
            affinity: required(pod_aff),
            anti_affinity: required(pod_anti),
            preferred_affinity: preferred(pod_aff),
            preferred_anti_affinity: preferred(pod_anti),
            tolerations,
            spread,
            claims,
            owner_uid,
            deleting: meta
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some_and(|t| !t.is_null()),
            terminal: matches!(phase, "Succeeded" | "Failed"),
            gated: !array(spec, "schedulingGates").is_empty(),
            nominated_node: text(status, "nominatedNodeName").to_string(),
            created: text(meta, "creationTimestamp").to_string(),
            obj: obj.clone(),
        }
    }

    /// Ours to schedule: unassigned, for this scheduler, alive.
    pub fn wants_scheduling(&self) -> bool {
        self.node_name.is_empty()
            && (self.scheduler_name.is_empty() || self.scheduler_name == SCHEDULER_NAME)
            && !self.deleting
            && !self.terminal
    }
}

/// A node's scheduling-relevant fields (compared to tell whether an update
/// can make pending pods schedulable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSpec {
    pub labels: Map<String, Value>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    /// The Ready condition's status ("True", "False", "Unknown", or "").
    pub ready: String,
    pub allocatable: Resources,
    pub allowed_pods: i64,
}

impl NodeSpec {
    pub fn parse(obj: &Value) -> NodeSpec {
        let spec = obj.get("spec");
        let status = obj.get("status");
        let alloc = status.and_then(|s| s.get("allocatable").or_else(|| s.get("capacity")));
        let ready = array(status, "conditions")
            .iter()
            .find(|c| text(Some(c), "type") == "Ready")
            .map(|c| text(Some(c), "status").to_string())
            .unwrap_or_default();
        NodeSpec {
            labels: obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            taints: parse_taints(spec),
            unschedulable: spec
                .and_then(|s| s.get("unschedulable"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ready,
            allocatable: Resources::from_list(alloc),
            allowed_pods: alloc
                .and_then(|a| a.get("pods"))
                .and_then(quantity_value)
                .map_or(0, |m| (m / 1000) as i64),
        }
    }

    /// Taints the node lifecycle controller would set for a node that is not
    /// Ready, when they are not there yet.
    pub fn condition_taint(&self) -> Option<Taint> {
        if self.ready == "True" {
            return None;
        }
        let key = if self.ready == "Unknown" {
            "node.kubernetes.io/unreachable"
        } else {
            "node.kubernetes.io/not-ready"
        };
        Some(Taint {
            key: key.into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        })
    }
}
