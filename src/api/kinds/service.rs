//! core/v1 Service: `SetDefaults_Service`, the IP family fields the service
//! registry fills, initial status and `ValidateService`. Cluster IPs and
//! node ports are allocated by the write path, not here.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::json::{child, default, default_str, each_mut, list, root, text};
use super::rules::protocol;
use super::rules::{self, idx};
use crate::api::validation::{self as v, FieldCause};

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

pub(super) fn defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| child(o, "spec")) else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        default(
            spec,
            "sessionAffinityConfig",
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    default_str(spec, "type", "ClusterIP");
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for port in each_mut(spec, "ports") {
        default_str(port, "protocol", "TCP");
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(t) => t.as_i64() == Some(0) || t.as_str() == Some(""),
        };
        if unset {
            let p = port.get("port").cloned().unwrap_or(Value::Null);
            port.insert("targetPort".into(), p);
        }
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if kind == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if kind != "ExternalName" {
        default_str(spec, "internalTrafficPolicy", "Cluster");
        // This is a single-stack IPv4 cluster. Headless services without a
        // selector may carry endpoints of any family, so upstream asks for
        // both there.
        if headless_without_selector(&*spec) {
            default_str(spec, "ipFamilyPolicy", "RequireDualStack");
            default(spec, "ipFamilies", json!(["IPv4", "IPv6"]));
        } else {
            default_str(spec, "ipFamilyPolicy", "SingleStack");
            default(spec, "ipFamilies", json!(["IPv4"]));
        }
    }
}

/// A headless Service without a selector: its endpoints may be of any
/// address family, so upstream's single-family rules do not apply.
pub(in crate::api) fn headless_without_selector(spec: &serde_json::Map<String, Value>) -> bool {
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(|s| s.is_empty());
    headless && selectorless
}

pub(super) fn prepare_create(obj: &mut Value) {
    if let Some(o) = root(obj) {
        o.insert("status".into(), json!({"loadBalancer": {}}));
    }
}

pub(super) fn validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let Some(spec) = obj.get("spec").filter(|s| s.is_object()) else {
        out.push(v::required("spec", ""));
        return out;
    };
    let kind = spec.get("type").cloned().unwrap_or(Value::Null);
    let kind_str = kind.as_str().unwrap_or("");
    if !TYPES.contains(&kind_str) {
        out.push(v::not_supported("spec.type", &kind, TYPES));
    }
    let headless = text(spec, "clusterIP") == "None";
    let ports = list(spec, "ports");
    if ports.is_empty() && !headless && kind_str != "ExternalName" {
        out.push(v::required("spec.ports", ""));
    }
    if kind_str == "ExternalName" {
        let name = text(spec, "externalName");
        if name.is_empty() {
            out.push(v::required("spec.externalName", ""));
        } else {
            let msgs = v::is_dns1123_subdomain(name.strip_suffix('.').unwrap_or(name));
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid("spec.externalName", &json!(name), m)),
            );
        }
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    // One node port may serve two protocols, not the same one twice.
    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = idx("spec.ports", i);
        let name = text(p, "name");
        if name.is_empty() {
            if ports.len() > 1 {
                out.push(v::required(&format!("{at}.name"), ""));
            }
        } else {
            out.extend(
                v::is_dns1123_label(name)
                    .iter()
                    .map(|m| v::invalid(&format!("{at}.name"), &json!(name), m)),
            );
            if !names.insert(name) {
                out.push(v::duplicate(&format!("{at}.name"), &json!(name)));
            }
        }
        rules::port_number(
            &format!("{at}.port"),
            p.get("port").unwrap_or(&Value::Null),
            &mut out,
        );
        protocol(p.get("protocol"), &format!("{at}.protocol"), &mut out);
        if let Some(t) = p.get("targetPort").filter(|t| !t.is_null()) {
            rules::port_num_or_name(&format!("{at}.targetPort"), t, &mut out);
        }
        if kind_str == "ClusterIP"
            && p.get("nodePort")
                .and_then(Value::as_i64)
                .is_some_and(|n| n != 0)
        {
            out.push(v::forbidden(
                &format!("{at}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if let Some(n) = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if !node_ports.insert((n, text(p, "protocol"))) {
                out.push(v::duplicate(&format!("{at}.nodePort"), &json!(n)));
            }
        }
        let key = (p.get("port").and_then(Value::as_i64), text(p, "protocol"));
        if !keys.insert(key) {
            let shown = json!({"port": p.get("port"), "protocol": p.get("protocol")});
            out.push(v::duplicate(&at, &shown));
        }
    }
    if let Some(a) = spec
        .get("sessionAffinity")
        .filter(|a| !matches!(a.as_str(), Some("ClientIP" | "None")))
    {
        out.push(v::not_supported(
            "spec.sessionAffinity",
            a,
            &["ClientIP", "None"],
        ));
    }
    rules::labels("spec.selector", spec.get("selector"), &mut out);
    for field in ["externalTrafficPolicy", "internalTrafficPolicy"] {
        let p = spec
            .get(field)
            .filter(|p| !p.is_null() && !matches!(p.as_str(), Some("Cluster" | "Local")));
        if let Some(p) = p {
            out.push(v::not_supported(
                &format!("spec.{field}"),
                p,
                &["Cluster", "Local"],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        let mut s = json!({"metadata": {"name": "web"}, "spec": spec});
        defaults(&mut s);
        prepare_create(&mut s);
        s
    }

    #[test]
    fn defaults_match_upstream() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        assert!(validate(&s).is_empty(), "{:?}", validate(&s));
        let lb = svc(json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        let ext = svc(json!({"type": "ExternalName", "externalName": "example.com"}));
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(validate(&ext).is_empty());
    }

    #[test]
    fn each_rule_is_caught() {
        let s = svc(
            json!({"ports": [{"port": 80}, {"port": 70000, "name": "b", "protocol": "ICMP"}], "type": "Weird"}),
        );
        let fields: Vec<String> = validate(&s).into_iter().map(|c| c.field).collect();
        for f in [
            "spec.type",
            "spec.ports[0].name",
            "spec.ports[1].port",
            "spec.ports[1].protocol",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} in {fields:?}");
        }
        let none = svc(json!({}));
        assert_eq!(validate(&none)[0].field, "spec.ports");
        let ext = svc(json!({"type": "ExternalName"}));
        assert_eq!(validate(&ext)[0].field, "spec.externalName");
        let headless = svc(json!({"clusterIP": "None"}));
        assert!(validate(&headless).is_empty());
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
    }

    #[test]
    fn a_node_port_serves_two_protocols_but_not_one_twice() {
        let ok = svc(json!({"type": "NodePort", "ports": [
            {"name": "a", "port": 53, "protocol": "UDP", "nodePort": 30053},
            {"name": "b", "port": 53, "protocol": "TCP", "nodePort": 30053}]}));
        assert!(validate(&ok).is_empty(), "{:?}", validate(&ok));
        let dup = svc(json!({"type": "NodePort", "ports": [
            {"name": "a", "port": 80, "nodePort": 30080},
            {"name": "b", "port": 81, "nodePort": 30080}]}));
        let causes = validate(&dup);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec.ports[1].nodePort");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"spec": 1}),
            json!({"spec": {"ports": [1, {"port": "x"}], "selector": 3}}),
        ] {
            let mut j = junk.clone();
            defaults(&mut j);
            prepare_create(&mut j);
            validate(&j);
        }
    }
}
