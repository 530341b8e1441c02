//! The ttl after finished controller: finished Jobs with ttlSecondsAfterFinished.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
