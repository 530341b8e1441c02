//! The pod sandbox's CRI configuration, as upstream's
//! generatePodSandboxConfig.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::{dns, hosts, resources, security, SandboxContext, SpecError};
use crate::agent::cri::{api, labels};

/// The labels every sandbox and container of the pod carries.
pub(super) fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (
            labels::POD_NAME.to_string(),
            m.name.clone().unwrap_or_default(),
        ),
        (
            labels::POD_NAMESPACE.to_string(),
            m.namespace.clone().unwrap_or_default(),
        ),
        (
            labels::POD_UID.to_string(),
            m.uid.clone().unwrap_or_default(),
        ),
        (labels::MANAGED_BY.to_string(), "true".to_string()),
    ])
}

/// Sysctls may be written with slashes (`net/ipv4/ip_forward`); the
/// runtime wants dots. In dotted form a dot inside a component is written
/// as a slash (`net.ipv4.conf.eth0/100.forwarding`), so when the first
/// separator is a slash both are swapped, as upstream does.
fn sysctl_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

fn protocol(p: Option<&str>) -> Result<i32, SpecError> {
    Ok(match p.unwrap_or("TCP") {
        "TCP" | "" => api::Protocol::Tcp,
        "UDP" => api::Protocol::Udp,
        "SCTP" => api::Protocol::Sctp,
        other => {
            return Err(SpecError::Invalid(format!(
                "unknown port protocol {other:?}"
            )))
        }
    } as i32)
}

/// Host ports of the regular containers (what portmap needs); exact
/// duplicates are listed once.
fn port_mappings(pod: &Pod) -> Result<Vec<api::PortMapping>, SpecError> {
    let mut out: Vec<api::PortMapping> = Vec::new();
    let containers = pod.spec.as_ref().map(|s| &s.containers[..]).unwrap_or(&[]);
    for port in containers.iter().flat_map(|c| c.ports.iter().flatten()) {
        let host_port = port.host_port.unwrap_or(0);
        if host_port <= 0 {
            continue;
        }
        let mapping = api::PortMapping {
            protocol: protocol(port.protocol.as_deref())?,
            container_port: port.container_port,
            host_port,
            host_ip: port.host_ip.clone().unwrap_or_default(),
        };
        if !out.contains(&mapping) {
            out.push(mapping);
        }
    }
    Ok(out)
}

/// The RunPodSandbox configuration of `pod`.
pub fn sandbox_config(pod: &Pod, ctx: &SandboxContext) -> Result<api::PodSandboxConfig, SpecError> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network) == Some(true);
    // A host-network sandbox keeps the node's hostname (CRI wants it empty).
    let hostname = if host_network {
        String::new()
    } else {
        hosts::kernel_hostname(pod, ctx.cluster_domain)?
    };
    let mut labels: HashMap<String, String> =
        m.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(pod_labels(pod));
    let sysctls = spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (sysctl_name(&s.name), s.value.clone()))
        .collect();
    Ok(api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt: ctx.attempt,
        }),
        hostname,
        log_directory: ctx.log_directory.display().to_string(),
        dns_config: Some(dns::dns_config(pod, ctx)?),
        port_mappings: port_mappings(pod)?,
        labels,
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: ctx.cgroup_parent.clone(),
            security_context: Some(security::sandbox_security(pod)),
            sysctls,
            overhead: resources::sandbox_overhead(pod)?,
            resources: Some(resources::sandbox_resources(pod)?),
        }),
        windows: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use k8s_openapi::api::core::v1::{ContainerPort, PodSecurityContext, Sysctl};

    use super::super::testutil::{container, pod_with};
    use super::*;

    fn ctx() -> SandboxContext<'static> {
        SandboxContext {
            cluster_dns: "10.43.0.10".parse().unwrap(),
            cluster_domain: "cluster.local",
            log_directory: PathBuf::from("/data/agent/logs/pods/default_web_uid-1"),
            cgroup_parent: "/nanokube-0123abcd/kubepods/besteffort/poduid-1".into(),
            host_resolv_conf: Path::new("/nonexistent/resolv.conf"),
            attempt: 2,
        }
    }

    fn port(container_port: i32, host_port: Option<i32>, protocol: &str) -> ContainerPort {
        ContainerPort {
            container_port,
            host_port,
            protocol: Some(protocol.into()),
            ..Default::default()
        }
    }

    #[test]
    fn builds_the_sandbox() {
        let mut web = container("web", &[], &[]);
        web.ports = Some(vec![
            port(80, Some(8080), "TCP"),
            port(53, Some(5353), "UDP"),
            port(9090, None, "TCP"),
        ]);
        let mut side = container("side", &[], &[]);
        side.ports = Some(vec![port(80, Some(8080), "TCP")]);
        let mut pod = pod_with(vec![web, side], vec![]);
        pod.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into())]));
        pod.metadata.annotations = Some(BTreeMap::from([("note".into(), "x".into())]));
        pod.spec.as_mut().unwrap().security_context = Some(PodSecurityContext {
            sysctls: Some(vec![
                Sysctl {
                    name: "net/ipv4/ip_unprivileged_port_start".into(),
                    value: "0".into(),
                },
                Sysctl {
                    name: "kernel.shm_rmid_forced".into(),
                    value: "1".into(),
                },
            ]),
            ..Default::default()
        });
        let c = sandbox_config(&pod, &ctx()).unwrap();
        let meta = c.metadata.unwrap();
        assert_eq!(
            (
                meta.name.as_str(),
                meta.namespace.as_str(),
                meta.uid.as_str(),
                meta.attempt
            ),
            ("web", "default", "uid-1", 2)
        );
        assert_eq!(c.hostname, "web");
        assert_eq!(c.log_directory, "/data/agent/logs/pods/default_web_uid-1");
        assert_eq!(c.dns_config.unwrap().servers, vec!["10.43.0.10"]);
        assert_eq!(c.port_mappings.len(), 2);
        assert_eq!(c.port_mappings[1].protocol, api::Protocol::Udp as i32);
        assert_eq!(
            (
                c.port_mappings[0].container_port,
                c.port_mappings[0].host_port
            ),
            (80, 8080)
        );
        assert_eq!(c.labels["app"], "web");
        assert_eq!(c.labels[labels::POD_UID], "uid-1");
        assert_eq!(c.labels[labels::POD_NAMESPACE], "default");
        assert_eq!(c.labels[labels::MANAGED_BY], "true");
        assert_eq!(c.annotations["note"], "x");
        let linux = c.linux.unwrap();
        assert_eq!(
            linux.cgroup_parent,
            "/nanokube-0123abcd/kubepods/besteffort/poduid-1"
        );
        assert_eq!(linux.sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
        assert_eq!(linux.sysctls["kernel.shm_rmid_forced"], "1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        assert_eq!(linux.resources.unwrap().cpu_shares, 2);
    }

    #[test]
    fn our_labels_win_over_the_pods() {
        let mut pod = pod_with(vec![container("a", &[], &[])], vec![]);
        pod.metadata.labels = Some(BTreeMap::from([(labels::POD_NAME.into(), "spoof".into())]));
        assert_eq!(
            sandbox_config(&pod, &ctx()).unwrap().labels[labels::POD_NAME],
            "web"
        );
    }

    #[test]
    fn host_network_sandbox() {
        let mut pod = pod_with(vec![container("a", &[], &[])], vec![]);
        pod.spec.as_mut().unwrap().host_network = Some(true);
        let c = sandbox_config(&pod, &ctx()).unwrap();
        assert_eq!(c.hostname, "");
        let ns = c
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
    }

    #[test]
    fn refuses_bad_input() {
        let mut bad_port = container("a", &[], &[]);
        bad_port.ports = Some(vec![port(1, Some(1), "ICMP")]);
        let pod = pod_with(vec![bad_port], vec![]);
        assert!(matches!(
            sandbox_config(&pod, &ctx()),
            Err(SpecError::Invalid(_))
        ));
        let mut pod = pod_with(vec![container("a", &[], &[])], vec![]);
        pod.spec.as_mut().unwrap().subdomain = Some("-bad".into());
        assert!(matches!(
            sandbox_config(&pod, &ctx()),
            Err(SpecError::Invalid(_))
        ));
        let pod = pod_with(vec![container("a", &[("cpu", "one")], &[])], vec![]);
        assert!(matches!(
            sandbox_config(&pod, &ctx()),
            Err(SpecError::Invalid(_))
        ));
    }

    #[test]
    fn sysctl_names() {
        assert_eq!(
            sysctl_name("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert_eq!(
            sysctl_name("net.ipv4.conf.eth0/100.forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert_eq!(sysctl_name("kernel"), "kernel");
    }
}
