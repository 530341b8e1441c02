//! networking, discovery, storage.k8s.io, RBAC, policy, scheduling, autoscaling and friends.

use serde_json::{json, Value};

use super::{cells, column_names};

fn meta(name: &str) -> Value {
    json!({"name": name, "creationTimestamp": "2024-05-01T09:00:00Z"})
}

#[test]
fn ingresses() {
    assert_eq!(
        column_names("networking.k8s.io", "ingresses"),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    let ing = json!({"metadata": meta("web"),
        "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example.com"]}],
                 "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"ip": "192.168.1.10"}]}}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &ing),
        [
            json!("web"),
            json!("traefik"),
            json!("a.example.com,b.example.com"),
            json!("192.168.1.10,192.168.1.20"),
            json!("80, 443"),
            json!("3h")
        ]
    );
    let bare = json!({"metadata": meta("x"), "spec": {"rules": [{"http": {}}]}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &bare)[1..5],
        [json!("<none>"), json!("*"), json!(""), json!("80")]
    );
    let many = json!({"metadata": meta("m"), "spec": {"rules": [
        {"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {}]}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &many)[2],
        "a,b,c + 3 more..."
    );
    let exactly_three = json!({"metadata": meta("t"), "spec": {"rules": [{"host": "a"}, {"host": "b"}, {"host": "c"}]}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &exactly_three)[2],
        "a,b,c"
    );
}

#[test]
fn ingress_classes_and_network_policies() {
    let ic = json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        cells("networking.k8s.io", "ingressclasses", &ic),
        [
            json!("nginx"),
            json!("k8s.io/ingress-nginx"),
            json!("IngressParameters.k8s.example.com/external-lb"),
            json!("3h")
        ]
    );
    let ic =
        json!({"metadata": meta("t"), "spec": {"controller": "traefik.io/ingress-controller"}});
    assert_eq!(
        cells("networking.k8s.io", "ingressclasses", &ic)[2],
        "<none>"
    );

    let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {}}});
    assert_eq!(
        cells("networking.k8s.io", "networkpolicies", &np),
        [json!("deny"), json!("<none>"), json!("3h")]
    );
    let np =
        json!({"metadata": meta("web"), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}});
    assert_eq!(
        cells("networking.k8s.io", "networkpolicies", &np)[1],
        "app=web"
    );
}

#[test]
fn endpoint_slices() {
    assert_eq!(
        column_names("discovery.k8s.io", "endpointslices"),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    let es = json!({"metadata": meta("web-abc"), "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "metrics"}, {}, {"port": 9000}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &es),
        [
            json!("web-abc"),
            json!("IPv4"),
            json!("80,metrics,* + 1 more..."),
            json!("10.0.0.1,10.0.0.2,10.0.0.3"),
            json!("3h")
        ]
    );
    let empty = json!({"metadata": meta("e"), "addressType": "IPv6"});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &empty)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn storage_kinds() {
    let sc = json!({"metadata": {"name": "local-path", "creationTimestamp": "2024-05-01T09:00:00Z",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        column_names("storage.k8s.io", "storageclasses"),
        [
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age"
        ]
    );
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", &sc),
        [
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("3h")
        ]
    );

    let csi = json!({"metadata": meta("csi.example.com"), "spec": {"attachRequired": false,
        "tokenRequests": [{"audience": "a"}, {"audience": "b"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    assert_eq!(
        cells("storage.k8s.io", "csidrivers", &csi),
        [
            json!("csi.example.com"),
            json!(false),
            json!(false),
            json!(false),
            json!("a,b"),
            json!(false),
            json!("Persistent,Ephemeral"),
            json!("3h")
        ]
    );
    let csi = json!({"metadata": meta("d"), "spec": {}});
    assert_eq!(
        cells("storage.k8s.io", "csidrivers", &csi)[1..7],
        [
            json!(true),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("<none>")
        ]
    );

    let node = json!({"metadata": meta("n1"), "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
    assert_eq!(
        cells("storage.k8s.io", "csinodes", &node),
        [json!("n1"), json!(2), json!("3h")]
    );

    let va = json!({"metadata": meta("csi-123"), "spec": {"attacher": "csi.example.com", "nodeName": "n1",
        "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
    assert_eq!(
        cells("storage.k8s.io", "volumeattachments", &va),
        [
            json!("csi-123"),
            json!("csi.example.com"),
            json!("pv1"),
            json!("n1"),
            json!(true),
            json!("3h")
        ]
    );
    assert_eq!(
        super::super::column_definitions("storage.k8s.io", "volumeattachments")[1]["format"],
        "name"
    );
}

#[test]
fn leases_and_rbac_bindings() {
    let lease = json!({"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_abc"}});
    assert_eq!(
        cells("coordination.k8s.io", "leases", &lease),
        [json!("kube-scheduler"), json!("cp-1_abc"), json!("3h")]
    );
    let lease = json!({"metadata": meta("l"), "spec": {}});
    assert_eq!(cells("coordination.k8s.io", "leases", &lease)[1], "");

    let rb = json!({"metadata": meta("edit"), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
                     {"kind": "ServiceAccount", "namespace": "ci", "name": "builder"}, {"kind": "Robot", "name": "r2"}]});
    assert_eq!(
        column_names("rbac.authorization.k8s.io", "rolebindings"),
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );
    assert_eq!(
        cells("rbac.authorization.k8s.io", "rolebindings", &rb),
        [
            json!("edit"),
            json!("ClusterRole/edit"),
            json!("3h"),
            json!("alice, bob"),
            json!("devs"),
            json!("ci/builder")
        ]
    );
    let crb = json!({"metadata": meta("admin"), "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}});
    assert_eq!(
        cells("rbac.authorization.k8s.io", "clusterrolebindings", &crb)[1..],
        [
            json!("ClusterRole/cluster-admin"),
            json!("3h"),
            json!(""),
            json!(""),
            json!("")
        ]
    );
    let cols = super::super::column_definitions("rbac.authorization.k8s.io", "clusterrolebindings");
    assert_eq!(cols[3]["description"], "Users in the clusterRoleBinding");
}

#[test]
fn pdbs_and_priority_classes() {
    let pdb = json!({"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells("policy", "poddisruptionbudgets", &pdb),
        [
            json!("web"),
            json!("50%"),
            json!("N/A"),
            json!(1),
            json!("3h")
        ]
    );
    let pdb = json!({"metadata": meta("db"), "spec": {"maxUnavailable": 1}});
    assert_eq!(
        cells("policy", "poddisruptionbudgets", &pdb)[1..4],
        [json!("N/A"), json!("1"), json!(0)]
    );

    assert_eq!(
        column_names("scheduling.k8s.io", "priorityclasses"),
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    let pc = json!({"metadata": meta("system-node-critical"), "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        cells("scheduling.k8s.io", "priorityclasses", &pc),
        [
            json!("system-node-critical"),
            json!(2000001000),
            json!(false),
            json!("3h"),
            json!("PreemptLowerPriority")
        ]
    );
}

#[test]
fn horizontal_pod_autoscalers() {
    assert_eq!(
        column_names("autoscaling", "horizontalpodautoscalers"),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": meta("web"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
                 "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}},
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}}]}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &hpa),
        [
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 45%/80%, memory: 512Mi/1Gi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
            json!("3h")
        ]
    );

    let fresh = json!({"metadata": meta("f"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "f"}, "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
                    {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "100"}}}]}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &fresh)[2..6],
        [
            json!("cpu: <unknown>/<auto>, <unknown>/100"),
            json!("<unset>"),
            json!(5),
            json!(0)
        ]
    );

    let object = json!({"metadata": meta("o"), "spec": {"metrics": [
        {"type": "Object", "object": {"target": {"type": "AverageValue", "averageValue": "2k"}}},
        {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
            "target": {"type": "Utilization", "averageUtilization": 60}}}]},
        "status": {"currentMetrics": [{"type": "Object", "object": {"current": {"averageValue": "1500"}}},
                                      {"type": "ContainerResource", "containerResource": {"current": {"averageUtilization": 30}}}]}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &object)[2],
        "1500/2k (avg), cpu: 30%/60%"
    );
    let none = json!({"metadata": meta("n"), "spec": {"metrics": [{"type": "Weird"}]}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &none)[2],
        "<unknown type>"
    );

    let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": meta("v1"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
                 "targetCPUUtilizationPercentage": 70},
        "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &v1)[2..4],
        [json!("cpu: 12%/70%"), json!("1")]
    );
    let v1 = json!({"metadata": meta("v1b"), "spec": {"maxReplicas": 4}});
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &v1)[1..3],
        [json!("/"), json!("<none>")]
    );
}

#[test]
fn webhooks_and_runtime_classes() {
    let wh = json!({"metadata": meta("policy"), "webhooks": [{"name": "a"}, {"name": "b"}]});
    for r in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        assert_eq!(
            cells("admissionregistration.k8s.io", r, &wh),
            [json!("policy"), json!(2), json!("3h")]
        );
    }
    let rc = json!({"metadata": meta("gvisor"), "handler": "runsc"});
    assert_eq!(
        cells("node.k8s.io", "runtimeclasses", &rc),
        [json!("gvisor"), json!("runsc"), json!("3h")]
    );
}
