//! Memory, disk and PID pressure: the upstream kubelet's default hard
//! eviction thresholds applied to what the machine reports, and the
//! conditions' transition period (a pressure condition stays True for 5
//! minutes after the threshold was last met, so it does not flap).

use std::path::Path;
use std::time::{Duration, Instant};

use super::sysinfo::{self, FsStats, PidStats};

/// memory.available<100Mi.
pub const MEMORY_AVAILABLE_HARD: u64 = 100 << 20;
/// nodefs.available<10%.
pub const NODEFS_AVAILABLE_HARD_PERCENT: u8 = 10;
/// imagefs.available<15%.
const IMAGEFS_AVAILABLE_HARD_PERCENT: u8 = 15;
/// nodefs.inodesFree<5% and imagefs.inodesFree<5%.
const INODES_FREE_HARD_PERCENT: u8 = 5;
/// pid.available: upstream sets no default threshold; without one a node
/// could never report PIDPressure, so we take 10% of the PID limit.
const PID_AVAILABLE_HARD_PERCENT: u8 = 10;
/// Upstream's --eviction-pressure-transition-period default.
pub const TRANSITION_PERIOD: Duration = Duration::from_secs(300);

/// Which resources are short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// One look at the machine; `None` where reading failed (no pressure is
/// assumed from what could not be read).
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation {
    pub memory_available: Option<u64>,
    pub nodefs: Option<FsStats>,
    pub imagefs: Option<FsStats>,
    pub pids: Option<PidStats>,
}

pub fn observe(node_fs: &Path, image_fs: &Path) -> Observation {
    let warn = |what: &str, e: String| {
        tracing::debug!(what, error = e, "cannot observe");
    };
    Observation {
        memory_available: sysinfo::meminfo()
            .map(|m| m.available)
            .map_err(|e| warn("memory", e))
            .ok(),
        nodefs: sysinfo::fs_stats(node_fs)
            .map_err(|e| warn("nodefs", e))
            .ok(),
        imagefs: sysinfo::fs_stats(image_fs)
            .map_err(|e| warn("imagefs", e))
            .ok(),
        pids: sysinfo::pid_stats().map_err(|e| warn("pids", e)).ok(),
    }
}

/// `part < percent% of whole`.
fn below(part: u64, whole: u64, percent: u8) -> bool {
    whole > 0 && u128::from(part) * 100 < u128::from(whole) * u128::from(percent)
}

/// The thresholds met by one observation.
pub fn signals(o: &Observation) -> Pressure {
    let fs_short = |fs: Option<FsStats>, percent: u8| {
        fs.is_some_and(|f| {
            below(f.available, f.capacity, percent)
                || below(f.inodes_free, f.inodes, INODES_FREE_HARD_PERCENT)
        })
    };
    Pressure {
        memory: o
            .memory_available
            .is_some_and(|a| a < MEMORY_AVAILABLE_HARD),
        disk: fs_short(o.nodefs, NODEFS_AVAILABLE_HARD_PERCENT)
            || fs_short(o.imagefs, IMAGEFS_AVAILABLE_HARD_PERCENT),
        pid: o.pids.is_some_and(|p| {
            below(
                p.max.saturating_sub(p.running),
                p.max,
                PID_AVAILABLE_HARD_PERCENT,
            )
        }),
    }
}

/// Holds each pressure for the transition period after it was last seen.
#[derive(Debug, Default)]
pub struct Smoother {
    last_met: [Option<Instant>; 3],
}

impl Smoother {
    pub fn apply(&mut self, met: Pressure, now: Instant) -> Pressure {
        let mut hold = |i: usize, met: bool| {
            if met {
                self.last_met[i] = Some(now);
            }
            self.last_met[i].is_some_and(|t| now.saturating_duration_since(t) < TRANSITION_PERIOD)
        };
        Pressure {
            memory: hold(0, met.memory),
            disk: hold(1, met.disk),
            pid: hold(2, met.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(capacity: u64, available: u64) -> FsStats {
        FsStats {
            capacity,
            available,
            inodes: 1000,
            inodes_free: 500,
        }
    }

    #[test]
    fn thresholds_are_upstreams_defaults() {
        let calm = Observation {
            memory_available: Some(200 << 20),
            nodefs: Some(fs(100, 50)),
            imagefs: Some(fs(100, 50)),
            pids: Some(PidStats {
                max: 1000,
                running: 100,
            }),
        };
        assert_eq!(signals(&calm), Pressure::default());
        let mut o = calm;
        o.memory_available = Some(99 << 20);
        assert!(signals(&o).memory);
        let mut o = calm;
        o.nodefs = Some(fs(100, 9));
        assert!(signals(&o).disk);
        o.nodefs = Some(fs(100, 10));
        assert!(!signals(&o).disk, "10% left is not below 10%");
        o.imagefs = Some(fs(100, 14));
        assert!(signals(&o).disk, "imagefs needs 15%");
        let mut o = calm;
        o.nodefs = Some(FsStats {
            inodes_free: 40,
            ..fs(100, 90)
        });
        assert!(signals(&o).disk, "inodes below 5%");
        let mut o = calm;
        o.pids = Some(PidStats {
            max: 1000,
            running: 950,
        });
        assert!(signals(&o).pid);
        // Nothing read: no pressure claimed.
        assert_eq!(signals(&Observation::default()), Pressure::default());
    }

    #[test]
    fn pressure_is_held_for_the_transition_period() {
        let t0 = Instant::now();
        let mut s = Smoother::default();
        let on = Pressure {
            memory: true,
            ..Default::default()
        };
        assert!(s.apply(on, t0).memory);
        let later = t0 + Duration::from_secs(60);
        assert!(s.apply(Pressure::default(), later).memory, "still held");
        let gone = t0 + TRANSITION_PERIOD;
        assert!(!s.apply(Pressure::default(), gone).memory);
        assert!(!s.apply(Pressure::default(), gone).disk);
    }
}
