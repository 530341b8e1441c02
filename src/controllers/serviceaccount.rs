//! The serviceaccount controller: default ServiceAccounts and kube-root-ca.crt ConfigMaps.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
