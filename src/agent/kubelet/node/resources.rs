//! Capacity and allocatable: `--kube-reserved`/`--system-reserved`
//! parsing, upstream's node-allocatable arithmetic (capacity minus the
//! reservations minus the hard eviction thresholds), and quantities written
//! as upstream canonicalizes them.

use serde_json::{json, Value};

use super::eviction::Thresholds;
use crate::api::quantity;

/// What the node offers pods, in plain units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allocatable {
    pub cpu_millis: i64,
    /// Bytes.
    pub memory: i64,
    pub pods: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
}

/// One reservation flag, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved {
    pub cpu_millis: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Accepted as upstream does; it limits PIDs, not allocatable.
    pub pid: i64,
}

/// `cpu=100m,memory=256Mi,ephemeral-storage=1Gi,pid=1000` (upstream's
/// keys); the error names what is wrong.
pub fn parse_reserved(text: &str) -> Result<Reserved, String> {
    let mut out = Reserved::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not resource=quantity"));
        };
        let (key, value) = (key.trim(), value.trim());
        let parsed = quantity::parse(value)
            .ok_or_else(|| format!("{value:?} is not a quantity (e.g. 100m, 256Mi, 1Gi)"))?;
        if parsed.negative {
            return Err(format!("{key} must not be negative"));
        }
        let units = |exp: i32| {
            parsed
                .in_units(exp)
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(|| format!("{key}={value} is too large"))
        };
        match key {
            "cpu" => out.cpu_millis = units(-3)?,
            "memory" => out.memory = units(0)?,
            "ephemeral-storage" => out.ephemeral_storage = units(0)?,
            "pid" => out.pid = units(0)?,
            _ => {
                return Err(format!(
                    "unsupported resource {key:?}: expected cpu, memory, ephemeral-storage or pid"
                ))
            }
        }
    }
    Ok(out)
}

/// Upstream's node allocatable: capacity minus both reservations minus the
/// hard eviction thresholds on memory.available and nodefs.available,
/// never below zero.
pub fn allocatable(
    capacity: &Allocatable,
    kube: &Reserved,
    system: &Reserved,
    eviction: &Thresholds,
) -> Allocatable {
    let kept = |limit: Option<super::eviction::Limit>, cap: i64| {
        limit.map_or(0, |l| {
            i64::try_from(l.amount_of(u64::try_from(cap).unwrap_or(0))).unwrap_or(i64::MAX)
        })
    };
    let eviction_storage = kept(eviction.nodefs_available, capacity.ephemeral_storage);
    let eviction_memory = kept(eviction.memory_available, capacity.memory);
    let less = |cap: i64, parts: &[i64]| {
        parts
            .iter()
            .fold(cap, |left, p| left.saturating_sub(*p))
            .max(0)
    };
    Allocatable {
        cpu_millis: less(capacity.cpu_millis, &[kube.cpu_millis, system.cpu_millis]),
        memory: less(
            capacity.memory,
            &[kube.memory, system.memory, eviction_memory],
        ),
        pods: capacity.pods,
        ephemeral_storage: less(
            capacity.ephemeral_storage,
            &[
                kube.ephemeral_storage,
                system.ephemeral_storage,
                eviction_storage,
            ],
        ),
    }
}

/// A node's `capacity` or `allocatable` map.
pub fn resource_list(r: &Allocatable) -> Value {
    json!({
        "cpu": format_millis(r.cpu_millis),
        "memory": format_bytes(r.memory),
        "pods": r.pods.to_string(),
        "ephemeral-storage": format_bytes(r.ephemeral_storage),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    })
}

/// A milli-quantity as upstream prints it: `2`, `1500m`.
pub fn format_millis(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes as upstream prints a BinarySI quantity: the largest binary suffix
/// that divides exactly (`8144540Ki`), plain digits otherwise, and plain
/// below 1024.
pub fn format_bytes(bytes: i64) -> String {
    if bytes.abs() < 1024 {
        return bytes.to_string();
    }
    let (mut value, mut suffix) = (bytes, "");
    for s in ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"] {
        if value % 1024 != 0 {
            break;
        }
        value /= 1024;
        suffix = s;
    }
    format!("{value}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_parse_with_their_units() {
        let r = parse_reserved("cpu=100m, memory=256Mi,ephemeral-storage=1G,pid=1000").unwrap();
        assert_eq!(
            r,
            Reserved {
                cpu_millis: 100,
                memory: 256 << 20,
                ephemeral_storage: 1_000_000_000,
                pid: 1000
            }
        );
        assert_eq!(parse_reserved("cpu=1.5").unwrap().cpu_millis, 1500);
        assert_eq!(parse_reserved("").unwrap(), Reserved::default());
        let err = |s: &str| parse_reserved(s).unwrap_err();
        assert!(err("gpu=1").contains("unsupported resource \"gpu\""));
        assert!(err("cpu").contains("not resource=quantity"));
        assert!(err("memory=lots").contains("not a quantity"));
        assert!(err("memory=-1Gi").contains("must not be negative"));
        assert!(err("memory=100Ei").contains("too large"));
    }

    #[test]
    fn allocatable_subtracts_reservations_and_eviction_thresholds() {
        let cap = Allocatable {
            cpu_millis: 2000,
            memory: 4 << 30,
            pods: 110,
            ephemeral_storage: 100 << 30,
        };
        let kube = parse_reserved("cpu=100m,memory=256Mi").unwrap();
        let system = parse_reserved("cpu=200m,ephemeral-storage=1Gi").unwrap();
        let a = allocatable(&cap, &kube, &system, &Thresholds::default());
        assert_eq!(a.cpu_millis, 1700);
        assert_eq!(a.memory, (4 << 30) - (256 << 20) - (100 << 20));
        assert_eq!(a.pods, 110);
        assert_eq!(a.ephemeral_storage, (100 << 30) - (1 << 30) - (10 << 30));
        // Nothing reserved: only the eviction thresholds.
        let none = Reserved::default();
        let a = allocatable(&cap, &none, &none, &Thresholds::default());
        assert_eq!(a.memory, (4 << 30) - (100 << 20));
        assert_eq!(a.cpu_millis, 2000);
        // Reservations larger than the machine leave zero, not less.
        let huge = parse_reserved("cpu=64,memory=1Ti").unwrap();
        let a = allocatable(&cap, &huge, &none, &Thresholds::default());
        assert_eq!((a.cpu_millis, a.memory), (0, 0));
        // --eviction-hard replaces the defaults; left-out signals keep nothing.
        let t = super::super::eviction::parse("memory.available<1Gi").unwrap();
        let a = allocatable(&cap, &none, &none, &t);
        assert_eq!(a.memory, 3 << 30);
        assert_eq!(a.ephemeral_storage, 100 << 30);
    }

    #[test]
    fn quantities_print_as_upstream() {
        assert_eq!(format_millis(2000), "2");
        assert_eq!(format_millis(1500), "1500m");
        assert_eq!(format_bytes(8_340_008_960), "8144540Ki");
        assert_eq!(format_bytes(4 << 30), "4Gi");
        assert_eq!(format_bytes(56_453_061_334), "56453061334");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(512), "512");
        let list = resource_list(&Allocatable {
            cpu_millis: 4000,
            memory: 1 << 30,
            pods: 110,
            ephemeral_storage: 1 << 20,
        });
        assert_eq!(list["cpu"], "4");
        assert_eq!(list["pods"], "110");
        assert_eq!(list["hugepages-2Mi"], "0");
    }
}
