//! The pod's hostname and domain, and the kubelet-managed /etc/hosts.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use super::SpecError;

const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
/// The kernel's nodename holds 64 bytes with the terminating NUL.
const HOSTNAME_MAX: usize = 63;
const FQDN_MAX: usize = 64;

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The pod's hostname (spec.hostname or its name, cut to 63 characters
/// without a trailing '-' or '.') and domain (`<subdomain>.<ns>.svc.<domain>`
/// when a subdomain is set, else empty), as upstream's
/// GeneratePodHostNameAndDomain.
pub(super) fn hostname_and_domain(
    pod: &Pod,
    cluster_domain: &str,
) -> Result<(String, String), SpecError> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let spec = pod.spec.as_ref();
    let mut hostname = name.to_string();
    if let Some(h) = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        if !is_dns1123_label(h) {
            return Err(SpecError::Invalid(format!(
                "pod Hostname {h:?} is not a valid DNS label"
            )));
        }
        hostname = h.to_string();
    }
    if hostname.len() > HOSTNAME_MAX {
        let mut cut = HOSTNAME_MAX;
        while !hostname.is_char_boundary(cut) {
            cut -= 1;
        }
        let truncated = hostname[..cut].trim_end_matches(['-', '.']).to_string();
        tracing::warn!(pod = name, hostname = %truncated, "hostname for pod was too long, truncated it");
        if truncated.is_empty() {
            return Err(SpecError::Invalid(format!(
                "hostname for pod {name:?} was invalid: {hostname:?}"
            )));
        }
        hostname = truncated;
    }
    let mut domain = String::new();
    if let Some(sub) = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        if !is_dns1123_label(sub) {
            return Err(SpecError::Invalid(format!(
                "pod Subdomain {sub:?} is not a valid DNS label"
            )));
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        domain = format!("{sub}.{ns}.svc.{cluster_domain}");
    }
    Ok((hostname, domain))
}

/// The hostname the sandbox's UTS namespace gets: the FQDN with
/// setHostnameAsFQDN (refused past 64 characters), else the short name.
pub(super) fn kernel_hostname(pod: &Pod, cluster_domain: &str) -> Result<String, SpecError> {
    let (hostname, domain) = hostname_and_domain(pod, cluster_domain)?;
    let as_fqdn = pod.spec.as_ref().and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    if domain.is_empty() || !as_fqdn {
        return Ok(hostname);
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > FQDN_MAX {
        return Err(SpecError::Invalid(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX} characters is the max, {} characters requested)",
            fqdn.len()
        )));
    }
    Ok(fqdn)
}

fn host_aliases(pod: &Pod) -> String {
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or(&[]);
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names: Vec<&str> = a.hostnames.iter().flatten().map(String::as_str).collect();
        out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
    }
    out
}

/// The /etc/hosts of a pod on the pod network: localhost entries, the pod's
/// address under its hostname (and FQDN with a subdomain), then hostAliases.
/// A pod with an invalid hostname gets its name (sandbox creation reports
/// the error).
pub fn etc_hosts(pod: &Pod, pod_ip: Option<IpAddr>, cluster_domain: &str) -> String {
    let (hostname, domain) = hostname_and_domain(pod, cluster_domain)
        .unwrap_or_else(|_| (pod.metadata.name.clone().unwrap_or_default(), String::new()));
    let mut out = String::from(HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    if let Some(ip) = pod_ip {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out.push_str(&host_aliases(pod));
    out
}

/// The /etc/hosts of a host-network pod: the node's own file (`node_hosts`)
/// under a header, then hostAliases.
pub fn etc_hosts_host_network(pod: &Pod, node_hosts: &str) -> String {
    let mut out = String::from(HEADER_HOST_NETWORK);
    out.push_str(node_hosts);
    if !node_hosts.is_empty() && !node_hosts.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&host_aliases(pod));
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::HostAlias;

    use super::super::testutil::{container, pod_with};
    use super::*;

    fn pod() -> Pod {
        pod_with(vec![container("a", &[], &[])], vec![])
    }

    #[test]
    fn plain_pod() {
        let hosts = etc_hosts(&pod(), Some("10.42.0.5".parse().unwrap()), "cluster.local");
        assert_eq!(
            hosts,
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.42.0.5\tweb\n"
        );
        // No address yet: no entry for the pod.
        assert!(!etc_hosts(&pod(), None, "cluster.local").contains("web"));
    }

    #[test]
    fn hostname_subdomain_and_aliases() {
        let mut p = pod();
        let spec = p.spec.as_mut().unwrap();
        spec.hostname = Some("db-0".into());
        spec.subdomain = Some("db".into());
        spec.host_aliases = Some(vec![
            HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            },
            HostAlias {
                ip: "::2".into(),
                hostnames: Some(vec!["v6.local".into()]),
            },
        ]);
        let hosts = etc_hosts(&p, Some("10.42.0.5".parse().unwrap()), "cluster.local");
        assert!(
            hosts.contains("10.42.0.5\tdb-0.db.default.svc.cluster.local\tdb-0\n"),
            "{hosts}"
        );
        assert!(hosts.ends_with(
            "fe00::2\tip6-allrouters\n10.42.0.5\tdb-0.db.default.svc.cluster.local\tdb-0\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n::2\tv6.local\n"
        ));
        assert_eq!(kernel_hostname(&p, "cluster.local").unwrap(), "db-0");
        p.spec.as_mut().unwrap().set_hostname_as_fqdn = Some(true);
        assert_eq!(
            kernel_hostname(&p, "cluster.local").unwrap(),
            "db-0.db.default.svc.cluster.local"
        );
        p.spec.as_mut().unwrap().hostname = Some("h".repeat(40));
        assert!(kernel_hostname(&p, "cluster.local").is_err());
    }

    #[test]
    fn long_names_are_cut() {
        let mut p = pod();
        p.metadata.name = Some(format!("{}-.x", "a".repeat(61)));
        let (h, d) = hostname_and_domain(&p, "cluster.local").unwrap();
        assert_eq!((h.as_str(), d.as_str()), ("a".repeat(61).as_str(), ""));
        p.spec.as_mut().unwrap().hostname = Some("Not_Valid".into());
        assert!(hostname_and_domain(&p, "cluster.local").is_err());
        // The hosts file still gets written, under the pod's name.
        assert!(etc_hosts(&p, Some("10.0.0.1".parse().unwrap()), "c").contains("10.0.0.1\taaaa"));
    }

    #[test]
    fn host_network_copies_the_node_file() {
        let mut p = pod();
        p.spec.as_mut().unwrap().host_aliases = Some(vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: Some(vec!["foo".into()]),
        }]);
        let hosts = etc_hosts_host_network(&p, "127.0.0.1 localhost\n192.168.1.10 node1");
        assert_eq!(
            hosts,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.10 node1\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo\n"
        );
    }
}
