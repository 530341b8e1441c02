//! Requests and limits: QoS class, the pod's cgroup parent, the CFS and
//! memory settings and oom_score_adj of a container, with upstream's
//! formulas (`cm.MilliCPUToShares`, `milliCPUToQuota`,
//! `qos.GetContainerOOMScoreAdjust`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::SpecError;
use crate::agent::cri::api;
use crate::api::quantity;

type ResourceList = BTreeMap<String, Quantity>;

const MIN_SHARES: i128 = 2;
const MAX_SHARES: i128 = 262_144;
const SHARES_PER_CPU: i128 = 1024;
/// CFS period in microseconds (100 ms), upstream's default.
pub(super) const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA_PERIOD: i128 = 1000;
const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
const BESTEFFORT_OOM_SCORE_ADJ: i64 = 1000;
/// The memory request assumed for a container without one when sidecar
/// scores are compared (upstream's `DefaultMemoryRequest`, 200 MiB).
const DEFAULT_MEMORY_REQUEST: i128 = 200 * 1024 * 1024;

/// A quantity in units of 10^`unit_exp`, rounded up; refuses what does not
/// parse, is negative or does not fit.
pub(super) fn amount(q: &Quantity, unit_exp: i32, what: &str) -> Result<i128, SpecError> {
    let parsed = quantity::parse(&q.0)
        .ok_or_else(|| SpecError::Invalid(format!("invalid quantity {:?} for {what}", q.0)))?;
    match parsed.in_units(unit_exp) {
        Some(n) if n >= 0 && n <= i64::MAX as i128 => Ok(n),
        Some(n) if n < 0 => Err(SpecError::Invalid(format!(
            "negative quantity {:?} for {what}",
            q.0
        ))),
        _ => Err(SpecError::Invalid(format!(
            "quantity {:?} for {what} is too large",
            q.0
        ))),
    }
}

fn lists(c: &Container) -> (Option<&ResourceList>, Option<&ResourceList>) {
    let r = c.resources.as_ref();
    (
        r.and_then(|r| r.requests.as_ref()),
        r.and_then(|r| r.limits.as_ref()),
    )
}

/// One resource of a list in units of 10^`unit_exp`.
fn get(
    list: Option<&ResourceList>,
    name: &str,
    unit_exp: i32,
    c: &Container,
) -> Result<Option<i128>, SpecError> {
    list.and_then(|l| l.get(name))
        .map(|q| amount(q, unit_exp, &format!("{name} of container {:?}", c.name)))
        .transpose()
}

/// The container's request of `name`, defaulting to its limit as the API
/// server's defaulting does (repeated here for pods that missed it).
pub(super) fn request(c: &Container, name: &str, unit_exp: i32) -> Result<Option<i128>, SpecError> {
    let (requests, limits) = lists(c);
    match get(requests, name, unit_exp, c)? {
        Some(n) => Ok(Some(n)),
        None => get(limits, name, unit_exp, c),
    }
}

pub(super) fn limit(c: &Container, name: &str, unit_exp: i32) -> Result<Option<i128>, SpecError> {
    get(lists(c).1, name, unit_exp, c)
}

fn init_containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map(|s| &s.containers[..]).unwrap_or(&[])
}

/// A sidecar: an init container that keeps running (restartPolicy Always).
pub(super) fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Guaranteed, Burstable or BestEffort: `status.qosClass` when the API set
/// it (it never changes), else upstream's ComputePodQOS over cpu and
/// memory of the containers and init containers.
pub fn qos_class(pod: &Pod) -> &'static str {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => "Guaranteed",
        Some("Burstable") => "Burstable",
        Some("BestEffort") => "BestEffort",
        _ => compute_qos(pod),
    }
}

fn compute_qos(pod: &Pod) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in containers(pod).iter().chain(init_containers(pod)) {
        let mut limits_found = 0;
        for name in ["cpu", "memory"] {
            // Unparsable amounts count as absent: creating the container
            // reports them.
            if let Some(n) = request(c, name, -9).ok().flatten().filter(|n| *n > 0) {
                *requests.entry(name).or_default() += n;
            }
            if let Some(n) = limit(c, name, -9).ok().flatten().filter(|n| *n > 0) {
                *limits.entry(name).or_default() += n;
                limits_found += 1;
            }
        }
        if limits_found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        "BestEffort"
    } else if guaranteed && requests == limits {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `<root>/kubepods/pod<uid>` (Guaranteed), `<root>/kubepods/burstable/pod<uid>`
/// or `<root>/kubepods/besteffort/pod<uid>`, cgroupfs style.
pub fn pod_cgroup_parent(cgroup_root: &str, pod: &Pod) -> String {
    let root = cgroup_root.trim_end_matches('/');
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    match qos_class(pod) {
        "Guaranteed" => format!("{root}/kubepods/pod{uid}"),
        "Burstable" => format!("{root}/kubepods/burstable/pod{uid}"),
        _ => format!("{root}/kubepods/besteffort/pod{uid}"),
    }
}

fn milli_cpu_to_shares(milli: i128) -> i64 {
    if milli == 0 {
        return MIN_SHARES as i64;
    }
    (milli * SHARES_PER_CPU / 1000).clamp(MIN_SHARES, MAX_SHARES) as i64
}

fn milli_cpu_to_quota(milli: i128) -> i64 {
    if milli == 0 {
        return 0;
    }
    let quota = (milli * QUOTA_PERIOD as i128 / 1000).max(MIN_QUOTA_PERIOD);
    i64::try_from(quota).unwrap_or(i64::MAX)
}

/// Upstream's calculateLinuxResources: shares from the cpu request (the
/// limit when only a limit is set, else the minimum), quota from the cpu
/// limit over a 100 ms period, the memory limit as is.
fn linux_resources(
    cpu_request: Option<i128>,
    cpu_limit: i128,
    memory_limit: i128,
) -> api::LinuxContainerResources {
    let shares = match cpu_request {
        None if cpu_limit != 0 => milli_cpu_to_shares(cpu_limit),
        r => milli_cpu_to_shares(r.unwrap_or(0)),
    };
    api::LinuxContainerResources {
        cpu_shares: shares,
        cpu_quota: milli_cpu_to_quota(cpu_limit),
        cpu_period: QUOTA_PERIOD,
        // Pod totals may add up past i64; the kernel caps them anyway.
        memory_limit_in_bytes: i64::try_from(memory_limit).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// The cgroup settings of one container.
pub(super) fn container_resources(
    pod: &Pod,
    c: &Container,
    memory_capacity: u64,
) -> Result<api::LinuxContainerResources, SpecError> {
    let (requests, limits) = lists(c);
    // Here the raw request counts: an absent one falls back to the limit
    // inside linux_resources, a zero one gives the minimum shares.
    let cpu_request = get(requests, "cpu", -3, c)?;
    let cpu_limit = get(limits, "cpu", -3, c)?.unwrap_or(0);
    let memory_limit = get(limits, "memory", 0, c)?.unwrap_or(0);
    let mut r = linux_resources(cpu_request, cpu_limit, memory_limit);
    r.oom_score_adj = oom_score_adj(pod, c, memory_capacity)?;
    Ok(r)
}

/// The pod's total, upstream's PodRequests/PodLimits without overhead: the
/// regular containers and sidecars add up; a plain init container runs
/// alone with the sidecars started before it, so the pod needs the larger
/// of the two. None when no container names the resource.
fn pod_total(
    pod: &Pod,
    name: &str,
    unit_exp: i32,
    of: fn(&Container, &str, i32) -> Result<Option<i128>, SpecError>,
) -> Result<Option<i128>, SpecError> {
    let mut seen = false;
    let mut sum = 0i128;
    for c in containers(pod) {
        if let Some(n) = of(c, name, unit_exp)? {
            seen = true;
            sum += n;
        }
    }
    let (mut sidecars, mut init_peak) = (0i128, 0i128);
    for c in init_containers(pod) {
        let n = of(c, name, unit_exp)?;
        seen |= n.is_some();
        let n = n.unwrap_or(0);
        if is_sidecar(c) {
            sidecars += n;
            sum += n;
        } else {
            init_peak = init_peak.max(n + sidecars);
        }
    }
    Ok(seen.then_some(sum.max(init_peak)))
}

/// The sandbox's optional `resources`: the pod's totals as cgroup settings.
pub(super) fn sandbox_resources(pod: &Pod) -> Result<api::LinuxContainerResources, SpecError> {
    let cpu_request = pod_total(pod, "cpu", -3, request)?;
    let cpu_limit = pod_total(pod, "cpu", -3, limit)?.unwrap_or(0);
    let memory_limit = pod_total(pod, "memory", 0, limit)?.unwrap_or(0);
    Ok(linux_resources(cpu_request, cpu_limit, memory_limit))
}

/// The sandbox's optional `overhead` (RuntimeClass overhead), treated as
/// guaranteed: its request is its limit.
pub(super) fn sandbox_overhead(
    pod: &Pod,
) -> Result<Option<api::LinuxContainerResources>, SpecError> {
    let Some(overhead) = pod.spec.as_ref().and_then(|s| s.overhead.as_ref()) else {
        return Ok(None);
    };
    let get = |name: &str, unit_exp: i32| {
        overhead
            .get(name)
            .map(|q| amount(q, unit_exp, &format!("the pod overhead's {name}")))
            .transpose()
    };
    let cpu = get("cpu", -3)?;
    let memory = get("memory", 0)?.unwrap_or(0);
    Ok(Some(linux_resources(cpu, cpu.unwrap_or(0), memory)))
}

/// Upstream's GetContainerOOMScoreAdjust.
fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: u64) -> Result<i64, SpecError> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.priority_class_name.as_deref()) == Some("system-node-critical") {
        return Ok(GUARANTEED_OOM_SCORE_ADJ);
    }
    match qos_class(pod) {
        "Guaranteed" => return Ok(GUARANTEED_OOM_SCORE_ADJ),
        "BestEffort" => return Ok(BESTEFFORT_OOM_SCORE_ADJ),
        _ => {}
    }
    let capacity = i128::from(memory_capacity.max(1));
    let own = request(c, "memory", 0)?.unwrap_or(0);
    let mut adj = 1000 - (1000 * own) / capacity;
    let sidecar = init_containers(pod)
        .iter()
        .any(|i| i.name == c.name && is_sidecar(i));
    if sidecar {
        // A sidecar scores as the smallest of itself and the regular
        // containers, one point worse when it is that smallest, so it
        // goes before the containers it serves.
        let mut min = own.max(0);
        if min == 0 {
            min = DEFAULT_MEMORY_REQUEST;
        }
        for r in containers(pod) {
            let n = request(r, "memory", 0)?.unwrap_or(DEFAULT_MEMORY_REQUEST);
            min = min.min(n);
        }
        adj = 1000 - (1000 * min) / capacity;
        if min <= own {
            adj += 1;
        }
    }
    let adj = adj as i64;
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
        return Ok(1000 + GUARANTEED_OOM_SCORE_ADJ);
    }
    if adj >= BESTEFFORT_OOM_SCORE_ADJ {
        return Ok(BESTEFFORT_OOM_SCORE_ADJ - 1);
    }
    Ok(adj)
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
