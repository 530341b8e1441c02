//! Settings of the default admission chain that come from server flags:
//! DefaultTolerationSeconds (how long pods tolerate not-ready and
//! unreachable nodes unless they say otherwise). Kind strategies are plain
//! functions, so the values live in process-wide atomics.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::api::Api;

/// Upstream's `--default-not-ready-toleration-seconds` default.
const DEFAULT_SECONDS: i64 = 300;

static NOT_READY_SECONDS: AtomicI64 = AtomicI64::new(DEFAULT_SECONDS);
static UNREACHABLE_SECONDS: AtomicI64 = AtomicI64::new(DEFAULT_SECONDS);

impl Api {
    /// Sets the tolerationSeconds given to pods created without tolerations
    /// for the `node.kubernetes.io/not-ready` and `unreachable` NoExecute taints.
    pub fn set_toleration_defaults(&self, not_ready: i64, unreachable: i64) {
        NOT_READY_SECONDS.store(not_ready, Ordering::Relaxed);
        UNREACHABLE_SECONDS.store(unreachable, Ordering::Relaxed);
    }
}

/// The default toleration seconds for the taint `key`, or None when the
/// DefaultTolerationSeconds plugin does not handle that taint.
pub(crate) fn default_toleration_seconds(key: &str) -> Option<i64> {
    match key {
        "node.kubernetes.io/not-ready" => Some(NOT_READY_SECONDS.load(Ordering::Relaxed)),
        "node.kubernetes.io/unreachable" => Some(UNREACHABLE_SECONDS.load(Ordering::Relaxed)),
        _ => None,
    }
}
