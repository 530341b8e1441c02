//! The JSON of `POST /nanokube/v1/node-credentials`, shared by the agent
//! (which asks) and the API server (which answers).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ClusterInfo;

/// The path of the endpoint.
pub const PATH: &str = "/nanokube/v1/node-credentials";

/// What a node sends: its name and password, the addresses its kubelet
/// serves on, and one PEM certificate signing request per certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ask {
    pub node_name: String,
    pub node_password: String,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    pub kubelet_client_csr: String,
    pub kubelet_serving_csr: String,
    pub proxy_client_csr: String,
}

/// What the server answers: the signed certificates (PEM), both CAs and
/// the cluster's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub kubelet_client_cert: String,
    pub kubelet_serving_cert: String,
    pub proxy_client_cert: String,
    pub server_ca: String,
    pub client_ca: String,
    pub cluster: ClusterInfo,
}
