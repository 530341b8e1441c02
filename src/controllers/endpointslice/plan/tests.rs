use super::*;

fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Value> {
    let mut p = json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": format!("10.42.0.{}", name.len()),
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
    if deleting {
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    }
    Arc::new(p)
}

fn svc() -> Value {
    json!({"metadata": {"name": "web", "namespace": "ns"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}})
}

#[test]
fn conditions_follow_readiness_and_termination() {
    let zones = HashMap::from([("n1".to_string(), "z1".to_string())]);
    let groups = desired(
        &svc(),
        &[
            pod("a", true, false),
            pod("bb", false, false),
            pod("ccc", true, true),
        ],
        &zones,
    );
    assert_eq!(groups.len(), 1);
    let g = groups.values().next().unwrap();
    assert_eq!(
        g.ports,
        vec![json!({"name": "http", "port": 8080, "protocol": "TCP"})]
    );
    let conds: Vec<&Value> = g.endpoints.iter().map(|(_, e)| &e["conditions"]).collect();
    assert_eq!(
        *conds[0],
        json!({"ready": true, "serving": true, "terminating": false})
    );
    assert_eq!(
        *conds[1],
        json!({"ready": false, "serving": false, "terminating": false})
    );
    assert_eq!(
        *conds[2],
        json!({"ready": false, "serving": true, "terminating": true})
    );
    assert_eq!(g.endpoints[0].1["zone"], "z1");
    assert_eq!(g.endpoints[0].1["nodeName"], "n1");
    assert_eq!(g.endpoints[0].1["addresses"], json!(["10.42.0.1"]));
}

fn many(n: usize) -> BTreeMap<String, Group> {
    let pods: Vec<Arc<Value>> = (0..n)
        .map(|i| pod(&format!("p{i:04}"), true, false))
        .collect();
    desired(&svc(), &pods, &HashMap::new())
}

#[test]
fn endpoints_are_packed_by_hundreds_and_stay_where_they_are() {
    let p = plan(&[], many(250));
    assert_eq!(
        p.create.iter().map(|c| c.1.len()).collect::<Vec<_>>(),
        vec![100, 100, 50]
    );
    // Existing slices keep their endpoints; the new pod fills the room.
    let existing: Vec<SliceContent> = p
        .create
        .iter()
        .enumerate()
        .map(|(i, (ports, eps))| (format!("web-{i}"), ports.clone(), eps.clone()))
        .collect();
    let again = plan(&existing, many(250));
    assert!(again.create.is_empty() && again.delete.is_empty());
    assert_eq!(again.keep.len(), 3);
    for (name, _, eps) in &again.keep {
        let before = existing.iter().find(|e| &e.0 == name).unwrap();
        assert_eq!(&before.2, eps, "{name} unchanged");
    }
    let grown = plan(&existing, many(251));
    assert!(grown.create.is_empty());
    assert_eq!(grown.keep.iter().map(|k| k.2.len()).sum::<usize>(), 251);
}

#[test]
fn no_endpoints_leave_one_placeholder() {
    let p = plan(&[], BTreeMap::new());
    assert_eq!(p.create, vec![(Vec::new(), Vec::new())]);
    let existing = vec![
        (
            "web-a".to_string(),
            vec![json!({"name": "http", "port": 8080, "protocol": "TCP"})],
            vec![],
        ),
        ("web-b".to_string(), vec![], vec![]),
    ];
    let p = plan(&existing, BTreeMap::new());
    assert_eq!(p.keep.len(), 1);
    assert_eq!(p.delete.len(), 1);
    assert!(p.create.is_empty());
}
