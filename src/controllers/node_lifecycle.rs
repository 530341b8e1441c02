//! The node lifecycle controller: node health (Lease staleness, taints, NoExecute eviction).

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
