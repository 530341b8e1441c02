//! core/v1 kinds other than pods, events and storage.

use serde_json::Value;
use std::collections::BTreeSet;

use super::clock::{age, Nanos};
use super::docs;
use super::format::{
    arr, at, containers, format_labels, i, len_of, list_with_more, map, name, s, Col, Printer, Row,
};

pub(super) fn lookup(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "services" => &SERVICES,
        "endpoints" => &ENDPOINTS,
        "nodes" => &NODES,
        "namespaces" => &NAMESPACES,
        "configmaps" => &CONFIGMAPS,
        "secrets" => &SECRETS,
        "serviceaccounts" => &SERVICEACCOUNTS,
        "podtemplates" => &PODTEMPLATES,
        "replicationcontrollers" => &REPLICATIONCONTROLLERS,
        _ => return None,
    })
}

const SERVICES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Type", "string", docs::SVC_TYPE),
        Col::new("Cluster-IP", "string", docs::SVC_CLUSTER_IP),
        Col::new("External-IP", "string", docs::SVC_EXTERNAL_IPS),
        Col::new("Port(s)", "string", docs::SVC_PORTS),
        Col::AGE,
        Col::wide("Selector", "string", docs::SVC_SELECTOR),
    ],
    row: print_service,
};

/// Sorted, de-duplicated IPs (or hostnames) of load-balancer ingress points.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> Vec<String> {
    let set: BTreeSet<&str> = ingress
        .iter()
        .map(|i| match s(i, &["ip"]) {
            "" => s(i, &["hostname"]),
            ip => ip,
        })
        .filter(|v| !v.is_empty())
        .collect();
    set.into_iter().map(str::to_string).collect()
}

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match s(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            // The server always renders the wide form, so nothing is truncated.
            let mut all = load_balancer_ingress(arr(svc, &["status", "loadBalancer", "ingress"]));
            if all.is_empty() && external.is_empty() {
                return "<pending>".into();
            }
            all.extend(external.iter().map(|e| e.to_string()));
            all.join(",")
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

fn print_service(svc: &Value, now: Nanos) -> Row {
    // The v1 -> internal conversion makes spec.clusterIP authoritative over clusterIPs.
    let cluster_ip = match s(svc, &["spec", "clusterIP"]) {
        "" => arr(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("<none>"),
        ip => ip,
    };
    let ports: Vec<String> = arr(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let (port, proto) = (i(p, &["port"]), s(p, &["protocol"]));
            match i(p, &["nodePort"]) {
                np if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    };
    vec![
        name(svc),
        Value::from(s(svc, &["spec", "type"])),
        Value::from(cluster_ip),
        Value::from(external_ip(svc)),
        Value::from(ports),
        age(svc, now),
        Value::from(format_labels(map(svc, &["spec", "selector"]))),
    ]
    .into()
}

const ENDPOINTS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Endpoints", "string", docs::EP_SUBSETS),
        Col::AGE,
    ],
    row: print_endpoints,
};

/// Joins an IP and port the way Go's net.JoinHostPort does (brackets for IPv6).
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn print_endpoints(ep: &Value, now: Nanos) -> Row {
    let subsets = arr(ep, &["subsets"]);
    let text = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut list = Vec::new();
        for ss in subsets {
            let ips: Vec<&str> = arr(ss, &["addresses"])
                .iter()
                .map(|a| s(a, &["ip"]))
                .collect();
            let ports = arr(ss, &["ports"]);
            if ports.is_empty() {
                // Headless services may have no ports at all.
                list.extend(ips.iter().map(|ip| ip.to_string()));
            }
            for p in ports {
                list.extend(ips.iter().map(|ip| join_host_port(ip, i(p, &["port"]))));
            }
        }
        list_with_more(&list, 3, "")
    };
    vec![name(ep), Value::from(text), age(ep, now)].into()
}

const NODES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Status", "string", "The status of the node"),
        Col::new("Roles", "string", "The roles of the node"),
        Col::AGE,
        Col::new("Version", "string", docs::NODE_KUBELET),
        Col::wide("Internal-IP", "string", docs::NODE_ADDRESSES),
        Col::wide("External-IP", "string", docs::NODE_ADDRESSES),
        Col::wide("OS-Image", "string", docs::NODE_OS_IMAGE),
        Col::wide("Kernel-Version", "string", docs::NODE_KERNEL),
        Col::wide("Container-Runtime", "string", docs::NODE_RUNTIME),
    ],
    row: print_node,
};

fn node_address(node: &Value, ty: &str) -> String {
    arr(node, &["status", "addresses"])
        .iter()
        .find(|a| s(a, &["type"]) == ty)
        .map(|a| s(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".into())
}

/// Roles from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in map(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            match v.as_str() {
                Some(v) if !v.is_empty() => {
                    roles.insert(v.to_string());
                }
                _ => {}
            }
        }
    }
    let roles: Vec<String> = roles.into_iter().collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn print_node(node: &Value, now: Nanos) -> Row {
    // The last Ready condition wins, as upstream builds a map keyed by type.
    let ready = arr(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| match s(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(node),
        Value::from(status.join(",")),
        Value::from(node_roles(node)),
        age(node, now),
        Value::from(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        Value::from(node_address(node, "InternalIP")),
        Value::from(node_address(node, "ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ]
    .into()
}

const NAMESPACES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Status", "string", "The status of the namespace"),
        Col::AGE,
    ],
    row: |ns, now| {
        vec![
            name(ns),
            Value::from(s(ns, &["status", "phase"])),
            age(ns, now),
        ]
        .into()
    },
};

const CONFIGMAPS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Data", "string", docs::CM_DATA),
        Col::AGE,
    ],
    row: |cm, now| {
        let n = len_of(cm, &["data"]) + len_of(cm, &["binaryData"]);
        vec![name(cm), Value::from(n), age(cm, now)].into()
    },
};

const SECRETS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Type", "string", docs::SECRET_TYPE),
        Col::new("Data", "string", docs::SECRET_DATA),
        Col::AGE,
    ],
    row: |sec, now| {
        vec![
            name(sec),
            Value::from(s(sec, &["type"])),
            Value::from(len_of(sec, &["data"])),
            age(sec, now),
        ]
        .into()
    },
};

const SERVICEACCOUNTS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Secrets", "string", docs::SA_SECRETS),
        Col::AGE,
    ],
    row: |sa, now| {
        vec![
            name(sa),
            Value::from(len_of(sa, &["secrets"])),
            age(sa, now),
        ]
        .into()
    },
};

const PODTEMPLATES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Containers",
            "string",
            "Names of each container in the template.",
        ),
        Col::new(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        ),
        Col::new("Pod Labels", "string", "The labels for the pod template."),
    ],
    row: |pt, _| {
        let (names, images) = containers(arr(pt, &["template", "spec", "containers"]));
        let labels = format_labels(map(pt, &["template", "metadata", "labels"]));
        vec![name(pt), names, images, Value::from(labels)].into()
    },
};

const REPLICATIONCONTROLLERS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Desired", "integer", docs::RC_REPLICAS),
        Col::new("Current", "integer", docs::RC_CURRENT),
        Col::new("Ready", "integer", docs::RC_READY),
        Col::AGE,
        Col::wide(
            "Containers",
            "string",
            "Names of each container in the template.",
        ),
        Col::wide(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        ),
        Col::wide("Selector", "string", docs::RC_SELECTOR),
    ],
    row: |rc, now| {
        let (names, images) = containers(arr(rc, &["spec", "template", "spec", "containers"]));
        vec![
            name(rc),
            Value::from(i(rc, &["spec", "replicas"])),
            Value::from(i(rc, &["status", "replicas"])),
            Value::from(i(rc, &["status", "readyReplicas"])),
            age(rc, now),
            names,
            images,
            Value::from(format_labels(map(rc, &["spec", "selector"]))),
        ]
        .into()
    },
};
