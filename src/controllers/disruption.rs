//! The disruption controller: PodDisruptionBudget status.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
