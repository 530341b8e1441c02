//! The pv binder controller: PersistentVolumeClaim to PersistentVolume binding.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
