//! The scheduler's picture of the cluster, kept up to date incrementally
//! from the watches: per node its allocatable, requested sums, pods and
//! host ports; pods it bound but the watch has not confirmed yet
//! ("assumed") are counted as if confirmed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::affinity::NamespaceLabels;
use super::objects::{HostPort, NodeSpec, PodInfo};
use super::resources::Resources;

#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub spec: NodeSpec,
    /// False while pods point at a node we have no object for.
    pub present: bool,
    pub requested: Resources,
    pub nonzero: Resources,
    pub pods: HashMap<String, Arc<PodInfo>>,
    pub ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.nonzero.add(&pod.nonzero);
        self.ports.extend(pod.ports.iter().cloned());
        self.pods.insert(pod.key.clone(), pod);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let pod = self.pods.remove(key)?;
        self.requested.sub(&pod.requests);
        self.nonzero.sub(&pod.nonzero);
        if !pod.ports.is_empty() {
            self.ports = self.pods.values().flat_map(|p| p.ports.clone()).collect();
        }
        Some(pod)
    }
}

struct Placed {
    node: String,
    assumed: bool,
}

#[derive(Default)]
pub struct Cache {
    nodes: HashMap<String, NodeInfo>,
    /// Names of present nodes, sorted: the order nodes are visited in.
    order: Vec<String>,
    pods: HashMap<String, Placed>,
    /// Controller uid -> node -> pods of that owner there (selector spread).
    owners: HashMap<String, HashMap<String, u32>>,
    /// Pods with required anti-affinity terms (checked against every new pod).
    anti: HashSet<String>,
    pub ns_labels: NamespaceLabels,
}

impl Cache {
    /// Adds or updates a node; true when something the filters look at
    /// changed (so pending pods deserve another try).
    pub fn set_node(&mut self, name: &str, spec: NodeSpec) -> bool {
        let info = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| NodeInfo::new(name));
        let changed = !info.present || info.spec != spec;
        if !info.present {
            info.present = true;
            self.order.push(name.to_string());
            self.order.sort();
        }
        info.spec = spec;
        changed
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            info.present = false;
            info.spec = NodeSpec::default();
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
        self.order.retain(|n| n != name);
    }

    pub fn node_names(&self) -> &[String] {
        &self.order
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name).filter(|n| n.present)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order.iter().filter_map(|n| self.nodes.get(n))
    }

    /// Places an assigned pod on its node (replacing an older version).
    pub fn add_pod(&mut self, pod: Arc<PodInfo>, assumed: bool) {
        self.remove_pod(&pod.key);
        let node = pod.node_name.clone();
        if let Some(owner) = &pod.owner_uid {
            *self
                .owners
                .entry(owner.clone())
                .or_default()
                .entry(node.clone())
                .or_default() += 1;
        }
        if !pod.anti_affinity.is_empty() {
            self.anti.insert(pod.key.clone());
        }
        self.pods.insert(
            pod.key.clone(),
            Placed {
                node: node.clone(),
                assumed,
            },
        );
        self.nodes
            .entry(node.clone())
            .or_insert_with(|| NodeInfo::new(&node))
            .add_pod(pod);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let placed = self.pods.remove(key)?;
        self.anti.remove(key);
        let info = self.nodes.get_mut(&placed.node)?;
        let pod = info.remove_pod(key)?;
        if !info.present && info.pods.is_empty() {
            self.nodes.remove(&placed.node);
        }
        if let Some(owner) = &pod.owner_uid {
            if let Some(per_node) = self.owners.get_mut(owner) {
                if let Some(c) = per_node.get_mut(&placed.node) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        per_node.remove(&placed.node);
                    }
                }
                if per_node.is_empty() {
                    self.owners.remove(owner);
                }
            }
        }
        Some(pod)
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    pub fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Pods of `owner` on `node`.
    pub fn owner_count(&self, owner: &str, node: &str) -> u32 {
        self.owners
            .get(owner)
            .and_then(|m| m.get(node))
            .copied()
            .unwrap_or(0)
    }

    /// Every pod with required anti-affinity, with its node.
    pub fn anti_affinity_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.anti.iter().filter_map(|k| {
            let node = self.nodes.get(&self.pods.get(k)?.node)?;
            Some((node, node.pods.get(k)?))
        })
    }

    /// Every assigned pod on a present node, with its node.
    pub fn all_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.nodes()
            .flat_map(|n| n.pods.values().map(move |p| (n, p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let obj = json!({"metadata": {"name": name, "namespace": "d",
            "ownerReferences": [{"uid": "rs", "controller": true}]},
            "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"cpu": cpu},
            }, "ports": [{"hostPort": 80}]}]}});
        Arc::new(PodInfo::parse(Arc::new(obj), |_| None))
    }

    #[test]
    fn pods_add_and_remove_from_their_node() {
        let mut c = Cache::default();
        assert!(c.set_node("n1", NodeSpec::default()));
        assert!(!c.set_node("n1", NodeSpec::default()));
        c.add_pod(pod("a", "n1", "100m"), true);
        c.add_pod(pod("b", "n1", "200m"), false);
        assert!(c.is_assumed("d/a"));
        let n = c.node("n1").map(|n| (n.requested.milli_cpu, n.ports.len()));
        assert_eq!(n, Some((300, 2)));
        assert_eq!(c.owner_count("rs", "n1"), 2);
        // The watch confirms the assumed pod: no double counting.
        c.add_pod(pod("a", "n1", "100m"), false);
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(300));
        c.remove_pod("d/a");
        let n = c.node("n1").map(|n| (n.requested.milli_cpu, n.ports.len()));
        assert_eq!(n, Some((200, 1)));
        assert_eq!(c.owner_count("rs", "n1"), 1);
        // Pods on unknown nodes are kept until the node appears.
        c.add_pod(pod("c", "n9", "1"), false);
        assert!(c.node("n9").is_none());
        c.set_node("n9", NodeSpec::default());
        assert_eq!(c.node("n9").map(|n| n.requested.milli_cpu), Some(1000));
        assert_eq!(c.node_names(), ["n1", "n9"]);
    }
}
