//! Pod STATUS / READY / RESTARTS logic and the wide columns.

use serde_json::{json, Value};

use super::{cells, column_names};

fn pod(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-05-01T11:57:00Z"},
           "spec": spec, "status": status})
}

fn running(name: &str, ready: bool, restarts: i64) -> Value {
    json!({"name": name, "ready": ready, "restartCount": restarts,
           "state": {"running": {"startedAt": "2024-05-01T11:58:00Z"}}})
}

/// READY, STATUS and RESTARTS cells.
fn summary(p: &Value) -> (String, String, String) {
    let c = cells("", "pods", p);
    let text = |i: usize| c[i].as_str().unwrap_or("?").to_string();
    (text(1), text(2), text(3))
}

#[test]
fn columns() {
    assert_eq!(
        column_names("", "pods"),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
}

#[test]
fn running_pod_with_wide_cells() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1",
               "readinessGates": [{"conditionType": "x/ready"}, {"conditionType": "y/ready"}]}),
        json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
               "conditions": [{"type": "Ready", "status": "True"}, {"type": "x/ready", "status": "True"},
                              {"type": "y/ready", "status": "False"}],
               "containerStatuses": [running("a", true, 0), running("b", false, 0)]}),
    );
    let c = cells("", "pods", &p);
    assert_eq!(
        c,
        [
            json!("p"),
            json!("1/2"),
            json!("Running"),
            json!("0"),
            json!("3m"),
            json!("10.0.0.5"),
            json!("n1"),
            json!("<none>"),
            json!("1/2")
        ]
    );
}

#[test]
fn pending_pod_placeholders() {
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending"}),
    );
    let c = cells("", "pods", &p);
    assert_eq!(
        c[1..],
        [
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("3m"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    let ip_from_list = pod(
        json!({}),
        json!({"podIPs": [{"ip": "fd00::1"}], "nominatedNodeName": "n2"}),
    );
    let c = cells("", "pods", &ip_from_list);
    assert_eq!(
        (c[5].clone(), c[7].clone()),
        (json!("fd00::1"), json!("n2"))
    );
}

#[test]
fn waiting_reasons_and_restarts_with_last_termination() {
    let crash = json!({"name": "a", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}}});
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [crash]}),
    );
    assert_eq!(
        summary(&p),
        ("0/1".into(), "CrashLoopBackOff".into(), "5 (5m ago)".into())
    );

    let creating = json!({"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}});
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending", "containerStatuses": [creating]}),
    );
    assert_eq!(summary(&p).1, "ContainerCreating");

    // Restarts without a recorded termination time print just the count.
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [running("a", true, 2)]}),
    );
    assert_eq!(summary(&p), ("1/1".into(), "Running".into(), "2".into()));
}

#[test]
fn terminated_containers() {
    let done =
        json!({"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Succeeded", "containerStatuses": [done]}),
    );
    assert_eq!(summary(&p).1, "Completed");
    let row = super::super::row(
        "",
        "pods",
        &p,
        super::super::IncludeObject::None,
        super::now(),
    );
    assert_eq!(
        row["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                                          "message": "The pod has completed successfully."}])
    );

    let signal = json!({"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}});
    let code = json!({"name": "b", "state": {"terminated": {"exitCode": 3}}});
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        json!({"phase": "Failed", "containerStatuses": [signal, code]}),
    );
    // Statuses are walked last to first, so the first container's reason wins.
    assert_eq!(summary(&p).1, "Signal:9");
    let row = super::super::row(
        "",
        "pods",
        &p,
        super::super::IncludeObject::None,
        super::now(),
    );
    assert_eq!(row["conditions"][0]["reason"], "Failed");
}

#[test]
fn completed_but_another_container_running() {
    let done =
        json!({"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    let ready = pod(
        spec.clone(),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                                         "containerStatuses": [done.clone(), running("b", true, 0)]}),
    );
    assert_eq!(summary(&ready).1, "Running");
    let not_ready = pod(
        spec,
        json!({"phase": "Running", "containerStatuses": [done, running("b", true, 0)]}),
    );
    assert_eq!(summary(&not_ready).1, "NotReady");
}

#[test]
fn init_containers() {
    let spec =
        json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
    let done = json!({"name": "i1", "restartCount": 1, "state": {"terminated": {"exitCode": 0}}});
    let waiting = json!({"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), waiting],
                                     "containerStatuses": [running("a", false, 7)]}),
    );
    // Init restarts count while initializing; the app containers' do not.
    assert_eq!(summary(&p), ("0/1".into(), "Init:1/2".into(), "1".into()));

    let pulling = json!({"name": "i2", "state": {"waiting": {"reason": "ImagePullBackOff"}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), pulling]}),
    );
    assert_eq!(summary(&p).1, "Init:ImagePullBackOff");

    let failed = json!({"name": "i2", "state": {"terminated": {"exitCode": 2}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), failed]}),
    );
    assert_eq!(summary(&p).1, "Init:ExitCode:2");

    let oom =
        json!({"name": "i2", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), oom]}),
    );
    assert_eq!(summary(&p).1, "Init:OOMKilled");

    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [{"name": "i1"}]}),
    );
    assert_eq!(summary(&p).1, "Init:0/2");

    // Once initialized, the app containers decide and init restarts stop counting.
    let done2 = json!({"name": "i2", "state": {"terminated": {"exitCode": 0}}});
    let p = pod(
        spec,
        json!({"phase": "Running", "initContainerStatuses": [done, done2],
                             "containerStatuses": [running("a", true, 0)]}),
    );
    assert_eq!(summary(&p), ("1/1".into(), "Running".into(), "0".into()));
}

#[test]
fn sidecar_init_containers_count_as_containers() {
    let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                      "containers": [{"name": "a"}]});
    let sidecar = json!({"name": "proxy", "started": true, "ready": true, "restartCount": 2,
                         "state": {"running": {}},
                         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}}});
    let p = pod(
        spec,
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                             "initContainerStatuses": [sidecar], "containerStatuses": [running("a", true, 1)]}),
    );
    assert_eq!(
        summary(&p),
        ("2/2".into(), "Running".into(), "3 (60s ago)".into())
    );
}

#[test]
fn deletion_and_scheduling_gates() {
    let mut p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [running("a", true, 0)]}),
    );
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:59Z");
    assert_eq!(summary(&p).1, "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(summary(&p).1, "Unknown");

    let mut done = pod(json!({}), json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:59Z");
    assert_eq!(summary(&done).1, "Succeeded");

    let gated = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(summary(&gated).1, "SchedulingGated");

    let evicted = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Failed", "reason": "Evicted"}),
    );
    assert_eq!(summary(&evicted).1, "Evicted");
}

#[test]
fn wrong_types_do_not_panic() {
    let p = json!({"metadata": {"name": "p"}, "spec": {"containers": 3, "initContainers": [1, "x"]},
        "status": {"phase": 5, "containerStatuses": [{"state": {"waiting": "x"}, "restartCount": "9"}],
                   "initContainerStatuses": "nope"}});
    assert_eq!(summary(&p), ("0/0".into(), "".into(), "0".into()));
}
