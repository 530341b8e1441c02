//! The statefulset controller: StatefulSets.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
