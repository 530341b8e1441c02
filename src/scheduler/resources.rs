//! Quantities and pod resource requests. k8s-openapi's `Quantity` is only
//! a string, so the suffix grammar of `resource.Quantity` is parsed here.

use serde_json::Value;

/// Requests or capacities the scheduler compares: cpu in millicores, the
/// rest in bytes (or units for extended resources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral: i64,
    /// Extended resources ("nvidia.com/gpu", hugepages), kept sorted.
    pub scalars: Vec<(String, i64)>,
}

/// Upstream's defaults for containers without requests, used only when
/// scoring (so best-effort pods still spread).
pub const DEFAULT_MILLI_CPU: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

impl Resources {
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral == 0
            && self.scalars.iter().all(|(_, v)| *v == 0)
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalars
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalars.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = v,
            None => {
                self.scalars.push((name.to_string(), v));
                self.scalars.sort();
            }
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral += o.ephemeral;
        for (n, v) in &o.scalars {
            let cur = self.scalar(n);
            self.set_scalar(n, cur + v);
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral -= o.ephemeral;
        for (n, v) in &o.scalars {
            let cur = self.scalar(n);
            self.set_scalar(n, cur - v);
        }
    }

    /// Element-wise maximum (init containers run one at a time).
    fn max(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral = self.ephemeral.max(o.ephemeral);
        for (n, v) in &o.scalars {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.max(*v));
        }
    }

    /// From a resource list (`{"cpu": "100m", "memory": "1Gi"}`); `pods`
    /// is skipped (the caller reads it).
    pub fn from_list(list: Option<&Value>) -> Resources {
        let mut r = Resources::default();
        let Some(map) = list.and_then(Value::as_object) else {
            return r;
        };
        for (name, q) in map {
            let Some(milli) = quantity_value(q) else {
                continue;
            };
            match name.as_str() {
                "cpu" => r.milli_cpu = clamp(milli),
                "memory" => r.memory = clamp(ceil_units(milli)),
                "ephemeral-storage" => r.ephemeral = clamp(ceil_units(milli)),
                "pods" => {}
                other if is_scalar(other) => r.set_scalar(other, clamp(ceil_units(milli))),
                _ => {}
            }
        }
        r
    }
}

/// Extended resources and hugepages count; unknown plain names do not.
fn is_scalar(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-")
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn ceil_units(milli: i128) -> i128 {
    (milli + 999).div_euclid(1000)
}

/// A quantity in JSON (string or number) as milli-units.
pub fn quantity_value(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_milli(s),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i as i128 * 1000)
            .or_else(|| n.as_f64().map(|f| (f * 1000.0).ceil() as i128)),
        _ => None,
    }
}

/// Parses "100m", "1Gi", "2", "500M", "1.5", "1e3" into milli-units,
/// rounding up as `Quantity.MilliValue()` does.
pub fn parse_milli(s: &str) -> Option<i128> {
    crate::api::quantity::parse(s)?.in_units(-3)
}

fn container_requests(c: &Value) -> Resources {
    let res = c.get("resources");
    // Limits stand in for missing requests (API defaulting does the same).
    let mut r = Resources::from_list(res.and_then(|r| r.get("limits")));
    let req = Resources::from_list(res.and_then(|r| r.get("requests")));
    let has = |k: &str| {
        res.and_then(|r| r.get("requests"))
            .and_then(|q| q.get(k))
            .is_some()
    };
    if has("cpu") {
        r.milli_cpu = req.milli_cpu;
    }
    if has("memory") {
        r.memory = req.memory;
    }
    if has("ephemeral-storage") {
        r.ephemeral = req.ephemeral;
    }
    for (n, v) in &req.scalars {
        r.set_scalar(n, *v);
    }
    r
}

/// What a pod asks of a node: the larger of its containers' sum and any one
/// init container (sidecars, restartPolicy Always, add up), plus overhead.
/// The second value fills upstream's non-zero defaults, for scoring.
pub fn pod_requests(spec: &Value) -> (Resources, Resources) {
    let list = |k: &str| {
        spec.get(k)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    let mut sum = Resources::default();
    let mut nonzero = Resources::default();
    for c in list("containers") {
        let r = container_requests(c);
        nonzero.milli_cpu += if has_req(c, "cpu") {
            r.milli_cpu
        } else {
            DEFAULT_MILLI_CPU
        };
        nonzero.memory += if has_req(c, "memory") {
            r.memory
        } else {
            DEFAULT_MEMORY
        };
        sum.add(&r);
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in list("initContainers") {
        let r = container_requests(c);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars.add(&r);
            init_max.max(&sidecars);
        } else {
            let mut with = r.clone();
            with.add(&sidecars);
            init_max.max(&with);
        }
    }
    sum.add(&sidecars);
    sum.max(&init_max);
    let overhead = Resources::from_list(spec.get("overhead"));
    sum.add(&overhead);
    nonzero.milli_cpu = nonzero.milli_cpu.max(sum.milli_cpu);
    nonzero.memory = nonzero.memory.max(sum.memory);
    (sum, nonzero)
}

fn has_req(c: &Value, k: &str) -> bool {
    let r = c.get("resources");
    ["requests", "limits"]
        .iter()
        .any(|w| r.and_then(|r| r.get(*w)).and_then(|l| l.get(k)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_as_upstream() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1Gi"), Some(1024 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("500M"), Some(500_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1E"), Some(1_000_000_000_000_000_000_000));
        assert_eq!(parse_milli("1.5Ki"), Some(1536 * 1000));
        assert_eq!(parse_milli("1n"), Some(1));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Qi"), None);
        assert_eq!(parse_milli(""), None);
    }

    #[test]
    fn requests_take_init_containers_and_overhead() {
        let spec = json!({
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"resources": {"limits": {"cpu": "200m"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}],
            "overhead": {"cpu": "10m"},
        });
        let (r, nz) = pod_requests(&spec);
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 64 * 1024 * 1024);
        assert_eq!(nz.memory, 64 * 1024 * 1024 + DEFAULT_MEMORY);
        let (empty, nz) = pod_requests(&json!({"containers": [{}]}));
        assert!(empty.is_zero());
        assert_eq!(nz.milli_cpu, DEFAULT_MILLI_CPU);
    }

    #[test]
    fn extended_resources_add_up() {
        let mut a = Resources::from_list(Some(&json!({"nvidia.com/gpu": "2", "cpu": "1"})));
        a.add(&Resources::from_list(Some(&json!({"nvidia.com/gpu": 1}))));
        assert_eq!(a.scalar("nvidia.com/gpu"), 3);
        assert_eq!(a.milli_cpu, 1000);
    }
}
