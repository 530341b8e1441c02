//! The scheduler: assigns pending pods to nodes.

use std::sync::Arc;

use crate::api::Api;

/// Starts the scheduler; it runs until the runtime shuts down.
pub fn start(api: Arc<Api>) {
    let _ = api;
}
