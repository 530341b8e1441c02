//! When stored credentials can be used, must be renewed (with the client
//! certificate they hold), or need a new join (with a token): pure
//! decisions over what the certificates say, and the time left until the
//! next renewal.

use std::net::IpAddr;

use super::store::{cert_info, key_matches, CertInfo};
use super::NodeCredentials;

/// Renew once less than this is left: a third of the lifetime, at most 90
/// days (k3s's window) — a short-lived certificate is not renewed at once.
const MAX_WINDOW_SECS: i64 = 90 * 86400;
/// A certificate this close to its end is not trusted to renew with.
const MIN_LEFT_SECS: i64 = 60;

/// What to do with stored credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Good as they are.
    Use,
    /// Renew, authenticating with the stored client certificate (the
    /// stored ones stay usable if the server cannot be reached).
    Renew(String),
    /// Unusable: join again with a token.
    Rejoin(String),
}

/// Seconds before `not_after` at which a certificate is renewed.
fn window(info: &CertInfo) -> i64 {
    ((info.not_after - info.not_before) / 3).clamp(0, MAX_WINDOW_SECS)
}

/// Unix seconds at which the first of the three certificates is due.
pub fn due_at(creds: &NodeCredentials) -> Option<i64> {
    [
        &creds.kubelet_client,
        &creds.kubelet_serving,
        &creds.proxy_client,
    ]
    .iter()
    .map(|c| cert_info(&c.cert_pem).map(|i| i.not_after - window(&i)))
    .collect::<Option<Vec<i64>>>()?
    .into_iter()
    .min()
}

/// The decision for `creds` of node `node` serving on `addresses`, at
/// unix time `now`.
pub fn decide(creds: &NodeCredentials, node: &str, addresses: &[IpAddr], now: i64) -> Decision {
    let parsed = [
        ("kubelet client", &creds.kubelet_client),
        ("kubelet serving", &creds.kubelet_serving),
        ("proxy client", &creds.proxy_client),
    ]
    .map(|(what, pair)| (what, cert_info(&pair.cert_pem), &pair.key_pem));
    for (what, info, key) in &parsed {
        match info {
            None => return Decision::Rejoin(format!("the {what} certificate is unreadable")),
            Some(i) if !key_matches(i, key) => {
                return Decision::Rejoin(format!("the {what} key does not match its certificate"))
            }
            _ => {}
        }
    }
    let [(_, Some(client), _), (_, Some(serving), _), (_, Some(_), _)] = &parsed else {
        return Decision::Rejoin("a certificate is unreadable".into());
    };
    if client.common_name != format!("system:node:{node}") {
        return Decision::Rejoin(format!(
            "the stored certificates are those of {:?}, not of node {node}",
            client.common_name
        ));
    }
    if client.not_after - MIN_LEFT_SECS <= now {
        return Decision::Rejoin("the kubelet client certificate has expired".into());
    }
    for (what, info, _) in &parsed {
        if let Some(i) = info {
            if i.not_after - window(i) <= now {
                return Decision::Renew(format!("the {what} certificate expires soon"));
            }
        }
    }
    let missing: Vec<String> = addresses
        .iter()
        .filter(|ip| !serving.ips.contains(ip))
        .map(IpAddr::to_string)
        .collect();
    if !missing.is_empty() {
        return Decision::Renew(format!(
            "the serving certificate lacks {}",
            missing.join(", ")
        ));
    }
    Decision::Use
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::credentials::{CertKey, ClusterInfo};
    use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
    use time::{Duration, OffsetDateTime};

    /// A self-signed pair: only names and dates matter to the decisions.
    fn pair(cn: &str, ips: &[&str], start: OffsetDateTime, days: i64) -> CertKey {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p =
            CertificateParams::new(ips.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = start;
        p.not_after = start + Duration::days(days);
        CertKey {
            cert_pem: p.self_signed(&key).unwrap().pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn creds(days: i64, age_days: i64) -> NodeCredentials {
        let start = OffsetDateTime::now_utc() - Duration::days(age_days);
        NodeCredentials {
            server_ca_pem: String::new(),
            client_ca_pem: String::new(),
            kubelet_client: pair("system:node:n1", &[], start, days),
            kubelet_serving: pair("n1@kubelet", &["10.0.0.1"], start, days),
            proxy_client: pair("system:kube-proxy", &[], start, days),
            cluster: ClusterInfo {
                cluster_cidr: "10.42.0.0/16".into(),
                service_cidr: "10.43.0.0/16".into(),
                cluster_dns: None,
                cluster_domain: "cluster.local".into(),
                flannel_backend: "vxlan".into(),
            },
        }
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn fresh_credentials_are_used() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(decide(&creds(365, 10), "n1", &[ip], now()), Decision::Use);
        let due = due_at(&creds(365, 0)).unwrap();
        let expected = now() + 275 * 86400;
        assert!((due - expected).abs() < 600, "{due} vs {expected}");
    }

    #[test]
    fn renewal_window_is_a_third_at_most_90_days() {
        // 365 days, 280 old: 85 left < 90.
        assert!(matches!(
            decide(&creds(365, 280), "n1", &[], now()),
            Decision::Renew(_)
        ));
        // 30 days, 15 old: 15 left > 10 (a third): kept.
        assert_eq!(decide(&creds(30, 15), "n1", &[], now()), Decision::Use);
        assert!(matches!(
            decide(&creds(30, 21), "n1", &[], now()),
            Decision::Renew(_)
        ));
    }

    #[test]
    fn new_addresses_renew_and_expired_or_foreign_rejoin() {
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        match decide(&creds(365, 1), "n1", &[other], now()) {
            Decision::Renew(r) => assert!(r.contains("10.0.0.9"), "{r}"),
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            decide(&creds(365, 400), "n1", &[], now()),
            Decision::Rejoin(_)
        ));
        assert!(matches!(
            decide(&creds(365, 1), "n2", &[], now()),
            Decision::Rejoin(_)
        ));
        let mut swapped = creds(365, 1);
        swapped.kubelet_client.key_pem = swapped.proxy_client.key_pem.clone();
        assert!(matches!(
            decide(&swapped, "n1", &[], now()),
            Decision::Rejoin(_)
        ));
        let mut garbage = creds(365, 1);
        garbage.kubelet_serving.cert_pem = "nope".into();
        assert!(matches!(
            decide(&garbage, "n1", &[], now()),
            Decision::Rejoin(_)
        ));
    }
}
