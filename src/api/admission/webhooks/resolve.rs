//! From a `clientConfig` to an address: a URL as written, a Service
//! through one of its ready endpoints (pod IP and target port, as
//! upstream's `--enable-aggregator-routing`), or its cluster IP when it has
//! no Endpoints object at all.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::call::Endpoint;
use super::config::{ClientConfig, Target};
use crate::api::Api;

fn with_timeout(path: &str, seconds: u64) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}timeout={seconds}s")
}

/// `host:port` with brackets around IPv6 addresses.
fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// `https://host[:port]/path` → (host, port, path).
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("unsupported webhook URL {url:?}: only https is allowed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid webhook URL {url:?}"))?;
        (h.to_string(), tail.strip_prefix(':').unwrap_or(""))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        443
    } else {
        port.parse()
            .map_err(|_| format!("invalid port in webhook URL {url:?}"))?
    };
    Ok((host, port, path))
}

fn ready_address(subset: &Value) -> Option<&str> {
    subset
        .get("addresses")?
        .as_array()?
        .iter()
        .find_map(|a| a.get("ip").and_then(Value::as_str))
}

impl Api {
    fn cached(&self, plural: &str, key: &str) -> Option<std::sync::Arc<Value>> {
        let r = self.registry().find("", "v1", plural)?;
        self.store.cache(r.storage)?.get(key).map(|s| s.object)
    }

    /// Where a webhook call goes; `Err` is the cause upstream would report.
    pub(super) fn webhook_endpoint(
        &self,
        client: &ClientConfig,
        timeout_seconds: u64,
    ) -> Result<Endpoint, String> {
        let timeout = Duration::from_secs(timeout_seconds);
        let (namespace, name, path, port) = match &client.target {
            Target::Url(url) => {
                let (host, port, path) = split_url(url)?;
                let path = with_timeout(&path, timeout_seconds);
                let authority = host_port(&host, port);
                return Ok(Endpoint {
                    url: format!("https://{authority}{path}"),
                    connect: authority.clone(),
                    server_name: host,
                    path,
                    host: authority,
                    ca_pem: client.ca_bundle.clone(),
                    timeout,
                });
            }
            Target::Service {
                namespace,
                name,
                path,
                port,
            } => (namespace, name, path, *port),
        };
        let server_name = format!("{name}.{namespace}.svc");
        let path = with_timeout(path, timeout_seconds);
        let host = format!("{server_name}:{port}");
        let url = format!("https://{host}{path}");
        // Upstream resolves in the dialer, so the cause comes after the URL.
        let address = self
            .service_address(namespace, name, port)
            .map_err(|cause| format!("Post \"{url}\": {cause}"))?;
        Ok(Endpoint {
            url,
            connect: address,
            server_name,
            path,
            host,
            ca_pem: client.ca_bundle.clone(),
            timeout,
        })
    }

    /// A ready endpoint of the Service's `port` (the pod IP and target
    /// port), or its cluster IP when it has no Endpoints object.
    fn service_address(&self, namespace: &str, name: &str, port: u16) -> Result<String, String> {
        let service = self
            .cached("services", &format!("{namespace}/{name}"))
            .ok_or_else(|| format!("service \"{name}\" not found"))?;
        let ports = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let service_port = ports
            .iter()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
            .ok_or_else(|| format!("no service port {port} found for service \"{name}\""))?;
        let port_name = service_port
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let connect = match self.cached("endpoints", &format!("{namespace}/{name}")) {
            Some(endpoints) => {
                let subsets = endpoints
                    .get("subsets")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                subsets
                    .iter()
                    .find_map(|s| {
                        let target = s.get("ports")?.as_array()?.iter().find(|p| {
                            p.get("name").and_then(Value::as_str).unwrap_or("") == port_name
                        })?;
                        let target = target.get("port")?.as_u64()?;
                        let ip = ready_address(s)?;
                        Some(host_port(ip, u16::try_from(target).ok()?))
                    })
                    .ok_or_else(|| format!("no endpoints available for service \"{name}\""))?
            }
            None => {
                let ip = service
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .filter(|ip| ip.parse::<IpAddr>().is_ok())
                    .ok_or_else(|| format!("no endpoints available for service \"{name}\""))?;
                host_port(ip, port)
            }
        };
        Ok(connect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_with_default_port() {
        assert_eq!(
            split_url("https://hook.example.com/validate").unwrap(),
            ("hook.example.com".into(), 443, "/validate".into())
        );
        assert_eq!(
            split_url("https://127.0.0.1:8443").unwrap(),
            ("127.0.0.1".into(), 8443, "/".into())
        );
        assert_eq!(
            split_url("https://[::1]:9/x?a=b").unwrap(),
            ("::1".into(), 9, "/x?a=b".into())
        );
        assert!(split_url("http://insecure/").is_err());
        assert_eq!(with_timeout("/x?a=b", 5), "/x?a=b&timeout=5s");
        assert_eq!(host_port("::1", 9), "[::1]:9");
    }
}
