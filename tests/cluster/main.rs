//! Integration tests on several hosts: network namespaces joined by a
//! bridge, one containerd per host, a server and agents (root required).

#[path = "../common/mod.rs"]
mod common;

mod multinode;
mod multinode_failure;
mod pod_network;
