//! The daemonset controller: DaemonSets.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
