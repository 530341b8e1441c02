//! Integration tests of the API server and the datastore without a node
//! agent: real kubectl (1.27 and 1.33), etcdctl and the Python client
//! against `nanokube server` and `nanokube datastore`, security, tokens.
//! One test binary for the group keeps the release build short; each
//! module is one concern.

#[path = "../common/mod.rs"]
mod common;

mod api_errors;
mod api_kubectl;
mod api_kubectl_edit;
mod api_kubectl_tables;
mod api_python;
mod api_restart;
mod bad_input;
mod certificates;
mod churn;
mod conversion_webhook;
mod custom_resources;
mod durability;
mod etcdctl;
mod kubectl_verbs;
mod manifests;
mod node_credentials;
mod ops_commands;
mod real_world_crds;
mod security_admission;
mod security_authn;
mod security_encryption;
mod security_legacy_tokens;
mod security_node;
mod security_podsecurity;
mod security_rbac;
mod security_tokens;
mod server;
mod server_side_apply;
mod services_api;
mod snapshots;
mod tokens;
