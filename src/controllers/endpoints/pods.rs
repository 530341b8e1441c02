//! Reading pods as endpoints of a service (upstream endpointsliceutil and
//! podutil helpers, shared by the Endpoints and EndpointSlice controllers).

use serde_json::{json, Value};

use crate::controllers::objects::{self, is_deleting};

pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

fn spec_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn is_headless(svc: &Value) -> bool {
    spec_str(svc, "clusterIP") == "None"
}

pub fn publishes_not_ready(svc: &Value) -> bool {
    svc.get("spec")
        .and_then(|s| s.get("publishNotReadyAddresses"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The service's primary IP family: "IPv4" or "IPv6".
pub fn ip_family(svc: &Value) -> &'static str {
    let first = svc
        .get("spec")
        .and_then(|s| s.get("ipFamilies"))
        .and_then(|f| f.get(0))
        .and_then(Value::as_str);
    match first {
        Some("IPv6") => "IPv6",
        Some(_) => "IPv4",
        None if spec_str(svc, "clusterIP").contains(':') => "IPv6",
        None => "IPv4",
    }
}

/// The pod's IP of `family`, if it has one.
pub fn pod_ip<'a>(pod: &'a Value, family: &str) -> Option<&'a str> {
    let of_family = |ip: &&str| !ip.is_empty() && ip.contains(':') == (family == "IPv6");
    let status = pod.get("status")?;
    let listed = status
        .get("podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("ip").and_then(Value::as_str));
    listed
        .chain(status.get("podIP").and_then(Value::as_str))
        .find(of_family)
}

/// Not finished, has an IP, and (unless `include_terminating`) not being
/// deleted (upstream ShouldPodBeInEndpoints).
pub fn should_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if matches!(objects::pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    let has_ip = pod.get("status").is_some_and(|s| {
        s.get("podIP")
            .and_then(Value::as_str)
            .is_some_and(|ip| !ip.is_empty())
            || s.get("podIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
    });
    has_ip && (include_terminating || !is_deleting(pod))
}

/// A pod's own hostname is published when its subdomain is the service.
pub fn hostname<'a>(pod: &'a Value, svc: &Value) -> Option<&'a str> {
    let host = spec_str(pod, "hostname");
    (!host.is_empty()
        && spec_str(pod, "subdomain") == objects::name(svc)
        && objects::namespace(pod) == objects::namespace(svc))
    .then_some(host)
}

pub fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": objects::namespace(pod), "name": objects::name(pod),
        "uid": objects::uid(pod)})
}

fn protocol(port: &Value) -> &str {
    port.get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
}

/// The pod port a service port targets: a number as is, a name looked up
/// in the containers' ports of the same protocol (upstream FindPort).
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = svc_port
        .get("targetPort")
        .or_else(|| svc_port.get("port"))?;
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    let spec = pod.get("spec")?;
    let sidecars = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"));
    spec.get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(sidecars)
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| {
            p.get("name").and_then(Value::as_str) == Some(name) && protocol(p) == protocol(svc_port)
        })
        .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
}

/// An endpoint port for `svc_port` at `number`: name, port, protocol and
/// appProtocol as the service says.
pub fn endpoint_port(svc_port: &Value, number: i64) -> Value {
    let mut port = json!({"port": number, "protocol": protocol(svc_port)});
    if let Some(n) = svc_port
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        port["name"] = json!(n);
    }
    if let Some(a) = svc_port.get("appProtocol").and_then(Value::as_str) {
        port["appProtocol"] = json!(a);
    }
    port
}

pub fn service_ports(svc: &Value) -> &[Value] {
    svc.get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// When the endpoints last had reason to change: the newest of the
/// service's creation and the pods' creation and readiness transitions.
pub fn trigger_time(svc: &Value, pods: &[&Value]) -> String {
    let mut times: Vec<&str> = vec![objects::meta_str(svc, "creationTimestamp")];
    for pod in pods {
        times.push(objects::meta_str(pod, "creationTimestamp"));
        if let Some(t) = objects::condition(pod, "Ready")
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
        {
            times.push(t);
        }
    }
    times
        .into_iter()
        .filter_map(|t| objects::parse_time(t).map(|p| (p, t)))
        .max_by_key(|(p, _)| *p)
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(objects::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"hostname": "h", "subdomain": "web",
                "containers": [{"name": "c", "ports": [
                    {"name": "http", "containerPort": 8080},
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": "10.42.0.5",
                "podIPs": [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}]}})
    }

    #[test]
    fn ports_resolve_by_number_or_name_and_protocol() {
        let p = pod();
        assert_eq!(
            find_port(&p, &json!({"port": 80, "targetPort": "http"})),
            Some(8080)
        );
        assert_eq!(
            find_port(&p, &json!({"port": 80, "targetPort": 9000})),
            Some(9000)
        );
        assert_eq!(
            find_port(&p, &json!({"port": 53, "targetPort": "dns"})),
            None,
            "TCP asked, UDP offered"
        );
        assert_eq!(
            find_port(
                &p,
                &json!({"port": 53, "protocol": "UDP", "targetPort": "dns"})
            ),
            Some(53)
        );
        assert_eq!(find_port(&p, &json!({"port": 81})), Some(81));
    }

    #[test]
    fn addresses_follow_the_service_family_and_hostnames_the_subdomain() {
        let p = pod();
        assert_eq!(pod_ip(&p, "IPv4"), Some("10.42.0.5"));
        assert_eq!(pod_ip(&p, "IPv6"), Some("fd00::5"));
        let web = json!({"metadata": {"name": "web", "namespace": "ns"}});
        let other = json!({"metadata": {"name": "other", "namespace": "ns"}});
        assert_eq!(hostname(&p, &web), Some("h"));
        assert_eq!(hostname(&p, &other), None);
        assert!(should_be_in_endpoints(&p, false));
        let mut gone = p.clone();
        gone["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(!should_be_in_endpoints(&gone, false));
        assert!(should_be_in_endpoints(&gone, true));
        let mut done = p;
        done["status"]["phase"] = json!("Succeeded");
        assert!(!should_be_in_endpoints(&done, true));
    }
}
