//! Hard eviction thresholds: upstream's defaults, and `--eviction-hard`
//! (`memory.available<100Mi,nodefs.available<10%,...`). As upstream, a
//! given flag replaces the defaults: signals it leaves out have no
//! threshold.

use crate::api::quantity;

/// A threshold on one signal: an amount, or a share of the capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Amount(u64),
    Percent(f64),
}

impl Limit {
    /// `available < limit` for a resource of size `capacity`.
    pub fn met(self, available: u64, capacity: u64) -> bool {
        match self {
            Limit::Amount(a) => available < a,
            Limit::Percent(p) => capacity > 0 && (available as f64) < capacity as f64 * p / 100.0,
        }
    }

    /// The amount the limit keeps free of a resource of size `capacity`.
    pub fn amount_of(self, capacity: u64) -> u64 {
        match self {
            Limit::Amount(a) => a.min(capacity),
            Limit::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }
}

/// The hard thresholds the node checks; `None`: never met.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub memory_available: Option<Limit>,
    pub nodefs_available: Option<Limit>,
    pub nodefs_inodes_free: Option<Limit>,
    pub imagefs_available: Option<Limit>,
    pub imagefs_inodes_free: Option<Limit>,
    pub pid_available: Option<Limit>,
}

impl Default for Thresholds {
    /// Upstream's defaults (memory.available<100Mi, nodefs.available<10%,
    /// imagefs.available<15%, inodesFree<5%). Upstream sets no PID
    /// default; without one a node could never report PIDPressure, so 10%.
    fn default() -> Self {
        Thresholds {
            memory_available: Some(Limit::Amount(100 << 20)),
            nodefs_available: Some(Limit::Percent(10.0)),
            nodefs_inodes_free: Some(Limit::Percent(5.0)),
            imagefs_available: Some(Limit::Percent(15.0)),
            imagefs_inodes_free: Some(Limit::Percent(5.0)),
            pid_available: Some(Limit::Percent(10.0)),
        }
    }
}

/// Parses `--eviction-hard`; the error names what is wrong.
pub fn parse(text: &str) -> Result<Thresholds, String> {
    let mut out = Thresholds {
        memory_available: None,
        nodefs_available: None,
        nodefs_inodes_free: None,
        imagefs_available: None,
        imagefs_inodes_free: None,
        pid_available: None,
    };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((signal, value)) = item.split_once('<') else {
            return Err(format!(
                "{item:?} is not signal<quantity (e.g. memory.available<100Mi)"
            ));
        };
        let (signal, value) = (signal.trim(), value.trim());
        let limit = parse_limit(signal, value)?;
        let slot = match signal {
            "memory.available" => &mut out.memory_available,
            "nodefs.available" => &mut out.nodefs_available,
            "nodefs.inodesFree" => &mut out.nodefs_inodes_free,
            "imagefs.available" => &mut out.imagefs_available,
            "imagefs.inodesFree" => &mut out.imagefs_inodes_free,
            "pid.available" => &mut out.pid_available,
            _ => {
                return Err(format!(
                    "unsupported eviction signal {signal:?}: expected memory.available, \
                     nodefs.available, nodefs.inodesFree, imagefs.available, \
                     imagefs.inodesFree or pid.available"
                ))
            }
        };
        if slot.is_some() {
            return Err(format!("eviction signal {signal} given twice"));
        }
        *slot = Some(limit);
    }
    Ok(out)
}

fn parse_limit(signal: &str, value: &str) -> Result<Limit, String> {
    if let Some(p) = value.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{signal}: {value:?} is not a percentage"))?;
        // Upstream refuses percentages outside (0, 100].
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!(
                "{signal}: percentage must be above 0% and at most 100%"
            ));
        }
        return Ok(Limit::Percent(p));
    }
    let q = quantity::parse(value)
        .ok_or_else(|| format!("{signal}: {value:?} is not a quantity (e.g. 100Mi, 1Gi, 10%)"))?;
    if q.negative {
        return Err(format!("{signal} must not be negative"));
    }
    let amount = q
        .in_units(0)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| format!("{signal}: {value} is too large"))?;
    Ok(Limit::Amount(amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_replaces_the_defaults() {
        let t = parse("memory.available<1Mi, nodefs.available<5%").unwrap();
        assert_eq!(t.memory_available, Some(Limit::Amount(1 << 20)));
        assert_eq!(t.nodefs_available, Some(Limit::Percent(5.0)));
        assert_eq!(t.imagefs_available, None, "left out: no threshold");
        assert_eq!(t.pid_available, None);
        assert_eq!(parse("").unwrap().memory_available, None);
        let p = parse("pid.available<1000,imagefs.inodesFree<2.5%").unwrap();
        assert_eq!(p.pid_available, Some(Limit::Amount(1000)));
        assert_eq!(p.imagefs_inodes_free, Some(Limit::Percent(2.5)));
    }

    #[test]
    fn bad_flags_are_named() {
        for (text, want) in [
            ("memory.available=1Mi", "is not signal<quantity"),
            ("disk.available<1Mi", "unsupported eviction signal"),
            ("memory.available<lots", "is not a quantity"),
            ("nodefs.available<0%", "above 0%"),
            ("nodefs.available<101%", "at most 100%"),
            ("nodefs.available<x%", "is not a percentage"),
            ("memory.available<-1Mi", "must not be negative"),
            ("memory.available<1Mi,memory.available<2Mi", "given twice"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn limits_compare_and_reserve() {
        assert!(Limit::Percent(10.0).met(9, 100));
        assert!(!Limit::Percent(10.0).met(10, 100));
        assert!(!Limit::Percent(10.0).met(0, 0), "unknown capacity");
        assert!(Limit::Amount(5).met(4, 0));
        assert_eq!(Limit::Percent(10.0).amount_of(1000), 100);
        assert_eq!(Limit::Amount(5000).amount_of(1000), 1000);
    }
}
