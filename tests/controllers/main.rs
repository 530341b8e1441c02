//! Integration tests of the controllers and the scheduler against a real
//! server with hollow nodes (Node objects kept Ready without containers).
//! One test binary for the group keeps the release build short.

#[path = "../common/mod.rs"]
mod common;

mod controllers_deployment;
mod controllers_gc;
mod controllers_jobs;
mod controllers_nodes;
mod controllers_sets;
mod hollow;
mod scheduler;
