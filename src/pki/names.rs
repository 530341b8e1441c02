//! The names the API server's serving certificate must carry: this
//! machine's hostname and addresses, the loopback names, the in-cluster
//! `kubernetes` service names and IP, and every `--tls-san`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Error;

/// DNS names and IP addresses for the serving certificate (sorted, unique).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingNames {
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
}

impl ServingNames {
    /// All names as rcgen takes them (IPs as text).
    pub fn all(&self) -> Vec<String> {
        self.dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(|ip| ip.to_string()))
            .collect()
    }
}

/// Builds the serving names from the hostname, this machine's addresses,
/// `--tls-san`, `--cluster-domain` and `--service-cidr`.
pub fn serving_names(
    hostname: &str,
    addresses: &[IpAddr],
    tls_sans: &[String],
    cluster_domain: &str,
    service_cidr: &str,
) -> Result<ServingNames, Error> {
    let mut names = ServingNames::default();
    for dns in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        names.dns.insert(dns.to_string());
    }
    let domain = cluster_domain.trim_matches('.');
    if !domain.is_empty() {
        names.dns.insert(format!(
            "kubernetes.default.svc.{}",
            domain.to_ascii_lowercase()
        ));
    }
    let host = hostname.trim().to_ascii_lowercase();
    if !host.is_empty() {
        names.dns.insert(host);
    }
    names.ips.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
    names.ips.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
    names.ips.extend(addresses.iter().copied());
    names.ips.extend(first_service_ips(service_cidr)?);
    for san in tls_sans {
        let san = san.trim();
        if san.is_empty() {
            continue;
        }
        match san.parse::<IpAddr>() {
            Ok(ip) => {
                names.ips.insert(ip);
            }
            Err(_) if valid_dns(san) => {
                names.dns.insert(san.to_ascii_lowercase());
            }
            Err(_) => return Err(Error::TlsSan(san.to_string())),
        }
    }
    Ok(names)
}

fn valid_dns(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').enumerate().all(|(i, label)| {
            (i == 0 && label == "*")
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        })
}

/// The first address of each (comma-separated) service CIDR: the IP of
/// the `kubernetes` service (10.43.0.1 for the default 10.43.0.0/16).
pub fn first_service_ips(service_cidr: &str) -> Result<Vec<IpAddr>, Error> {
    let bad = || Error::ServiceCidr(service_cidr.to_string());
    let mut out = Vec::new();
    for cidr in service_cidr.split(',').map(str::trim) {
        let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        let ip = match addr {
            IpAddr::V4(v4) if len < 32 => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1))
            }
            IpAddr::V6(v6) if len < 128 => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1))
            }
            _ => return Err(bad()),
        };
        out.push(ip);
    }
    Ok(out)
}

/// Every non-loopback, non-link-local address of this machine's
/// interfaces (IPv4 and IPv6). Failures to list them give an empty list.
/// The IPv4 address of the interface holding the default route (what k3s
/// and the kubelet advertise), if there is one. Bridges made for pods never
/// hold the default route, so this is the machine's address on its LAN.
pub fn default_route_address() -> Option<IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let iface = routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Iface Destination Gateway Flags ... Mask: a default route has
        // destination and mask 0 and the UP flag.
        let up = f
            .get(3)
            .and_then(|x| u32::from_str_radix(x, 16).ok())
            .is_some_and(|x| x & 1 == 1);
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" && up).then(|| f[0].to_string())
    })?;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != iface {
            continue;
        }
        if let Some(v4) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            let ip = IpAddr::V4(v4.ip());
            if usable(&ip) {
                return Some(ip);
            }
        }
    }
    None
}

pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        tracing::warn!("cannot list network interfaces; serving certificate has no host IPs");
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    for ifa in addrs {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if usable(&ip) {
            out.insert(ip);
        }
    }
    out.into_iter().collect()
}

fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_service_ip_of_cidrs() {
        assert_eq!(
            first_service_ips("10.43.0.0/16").unwrap(),
            vec!["10.43.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            first_service_ips("10.43.7.9/16, fd00:43::/112").unwrap(),
            vec![
                "10.43.0.1".parse::<IpAddr>().unwrap(),
                "fd00:43::1".parse().unwrap()
            ]
        );
        assert!(first_service_ips("10.43.0.0").is_err());
        assert!(first_service_ips("10.43.0.0/32").is_err());
        assert!(first_service_ips("nonsense/8").is_err());
    }

    #[test]
    fn names_include_required_entries_and_tls_sans() {
        let addrs = ["192.168.1.5".parse().unwrap()];
        let n = serving_names(
            "MyHost",
            &addrs,
            &["Example.Test".into(), "203.0.113.7".into()],
            "cluster.local",
            "10.43.0.0/16",
        )
        .unwrap();
        for dns in [
            "myhost",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "example.test",
        ] {
            assert!(n.dns.contains(dns), "{dns} missing from {n:?}");
        }
        for ip in [
            "127.0.0.1",
            "::1",
            "10.43.0.1",
            "192.168.1.5",
            "203.0.113.7",
        ] {
            assert!(n.ips.contains(&ip.parse().unwrap()), "{ip} missing");
        }
        assert!(serving_names("h", &[], &["bad name!".into()], "c", "10.43.0.0/16").is_err());
    }

    #[test]
    fn local_addresses_skip_loopback() {
        for ip in local_addresses() {
            assert!(!ip.is_loopback(), "{ip}");
        }
    }
}
