//! The endpoints controller: Endpoints of Services.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
