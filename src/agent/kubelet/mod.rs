//! The kubelet: runs the pods bound to this node through CRI.
// Parts are being written in parallel; the allowance goes once they are wired.
#![allow(dead_code)]

mod node;
mod probes;
mod server;
mod spec;
mod volumes;
