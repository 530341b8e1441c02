//! networking.k8s.io Ingress, IngressClass and NetworkPolicy, and
//! discovery.k8s.io EndpointSlice.

use serde_json::{json, Value};

use super::json::{child, default, default_str, each_mut, list, root, same, text};
use super::rules::protocol;
use super::rules::{self, idx};
use crate::api::validation::{self as v, FieldCause};

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];

pub(super) fn ingress_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let rules_list = list(spec, "rules");
    let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
    if rules_list.is_empty() && default_backend.is_none() {
        let shown = spec.get("rules").cloned().unwrap_or(Value::Null);
        out.push(v::invalid(
            "spec",
            &shown,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        backend(b, "spec.defaultBackend", &mut out);
    }
    let class = text(spec, "ingressClassName");
    if !class.is_empty() {
        let msgs = v::is_dns1123_subdomain(class);
        out.extend(
            msgs.iter()
                .map(|m| v::invalid("spec.ingressClassName", &json!(class), m)),
        );
    }
    for (i, rule) in rules_list.iter().enumerate() {
        let at = idx("spec.rules", i);
        let host = text(rule, "host");
        if !host.is_empty() {
            if host.parse::<std::net::IpAddr>().is_ok() {
                out.push(v::invalid(
                    &format!("{at}.host"),
                    &json!(host),
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = v::is_dns1123_subdomain(host.strip_prefix("*.").unwrap_or(host));
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid(&format!("{at}.host"), &json!(host), m)),
            );
        }
        let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
            continue;
        };
        let paths = list(http, "paths");
        if paths.is_empty() {
            out.push(v::required(&format!("{at}.http.paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            let pat = idx(&format!("{at}.http.paths"), j);
            match p.get("pathType").and_then(Value::as_str) {
                None | Some("") => out.push(v::required(
                    &format!("{pat}.pathType"),
                    "pathType must be specified",
                )),
                Some("Exact" | "Prefix") if !text(p, "path").starts_with('/') => {
                    out.push(v::invalid(
                        &format!("{pat}.path"),
                        &json!(text(p, "path")),
                        "must be an absolute path",
                    ))
                }
                Some(t) if !PATH_TYPES.contains(&t) => out.push(v::not_supported(
                    &format!("{pat}.pathType"),
                    &json!(t),
                    PATH_TYPES,
                )),
                Some(_) => {}
            }
            backend(
                p.get("backend").unwrap_or(&Value::Null),
                &format!("{pat}.backend"),
                &mut out,
            );
        }
    }
    out
}

/// An IngressBackend: exactly one of service and resource; a service
/// names its port by name or number.
fn backend(b: &Value, path: &str, out: &mut Vec<FieldCause>) {
    let service = b.get("service").filter(|s| !s.is_null());
    let resource = b.get("resource").filter(|r| !r.is_null());
    match (service, resource) {
        (Some(_), Some(_)) => out.push(v::invalid(
            path,
            &json!(""),
            "cannot set both resource and service backends",
        )),
        (None, None) => out.push(v::invalid(
            path,
            b,
            "resource or service backend is required",
        )),
        (None, Some(_)) => {}
        (Some(s), None) => {
            if text(s, "name").is_empty() {
                out.push(v::required(&format!("{path}.service.name"), ""));
            }
            let port = s.get("port").unwrap_or(&Value::Null);
            let name = text(port, "name");
            match (
                port.get("number")
                    .filter(|n| !n.is_null() && n.as_i64() != Some(0)),
                name.is_empty(),
            ) {
                (Some(_), false) => out.push(v::invalid(
                    &format!("{path}.service.port"),
                    port,
                    "cannot set both port name & port number",
                )),
                (None, true) => out.push(v::required(
                    &format!("{path}.service.port"),
                    "port name or number is required",
                )),
                (Some(n), true) => {
                    rules::port_number(&format!("{path}.service.port.number"), n, out)
                }
                (None, false) => {
                    let msgs = rules::port_name(name);
                    let field = format!("{path}.service.port.name");
                    out.extend(msgs.iter().map(|m| v::invalid(&field, &json!(name), m)));
                }
            }
        }
    }
}

pub(super) fn ingressclass_validate(obj: &Value) -> Vec<FieldCause> {
    let controller = obj.get("spec").map(|s| text(s, "controller")).unwrap_or("");
    let domain_prefixed = controller.split_once('/').is_some_and(|(domain, rest)| {
        !rest.is_empty() && v::is_dns1123_subdomain(domain).is_empty()
    });
    if domain_prefixed {
        Vec::new()
    } else {
        let msg = "must be a domain-prefixed path (such as \"acme.io/foo\")";
        vec![v::invalid("spec.controller", &json!(controller), msg)]
    }
}

pub(super) fn ingressclass_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let pick = |o: &Value| o.get("spec").and_then(|s| s.get("controller")).cloned();
    if same(pick(new).as_ref(), pick(old).as_ref()) {
        Vec::new()
    } else {
        vec![v::immutable(
            "spec.controller",
            pick(new).as_ref().unwrap_or(&Value::Null),
        )]
    }
}

/// SetDefaults_NetworkPolicy: TCP ports; policyTypes implied by rules.
pub(super) fn networkpolicy_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default(spec, "podSelector", json!({}));
    for direction in ["ingress", "egress"] {
        for rule in each_mut(spec, direction) {
            for port in each_mut(rule, "ports") {
                default_str(port, "protocol", "TCP");
            }
        }
    }
    if spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

pub(super) fn networkpolicy_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    rules::label_selector(
        "spec.podSelector",
        spec.get("podSelector").unwrap_or(&json!({})),
        &mut out,
    );
    let types = list(spec, "policyTypes");
    for (i, t) in types.iter().enumerate() {
        if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
            out.push(v::not_supported(
                &idx("spec.policyTypes", i),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
    if types.len() > 2 {
        out.push(v::invalid(
            "spec.policyTypes",
            &Value::Array(types.to_vec()),
            "may not specify more than two policyTypes",
        ));
    }
    for direction in ["ingress", "egress"] {
        for (i, rule) in list(spec, direction).iter().enumerate() {
            for (j, p) in list(rule, "ports").iter().enumerate() {
                let at = idx(
                    &format!("{}.ports", idx(&format!("spec.{direction}"), i)),
                    j,
                );
                protocol(p.get("protocol"), &format!("{at}.protocol"), &mut out);
                if let Some(port) = p.get("port").filter(|x| !x.is_null()) {
                    rules::port_num_or_name(&format!("{at}.port"), port, &mut out);
                }
            }
        }
    }
    out
}

/// SetDefaults_EndpointPort (discovery): TCP, empty name.
pub(super) fn endpointslice_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    for port in each_mut(o, "ports") {
        default_str(port, "protocol", "TCP");
        default(port, "name", json!(""));
    }
}

pub(super) fn endpointslice_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let kind = obj.get("addressType").and_then(Value::as_str).unwrap_or("");
    match kind {
        "" => out.push(v::required("addressType", "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        _ => out.push(v::not_supported(
            "addressType",
            &json!(kind),
            &["IPv4", "IPv6", "FQDN"],
        )),
    }
    for (i, ep) in list(obj, "endpoints").iter().enumerate() {
        let at = format!("{}.addresses", idx("endpoints", i));
        let addresses = list(ep, "addresses");
        if addresses.is_empty() {
            out.push(v::required(&at, "must contain at least 1 address"));
        }
        for (j, a) in addresses.iter().enumerate() {
            let s = a.as_str().unwrap_or("");
            let ok = match kind {
                "IPv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => v::is_dns1123_subdomain(s).is_empty(),
            };
            if !ok {
                let msg = match kind {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "must be a valid DNS subdomain",
                };
                out.push(v::invalid(&idx(&at, j), a, msg));
            }
        }
    }
    for (i, p) in list(obj, "ports").iter().enumerate() {
        let at = idx("ports", i);
        if let Some(port) = p.get("port").filter(|x| !x.is_null()) {
            rules::port_number(&format!("{at}.port"), port, &mut out);
        }
        protocol(p.get("protocol"), &format!("{at}.protocol"), &mut out);
    }
    out
}

pub(super) fn endpointslice_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    if same(new.get("addressType"), old.get("addressType")) {
        Vec::new()
    } else {
        vec![v::immutable(
            "addressType",
            new.get("addressType").unwrap_or(&Value::Null),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingresses() {
        let ok = json!({"spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        assert!(
            ingress_validate(&ok).is_empty(),
            "{:?}",
            ingress_validate(&ok)
        );
        let mut bad = ok.clone();
        bad["spec"]["rules"][0]["http"]["paths"][0] =
            json!({"path": "/", "backend": {"service": {"name": "web", "port": {}}}});
        let fields: Vec<String> = ingress_validate(&bad)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].http.paths[0].pathType",
                "spec.rules[0].http.paths[0].backend.service.port"
            ]
        );
        assert_eq!(ingress_validate(&json!({"spec": {}}))[0].field, "spec");
        assert!(
            ingressclass_validate(&json!({"spec": {"controller": "k8s.io/ingress-nginx"}}))
                .is_empty()
        );
        assert_eq!(
            ingressclass_validate(&json!({"spec": {"controller": "nginx"}})).len(),
            1
        );
    }

    #[test]
    fn network_policies_and_slices() {
        let mut np = json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}});
        networkpolicy_defaults(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert!(networkpolicy_validate(&np).is_empty());
        let mut es = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]});
        endpointslice_defaults(&mut es);
        assert_eq!(
            es["ports"][0],
            json!({"port": 80, "protocol": "TCP", "name": ""})
        );
        assert!(endpointslice_validate(&es).is_empty());
        es["endpoints"][0]["addresses"][0] = json!("nope");
        assert_eq!(
            endpointslice_validate(&es)[0].field,
            "endpoints[0].addresses[0]"
        );
        let mut v6 = es.clone();
        v6["addressType"] = json!("IPv6");
        assert_eq!(
            endpointslice_validate_update(&v6, &es)[0].field,
            "addressType"
        );
        assert_eq!(endpointslice_validate(&json!({}))[0].field, "addressType");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"spec": 1, "ports": 2}),
            json!({"spec": {"rules": [1, {"http": 2}], "egress": [3]}, "endpoints": [1]}),
        ] {
            let mut j = junk.clone();
            networkpolicy_defaults(&mut j);
            endpointslice_defaults(&mut j);
            ingress_validate(&j);
            ingressclass_validate(&j);
            networkpolicy_validate(&j);
            endpointslice_validate(&j);
            ingressclass_validate_update(&j, &junk);
        }
    }
}
