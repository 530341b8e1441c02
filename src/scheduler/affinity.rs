//! Node selectors (nodeSelector, node affinity, PV node affinity) and pod
//! affinity terms: parsing and matching.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::api::selector::LabelSelector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
    /// Unknown operator: matches nothing (validation rejects it upstream).
    Invalid,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn parse(v: &Value) -> Requirement {
        let op = match v.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => Op::Invalid,
        };
        Requirement {
            key: v.get("key").and_then(Value::as_str).unwrap_or("").into(),
            op,
            values: v
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        let int = |s: &str| s.parse::<i64>().ok();
        let first = self.values.first().and_then(|v| int(v));
        match (self.op, value) {
            (Op::In, Some(v)) => self.values.iter().any(|x| x == v),
            (Op::In, None) => false,
            (Op::NotIn, Some(v)) => !self.values.iter().any(|x| x == v),
            (Op::NotIn, None) => true,
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::Gt, Some(v)) => matches!((int(v), first), (Some(a), Some(b)) if a > b),
            (Op::Lt, Some(v)) => matches!((int(v), first), (Some(a), Some(b)) if a < b),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Term {
    exprs: Vec<Requirement>,
    fields: Vec<Requirement>,
}

/// The OR of node selector terms, each the AND of its requirements.
#[derive(Debug, Clone)]
pub struct NodeSelector {
    terms: Vec<Term>,
}

impl NodeSelector {
    /// A `v1.NodeSelector` (`{"nodeSelectorTerms": [...]}`).
    pub fn parse(v: &Value) -> NodeSelector {
        let terms = v
            .get("nodeSelectorTerms")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Self::from_terms(terms)
    }

    pub fn from_terms(terms: &[Value]) -> NodeSelector {
        let reqs = |t: &Value, k: &str| -> Vec<Requirement> {
            t.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Requirement::parse).collect())
                .unwrap_or_default()
        };
        NodeSelector {
            terms: terms
                .iter()
                .map(|t| Term {
                    exprs: reqs(t, "matchExpressions"),
                    fields: reqs(t, "matchFields"),
                })
                .collect(),
        }
    }

    /// Whether a node with these labels and name matches; an empty term
    /// matches nothing.
    pub fn matches(&self, labels: &Map<String, Value>, node_name: &str) -> bool {
        self.terms.iter().any(|t| {
            if t.exprs.is_empty() && t.fields.is_empty() {
                return false;
            }
            t.exprs
                .iter()
                .all(|r| r.matches(labels.get(&r.key).and_then(Value::as_str)))
                && t.fields
                    .iter()
                    .all(|r| r.key == "metadata.name" && r.matches(Some(node_name)))
        })
    }
}

/// One pod (anti-)affinity term, its namespaces resolved against the pod
/// that carries it.
#[derive(Debug, Clone)]
pub struct PodAffinityTerm {
    /// None: the term selects nothing (null or invalid selector).
    selector: Option<LabelSelector>,
    namespaces: Vec<String>,
    ns_selector: Option<LabelSelector>,
    pub topology_key: String,
}

/// Labels of each namespace, for namespaceSelector.
pub type NamespaceLabels = HashMap<String, Map<String, Value>>;

impl PodAffinityTerm {
    pub fn parse(term: &Value, pod: &Value) -> PodAffinityTerm {
        let pod_labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
        let pod_ns = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let selector = match term.get("labelSelector") {
            None | Some(Value::Null) => None,
            Some(sel) => {
                // matchLabelKeys/mismatchLabelKeys narrow the selector by the
                // pod's own label values.
                let mut sel = sel.clone();
                for (field, op) in [("matchLabelKeys", "In"), ("mismatchLabelKeys", "NotIn")] {
                    for key in term
                        .get(field)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let key = key.as_str().unwrap_or("");
                        if let Some(v) = pod_labels.and_then(|l| l.get(key)) {
                            if let Some(obj) = sel.as_object_mut() {
                                let exprs = obj.entry("matchExpressions").or_insert(json!([]));
                                if let Some(a) = exprs.as_array_mut() {
                                    a.push(json!({"key": key, "operator": op, "values": [v]}));
                                }
                            }
                        }
                    }
                }
                LabelSelector::from_json(&sel).ok()
            }
        };
        let namespaces: Vec<String> = term
            .get("namespaces")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ns_selector = match term.get("namespaceSelector") {
            None | Some(Value::Null) => None,
            Some(s) => LabelSelector::from_json(s).ok(),
        };
        let namespaces = if namespaces.is_empty() && ns_selector.is_none() {
            vec![pod_ns.to_string()]
        } else {
            namespaces
        };
        PodAffinityTerm {
            selector,
            namespaces,
            ns_selector,
            topology_key: term
                .get("topologyKey")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }

    /// Whether a pod in `namespace` with `labels` is selected by the term.
    pub fn matches(
        &self,
        namespace: &str,
        labels: &Map<String, Value>,
        ns_labels: &NamespaceLabels,
    ) -> bool {
        let Some(sel) = &self.selector else {
            return false;
        };
        let ns_ok = self.namespaces.iter().any(|n| n == namespace)
            || self.ns_selector.as_ref().is_some_and(|s| {
                s.is_everything() || ns_labels.get(namespace).is_some_and(|l| s.matches(l))
            });
        ns_ok && sel.matches(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn node_selector_operators() {
        let sel = NodeSelector::parse(&json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "cores", "operator": "Gt", "values": ["4"]},
        ]}]}));
        assert!(sel.matches(&labels(json!({"zone": "a", "cores": "8"})), "n"));
        assert!(!sel.matches(&labels(json!({"zone": "a", "cores": "2"})), "n"));
        assert!(!sel.matches(&labels(json!({"zone": "c", "cores": "8"})), "n"));
        assert!(!sel.matches(&labels(json!({"zone": "a", "cores": "8", "gpu": ""})), "n"));
        let lt = NodeSelector::parse(&json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "cores", "operator": "Lt", "values": ["4"]},
            {"key": "x", "operator": "NotIn", "values": ["y"]},
            {"key": "ssd", "operator": "Exists"},
        ]}]}));
        assert!(lt.matches(&labels(json!({"cores": "2", "ssd": "1"})), "n"));
        assert!(!lt.matches(&labels(json!({"cores": "2", "ssd": "1", "x": "y"})), "n"));
    }

    #[test]
    fn match_fields_and_empty_terms() {
        let sel = NodeSelector::parse(&json!({"nodeSelectorTerms": [
            {},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
        ]}));
        assert!(sel.matches(&Map::new(), "n2"));
        assert!(!sel.matches(&Map::new(), "n1"));
    }

    #[test]
    fn affinity_terms_resolve_namespaces() {
        let pod = json!({"metadata": {"namespace": "a", "labels": {"app": "web", "v": "1"}}});
        let own = PodAffinityTerm::parse(
            &json!({"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "k",
                    "matchLabelKeys": ["v"]}),
            &pod,
        );
        let ns = NamespaceLabels::new();
        assert!(own.matches("a", &labels(json!({"app": "web", "v": "1"})), &ns));
        assert!(!own.matches("a", &labels(json!({"app": "web", "v": "2"})), &ns));
        assert!(!own.matches("b", &labels(json!({"app": "web", "v": "1"})), &ns));
        let all = PodAffinityTerm::parse(
            &json!({"labelSelector": {}, "namespaceSelector": {}, "topologyKey": "k"}),
            &pod,
        );
        assert!(all.matches("b", &Map::new(), &ns));
        let none = PodAffinityTerm::parse(&json!({"topologyKey": "k"}), &pod);
        assert!(!none.matches("a", &Map::new(), &ns));
    }
}
