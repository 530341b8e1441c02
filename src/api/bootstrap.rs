//! What a fresh cluster has before anyone asks: the system namespaces,
//! the `kubernetes` service with endpoints pointing at this server. (The
//! `kube-dns` service is an embedded manifest: `src/manifests`.)

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::{Api, WriteOptions};

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

impl Api {
    fn resource(
        &self,
        group: &str,
        plural: &str,
    ) -> Result<&'static crate::api::Resource, ApiError> {
        let version = "v1";
        self.registry()
            .find(group, version, plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))
    }

    /// Creates what is missing; existing objects are left as they are,
    /// except the endpoints, which follow this server's address.
    #[cfg_attr(not(test), allow(dead_code))] // the server passes its DNS address
    pub async fn bootstrap(&self, advertise: IpAddr, port: u16) -> Result<(), ApiError> {
        self.bootstrap_with_dns(advertise, port, None).await
    }

    /// [`Api::bootstrap`], checking first that `dns` (the cluster DNS
    /// address, when the in-process DNS runs) can be a service address:
    /// the embedded `coredns.yaml` manifest puts the `kube-dns` Service
    /// there.
    pub async fn bootstrap_with_dns(
        &self,
        advertise: IpAddr,
        port: u16,
        dns: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        if let Some(ip) = dns {
            self.check_dns_address(ip)?;
        }
        self.bootstrap_rbac().await?;
        let opts = WriteOptions::default();
        let namespaces = self.resource("", "namespaces")?;
        for ns in NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            ignore_exists(self.create(namespaces, None, obj, &opts).await)?;
        }
        // Upstream's two system classes exist as objects, as `kubectl get
        // priorityclass` shows on any cluster.
        let classes = self.resource("scheduling.k8s.io", "priorityclasses")?;
        for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
            let obj = json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value,
                "description": description, "preemptionPolicy": "PreemptLowerPriority"
            });
            ignore_exists(self.create(classes, None, obj, &opts).await)?;
        }
        let services = self.resource("", "services")?;
        let ip = self.services.network().nth(1).to_string();
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        });
        ignore_exists(self.create(services, Some("default"), svc, &opts).await)?;
        let endpoints = self.resource("", "endpoints")?;
        let ep = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": advertise.to_string()}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        });
        self.create_or_replace(endpoints, "default", "kubernetes", ep)
            .await?;
        let slices = self.resource("discovery.k8s.io", "endpointslices")?;
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [advertise.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
        });
        self.create_or_replace(slices, "default", "kubernetes", slice)
            .await?;
        Ok(())
    }

    /// The cluster DNS address must be a service address, or nothing
    /// routes it and the kube-dns service cannot hold it.
    fn check_dns_address(&self, ip: IpAddr) -> Result<(), ApiError> {
        let net = self.services.network();
        match ip {
            IpAddr::V4(v4) if net.contains(v4) && v4 != net.nth(0) && v4 != net.nth(1) => Ok(()),
            _ => Err(ApiError::internal(format!(
                "cluster dns address {ip} is not a free address of the service cidr {}/{}",
                net.base, net.prefix_len
            ))),
        }
    }

    async fn create_or_replace(
        &self,
        r: &'static crate::api::Resource,
        ns: &str,
        name: &str,
        obj: Value,
    ) -> Result<(), ApiError> {
        let opts = WriteOptions::default();
        match self.create(r, Some(ns), obj.clone(), &opts).await {
            Err(ApiError::AlreadyExists { .. }) => {
                self.update(r, Some(ns), name, obj, None, &opts).await?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

fn ignore_exists(r: Result<Value, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
