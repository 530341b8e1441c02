//! networking.k8s.io and discovery.k8s.io kinds.

use serde_json::Value;

use super::clock::age;
use super::core::load_balancer_ingress;
use super::docs;
use super::format::{arr, at, format_label_selector, list_with_more, name, opt_s, s, Col, Printer};

pub(super) fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("networking.k8s.io", "ingresses") => &INGRESSES,
        ("networking.k8s.io", "ingressclasses") => &INGRESSCLASSES,
        ("networking.k8s.io", "networkpolicies") => &NETWORKPOLICIES,
        ("discovery.k8s.io", "endpointslices") => &ENDPOINTSLICES,
        _ => return None,
    })
}

/// formatHosts: up to three rule hosts; once three are collected any further
/// rule (with or without a host) turns on " + N more...", N counting all rules.
fn ingress_hosts(rules: &[Value]) -> String {
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == 3 {
            more = true;
        }
        let host = s(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    match (hosts.is_empty(), more) {
        (true, _) => "*".into(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - 3),
        (false, false) => hosts.join(","),
    }
}

const INGRESSES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Col::new("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        Col::new("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        Col::new("Ports", "string", "Ports of TLS configurations that open"),
        Col::AGE,
    ],
    row: |ing, now| {
        let address = load_balancer_ingress(arr(ing, &["status", "loadBalancer", "ingress"])).join(",");
        let ports = if arr(ing, &["spec", "tls"]).is_empty() { "80" } else { "80, 443" };
        vec![
            name(ing),
            Value::from(opt_s(ing, &["spec", "ingressClassName"]).unwrap_or("<none>")),
            Value::from(ingress_hosts(arr(ing, &["spec", "rules"]))),
            Value::from(address),
            Value::from(ports),
            age(ing, now),
        ]
        .into()
    },
};

const INGRESSCLASSES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        Col::new(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        Col::AGE,
    ],
    row: |ic, now| {
        let params = match at(ic, &["spec", "parameters"]) {
            Some(p) if p.is_object() => match opt_s(p, &["apiGroup"]) {
                Some(g) => format!("{}.{g}/{}", s(p, &["kind"]), s(p, &["name"])),
                None => format!("{}/{}", s(p, &["kind"]), s(p, &["name"])),
            },
            _ => "<none>".into(),
        };
        vec![
            name(ic),
            Value::from(s(ic, &["spec", "controller"])),
            Value::from(params),
            age(ic, now),
        ]
        .into()
    },
};

const NETWORKPOLICIES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Pod-Selector", "string", docs::NP_POD_SELECTOR),
        Col::AGE,
    ],
    row: |np, now| {
        // podSelector is a value (not a pointer) upstream, so absence reads as empty.
        let sel = at(np, &["spec", "podSelector"])
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        vec![
            name(np),
            Value::from(format_label_selector(Some(&sel))),
            age(np, now),
        ]
        .into()
    },
};

const ENDPOINTSLICES: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("AddressType", "string", docs::ES_ADDRESS_TYPE),
        Col::new("Ports", "string", docs::ES_PORTS),
        Col::new("Endpoints", "string", docs::ES_ENDPOINTS),
        Col::AGE,
    ],
    row: |es, now| {
        let ports: Vec<String> = arr(es, &["ports"])
            .iter()
            .map(|p| {
                match (
                    at(p, &["port"]).and_then(Value::as_i64),
                    opt_s(p, &["name"]),
                ) {
                    (Some(port), _) => port.to_string(),
                    (None, Some(n)) => n.to_string(),
                    (None, None) => "*".into(),
                }
            })
            .collect();
        let addrs: Vec<String> = arr(es, &["endpoints"])
            .iter()
            .flat_map(|e| {
                arr(e, &["addresses"])
                    .iter()
                    .map(|a| a.as_str().unwrap_or("").to_string())
            })
            .collect();
        vec![
            name(es),
            Value::from(s(es, &["addressType"])),
            Value::from(list_with_more(&ports, 3, "<unset>")),
            Value::from(list_with_more(&addrs, 3, "<unset>")),
            age(es, now),
        ]
        .into()
    },
};
