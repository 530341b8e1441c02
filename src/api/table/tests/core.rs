//! core/v1: services, endpoints, nodes, simple kinds, volumes and quotas.

use serde_json::{json, Value};

use super::{cells, column_names};

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"})
}

fn svc(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": spec, "status": status})
}

#[test]
fn services() {
    assert_eq!(
        column_names("", "services"),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let s = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                       "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                       "selector": {"k8s-app": "dns", "a": "b"}}),
        json!({}),
    );
    assert_eq!(
        cells("", "services", &s),
        [
            json!("web"),
            json!("ClusterIP"),
            json!("10.43.0.10"),
            json!("<none>"),
            json!("53/UDP,53/TCP"),
            json!("60m"),
            json!("a=b,k8s-app=dns")
        ]
    );

    let np = svc(
        json!({"type": "NodePort", "clusterIP": "10.43.1.1", "externalIPs": ["1.2.3.4"],
                        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    let c = cells("", "services", &np);
    assert_eq!(c[3..5], [json!("1.2.3.4"), json!("80:30080/TCP")]);
    assert_eq!(c[6], "<none>");

    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIP": "10.43.1.2", "ports": []}),
        json!({}),
    );
    assert_eq!(
        cells("", "services", &lb)[3..5],
        [json!("<pending>"), json!("<none>")]
    );
    let lb = svc(
        json!({"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "5.5.5.5"}, {"hostname": "lb.example.com"}, {"ip": "1.1.1.1"}]}}),
    );
    let c = cells("", "services", &lb);
    assert_eq!(
        c[2..4],
        [
            json!("<none>"),
            json!("1.1.1.1,5.5.5.5,lb.example.com,9.9.9.9")
        ]
    );

    let ext = svc(
        json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIPs": ["None"]}),
        json!({}),
    );
    assert_eq!(
        cells("", "services", &ext)[2..4],
        [json!("None"), json!("db.example.com")]
    );
    let odd = svc(json!({"type": 7}), json!({}));
    assert_eq!(
        cells("", "services", &odd)[1..4],
        [json!(""), json!("<none>"), json!("<unknown>")]
    );
}

#[test]
fn endpoints() {
    let ep = |subsets: Value| json!({"metadata": meta("web"), "subsets": subsets});
    assert_eq!(cells("", "endpoints", &ep(json!([])))[1], "<none>");
    let one = ep(
        json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}]}]),
    );
    assert_eq!(cells("", "endpoints", &one)[1], "10.0.0.1:80,[fd00::1]:80");
    let many = ep(
        json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
                         {"addresses": [{"ip": "10.0.0.3"}]}]),
    );
    assert_eq!(
        cells("", "endpoints", &many)[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
    );
    let no_ready =
        ep(json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]));
    assert_eq!(cells("", "endpoints", &no_ready)[1], "");
}

#[test]
fn nodes() {
    assert_eq!(
        column_names("", "nodes"),
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    let n = json!({"metadata": {"name": "n1", "creationTimestamp": "2024-04-19T12:00:00Z",
                                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "",
                                           "kubernetes.io/role": "edge", "node-role.kubernetes.io/": "x"}},
                   "spec": {"unschedulable": true},
                   "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                              "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                              "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12",
                                           "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"}}});
    assert_eq!(
        cells("", "nodes", &n),
        [
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,edge,master"),
            json!("12d"),
            json!("v1.33.1"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12"),
            json!("6.1.0"),
            json!("containerd://1.7.0")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    assert_eq!(
        cells("", "nodes", &bare)[1..],
        [
            json!("Unknown"),
            json!("<none>"),
            json!("<unknown>"),
            json!(""),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let not_ready = json!({"metadata": {"name": "n3"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(cells("", "nodes", &not_ready)[1], "NotReady");
}

#[test]
fn simple_core_kinds() {
    let ns = json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}});
    assert_eq!(
        cells("", "namespaces", &ns),
        [json!("kube-system"), json!("Active"), json!("60m")]
    );
    assert_eq!(column_names("", "namespaces"), ["Name", "Status", "Age"]);

    let cm =
        json!({"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        cells("", "configmaps", &cm),
        [json!("c"), json!(3), json!("60m")]
    );

    let sec = json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells("", "secrets", &sec),
        [
            json!("s"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("60m")
        ]
    );
    assert_eq!(column_names("", "secrets"), ["Name", "Type", "Data", "Age"]);

    let sa = json!({"metadata": meta("default"), "secrets": [{"name": "x"}]});
    assert_eq!(
        cells("", "serviceaccounts", &sa),
        [json!("default"), json!(1), json!("60m")]
    );
    let sa = json!({"metadata": meta("default")});
    assert_eq!(cells("", "serviceaccounts", &sa)[1], 0);
}

#[test]
fn pod_templates_and_replication_controllers() {
    let template = json!({"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "busybox"}]}});
    let pt = json!({"metadata": meta("pt"), "template": template});
    assert_eq!(
        column_names("", "podtemplates"),
        ["Name", "Containers", "Images", "Pod Labels"]
    );
    assert_eq!(
        cells("", "podtemplates", &pt),
        [
            json!("pt"),
            json!("a,b"),
            json!("nginx:1,busybox"),
            json!("app=web")
        ]
    );

    let rc = json!({"metadata": meta("rc"), "spec": {"replicas": 3, "selector": {"app": "web"}, "template": template},
                    "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        cells("", "replicationcontrollers", &rc),
        [
            json!("rc"),
            json!(3),
            json!(3),
            json!(2),
            json!("60m"),
            json!("a,b"),
            json!("nginx:1,busybox"),
            json!("app=web")
        ]
    );
    let rc = json!({"metadata": meta("rc"), "spec": {}});
    assert_eq!(
        cells("", "replicationcontrollers", &rc)[5..],
        [json!(""), json!(""), json!("<none>")]
    );
}

#[test]
fn persistent_volumes_and_claims() {
    let pv = json!({"metadata": meta("pv1"),
        "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                 "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("", "persistentvolumes", &pv),
        [
            json!("pv1"),
            json!("1Gi"),
            json!("RWO,RWX"),
            json!("Retain"),
            json!("Bound"),
            json!("default/data"),
            json!("local"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Filesystem")
        ]
    );
    let mut gone = json!({"metadata": meta("pv2"), "status": {"phase": "Released"}});
    gone["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    gone["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "legacy"});
    let c = cells("", "persistentvolumes", &gone);
    assert_eq!(
        c[1..7],
        [
            json!("0"),
            json!(""),
            json!(""),
            json!("Terminating"),
            json!(""),
            json!("legacy")
        ]
    );
    assert_eq!(c[10], "<unset>");

    let bound = json!({"metadata": meta("data"),
        "spec": {"volumeName": "pv1", "storageClassName": "local", "volumeAttributesClassName": "gold",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOncePod"]}});
    assert_eq!(
        cells("", "persistentvolumeclaims", &bound),
        [
            json!("data"),
            json!("Bound"),
            json!("pv1"),
            json!("2Gi"),
            json!("RWOP"),
            json!("local"),
            json!("gold"),
            json!("60m"),
            json!("<unset>")
        ]
    );
    let pending = json!({"metadata": meta("new"), "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                         "status": {"phase": "Pending", "capacity": {"storage": "1Gi"}}});
    assert_eq!(
        cells("", "persistentvolumeclaims", &pending)[1..6],
        [json!("Pending"), json!(""), json!(""), json!(""), json!("")]
    );
}

#[test]
fn resource_quotas() {
    assert_eq!(
        column_names("", "resourcequotas"),
        ["Name", "Request", "Limit", "Age"]
    );
    let rq = json!({"metadata": meta("q"),
        "status": {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4",
                            "requests.memory": "1024Mi"},
                   "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}});
    assert_eq!(
        cells("", "resourcequotas", &rq),
        [
            json!("q"),
            json!("pods: 3/10, requests.cpu: 500m/2, requests.memory: 0/1Gi"),
            json!("limits.cpu: 1/4, limits.memory: 0/2Gi"),
            json!("60m")
        ]
    );
}
