//! The resourcequota controller: ResourceQuota status.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
