//! Events: core/v1 and events.k8s.io/v1 through the same printer.

use serde_json::{json, Value};

use super::{cells, column_names};

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"})
}

#[test]
fn core_events() {
    assert_eq!(
        column_names("", "events"),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let cols = super::super::column_definitions("", "events");
    assert_eq!(
        (cols[9]["format"].clone(), cols[9]["priority"].clone()),
        (json!("name"), json!(1))
    );
    let ev = json!({"metadata": meta("web.17a"), "type": "Warning", "reason": "BackOff",
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
        "source": {"component": "kubelet", "host": "n1"}, "message": "  Back-off restarting  \n",
        "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:58:00Z", "count": 12});
    assert_eq!(
        cells("", "events", &ev),
        [
            json!("2m"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web-1"),
            json!("spec.containers{web}"),
            json!("kubelet, n1"),
            json!("Back-off restarting"),
            json!("60m"),
            json!(12),
            json!("web.17a")
        ]
    );
    let new_style = json!({"metadata": meta("e2"), "type": "Normal", "reason": "Scheduled",
        "involvedObject": {"kind": "Node"}, "eventTime": "2024-05-01T11:59:50.000000Z",
        "reportingComponent": "default-scheduler", "message": "ok"});
    assert_eq!(
        cells("", "events", &new_style)[..9],
        [
            json!("10s"),
            json!("Normal"),
            json!("Scheduled"),
            json!("node"),
            json!(""),
            json!("default-scheduler"),
            json!("ok"),
            json!("10s"),
            json!(1)
        ]
    );
    let series = json!({"metadata": meta("e3"), "eventTime": "2024-05-01T11:00:00Z",
        "series": {"count": 4, "lastObservedTime": "2024-05-01T11:59:00.000000Z"}});
    let c = cells("", "events", &series);
    assert_eq!(
        (c[0].clone(), c[7].clone(), c[8].clone()),
        (json!("60s"), json!("60m"), json!(4))
    );
    let empty = json!({"metadata": {"name": "e4"}});
    assert_eq!(
        cells("", "events", &empty)[..9],
        [
            json!("<unknown>"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unknown>"),
            json!(1)
        ]
    );
}

#[test]
fn events_k8s_io_events_use_the_core_printer() {
    assert_eq!(
        column_names("events.k8s.io", "events"),
        column_names("", "events")
    );
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("e"),
        "regarding": {"kind": "Deployment", "name": "web"}, "note": "Scaled up", "reason": "ScalingReplicaSet",
        "type": "Normal", "reportingController": "deployment-controller", "reportingInstance": "cp-1",
        "eventTime": null, "deprecatedFirstTimestamp": "2024-05-01T11:50:00Z",
        "deprecatedLastTimestamp": "2024-05-01T11:55:00Z", "deprecatedCount": 3});
    assert_eq!(
        cells("events.k8s.io", "events", &ev),
        [
            json!("5m"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller, cp-1"),
            json!("Scaled up"),
            json!("10m"),
            json!(3),
            json!("e")
        ]
    );
}
