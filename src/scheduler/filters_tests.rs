//! Each filter with its reason text, the failure message, scores and
//! preemption victim selection.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::cache::{Cache, NodeInfo};
use super::cycle::{feasible_to_find, pick};
use super::filters::*;
use super::objects::{NodeSpec, PodInfo};
use super::preempt;
use super::scores::ScoreContext;

fn pod(v: Value) -> Arc<PodInfo> {
    let mut v = v;
    if v.pointer("/metadata/namespace").is_none() {
        v["metadata"]["namespace"] = json!("d");
    }
    if v.pointer("/spec/containers").is_none() {
        v["spec"]["containers"] = json!([{}]);
    }
    Arc::new(PodInfo::parse(Arc::new(v), |_| None))
}

fn cpu_pod(name: &str, node: &str, cpu: &str, priority: i64) -> Arc<PodInfo> {
    pod(json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "priority": priority,
        "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}}))
}

fn node(name: &str, extra: Value) -> (String, NodeSpec) {
    let mut obj = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}]}});
    merge(&mut obj, &extra);
    (name.to_string(), NodeSpec::parse(&obj))
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn cache(nodes: &[(String, NodeSpec)], pods: &[Arc<PodInfo>]) -> Cache {
    let mut c = Cache::default();
    for (n, s) in nodes {
        c.set_node(n, s.clone());
    }
    for p in pods {
        c.add_pod(p.clone(), false);
    }
    c
}

/// The filter outcome of `p` on each node.
fn run(c: &Cache, p: &PodInfo) -> Vec<Result<(), Status>> {
    let ctx = PodContext::new(p, c);
    c.nodes().map(|n| ctx.filter(n)).collect()
}

fn reason(r: &Result<(), Status>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(s) => s.reasons.join("|"),
    }
}

#[test]
fn resources_fit_or_name_what_is_missing() {
    let c = cache(&[node("n1", json!({}))], &[cpu_pod("a", "n1", "1500m", 0)]);
    assert_eq!(reason(&run(&c, &cpu_pod("b", "", "500m", 0))[0]), "ok");
    assert_eq!(
        reason(&run(&c, &cpu_pod("b", "", "600m", 0))[0]),
        "Insufficient cpu"
    );
    let big = pod(
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"resources":
        {"requests": {"cpu": "3", "memory": "5Gi", "nvidia.com/gpu": "1"}}}]}}),
    );
    assert_eq!(
        reason(&run(&c, &big)[0]),
        "Insufficient cpu|Insufficient memory|Insufficient nvidia.com/gpu"
    );
    let full = cache(
        &[node(
            "n1",
            json!({"status": {"allocatable": {"pods": "1"}}}),
        )],
        &[cpu_pod("a", "n1", "1m", 0)],
    );
    assert_eq!(
        reason(&run(&full, &cpu_pod("b", "", "1m", 0))[0]),
        TOO_MANY_PODS
    );
}

#[test]
fn taints_tolerations_and_readiness() {
    let c = cache(
        &[
            node(
                "t",
                json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}}),
            ),
            node(
                "p",
                json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]}}),
            ),
            node(
                "nr",
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
            node(
                "u",
                json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
            ),
            node("c", json!({"spec": {"unschedulable": true}})),
        ],
        &[],
    );
    let plain = pod(json!({"metadata": {"name": "a"}, "spec": {}}));
    let got: Vec<String> = run(&c, &plain).iter().map(reason).collect();
    // Nodes visit in name order: c, nr, p, t, u.
    assert_eq!(
        got,
        [
            UNSCHEDULABLE,
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
            "ok",
            "node(s) had untolerated taint {node-role.kubernetes.io/master: }",
            "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
        ]
    );
    let tolerant =
        pod(json!({"metadata": {"name": "a"}, "spec": {"tolerations": [{"operator": "Exists"}]}}));
    assert!(run(&c, &tolerant).iter().all(|r| r.is_ok()));
    let master = pod(json!({"metadata": {"name": "a"}, "spec": {"tolerations": [
        {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}]}}));
    assert_eq!(reason(&run(&c, &master)[3]), "ok");
    let wrong_value = pod(json!({"metadata": {"name": "a"}, "spec": {"tolerations": [
        {"key": "node-role.kubernetes.io/master", "operator": "Equal", "value": "x"}]}}));
    assert!(run(&c, &wrong_value)[3].is_err());
}

#[test]
fn node_selector_and_affinity() {
    let c = cache(
        &[
            node("a", json!({"metadata": {"labels": {"disk": "ssd"}}})),
            node("b", json!({})),
        ],
        &[],
    );
    let sel = pod(json!({"metadata": {"name": "x"}, "spec": {"nodeSelector": {"disk": "ssd"}}}));
    let got: Vec<String> = run(&c, &sel).iter().map(reason).collect();
    assert_eq!(got, ["ok", NODE_AFFINITY]);
    let by_name = pod(
        json!({"metadata": {"name": "x"}, "spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}}),
    );
    let got: Vec<String> = run(&c, &by_name).iter().map(reason).collect();
    assert_eq!(got, [NODE_AFFINITY, "ok"]);
}

#[test]
fn host_ports_conflict() {
    let web = pod(json!({"metadata": {"name": "w"}, "spec": {"nodeName": "a",
        "containers": [{"ports": [{"containerPort": 80, "hostPort": 8080}]}]}}));
    let c = cache(&[node("a", json!({})), node("b", json!({}))], &[web]);
    let again = pod(json!({"metadata": {"name": "x"}, "spec": {
        "containers": [{"ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]}]}}));
    let got: Vec<String> = run(&c, &again).iter().map(reason).collect();
    assert_eq!(got, [PORTS, "ok"]);
    let udp = pod(json!({"metadata": {"name": "x"}, "spec": {
        "containers": [{"ports": [{"hostPort": 8080, "protocol": "UDP"}]}]}}));
    assert!(run(&c, &udp)[0].is_ok());
}

fn zoned() -> Vec<(String, NodeSpec)> {
    vec![
        node("a1", json!({"metadata": {"labels": {"zone": "a"}}})),
        node("a2", json!({"metadata": {"labels": {"zone": "a"}}})),
        node("b1", json!({"metadata": {"labels": {"zone": "b"}}})),
    ]
}

#[test]
fn pod_affinity_and_anti_affinity() {
    let db = pod(
        json!({"metadata": {"name": "db", "labels": {"app": "db"}}, "spec": {"nodeName": "a1"}}),
    );
    let c = cache(&zoned(), &[db]);
    let term = |app: &str, key: &str| json!([{"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]);
    let near = pod(
        json!({"metadata": {"name": "x"}, "spec": {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": term("db", "zone")}}}}),
    );
    let got: Vec<String> = run(&c, &near).iter().map(reason).collect();
    assert_eq!(got, ["ok", "ok", AFFINITY]);
    let apart = pod(
        json!({"metadata": {"name": "x"}, "spec": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": term("db", "kubernetes.io/hostname")}}}}),
    );
    let got: Vec<String> = run(&c, &apart).iter().map(reason).collect();
    assert_eq!(got, [ANTI_AFFINITY, "ok", "ok"]);
    // The first pod of a self-affine group may go anywhere.
    let first = pod(
        json!({"metadata": {"name": "x", "labels": {"app": "web"}}, "spec": {"affinity": {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("web", "zone")}}}}),
    );
    assert!(run(&c, &first).iter().all(|r| r.is_ok()));
    // An existing pod's anti-affinity keeps matching pods out of its zone.
    let lonely = pod(
        json!({"metadata": {"name": "l", "labels": {"app": "l"}}, "spec": {"nodeName": "b1",
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("web", "zone")}}}}),
    );
    let c = cache(&zoned(), &[lonely]);
    let web = pod(json!({"metadata": {"name": "w", "labels": {"app": "web"}}, "spec": {}}));
    let got: Vec<String> = run(&c, &web).iter().map(reason).collect();
    assert_eq!(got, ["ok", "ok", EXISTING_ANTI_AFFINITY]);
}

#[test]
fn topology_spread_do_not_schedule() {
    let w = |n: &str, node: &str| {
        pod(json!({"metadata": {"name": n, "labels": {"app": "w"}}, "spec": {"nodeName": node}}))
    };
    let c = cache(&zoned(), &[w("p1", "a1"), w("p2", "a2")]);
    let new = pod(
        json!({"metadata": {"name": "x", "labels": {"app": "w"}}, "spec": {"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "w"}}}]}}),
    );
    let got: Vec<String> = run(&c, &new).iter().map(reason).collect();
    assert_eq!(got, [SPREAD, SPREAD, "ok"]);
}

#[test]
fn messages_have_upstreams_format() {
    let statuses = [
        Status {
            reasons: vec!["Insufficient cpu".into()],
            unresolvable: false,
        },
        Status {
            reasons: vec![
                "node(s) had untolerated taint {node-role.kubernetes.io/master: }".into(),
            ],
            unresolvable: true,
        },
        Status {
            reasons: vec![
                "node(s) had untolerated taint {node-role.kubernetes.io/master: }".into(),
            ],
            unresolvable: true,
        },
    ];
    let post = format!(
        "preemption: {}",
        fit_message(
            3,
            None,
            &histogram(std::iter::repeat_n(
                &Status {
                    reasons: vec![NOT_HELPFUL.into()],
                    unresolvable: true
                },
                3
            )),
            ""
        )
    );
    assert_eq!(
        fit_message(3, None, &histogram(statuses.iter()), &post),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node-role.kubernetes.io/master: }. preemption: 0/3 nodes are available: 3 Preemption \
         is not helpful for scheduling."
    );
    assert_eq!(
        fit_message(1, Some("persistentvolumeclaim \"x\" not found"), "", "preemption: not eligible due to preemptionPolicy=Never."),
        "0/1 nodes are available: persistentvolumeclaim \"x\" not found. preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[test]
fn preemption_evicts_the_fewest_least_important() {
    let c = cache(
        &[node("n1", json!({})), node("n2", json!({}))],
        &[
            cpu_pod("low1", "n1", "1", 1),
            cpu_pod("low2", "n1", "1", 1),
            cpu_pod("mid", "n2", "1500m", 5),
            cpu_pod("high", "n2", "500m", 100),
        ],
    );
    let p = cpu_pod("big", "", "1", 10);
    let ctx = PodContext::new(&p, &c);
    let statuses: HashMap<String, Status> = c
        .nodes()
        .map(|n| {
            (
                n.name.clone(),
                ctx.filter(n).err().unwrap_or(Status {
                    reasons: vec![],
                    unresolvable: true,
                }),
            )
        })
        .collect();
    let cand = preempt::find(&ctx, &c, &statuses, 2).map_err(|e| e.to_string());
    let cand = cand.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cand.node, "n1");
    assert_eq!(cand.victims.len(), 1);
    // Nothing lower to evict: upstream's text.
    let top = cpu_pod("top", "", "3", 0);
    let ctx = PodContext::new(&top, &c);
    let statuses: HashMap<String, Status> = c
        .nodes()
        .filter_map(|n| ctx.filter(n).err().map(|s| (n.name.clone(), s)))
        .collect();
    assert_eq!(
        preempt::find(&ctx, &c, &statuses, 2).err().as_deref(),
        Some("0/2 nodes are available: 2 No preemption victims found for incoming pod.")
    );
    let never = pod(json!({"metadata": {"name": "n"}, "spec": {"preemptionPolicy": "Never"}}));
    assert_eq!(preempt::eligible(&never, &c), Err(preempt::NEVER));
}

#[test]
fn scores_prefer_emptier_nodes_and_spread_owners() {
    let c = cache(
        &[node("busy", json!({})), node("idle", json!({}))],
        &[cpu_pod("a", "busy", "1", 0)],
    );
    let p = cpu_pod("b", "", "100m", 0);
    let nodes: Vec<&NodeInfo> = c.nodes().collect();
    let s = ScoreContext::new(&p, &c).score(&c, &nodes);
    assert!(s[1] > s[0], "{s:?}");
    let mut rng = 7;
    assert_eq!(pick(&mut rng, &[1, 5, 3]), 1);
    let picks: std::collections::HashSet<usize> =
        (0..50).map(|_| pick(&mut rng, &[2, 2, 2])).collect();
    assert!(picks.len() > 1);
    assert_eq!(feasible_to_find(50), 50);
    assert_eq!(feasible_to_find(500), 230);
    assert_eq!(feasible_to_find(5000), 100 * 5000 / 100 * 10 / 100);
}
