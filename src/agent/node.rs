//! Running one node, the same for the server's own node (in-process
//! clients) and a joined machine (HTTPS clients with the node's
//! certificates): the kubelet, the service proxy, the cluster DNS and the
//! pod network between nodes, until shutdown.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::{kubelet, network, proxy, runtime, Error};
use crate::client::Client;
use crate::config::{FlannelBackend, NodeArgs};

/// Everything a node runs with, whoever started it.
pub struct NodePlan {
    pub data_dir: PathBuf,
    pub node: NodeArgs,
    pub node_name: String,
    /// The server's own node carries k3s's control-plane labels.
    pub server_role: bool,
    /// TLS of the kubelet's HTTPS port.
    pub tls: Arc<rustls::ServerConfig>,
    pub cluster_cidr: String,
    pub service_cidr: String,
    /// The in-process cluster DNS serves this address when set.
    pub cluster_dns: Option<IpAddr>,
    pub cluster_domain: String,
    pub flannel_backend: FlannelBackend,
}

/// Runs the node until `shutdown`. `kubelet_client` is the node's own
/// identity; `proxy_client` feeds the service proxy and the cluster DNS.
/// Pods keep running when it returns (and when the API is unreachable: the
/// kubelet only acts on what the API said last).
pub async fn run<K, P>(
    kubelet_client: K,
    proxy_client: P,
    mut plan: NodePlan,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error>
where
    K: Client + Clone,
    P: Client + Clone,
{
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let instance = runtime::instance_id(&plan.data_dir.join("agent"));
    if let Some(dns) = plan.cluster_dns {
        // Pods are given the address the DNS serves.
        plan.node.cluster_dns = dns;
    }
    // Proxy, DNS and pod network serve beside the kubelet; a failure of
    // one is logged when it happens and does not stop the pods.
    let mut helpers = Vec::new();
    let proxy_settings = proxy::Settings {
        node_name: plan.node_name.clone(),
        node_ip: plan.node.node_ip,
        cluster_cidr: plan.cluster_cidr.clone(),
        service_cidr: plan.service_cidr.clone(),
        cluster_dns: plan.cluster_dns,
        mode: plan.node.proxy_mode,
        instance: instance.clone(),
    };
    let proxy = proxy::run(proxy_client.clone(), proxy_settings, shutdown.clone());
    helpers.push(tokio::spawn(async move {
        if let Err(e) = proxy.await {
            tracing::error!(error = %e, "service proxy stopped");
        }
    }));
    if let Some(address) = plan.cluster_dns {
        let settings = crate::dns::Settings {
            address,
            cluster_domain: plan.cluster_domain.clone(),
            instance: instance.clone(),
            resolv_conf: plan.node.resolv_conf.clone(),
        };
        let dns = crate::dns::run(proxy_client, settings, shutdown.clone());
        helpers.push(tokio::spawn(async move {
            if let Err(e) = dns.await {
                tracing::error!(error = %e, "cluster dns stopped");
            }
        }));
    }
    match node_ip(&plan.node) {
        Some(node_ip) => {
            let settings = network::Settings {
                node_name: plan.node_name.clone(),
                node_ip,
                iface: plan.node.flannel_iface.clone(),
                backend: plan.flannel_backend,
                cluster_cidr: plan.cluster_cidr.clone(),
                instance,
                leave_running: plan.node.leave_pods_running,
            };
            let net = network::run(kubelet_client.clone(), settings, shutdown.clone());
            helpers.push(tokio::spawn(async move {
                if let Err(e) = net.await {
                    tracing::error!(error = %e, "pod network stopped");
                }
            }));
        }
        None => tracing::error!(
            "no address for the pod network between nodes (no --node-ip and no default route); pods reach only this node"
        ),
    }
    let settings = kubelet::Settings {
        data_dir: plan.data_dir,
        node: plan.node,
        node_name: plan.node_name,
        cluster_domain: plan.cluster_domain,
        server_role: plan.server_role,
        tls: plan.tls,
        cni_config: plan.flannel_backend != FlannelBackend::None,
    };
    // A kubelet that could not start is reported at once (the helpers
    // would wait for a shutdown that then comes from the caller).
    kubelet::run(kubelet_client, settings, shutdown).await?;
    for helper in helpers {
        let _ = helper.await;
    }
    Ok(())
}

/// The address other nodes reach this one at: `--node-ip`, else the
/// default route's (what the kubelet registers too).
fn node_ip(node: &NodeArgs) -> Option<IpAddr> {
    node.node_ip.or_else(crate::pki::default_route_address)
}
