//! The deployment controller: Deployments.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
