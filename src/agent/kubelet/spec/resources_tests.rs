use super::super::testutil::{container, pod_with};
use super::*;

const GI: u64 = 1 << 30;

#[test]
fn qos_follows_upstream() {
    let best = pod_with(vec![container("a", &[], &[])], vec![]);
    assert_eq!(qos_class(&best), "BestEffort");
    let g = pod_with(
        vec![container(
            "a",
            &[("cpu", "1"), ("memory", "1Gi")],
            &[("cpu", "1"), ("memory", "1Gi")],
        )],
        vec![],
    );
    assert_eq!(qos_class(&g), "Guaranteed");
    // Limits only: requests default to them.
    let g2 = pod_with(
        vec![container("a", &[], &[("cpu", "1000m"), ("memory", "1Gi")])],
        vec![],
    );
    assert_eq!(qos_class(&g2), "Guaranteed");
    let b = pod_with(vec![container("a", &[("cpu", "100m")], &[])], vec![]);
    assert_eq!(qos_class(&b), "Burstable");
    // An init container without limits spoils Guaranteed.
    let mixed = pod_with(
        vec![container("a", &[], &[("cpu", "1"), ("memory", "1Gi")])],
        vec![container("init", &[("cpu", "1")], &[])],
    );
    assert_eq!(qos_class(&mixed), "Burstable");
    // Zero amounts are ignored.
    let zero = pod_with(vec![container("a", &[("cpu", "0")], &[])], vec![]);
    assert_eq!(qos_class(&zero), "BestEffort");
    // The status wins.
    let mut set = best.clone();
    set.status = Some(k8s_openapi::api::core::v1::PodStatus {
        qos_class: Some("Burstable".into()),
        ..Default::default()
    });
    assert_eq!(qos_class(&set), "Burstable");
}

#[test]
fn cgroup_parents_per_class() {
    let best = pod_with(vec![container("a", &[], &[])], vec![]);
    assert_eq!(
        pod_cgroup_parent("/nanokube-1234abcd", &best),
        "/nanokube-1234abcd/kubepods/besteffort/poduid-1"
    );
    let b = pod_with(vec![container("a", &[("memory", "1Mi")], &[])], vec![]);
    assert_eq!(
        pod_cgroup_parent("/nanokube-1234abcd/", &b),
        "/nanokube-1234abcd/kubepods/burstable/poduid-1"
    );
    let g = pod_with(
        vec![container("a", &[], &[("cpu", "1"), ("memory", "1Gi")])],
        vec![],
    );
    assert_eq!(pod_cgroup_parent("/r", &g), "/r/kubepods/poduid-1");
    assert_eq!(pod_cgroup_parent("", &g), "/kubepods/poduid-1");
}

#[test]
fn cpu_and_memory_settings() {
    let c = container(
        "a",
        &[("cpu", "250m")],
        &[("cpu", "500m"), ("memory", "64Mi")],
    );
    let pod = pod_with(vec![c.clone()], vec![]);
    let r = container_resources(&pod, &c, 4 * GI).unwrap();
    assert_eq!(
        (r.cpu_shares, r.cpu_quota, r.cpu_period),
        (256, 50_000, 100_000)
    );
    assert_eq!(r.memory_limit_in_bytes, 64 << 20);
    // Nothing set: minimum shares, no quota, no memory limit.
    let c = container("a", &[], &[]);
    let pod = pod_with(vec![c.clone()], vec![]);
    let r = container_resources(&pod, &c, 4 * GI).unwrap();
    assert_eq!(
        (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes),
        (2, 0, 0)
    );
    assert_eq!(r.oom_score_adj, 1000);
    // Limit only: shares from the limit; a tiny limit gets the minimum quota.
    let c = container("a", &[], &[("cpu", "1m")]);
    let pod = pod_with(vec![c.clone()], vec![]);
    let r = container_resources(&pod, &c, 4 * GI).unwrap();
    assert_eq!((r.cpu_shares, r.cpu_quota), (2, 1000));
    let c = container("a", &[], &[("cpu", "2")]);
    let pod = pod_with(vec![c.clone()], vec![]);
    assert_eq!(container_resources(&pod, &c, GI).unwrap().cpu_shares, 2048);
    // Fractional memory rounds up to a byte.
    let c = container("a", &[], &[("memory", "1.5")]);
    let pod = pod_with(vec![c.clone()], vec![]);
    assert_eq!(
        container_resources(&pod, &c, GI)
            .unwrap()
            .memory_limit_in_bytes,
        2
    );
}

#[test]
fn bad_quantities_are_refused() {
    for bad in ["lots", "-1", "1e40"] {
        let c = container("a", &[], &[("memory", bad)]);
        let pod = pod_with(vec![c.clone()], vec![]);
        let err = container_resources(&pod, &c, GI).unwrap_err();
        assert!(matches!(err, SpecError::Invalid(_)), "{bad}: {err}");
    }
}

#[test]
fn oom_scores() {
    let g = container("a", &[], &[("cpu", "1"), ("memory", "1Gi")]);
    let pod = pod_with(vec![g.clone()], vec![]);
    assert_eq!(
        container_resources(&pod, &g, 4 * GI).unwrap().oom_score_adj,
        -997
    );
    // Burstable: 1000 - 1000 * request / capacity.
    let b = container("a", &[("memory", "1Gi")], &[]);
    let pod = pod_with(vec![b.clone()], vec![]);
    assert_eq!(
        container_resources(&pod, &b, 4 * GI).unwrap().oom_score_adj,
        750
    );
    // Requests over capacity stay above Guaranteed.
    let huge = container("a", &[("memory", "8Gi")], &[]);
    let pod = pod_with(vec![huge.clone()], vec![]);
    assert_eq!(
        container_resources(&pod, &huge, 4 * GI)
            .unwrap()
            .oom_score_adj,
        3
    );
    // A tiny request stays below BestEffort.
    let tiny = container("a", &[("cpu", "1m")], &[]);
    let pod = pod_with(vec![tiny.clone()], vec![]);
    assert_eq!(
        container_resources(&pod, &tiny, 4 * GI)
            .unwrap()
            .oom_score_adj,
        999
    );
    // Node-critical pods score as Guaranteed.
    let mut crit = pod_with(vec![tiny.clone()], vec![]);
    crit.spec.as_mut().unwrap().priority_class_name = Some("system-node-critical".into());
    assert_eq!(
        container_resources(&crit, &tiny, 4 * GI)
            .unwrap()
            .oom_score_adj,
        -997
    );
}

#[test]
fn sidecars_score_before_their_containers() {
    let mut side = container("side", &[("memory", "1Gi")], &[]);
    side.restart_policy = Some("Always".into());
    let app = container("app", &[("memory", "2Gi")], &[]);
    let pod = pod_with(vec![app.clone()], vec![side.clone()]);
    // min(1Gi, 2Gi) = 1Gi = its own request: one point worse than 750.
    assert_eq!(
        container_resources(&pod, &side, 4 * GI)
            .unwrap()
            .oom_score_adj,
        751
    );
    assert_eq!(
        container_resources(&pod, &app, 4 * GI)
            .unwrap()
            .oom_score_adj,
        500
    );
}

#[test]
fn sandbox_totals_take_init_peaks() {
    let mut side = container("side", &[("cpu", "100m")], &[("memory", "10Mi")]);
    side.restart_policy = Some("Always".into());
    let init = container("init", &[("cpu", "2")], &[("memory", "1Gi")]);
    let app = container(
        "app",
        &[("cpu", "200m")],
        &[("memory", "20Mi"), ("cpu", "1")],
    );
    let pod = pod_with(vec![app], vec![side, init]);
    let r = sandbox_resources(&pod).unwrap();
    // cpu requests: max(200m + 100m, 2 + 100m) = 2100m.
    assert_eq!(r.cpu_shares, 2150);
    // memory limits: max(20Mi + 10Mi, 1Gi + 10Mi).
    assert_eq!(r.memory_limit_in_bytes, (1 << 30) + (10 << 20));
    assert_eq!(r.cpu_quota, 100_000);
}

#[test]
fn overhead_is_guaranteed() {
    let mut pod = pod_with(vec![container("a", &[], &[])], vec![]);
    assert_eq!(sandbox_overhead(&pod).unwrap(), None);
    pod.spec.as_mut().unwrap().overhead = Some(BTreeMap::from([
        ("cpu".to_string(), Quantity("250m".into())),
        ("memory".to_string(), Quantity("120Mi".into())),
    ]));
    let o = sandbox_overhead(&pod).unwrap().unwrap();
    assert_eq!(
        (o.cpu_shares, o.cpu_quota, o.memory_limit_in_bytes),
        (256, 25_000, 120 << 20)
    );
    pod.spec.as_mut().unwrap().overhead =
        Some(BTreeMap::from([("cpu".to_string(), Quantity("x".into()))]));
    assert!(sandbox_overhead(&pod).is_err());
}
