//! The pod gc controller: terminated and orphaned pods.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
