//! The built-in service load balancer (k3s's servicelb without its
//! DaemonSet pods): a LoadBalancer Service of our class (or none) gets
//! `status.loadBalancer.ingress` = the addresses of the Ready nodes, kept up
//! to date as nodes come and go, and cleared when it stops being one. The
//! node proxy makes those addresses answer. Nodes labelled
//! `svccontroller.k3s.cattle.io/enablelb=true`, when any is, are the only
//! ones used.
//!
//! Every LoadBalancer shares the same addresses, so two of them cannot use
//! the same port and protocol: the older one (creationTimestamp, then
//! namespace/name) keeps it, the later one gets no ingress and a Warning
//! event until the port is free again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::objects::{self, condition_is_true, is_deleting, labels, name, namespace};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, PatchType, Recorder, ResourceId};

/// The `spec.loadBalancerClass` this controller serves (besides none).
pub const LOAD_BALANCER_CLASS: &str = "nanokube.io/servicelb";
/// k3s's node label: when any node has it `true`, only those nodes serve.
const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";
/// Upstream's label keeping a node out of external load balancers.
const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// k3s's event reason when a load balancer cannot be served.
const UNAVAILABLE: &str = "UnAvailableLoadBalancer";
const UPDATED: &str = "UpdatedIngressIP";

pub fn start(ctx: &Ctx) {
    if !ctx.settings.servicelb {
        tracing::info!("service load balancer disabled");
        return;
    }
    let queue = WorkQueue::new();
    // Service key → what decides port ownership; a change there (or a
    // delete) can move ports between services, so all are looked at again.
    let tracked: Arc<Mutex<HashMap<ObjectKey, String>>> = Arc::default();
    {
        let (q, tracked) = (Arc::clone(&queue), Arc::clone(&tracked));
        runtime::watch(ctx.client.clone(), services(), None, move |change, svc| {
            let Some(key) = ObjectKey::of(svc) else {
                return;
            };
            let mut t = tracked.lock().unwrap_or_else(|p| p.into_inner());
            let print =
                (change != Change::Deleted && is_load_balancer(svc)).then(|| fingerprint(svc));
            let before = match &print {
                Some(p) => t.insert(key.clone(), p.clone()),
                None => t.remove(&key),
            };
            if before != print {
                t.keys().for_each(|k| q.add(k.clone()));
            }
            // Also a service that stopped being ours, to clear its status.
            if print.is_some() || before.is_some() || has_ingress(svc) {
                q.add(key);
            }
        });
    }
    {
        let (q, tracked) = (Arc::clone(&queue), Arc::clone(&tracked));
        runtime::watch(ctx.client.clone(), nodes(), None, move |_, _| {
            let t = tracked.lock().unwrap_or_else(|p| p.into_inner());
            t.keys().for_each(|k| q.add(k.clone()));
        });
    }
    let reconciler = Arc::new(ServiceLb {
        client: ctx.client.clone(),
        recorder: ctx.recorder("service-lb-controller"),
        warned: Mutex::default(),
    });
    // One worker: port ownership is decided over all services at once.
    runtime::run("servicelb", queue, reconciler, 1);
}

fn services() -> ResourceId {
    ResourceId::new("", "v1", "services")
}

fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

fn spec_str<'a>(svc: &'a Value, field: &str) -> Option<&'a str> {
    svc.get("spec")?.get(field)?.as_str()
}

/// A LoadBalancer Service this controller serves.
fn is_load_balancer(svc: &Value) -> bool {
    spec_str(svc, "type") == Some("LoadBalancer")
        && spec_str(svc, "loadBalancerClass").is_none_or(|c| c == LOAD_BALANCER_CLASS)
}

fn has_ingress(svc: &Value) -> bool {
    !ingress_ips(svc).is_empty()
}

/// The (port, protocol) pairs a service takes on the node addresses.
fn ports(svc: &Value) -> Vec<(i64, String)> {
    svc.get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    let port = p.get("port")?.as_i64()?;
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    Some((port, proto.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fingerprint(svc: &Value) -> String {
    format!(
        "{}|{:?}",
        objects::meta_str(svc, "creationTimestamp"),
        ports(svc)
    )
}

fn ingress_ips(svc: &Value) -> Vec<String> {
    svc.get("status")
        .and_then(|s| s.get("loadBalancer"))
        .and_then(|l| l.get("ingress"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|i| i.get("ip").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Why a LoadBalancer service gets no ports: the older service holding one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conflict {
    holder: String,
    port: i64,
    protocol: String,
}

/// Port ownership over every served LoadBalancer: the oldest service (then
/// the one already holding addresses) wins a (port, protocol); a service
/// losing any of its ports gets none of them.
fn assign_ports<'a>(all: impl Iterator<Item = &'a Value>) -> HashMap<ObjectKey, Conflict> {
    let mut lbs: Vec<&Value> = all.filter(|s| is_load_balancer(s)).collect();
    lbs.sort_by(|a, b| {
        // Timestamps have one-second granularity: within the same second
        // a service already holding addresses keeps them (no flapping).
        let order = |s: &Value| {
            (
                objects::meta_str(s, "creationTimestamp").to_string(),
                ingress_ips(s).is_empty(),
                namespace(s).to_string(),
                name(s).to_string(),
            )
        };
        order(a).cmp(&order(b))
    });
    let mut taken: HashMap<(i64, String), String> = HashMap::new();
    let mut losers = HashMap::new();
    for svc in lbs {
        let Some(key) = ObjectKey::of(svc) else {
            continue;
        };
        let wanted = ports(svc);
        let clash = wanted.iter().find_map(|p| {
            taken.get(p).map(|holder| Conflict {
                holder: holder.clone(),
                port: p.0,
                protocol: p.1.clone(),
            })
        });
        match clash {
            Some(c) => {
                losers.insert(key, c);
            }
            None => {
                for p in wanted {
                    taken.insert(p, key.to_string());
                }
            }
        }
    }
    losers
}

/// The addresses of the nodes that serve load balancers, sorted.
fn node_addresses<'a>(all: impl Iterator<Item = &'a Value> + Clone) -> Vec<String> {
    let label = |n: &Value, k: &str| {
        labels(n)
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let restricted = all
        .clone()
        .any(|n| label(n, ENABLE_LB_LABEL).as_deref() == Some("true"));
    let mut out = BTreeSet::new();
    for node in all {
        if is_deleting(node)
            || !condition_is_true(node, "Ready")
            || label(node, EXCLUDE_LABEL).is_some()
            || (restricted && label(node, ENABLE_LB_LABEL).as_deref() != Some("true"))
        {
            continue;
        }
        let addresses = node
            .get("status")
            .and_then(|s| s.get("addresses"))
            .and_then(Value::as_array);
        for a in addresses.into_iter().flatten() {
            let kind = a.get("type").and_then(Value::as_str);
            let ip = a.get("address").and_then(Value::as_str);
            if let (Some("InternalIP" | "ExternalIP"), Some(ip)) = (kind, ip) {
                if ip.parse::<std::net::IpAddr>().is_ok() {
                    out.insert(ip.to_string());
                }
            }
        }
    }
    out.into_iter().collect()
}

struct ServiceLb {
    client: Local,
    recorder: Recorder,
    /// Services last warned about, with the warning, so each is told once.
    warned: Mutex<HashMap<ObjectKey, String>>,
}

impl ServiceLb {
    /// Records a Warning once per distinct problem; `None` forgets it.
    fn warn(&self, svc: &Value, key: &ObjectKey, message: Option<String>) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        match message {
            Some(m) if warned.get(key) != Some(&m) => {
                self.recorder.warning(svc, UNAVAILABLE, &m);
                warned.insert(key.clone(), m);
            }
            Some(_) => {}
            None => {
                warned.remove(key);
            }
        }
    }
}

impl Reconciler for ServiceLb {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let all = self
            .client
            .list(&services(), None, &ListOptions::default())
            .await?;
        let Some(svc) = all
            .items
            .iter()
            .find(|s| ObjectKey::of(s).as_ref() == Some(key))
        else {
            self.warn(&Value::Null, key, None);
            return Ok(Action::Done);
        };
        let is_lb = spec_str(svc, "type") == Some("LoadBalancer");
        if is_lb && !is_load_balancer(svc) {
            // Another controller's class: its status is not ours to touch.
            return Ok(Action::Done);
        }
        let desired = if is_lb && !is_deleting(svc) {
            let node_list = self
                .client
                .list(&nodes(), None, &ListOptions::default())
                .await?;
            match assign_ports(all.items.iter().map(|s| s.as_ref())).remove(key) {
                Some(c) => {
                    let m = format!(
                        "port {}/{} is already used by LoadBalancer service {}",
                        c.port, c.protocol, c.holder
                    );
                    self.warn(svc, key, Some(m));
                    Vec::new()
                }
                None => {
                    let ips = node_addresses(node_list.items.iter().map(|n| n.as_ref()));
                    let problem = ips
                        .is_empty()
                        .then(|| "There are no available nodes for LoadBalancer".to_string());
                    self.warn(svc, key, problem);
                    ips
                }
            }
        } else {
            self.warn(svc, key, None);
            Vec::new()
        };
        let current = ingress_ips(svc);
        if current.iter().collect::<HashSet<_>>() == desired.iter().collect::<HashSet<_>>() {
            return Ok(Action::Done);
        }
        let ingress: Value = if desired.is_empty() {
            Value::Null
        } else {
            desired.iter().map(|ip| json!({"ip": ip})).collect()
        };
        let patch = json!({"metadata": {"uid": objects::uid(svc)},
            "status": {"loadBalancer": {"ingress": ingress}}});
        match self
            .client
            .patch(
                &services(),
                key.ns(),
                &key.name,
                PatchType::Merge,
                &patch,
                Some("status"),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(service = %key, ingress = ?desired, "servicelb: ingress updated");
        if !desired.is_empty() {
            self.recorder.normal(
                svc,
                UPDATED,
                &format!(
                    "LoadBalancer Ingress IP addresses updated: {}",
                    desired.join(", ")
                ),
            );
        }
        Ok(Action::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(name: &str, created: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
               "spec": {"type": "LoadBalancer", "ports": ports}})
    }

    fn node(name: &str, ready: &str, ip: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels},
               "status": {"conditions": [{"type": "Ready", "status": ready}],
                          "addresses": [{"type": "InternalIP", "address": ip},
                                        {"type": "Hostname", "address": name}]}})
    }

    #[test]
    fn the_oldest_service_keeps_a_port() {
        let a = lb(
            "a",
            "2024-01-01T00:00:00Z",
            json!([{"port": 80, "protocol": "TCP"}]),
        );
        let b = lb(
            "b",
            "2024-01-02T00:00:00Z",
            json!([{"port": 80, "protocol": "TCP"}, {"port": 81}]),
        );
        let udp = lb(
            "c",
            "2024-01-03T00:00:00Z",
            json!([{"port": 80, "protocol": "UDP"}]),
        );
        let mut other = lb("d", "2024-01-00T00:00:00Z", json!([{"port": 80}]));
        other["spec"]["loadBalancerClass"] = json!("example.com/other");
        let losers = assign_ports([&b, &a, &udp, &other].into_iter());
        assert_eq!(losers.len(), 1, "{losers:?}");
        let c = &losers[&ObjectKey::new("default", "b")];
        assert_eq!((c.holder.as_str(), c.port), ("default/a", 80));
        // The loser's other port stays free for a third service.
        let e = lb("e", "2024-01-04T00:00:00Z", json!([{"port": 81}]));
        assert!(assign_ports([&a, &b, &e].into_iter()).len() == 1);
    }

    #[test]
    fn within_a_second_the_holder_keeps_its_port() {
        let at = "2024-01-01T00:00:00Z";
        let mut web = lb("web", at, json!([{"port": 80}]));
        web["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
        let clash = lb("clash", at, json!([{"port": 80}]));
        let losers = assign_ports([&clash, &web].into_iter());
        assert_eq!(losers.len(), 1, "{losers:?}");
        assert_eq!(
            losers[&ObjectKey::new("default", "clash")].holder,
            "default/web"
        );
    }

    #[test]
    fn ready_nodes_serve_and_the_label_restricts() {
        let n1 = node("n1", "True", "192.0.2.1", json!({}));
        let n2 = node("n2", "False", "192.0.2.2", json!({}));
        let mut n3 = node("n3", "True", "192.0.2.3", json!({}));
        n3["status"]["addresses"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "ExternalIP", "address": "198.51.100.3"}));
        let all = [n1.clone(), n2.clone(), n3.clone()];
        assert_eq!(
            node_addresses(all.iter()),
            vec!["192.0.2.1", "192.0.2.3", "198.51.100.3"]
        );
        let labelled = node("n4", "True", "192.0.2.4", json!({ENABLE_LB_LABEL: "true"}));
        let all = [n1, n2, n3, labelled];
        assert_eq!(node_addresses(all.iter()), vec!["192.0.2.4"]);
        let excluded = node("n5", "True", "192.0.2.5", json!({EXCLUDE_LABEL: ""}));
        assert!(node_addresses([excluded].iter()).is_empty());
    }

    #[test]
    fn only_our_class_is_served() {
        let mut s = lb("a", "", json!([]));
        assert!(is_load_balancer(&s));
        s["spec"]["loadBalancerClass"] = json!(LOAD_BALANCER_CLASS);
        assert!(is_load_balancer(&s));
        s["spec"]["loadBalancerClass"] = json!("x/y");
        assert!(!is_load_balancer(&s));
        s["spec"]["type"] = json!("ClusterIP");
        assert!(!is_load_balancer(&s));
        assert!(!is_load_balancer(&json!(null)));
    }
}
