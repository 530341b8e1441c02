//! The job controller: Jobs.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
