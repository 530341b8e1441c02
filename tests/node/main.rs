//! Integration tests with a real node: containerd, runc, CNI and busybox
//! pods through `nanokube server`'s node agent (root required; fail loudly
//! without the prerequisites). One test binary for the group.

#[path = "../common/mod.rs"]
mod common;

mod admission_webhooks;
mod agent_harness;
mod agent_join;
mod agent_lifecycle;
mod agent_pods;
mod agent_streaming;
mod agent_token;
mod debug;
mod dns;
mod install;
mod proxy;
mod services_e2e;
mod services_policies;
