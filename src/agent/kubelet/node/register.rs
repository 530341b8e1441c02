//! Registration: the node's name, labels and taints checked as the API
//! would, the Node to create, and adopting an existing Node of the same
//! name (a restarted kubelet): the kubelet's labels are reconciled while
//! what others set (podCIDR, taints, labels, conditions) stays.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::sysinfo::arch;
use crate::api::validation::{is_dns1123_subdomain, is_qualified_name, is_valid_label_value};
use crate::client::{Client, ClientError, PatchType, ResourceId};

pub const INSTANCE_TYPE: &str = "nanokube";
const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

pub fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

/// The node name, lower-cased (as upstream lower-cases the hostname).
pub fn node_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    let errs = is_dns1123_subdomain(&name);
    if errs.is_empty() {
        Ok(name)
    } else {
        Err(errs.join("; "))
    }
}

/// `--node-label key=value` flags.
pub fn parse_labels(flags: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for flag in flags.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        let (key, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("{flag:?} is not key=value"))?;
        check_key_value(key, value)?;
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

fn check_key_value(key: &str, value: &str) -> Result<(), String> {
    let errs = is_qualified_name(key);
    if !errs.is_empty() {
        return Err(format!("key {key:?}: {}", errs.join("; ")));
    }
    let errs = is_valid_label_value(value);
    if !errs.is_empty() {
        return Err(format!("value {value:?}: {}", errs.join("; ")));
    }
    Ok(())
}

/// `--node-taint key=value:Effect` or `key:Effect` flags, as Node taints.
pub fn parse_taints(flags: &[String]) -> Result<Vec<Value>, String> {
    let mut out: Vec<Value> = Vec::new();
    for flag in flags.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        let (kv, effect) = flag
            .rsplit_once(':')
            .ok_or_else(|| format!("{flag:?} is not key=value:Effect"))?;
        if !EFFECTS.contains(&effect) {
            return Err(format!(
                "{flag:?}: unsupported taint effect {effect:?}: expected NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        check_key_value(key, value).map_err(|e| format!("{flag:?}: {e}"))?;
        if out.iter().any(|t| t["key"] == key && t["effect"] == effect) {
            return Err(format!("{flag:?}: duplicate taint {key}:{effect}"));
        }
        let mut taint = json!({"key": key, "effect": effect});
        if !value.is_empty() {
            taint["value"] = json!(value);
        }
        out.push(taint);
    }
    Ok(out)
}

/// The labels the kubelet sets: upstream's defaults, nanokube's instance
/// type, k3s's role labels for a server, then `--node-label`s.
pub fn labels(
    name: &str,
    extra: &BTreeMap<String, String>,
    server_role: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut set = |k: &str, v: &str| {
        out.insert(k.to_string(), json!(v));
    };
    set("kubernetes.io/hostname", name);
    set("kubernetes.io/os", "linux");
    set("kubernetes.io/arch", arch());
    set("beta.kubernetes.io/os", "linux");
    set("beta.kubernetes.io/arch", arch());
    set("node.kubernetes.io/instance-type", INSTANCE_TYPE);
    if server_role {
        set("node-role.kubernetes.io/control-plane", "true");
        set("node-role.kubernetes.io/master", "true");
    }
    for (k, v) in extra {
        set(k, v);
    }
    out
}

/// The Node to create; the status follows through the status subresource
/// and the podCIDR is the node IPAM controller's to set.
pub fn node_object(name: &str, labels: &Map<String, Value>, taints: &[Value]) -> Value {
    let mut spec = json!({});
    if !taints.is_empty() {
        spec["taints"] = json!(taints);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
    })
}

/// The merge patch that brings an existing Node's labels to ours (labels
/// others added stay); `None` when nothing differs.
pub fn adopt_patch(current: &Value, labels: &Map<String, Value>) -> Option<Value> {
    let have = &current["metadata"]["labels"];
    let missing: Map<String, Value> = labels
        .iter()
        .filter(|(k, v)| have.get(k.as_str()) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!missing.is_empty()).then(|| json!({"metadata": {"labels": missing}}))
}

/// Creates the Node, or adopts the existing one; returns it as stored.
pub async fn register<C: Client>(
    client: &C,
    name: &str,
    labels: &Map<String, Value>,
    taints: &[Value],
) -> Result<Value, ClientError> {
    match client
        .create(&nodes(), None, node_object(name, labels, taints))
        .await
    {
        Ok(obj) => {
            tracing::info!(node = name, "node registered");
            Ok(obj)
        }
        Err(e) if e.is_already_exists() => {
            let cur = client.get(&nodes(), None, name).await?;
            tracing::info!(node = name, "node already registered; adopting it");
            match adopt_patch(&cur, labels) {
                Some(patch) => {
                    client
                        .patch(&nodes(), None, name, PatchType::Merge, &patch, None)
                        .await
                }
                None => Ok((*cur).clone()),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_lower_cased_and_checked() {
        assert_eq!(node_name("Node-1.Example").unwrap(), "node-1.example");
        assert!(node_name("bad_name")
            .unwrap_err()
            .contains("RFC 1123 subdomain"));
        assert!(node_name("").is_err());
    }

    #[test]
    fn labels_parse_and_validate() {
        let l = parse_labels(&strings(&["a=b", "example.com/x=", " ", "zone=z1"])).unwrap();
        assert_eq!(l["a"], "b");
        assert_eq!(l["example.com/x"], "");
        assert!(parse_labels(&strings(&["novalue"]))
            .unwrap_err()
            .contains("key=value"));
        assert!(parse_labels(&strings(&["bad key=x"]))
            .unwrap_err()
            .contains("key \"bad key\""));
        assert!(parse_labels(&strings(&["k=bad value"]))
            .unwrap_err()
            .contains("value"));
        let all = labels("n1", &l, true);
        assert_eq!(all["kubernetes.io/hostname"], "n1");
        assert_eq!(all["node.kubernetes.io/instance-type"], "nanokube");
        assert_eq!(all["node-role.kubernetes.io/control-plane"], "true");
        assert_eq!(all["node-role.kubernetes.io/master"], "true");
        assert_eq!(all["zone"], "z1");
        assert!(!labels("n1", &l, false).contains_key("node-role.kubernetes.io/master"));
    }

    #[test]
    fn taints_parse_and_validate() {
        let t = parse_taints(&strings(&[
            "dedicated=gpu:NoSchedule",
            "example.com/x:NoExecute",
        ]))
        .unwrap();
        assert_eq!(
            t[0],
            json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})
        );
        assert_eq!(t[1], json!({"key": "example.com/x", "effect": "NoExecute"}));
        let err = |s: &str| parse_taints(&strings(&[s])).unwrap_err();
        assert!(err("k=v").contains("key=value:Effect"));
        assert!(err("k=v:Sometimes").contains("unsupported taint effect \"Sometimes\""));
        assert!(err("=v:NoSchedule").contains("key"));
        let dup = parse_taints(&strings(&["k=a:NoSchedule", "k=b:NoSchedule"]));
        assert!(dup.unwrap_err().contains("duplicate"));
    }

    #[test]
    fn adopting_keeps_what_others_set() {
        let ours = labels("n1", &BTreeMap::new(), false);
        let node = node_object("n1", &ours, &[]);
        assert_eq!(adopt_patch(&node, &ours), None);
        let mut other = node.clone();
        other["metadata"]["labels"]["team"] = json!("x");
        other["metadata"]["labels"]["kubernetes.io/arch"] = json!("sparc");
        let patch = adopt_patch(&other, &ours).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"kubernetes.io/arch": arch()}}})
        );
        let taint = json!({"key": "k", "effect": "NoSchedule"});
        assert_eq!(
            node_object("n1", &ours, std::slice::from_ref(&taint))["spec"]["taints"][0],
            taint
        );
    }
}
