//! The cronjob controller: CronJobs.

use super::Ctx;

pub fn start(ctx: &Ctx) {
    let _ = ctx;
}
