//! The scheduler: assigns pending pods to nodes, as kube-scheduler's
//! default profile does (filters, scores, preemption), from an incremental
//! picture of the cluster fed by watches on the shared watch cache.
//!
//! `watch.rs` feeds one loop (`state.rs`) that owns the `cache.rs` picture
//! and the `queue.rs` queue; `cycle.rs` schedules one pod with
//! `filters.rs` (plus `affinity.rs`, `spread.rs`), `scores.rs` and
//! `preempt.rs`; `bind.rs` writes bindings, conditions and events.

mod affinity;
mod bind;
mod cache;
mod cycle;
mod filters;
#[cfg(test)]
mod filters_tests;
mod objects;
mod preempt;
mod queue;
mod resources;
mod scores;
mod spread;
mod state;
mod watch;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::api::Api;
use crate::client::{ClientError, Local};

/// What a scheduling step can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The pod cannot be placed on any node as things are (PreFilter).
    #[error("{0}")]
    Unschedulable(String),
}

/// Starts the scheduler; it runs until the runtime shuts down.
pub fn start(api: Arc<Api>) {
    let client = Local::new(api);
    let (tx, rx) = mpsc::unbounded_channel();
    for kind in watch::Kind::ALL {
        watch::follow(client.clone(), kind, tx.clone());
    }
    let writer = bind::Writer::new(client.clone(), tx);
    tracing::info!("scheduler starting");
    tokio::spawn(state::Scheduler::new(client, writer).run(rx));
}
