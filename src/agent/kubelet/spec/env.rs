//! A container's environment, as upstream's makeEnvironmentVariables:
//! `envFrom` first, then `env` in order (later names replace earlier ones,
//! `$(VAR)` refers to what is already defined and to the service
//! variables), then the service variables not otherwise defined.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use serde::de::DeserializeOwned;

use super::downward::{field_ref_value, resource_field_value};
use super::expand::expand_with;
use super::{NodeAllocatable, SpecError};
use crate::client::{Client, ListOptions, ResourceId};

/// Variables in definition order; redefining one replaces its value.
#[derive(Default)]
struct Env {
    list: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.list[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.list.len());
                self.list.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.list[i].1.as_str())
    }
}

/// ConfigMaps and Secrets of the pod's namespace, each read once.
struct Sources<'a, C> {
    client: &'a C,
    ns: &'a str,
    config_maps: HashMap<String, Option<Arc<ConfigMap>>>,
    secrets: HashMap<String, Option<Arc<Secret>>>,
}

async fn read<C: Client, T: DeserializeOwned>(
    client: &C,
    plural: &str,
    ns: &str,
    name: &str,
) -> Result<Option<Arc<T>>, SpecError> {
    let res = ResourceId::new("", "v1", plural);
    match client.get(&res, Some(ns), name).await {
        Ok(v) => serde_json::from_value::<T>(v.as_ref().clone())
            .map(|t| Some(Arc::new(t)))
            .map_err(|e| SpecError::Invalid(format!("decoding {plural} {ns}/{name}: {e}"))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl<C: Client> Sources<'_, C> {
    /// The ConfigMap, None when it is missing and `optional`; a missing
    /// required one makes the pod wait.
    async fn config_map(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<Option<Arc<ConfigMap>>, SpecError> {
        if !self.config_maps.contains_key(name) {
            let found = read::<C, ConfigMap>(self.client, "configmaps", self.ns, name).await?;
            self.config_maps.insert(name.to_string(), found);
        }
        match self.config_maps.get(name).cloned().flatten() {
            Some(cm) => Ok(Some(cm)),
            None if optional => Ok(None),
            None => Err(SpecError::Waiting(format!("configmap {name:?} not found"))),
        }
    }

    async fn secret(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<Option<Arc<Secret>>, SpecError> {
        if !self.secrets.contains_key(name) {
            let found = read::<C, Secret>(self.client, "secrets", self.ns, name).await?;
            self.secrets.insert(name.to_string(), found);
        }
        match self.secrets.get(name).cloned().flatten() {
            Some(s) => Ok(Some(s)),
            None if optional => Ok(None),
            None => Err(SpecError::Waiting(format!("secret {name:?} not found"))),
        }
    }
}

fn config_map_data(cm: &ConfigMap) -> impl Iterator<Item = (&String, String)> {
    cm.data.iter().flatten().map(|(k, v)| (k, v.clone()))
}

/// Secret values: `data` (base64 in JSON, decoded by the type), then
/// `stringData` for keys it lacks (the API folds it into data on writes;
/// this covers objects that skipped that).
fn secret_data(s: &Secret) -> BTreeMap<&String, String> {
    let mut out: BTreeMap<&String, String> = s
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.clone()))
        .collect();
    for (k, v) in s.data.iter().flatten() {
        out.insert(k, String::from_utf8_lossy(&v.0).into_owned());
    }
    out
}

/// Upstream's relaxed rule for variable names (default since 1.32):
/// printable ASCII without '='.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// Resolves the container's environment. Missing required ConfigMaps,
/// Secrets or keys are [`SpecError::Waiting`]; unresolvable references
/// [`SpecError::Invalid`].
pub async fn resolve_env<C: Client>(
    client: &C,
    pod: &Pod,
    container: &Container,
    pod_ip: Option<IpAddr>,
    host_ip: Option<IpAddr>,
    node_allocatable: &NodeAllocatable,
) -> Result<Vec<(String, String)>, SpecError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false);
    let services = service_env(client, ns, links).await?;
    let mut sources = Sources {
        client,
        ns,
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env = Env::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let mut entries: Vec<(String, String)> = Vec::new();
        let source;
        if let Some(r) = &from.config_map_ref {
            source = format!("configMap {ns}/{}", r.name);
            if let Some(cm) = sources
                .config_map(&r.name, r.optional == Some(true))
                .await?
            {
                entries.extend(config_map_data(&cm).map(|(k, v)| (format!("{prefix}{k}"), v)));
            }
        } else if let Some(r) = &from.secret_ref {
            source = format!("secret {ns}/{}", r.name);
            if let Some(s) = sources.secret(&r.name, r.optional == Some(true)).await? {
                entries.extend(
                    secret_data(&s)
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), v)),
                );
            }
        } else {
            continue;
        }
        let (good, bad): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _)| valid_name(k));
        if !bad.is_empty() {
            let keys: Vec<&str> = bad.iter().map(|(k, _)| k.as_str()).collect();
            tracing::warn!(
                pod = %super::pod_ref(pod),
                "keys [{}] from the EnvFrom {source} were skipped since they are considered invalid environment variable names",
                keys.join(", ")
            );
        }
        for (k, v) in good {
            env.set(k, v);
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (var.value.as_deref(), var.value_from.as_ref()) {
            (Some(v), _) if !v.is_empty() => expand_with(v, |name| {
                env.get(name)
                    .map(str::to_string)
                    .or_else(|| services.get(name).cloned())
            }),
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_ref_value(pod, f, pod_ip, host_ip)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_field_value(pod, Some(container), r, node_allocatable)?
                } else if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional == Some(true);
                    let Some(cm) = sources.config_map(&r.name, optional).await? else {
                        continue;
                    };
                    match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(SpecError::Waiting(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional == Some(true);
                    let Some(s) = sources.secret(&r.name, optional).await? else {
                        continue;
                    };
                    match secret_data(&s).remove(&r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(SpecError::Waiting(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )))
                        }
                    }
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        env.set(var.name.clone(), value);
    }
    let mut out = env.list;
    for (k, v) in services {
        if !env.index.contains_key(&k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// The docker-link style variables of the namespace's services (with
/// enableServiceLinks) and always of `default/kubernetes`.
async fn service_env<C: Client>(
    client: &C,
    ns: &str,
    links: bool,
) -> Result<BTreeMap<String, String>, SpecError> {
    let res = ResourceId::new("", "v1", "services");
    let mut chosen: BTreeMap<String, Service> = BTreeMap::new();
    let mut take = |v: &serde_json::Value| match serde_json::from_value::<Service>(v.clone()) {
        Ok(s) => {
            chosen.insert(s.metadata.name.clone().unwrap_or_default(), s);
        }
        Err(e) => tracing::warn!("skipping an undecodable service for environment variables: {e}"),
    };
    match client.get(&res, Some("default"), "kubernetes").await {
        Ok(v) => take(&v),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if links {
        // A service of the pod's namespace named `kubernetes` wins over
        // the master's, as upstream.
        for item in client
            .list(&res, Some(ns), &ListOptions::default())
            .await?
            .items
        {
            take(&item);
        }
    }
    let mut out = BTreeMap::new();
    for s in chosen.values() {
        out.extend(service_vars(s));
    }
    Ok(out)
}

fn env_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}

/// `<NAME>_SERVICE_HOST`, `_SERVICE_PORT[_<PORT NAME>]` and the docker
/// link variables, for a service with a cluster IP.
fn service_vars(s: &Service) -> Vec<(String, String)> {
    let Some(spec) = s.spec.as_ref() else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ip.is_empty() || ip == "None" || ports.is_empty() {
        return Vec::new();
    }
    let prefix = env_name(s.metadata.name.as_deref().unwrap_or(""));
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_string()),
        (format!("{prefix}_SERVICE_PORT"), ports[0].port.to_string()),
    ];
    for p in ports {
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                p.port.to_string(),
            ));
        }
    }
    let host = |port: i32| match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{ip}]:{port}"),
        _ => format!("{ip}:{port}"),
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p
            .protocol
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("TCP");
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{}", host(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((format!("{pp}_PROTO"), lower));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.to_string()));
        out.push((pp, url));
    }
    out
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
