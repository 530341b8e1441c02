//! Quota arithmetic shared by the ResourceQuota admission plugin and the
//! quota status controller: quantities in nano-units with upstream's
//! canonical printing, and what objects use per quota resource name.

pub mod quantity;
pub mod usage;
