//! The node ipam controller: node podCIDRs.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
