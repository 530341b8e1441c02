//! apps/v1 and batch/v1.

use serde_json::{json, Value};

use super::{cells, column_names};

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:59:00Z"})
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit"}]}})
}

#[test]
fn deployments() {
    assert_eq!(
        column_names("apps", "deployments"),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let d = json!({"metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, "template": template()},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        cells("apps", "deployments", &d),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("60s"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit"),
            json!("app=web,tier in (back,front)")
        ]
    );
    // Deployments print the raw selector: empty stays empty, invalid is "<invalid>".
    let bare = json!({"metadata": meta("d"), "spec": {}});
    assert_eq!(
        cells("apps", "deployments", &bare)[1..],
        [
            json!("0/0"),
            json!(0),
            json!(0),
            json!("60s"),
            json!(""),
            json!(""),
            json!("")
        ]
    );
    let bad = json!({"metadata": meta("d"), "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}});
    assert_eq!(cells("apps", "deployments", &bad)[7], "<invalid>");
}

#[test]
fn replica_sets_and_stateful_sets() {
    let rs = json!({"metadata": meta("web-5d"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": template()}, "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        cells("apps", "replicasets", &rs),
        [
            json!("web-5d"),
            json!(2),
            json!(2),
            json!(1),
            json!("60s"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit"),
            json!("app=web")
        ]
    );
    let rs = json!({"metadata": meta("x"), "spec": {"selector": "bad"}});
    assert_eq!(cells("apps", "replicasets", &rs)[7], "<error>");

    assert_eq!(
        column_names("apps", "statefulsets"),
        ["Name", "Ready", "Age", "Containers", "Images"]
    );
    let sts = json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
    assert_eq!(
        cells("apps", "statefulsets", &sts),
        [
            json!("db"),
            json!("3/3"),
            json!("60s"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit")
        ]
    );
}

#[test]
fn daemon_sets() {
    assert_eq!(
        column_names("apps", "daemonsets"),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let mut t = template();
    t["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    let ds = json!({"metadata": meta("agent"), "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": t},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}});
    assert_eq!(
        cells("apps", "daemonsets", &ds),
        [
            json!("agent"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("60s"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit"),
            json!("app=agent")
        ]
    );
}

#[test]
fn controller_revisions() {
    let cr = json!({"metadata": {"name": "web-7c9", "creationTimestamp": "2024-05-01T11:59:00Z",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "other"},
                            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]},
        "revision": 4});
    assert_eq!(
        cells("apps", "controllerrevisions", &cr),
        [
            json!("web-7c9"),
            json!("statefulset.apps/web"),
            json!(4),
            json!("60s")
        ]
    );
    let core_owner = json!({"metadata": {"name": "x", "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "controller": true}]}});
    assert_eq!(
        cells("apps", "controllerrevisions", &core_owner)[1],
        "node/n"
    );
    let orphan = json!({"metadata": {"name": "y"}});
    assert_eq!(
        cells("apps", "controllerrevisions", &orphan)[1..3],
        [json!("<none>"), json!(0)]
    );
}

fn job(spec: Value, status: Value) -> Value {
    let mut spec = spec;
    spec["template"] = template();
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}});
    json!({"metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:50:00Z"}, "spec": spec, "status": status})
}

fn cond(ty: &str, status: &str) -> Value {
    json!({"type": ty, "status": status})
}

#[test]
fn jobs() {
    assert_eq!(
        column_names("batch", "jobs"),
        [
            "Name",
            "Status",
            "Completions",
            "Duration",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let done = job(
        json!({"completions": 1}),
        json!({"succeeded": 1, "startTime": "2024-05-01T11:50:00Z",
        "completionTime": "2024-05-01T11:52:05Z",
        "conditions": [cond("SuccessCriteriaMet", "True"), cond("Complete", "True")]}),
    );
    assert_eq!(
        cells("batch", "jobs", &done),
        [
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("2m5s"),
            json!("10m"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit"),
            json!("batch.kubernetes.io/controller-uid=abc")
        ]
    );

    let running = job(
        json!({"parallelism": 3}),
        json!({"succeeded": 1, "startTime": "2024-05-01T11:57:00Z"}),
    );
    assert_eq!(
        cells("batch", "jobs", &running)[1..4],
        [json!("Running"), json!("1/1 of 3"), json!("3m")]
    );

    let fresh = job(json!({"parallelism": 1}), json!({}));
    assert_eq!(
        cells("batch", "jobs", &fresh)[1..4],
        [json!("Running"), json!("0/1"), json!("")]
    );

    let failing = job(
        json!({"completions": 5}),
        json!({"conditions": [cond("FailureTarget", "True")]}),
    );
    assert_eq!(
        cells("batch", "jobs", &failing)[1..3],
        [json!("FailureTarget"), json!("0/5")]
    );
    let failed = job(
        json!({}),
        json!({"conditions": [cond("FailureTarget", "True"), cond("Failed", "True")]}),
    );
    assert_eq!(cells("batch", "jobs", &failed)[1], "Failed");
    let suspended = job(
        json!({}),
        json!({"conditions": [cond("Suspended", "True"), cond("Complete", "False")]}),
    );
    assert_eq!(cells("batch", "jobs", &suspended)[1], "Suspended");
    let mut deleting = job(
        json!({}),
        json!({"conditions": [cond("Suspended", "True")]}),
    );
    deleting["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells("batch", "jobs", &deleting)[1], "Terminating");
}

#[test]
fn cron_jobs() {
    assert_eq!(
        column_names("batch", "cronjobs"),
        [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cj = json!({"metadata": {"name": "backup", "creationTimestamp": "2024-04-01T12:00:00Z"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                 "jobTemplate": {"spec": {"template": template()}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}});
    assert_eq!(
        cells("batch", "cronjobs", &cj),
        [
            json!("backup"),
            json!("*/5 * * * *"),
            json!("Etc/UTC"),
            json!("False"),
            json!(1),
            json!("5m"),
            json!("30d"),
            json!("web,log"),
            json!("nginx:1.27,fluent-bit"),
            json!("<none>")
        ]
    );
    let bare = json!({"metadata": {"name": "b"}, "spec": {"schedule": "@daily"}});
    assert_eq!(
        cells("batch", "cronjobs", &bare)[1..7],
        [
            json!("@daily"),
            json!("<none>"),
            json!("<unset>"),
            json!(0),
            json!("<none>"),
            json!("<unknown>")
        ]
    );
}
