//! Memory, disk and PID pressure: the hard eviction thresholds
//! (upstream's defaults or `--eviction-hard`) applied to what the machine
//! reports, and the conditions' transition period (a pressure condition
//! stays True for 5 minutes after the threshold was last met, so it does
//! not flap).

use std::path::Path;
use std::time::{Duration, Instant};

use super::eviction::{Limit, Thresholds};
use super::sysinfo::{self, FsStats, PidStats};

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
    /// (available, total) bytes.
    pub memory: Option<(u64, u64)>,
    pub nodefs: Option<FsStats>,
    pub imagefs: Option<FsStats>,
    pub pids: Option<PidStats>,
}

pub fn observe(node_fs: &Path, image_fs: &Path) -> Observation {
    let warn = |what: &str, e: String| {
        tracing::debug!(what, error = e, "cannot observe");
    };
    Observation {
        memory: sysinfo::meminfo()
            .map(|m| (m.available, m.total))
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

/// The thresholds met by one observation.
pub fn signals(o: &Observation, t: &Thresholds) -> Pressure {
    let met = |limit: Option<Limit>, available: u64, whole: u64| {
        limit.is_some_and(|l| l.met(available, whole))
    };
    let fs_short = |fs: Option<FsStats>, space: Option<Limit>, inodes: Option<Limit>| {
        fs.is_some_and(|f| {
            met(space, f.available, f.capacity) || met(inodes, f.inodes_free, f.inodes)
        })
    };
    Pressure {
        memory: o
            .memory
            .is_some_and(|(available, total)| met(t.memory_available, available, total)),
        disk: fs_short(o.nodefs, t.nodefs_available, t.nodefs_inodes_free)
            || fs_short(o.imagefs, t.imagefs_available, t.imagefs_inodes_free),
        pid: o
            .pids
            .is_some_and(|p| met(t.pid_available, p.max.saturating_sub(p.running), p.max)),
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
        let d = Thresholds::default();
        let calm = Observation {
            memory: Some((200 << 20, 1 << 30)),
            nodefs: Some(fs(100, 50)),
            imagefs: Some(fs(100, 50)),
            pids: Some(PidStats {
                max: 1000,
                running: 100,
            }),
        };
        assert_eq!(signals(&calm, &d), Pressure::default());
        let mut o = calm;
        o.memory = Some((99 << 20, 1 << 30));
        assert!(signals(&o, &d).memory);
        let mut o = calm;
        o.nodefs = Some(fs(100, 9));
        assert!(signals(&o, &d).disk);
        o.nodefs = Some(fs(100, 10));
        assert!(!signals(&o, &d).disk, "10% left is not below 10%");
        o.imagefs = Some(fs(100, 14));
        assert!(signals(&o, &d).disk, "imagefs needs 15%");
        let mut o = calm;
        o.nodefs = Some(FsStats {
            inodes_free: 40,
            ..fs(100, 90)
        });
        assert!(signals(&o, &d).disk, "inodes below 5%");
        let mut o = calm;
        o.pids = Some(PidStats {
            max: 1000,
            running: 950,
        });
        assert!(signals(&o, &d).pid);
        // Nothing read: no pressure claimed.
        assert_eq!(signals(&Observation::default(), &d), Pressure::default());
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
