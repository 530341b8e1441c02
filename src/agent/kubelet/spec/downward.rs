//! The downward API: values of `fieldRef` and `resourceFieldRef`, for
//! environment variables here and for downwardAPI volumes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};

use super::resources::{amount, limit, request};
use super::{NodeAllocatable, SpecError};

/// Field paths upstream's ConvertDownwardAPIFieldLabel accepts for v1 pods.
/// Some of them (spec.restartPolicy, status.phase…) are accepted there but
/// not resolvable, and fail further on, as upstream.
const FIELD_LABELS: [&str; 14] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

use crate::api::validation::go_quote;

/// `k="v"` lines sorted by key, as upstream's FormatMap.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pod's addresses, first the one given (the sandbox's), else what the
/// status says; a host-network pod has the node's.
fn pod_ips(pod: &Pod, pod_ip: Option<IpAddr>, host_ip: Option<IpAddr>) -> Vec<String> {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    if let Some(ip) = pod_ip.or(host_ip.filter(|_| host_network)) {
        return vec![ip.to_string()];
    }
    let status = pod.status.as_ref();
    let listed: Vec<String> = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|p| p.ip.clone())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status.and_then(|s| s.pod_ip.clone()).into_iter().collect()
}

fn host_ips(pod: &Pod, host_ip: Option<IpAddr>) -> Vec<String> {
    if let Some(ip) = host_ip {
        return vec![ip.to_string()];
    }
    let status = pod.status.as_ref();
    let listed: Vec<String> = status
        .and_then(|s| s.host_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|p| p.ip.clone())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status.and_then(|s| s.host_ip.clone()).into_iter().collect()
}

/// The value of a `fieldRef`, as upstream's podFieldSelectorRuntimeValue.
pub fn field_ref_value(
    pod: &Pod,
    selector: &ObjectFieldSelector,
    pod_ip: Option<IpAddr>,
    host_ip: Option<IpAddr>,
) -> Result<String, SpecError> {
    match selector.api_version.as_deref().unwrap_or("") {
        "" | "v1" => {}
        other => {
            return Err(SpecError::Invalid(format!(
                "unsupported pod version: {other}"
            )))
        }
    }
    let path = selector.field_path.as_str();
    let path = if path == "spec.host" {
        "spec.nodeName"
    } else {
        path
    };
    let base = split_subscript(path).map_or(path, |(base, _)| base);
    if !FIELD_LABELS.contains(&base) {
        return Err(SpecError::Invalid(format!(
            "field label not supported: {path}"
        )));
    }
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let first = |list: Vec<String>| list.into_iter().next().unwrap_or_default();
    Ok(match path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => first(host_ips(pod, host_ip)),
        "status.hostIPs" => host_ips(pod, host_ip).join(","),
        "status.podIP" => first(pod_ips(pod, pod_ip, host_ip)),
        "status.podIPs" => pod_ips(pod, pod_ip, host_ip).join(","),
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(m.labels.as_ref()),
        "metadata.annotations" => format_map(m.annotations.as_ref()),
        _ => match split_subscript(path) {
            Some(("metadata.labels", key)) => m
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
            Some(("metadata.annotations", key)) => m
                .annotations
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
            Some(_) => {
                return Err(SpecError::Invalid(format!(
                    "fieldPath {path:?} does not support subscript"
                )))
            }
            None => return Err(SpecError::Invalid(format!("unsupported fieldPath: {path}"))),
        },
    })
}

fn find_container<'p>(pod: &'p Pod, name: &str) -> Option<&'p Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// The value of a `resourceFieldRef` for `container` (or the one the
/// selector names): the amount divided by the divisor, rounded up. Limits
/// a container does not set are the node's allocatable.
pub fn resource_field_value(
    pod: &Pod,
    container: Option<&Container>,
    selector: &ResourceFieldSelector,
    node: &NodeAllocatable,
) -> Result<String, SpecError> {
    let c = match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => find_container(pod, name)
            .ok_or_else(|| SpecError::Invalid(format!("container {name} not found")))?,
        None => container.ok_or_else(|| {
            SpecError::Invalid(format!(
                "resourceFieldRef {:?} needs a containerName here",
                selector.resource
            ))
        })?,
    };
    let resource = selector.resource.as_str();
    let (kind, name) = resource
        .split_once('.')
        .filter(|(k, _)| *k == "limits" || *k == "requests")
        .ok_or_else(|| {
            SpecError::Invalid(format!("unsupported container resource : {resource}"))
        })?;
    // CPU is counted in milli-units, everything else in units.
    let unit_exp = match name {
        "cpu" => -3,
        "memory" | "ephemeral-storage" => 0,
        n if n.starts_with("hugepages-") => 0,
        _ => {
            return Err(SpecError::Invalid(format!(
                "unsupported container resource : {resource}"
            )))
        }
    };
    let value = if kind == "limits" {
        let default = match name {
            "cpu" => node.cpu_millis,
            "memory" => node.memory_bytes,
            "ephemeral-storage" => node.ephemeral_storage_bytes,
            _ => 0,
        };
        match limit(c, name, unit_exp)? {
            Some(n) if n != 0 => n,
            _ => i128::from(default),
        }
    } else {
        request(c, name, unit_exp)?.unwrap_or(0)
    };
    let divisor = match selector.divisor.as_ref() {
        Some(d) => amount(d, unit_exp, &format!("the divisor of {resource}"))?,
        None => 0,
    };
    // An unset or zero divisor means 1 (one core, one byte).
    let divisor = if divisor == 0 {
        if unit_exp == -3 {
            1000
        } else {
            1
        }
    } else {
        divisor
    };
    Ok(((value + divisor - 1) / divisor).to_string())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodIP, PodStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::super::testutil::{container, pod_with};
    use super::*;

    fn pod() -> Pod {
        let mut p = pod_with(
            vec![container(
                "app",
                &[("cpu", "250m"), ("memory", "32Mi")],
                &[("cpu", "1500m"), ("memory", "64Mi")],
            )],
            vec![container("init", &[], &[])],
        );
        p.metadata.labels = Some(BTreeMap::from([
            ("app".into(), "web".into()),
            ("tier".into(), "a\"b\n".into()),
        ]));
        p.metadata.annotations = Some(BTreeMap::from([("example.com/x".into(), "1".into())]));
        let spec = p.spec.as_mut().unwrap();
        spec.node_name = Some("node1".into());
        spec.service_account_name = Some("default".into());
        p.status = Some(PodStatus {
            pod_ip: Some("10.42.0.9".into()),
            pod_ips: Some(vec![
                PodIP {
                    ip: "10.42.0.9".into(),
                },
                PodIP {
                    ip: "fd00::9".into(),
                },
            ]),
            host_ip: Some("192.168.1.10".into()),
            ..Default::default()
        });
        p
    }

    fn field(pod: &Pod, path: &str, ip: Option<&str>) -> Result<String, SpecError> {
        let sel = ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: path.into(),
        };
        field_ref_value(
            pod,
            &sel,
            ip.map(|i| i.parse().unwrap()),
            Some("192.168.1.20".parse().unwrap()),
        )
    }

    #[test]
    fn field_refs() {
        let p = pod();
        let cases = [
            ("metadata.name", "web"),
            ("metadata.namespace", "default"),
            ("metadata.uid", "uid-1"),
            ("metadata.labels['app']", "web"),
            ("metadata.labels['missing']", ""),
            ("metadata.annotations['example.com/x']", "1"),
            ("metadata.labels", "app=\"web\"\ntier=\"a\\\"b\\n\""),
            ("spec.nodeName", "node1"),
            ("spec.host", "node1"),
            ("spec.serviceAccountName", "default"),
            ("status.hostIP", "192.168.1.20"),
            ("status.hostIPs", "192.168.1.20"),
            ("status.podIP", "10.42.0.7"),
            ("status.podIPs", "10.42.0.7"),
        ];
        for (path, want) in cases {
            assert_eq!(field(&p, path, Some("10.42.0.7")).unwrap(), want, "{path}");
        }
        // Without a sandbox address the status's are used.
        assert_eq!(
            field(&p, "status.podIPs", None).unwrap(),
            "10.42.0.9,fd00::9"
        );
        assert_eq!(field(&p, "status.podIP", None).unwrap(), "10.42.0.9");
        for bad in [
            "spec.containers",
            "status.phase",
            "metadata.name['x']",
            "spec.restartPolicy",
        ] {
            assert!(
                matches!(field(&p, bad, None), Err(SpecError::Invalid(_))),
                "{bad}"
            );
        }
        let v2 = ObjectFieldSelector {
            api_version: Some("v2".into()),
            field_path: "metadata.name".into(),
        };
        assert!(field_ref_value(&p, &v2, None, None).is_err());
    }

    #[test]
    fn host_network_pods_have_the_node_address() {
        let mut p = pod();
        p.status = None;
        p.spec.as_mut().unwrap().host_network = Some(true);
        assert_eq!(field(&p, "status.podIP", None).unwrap(), "192.168.1.20");
    }

    fn res(
        pod: &Pod,
        resource: &str,
        divisor: Option<&str>,
        container: Option<&str>,
    ) -> Result<String, SpecError> {
        let node = NodeAllocatable {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 10 << 30,
        };
        let sel = ResourceFieldSelector {
            container_name: container.map(String::from),
            divisor: divisor.map(|d| Quantity(d.into())),
            resource: resource.into(),
        };
        let own = &pod.spec.as_ref().unwrap().containers[0];
        resource_field_value(pod, Some(own), &sel, &node)
    }

    #[test]
    fn resource_refs() {
        let p = pod();
        let cases = [
            ("limits.cpu", None, None, "2"),
            ("limits.cpu", Some("1m"), None, "1500"),
            ("limits.cpu", Some("0"), None, "2"),
            ("requests.cpu", None, None, "1"),
            ("requests.cpu", Some("1m"), None, "250"),
            ("limits.memory", None, None, "67108864"),
            ("limits.memory", Some("1Mi"), None, "64"),
            ("requests.memory", Some("1Mi"), None, "32"),
            ("limits.ephemeral-storage", Some("1Gi"), None, "10"),
            ("requests.ephemeral-storage", None, None, "0"),
            // The init container sets no limits: the node's allocatable.
            ("limits.cpu", Some("1m"), Some("init"), "2000"),
            ("limits.memory", Some("1Gi"), Some("init"), "4"),
            ("limits.hugepages-2Mi", None, None, "0"),
        ];
        for (resource, divisor, container, want) in cases {
            assert_eq!(
                res(&p, resource, divisor, container).unwrap(),
                want,
                "{resource} {divisor:?} {container:?}"
            );
        }
        for (resource, divisor, container) in [
            ("limits.gpu", None, None),
            ("cpu", None, None),
            ("limits.cpu", Some("x"), None),
            ("limits.cpu", None, Some("nope")),
        ] {
            assert!(
                matches!(
                    res(&p, resource, divisor, container),
                    Err(SpecError::Invalid(_))
                ),
                "{resource}"
            );
        }
    }
}
