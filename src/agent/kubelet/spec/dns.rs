//! A pod's resolv.conf as CRI `DnsConfig`, after upstream's
//! `pkg/kubelet/network/dns`: the policy picks a base (cluster DNS, the
//! host's resolv.conf, or nothing), `dnsConfig` is merged in, and the
//! result is cut to the resolver's limits.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use super::{SandboxContext, SpecError};
use crate::agent::cri::api;

const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH_PATHS: usize = 32;
const MAX_SEARCH_LINE_CHARS: usize = 2048;
/// Longer search paths make some resolvers (glibc 2.28) abort.
const MAX_SEARCH_PATH_LEN: usize = 253;
/// Upstream reads at most this much of a resolv.conf.
const MAX_RESOLV_CONF: usize = 10 << 20;

/// What a resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Parses resolv.conf as upstream: nameservers accumulate, the last
/// `search` line wins (trailing dots dropped, "." ignored), options merge
/// by name.
pub(super) fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => conf.servers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                conf.searches = fields
                    .filter(|s| *s != ".")
                    .map(|s| s.trim_end_matches('.').to_string())
                    .collect();
            }
            Some("options") => {
                let options = std::mem::take(&mut conf.options);
                conf.options = merge_options(options, fields.map(str::to_string));
            }
            _ => {}
        }
    }
    conf
}

/// Options keyed by their name (before `:`); a later one replaces an
/// earlier one in place.
fn merge_options(base: Vec<String>, more: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = base;
    for option in more {
        let name = option.split(':').next().unwrap_or("").to_string();
        match out
            .iter_mut()
            .find(|o| o.split(':').next() == Some(name.as_str()))
        {
            Some(existing) => *existing = option,
            None => out.push(option),
        }
    }
    out
}

fn without_duplicates(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn read_host(path: &Path) -> Result<ResolvConf, SpecError> {
    match std::fs::read(path) {
        Ok(mut bytes) => {
            bytes.truncate(MAX_RESOLV_CONF);
            Ok(parse_resolv_conf(&String::from_utf8_lossy(&bytes)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ResolvConf::default()),
        Err(e) => Err(SpecError::Invalid(format!(
            "reading the host's resolv.conf {}: {e}",
            path.display()
        ))),
    }
}

enum Kind {
    Cluster,
    Host,
    None,
}

fn kind(pod: &Pod) -> Result<Kind, SpecError> {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network) == Some(true);
    match spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("") {
        "None" => Ok(Kind::None),
        "ClusterFirstWithHostNet" => Ok(Kind::Cluster),
        // A host-network pod would not reach the cluster DNS through its
        // service address reliably: it falls back to the host's.
        "ClusterFirst" | "" if host_network => Ok(Kind::Host),
        "ClusterFirst" | "" => Ok(Kind::Cluster),
        "Default" => Ok(Kind::Host),
        other => Err(SpecError::Invalid(format!("invalid DNSPolicy={other}"))),
    }
}

/// The sandbox's DNS settings.
pub(super) fn dns_config(pod: &Pod, ctx: &SandboxContext) -> Result<api::DnsConfig, SpecError> {
    let mut conf = match kind(pod)? {
        Kind::None => ResolvConf::default(),
        Kind::Host => read_host(ctx.host_resolv_conf)?,
        Kind::Cluster if ctx.cluster_dns.is_unspecified() => {
            tracing::warn!(
                pod = %super::pod_ref(pod),
                "no cluster DNS configured: the pod uses the host's resolv.conf"
            );
            read_host(ctx.host_resolv_conf)?
        }
        Kind::Cluster => {
            let host = read_host(ctx.host_resolv_conf)?;
            ResolvConf {
                servers: vec![ctx.cluster_dns.to_string()],
                searches: cluster_searches(pod, ctx.cluster_domain, host.searches),
                options: vec!["ndots:5".into()],
            }
        }
    };
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        conf.servers
            .extend(extra.nameservers.iter().flatten().cloned());
        conf.servers = without_duplicates(conf.servers);
        conf.searches
            .extend(extra.searches.iter().flatten().cloned());
        conf.searches = without_duplicates(conf.searches);
        let options = extra.options.iter().flatten().filter_map(|o| {
            let name = o.name.as_deref().filter(|n| !n.is_empty())?;
            Some(match o.value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            })
        });
        conf.options = merge_options(conf.options, options.collect::<Vec<_>>());
    }
    fit_limits(pod, &mut conf);
    Ok(api::DnsConfig {
        servers: conf.servers,
        searches: conf.searches,
        options: conf.options,
    })
}

/// `<ns>.svc.<domain> svc.<domain> <domain>` then the host's domains.
fn cluster_searches(pod: &Pod, domain: &str, host: Vec<String>) -> Vec<String> {
    if domain.is_empty() {
        return host;
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut searches = vec![
        format!("{ns}.svc.{domain}"),
        format!("svc.{domain}"),
        domain.to_string(),
    ];
    searches.extend(host);
    without_duplicates(searches)
}

fn fit_limits(pod: &Pod, conf: &mut ResolvConf) {
    if conf.servers.len() > MAX_NAMESERVERS {
        conf.servers.truncate(MAX_NAMESERVERS);
        tracing::warn!(
            pod = %super::pod_ref(pod),
            "nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            conf.servers.join(" ")
        );
    }
    let mut cut = conf.searches.len() > MAX_SEARCH_PATHS;
    conf.searches.truncate(MAX_SEARCH_PATHS);
    let before = conf.searches.len();
    conf.searches.retain(|s| s.len() <= MAX_SEARCH_PATH_LEN);
    cut |= conf.searches.len() != before;
    while conf.searches.join(" ").len() > MAX_SEARCH_LINE_CHARS {
        conf.searches.pop();
        cut = true;
    }
    if cut {
        tracing::warn!(
            pod = %super::pod_ref(pod),
            "search line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            conf.searches.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::PathBuf;

    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption};

    use super::super::testutil::{container, pod_with};
    use super::*;

    const HOST: &str = "# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch old.example\nsearch example.com. corp.example .\noptions ndots:2 timeout:3\noptions ndots:1 rotate\nnameserver\n";

    fn ctx<'a>(resolv: &'a Path, dns: &str) -> SandboxContext<'a> {
        SandboxContext {
            cluster_dns: dns.parse::<IpAddr>().unwrap(),
            cluster_domain: "cluster.local",
            log_directory: PathBuf::from("/logs"),
            cgroup_parent: String::new(),
            host_resolv_conf: resolv,
            attempt: 0,
        }
    }

    fn with_host<T>(f: impl FnOnce(&Path) -> T) -> T {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, HOST).unwrap();
        f(&path)
    }

    fn pod(policy: Option<&str>, host_network: bool) -> Pod {
        let mut pod = pod_with(vec![container("a", &[], &[])], vec![]);
        pod.metadata.namespace = Some("shop".into());
        let spec = pod.spec.as_mut().unwrap();
        spec.dns_policy = policy.map(String::from);
        spec.host_network = Some(host_network);
        pod
    }

    #[test]
    fn parses_resolv_conf() {
        let c = parse_resolv_conf(HOST);
        assert_eq!(c.servers, vec!["192.168.1.1", "192.168.1.2"]);
        assert_eq!(c.searches, vec!["example.com", "corp.example"]);
        assert_eq!(c.options, vec!["ndots:1", "timeout:3", "rotate"]);
    }

    #[test]
    fn cluster_first() {
        with_host(|path| {
            let c =
                dns_config(&pod(Some("ClusterFirst"), false), &ctx(path, "10.43.0.10")).unwrap();
            assert_eq!(c.servers, vec!["10.43.0.10"]);
            assert_eq!(
                c.searches,
                vec![
                    "shop.svc.cluster.local",
                    "svc.cluster.local",
                    "cluster.local",
                    "example.com",
                    "corp.example"
                ]
            );
            assert_eq!(c.options, vec!["ndots:5"]);
            // The unset policy is ClusterFirst; so is ClusterFirstWithHostNet on the host network.
            assert_eq!(
                dns_config(&pod(None, false), &ctx(path, "10.43.0.10")).unwrap(),
                c
            );
            let hostnet = dns_config(
                &pod(Some("ClusterFirstWithHostNet"), true),
                &ctx(path, "10.43.0.10"),
            );
            assert_eq!(hostnet.unwrap(), c);
        });
    }

    #[test]
    fn host_fallbacks() {
        with_host(|path| {
            let host = api::DnsConfig {
                servers: vec!["192.168.1.1".into(), "192.168.1.2".into()],
                searches: vec!["example.com".into(), "corp.example".into()],
                options: vec!["ndots:1".into(), "timeout:3".into(), "rotate".into()],
            };
            let dflt = dns_config(&pod(Some("Default"), false), &ctx(path, "10.43.0.10")).unwrap();
            assert_eq!(dflt, host);
            // ClusterFirst on the host network uses the host's settings.
            let hostnet =
                dns_config(&pod(Some("ClusterFirst"), true), &ctx(path, "10.43.0.10")).unwrap();
            assert_eq!(hostnet, host);
            // No cluster DNS: ClusterFirst falls back too.
            let none =
                dns_config(&pod(Some("ClusterFirst"), false), &ctx(path, "0.0.0.0")).unwrap();
            assert_eq!(none, host);
        });
        // A host without resolv.conf gives an empty configuration.
        let missing = Path::new("/nonexistent/resolv.conf");
        let c = dns_config(&pod(Some("Default"), false), &ctx(missing, "10.43.0.10")).unwrap();
        assert_eq!(c, api::DnsConfig::default());
    }

    #[test]
    fn none_with_dns_config_and_limits() {
        let mut p = pod(Some("None"), false);
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(
                ["1.1.1.1", "8.8.8.8", "1.1.1.1", "9.9.9.9", "8.8.4.4"]
                    .map(String::from)
                    .to_vec(),
            ),
            searches: Some((0..40).map(|i| format!("d{i}.example")).collect()),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
                PodDNSConfigOption {
                    name: None,
                    value: Some("x".into()),
                },
            ]),
        });
        let c = dns_config(&p, &ctx(Path::new("/nonexistent"), "10.43.0.10")).unwrap();
        assert_eq!(c.servers, vec!["1.1.1.1", "8.8.8.8", "9.9.9.9"]);
        assert_eq!(c.searches.len(), 32);
        assert_eq!(c.searches[31], "d31.example");
        assert_eq!(c.options, vec!["ndots:2", "edns0"]);
    }

    #[test]
    fn dns_config_merges_into_cluster_first() {
        let mut p = pod(Some("ClusterFirst"), false);
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["10.0.0.53".into()]),
            searches: Some(vec!["svc.cluster.local".into(), "extra.example".into()]),
            options: Some(vec![PodDNSConfigOption {
                name: Some("ndots".into()),
                value: Some("1".into()),
            }]),
        });
        let c = dns_config(&p, &ctx(Path::new("/nonexistent"), "10.43.0.10")).unwrap();
        assert_eq!(c.servers, vec!["10.43.0.10", "10.0.0.53"]);
        assert_eq!(
            c.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "extra.example"
            ]
        );
        assert_eq!(c.options, vec!["ndots:1"]);
    }

    #[test]
    fn long_search_lines_are_cut() {
        let mut p = pod(Some("None"), false);
        let long = "x".repeat(254);
        let mut searches = vec![long];
        searches.extend((0..12).map(|i| format!("{i}{}", "y".repeat(199))));
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            searches: Some(searches),
            ..Default::default()
        });
        let c = dns_config(&p, &ctx(Path::new("/nonexistent"), "10.43.0.10")).unwrap();
        // 254 chars is dropped; 200-char paths fit 10 to a 2048-char line.
        assert_eq!(c.searches.len(), 10);
        assert!(c.searches.join(" ").len() <= 2048);
    }

    #[test]
    fn unknown_policy_is_invalid() {
        let err = dns_config(
            &pod(Some("Bogus"), false),
            &ctx(Path::new("/x"), "10.43.0.10"),
        )
        .unwrap_err();
        assert!(matches!(err, SpecError::Invalid(_)));
    }
}
