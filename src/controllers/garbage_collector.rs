//! The garbage collector controller: ownerReferences (garbage collection).

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
