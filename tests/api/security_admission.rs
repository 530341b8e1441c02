//! The built-in admission plugins with real kubectl against `nanokube
//! server --disable-agent` (no pod needs to run): ResourceQuota (upstream
//! refusal texts, used counts in status, concurrent creates never past the
//! limit), LimitRanger (defaults and annotation, min refused),
//! DefaultStorageClass, Priority, NamespaceLifecycle's system namespaces.

use std::time::Duration;

use crate::common::{poll_until, Proc, KUBECTL_NEWEST};
use serde_json::Value;

fn pod(ns: &str, name: &str, extra_spec: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{extra_spec}  \
         containers:\n  - name: c\n    image: busybox\n{resources}"
    )
}

fn cpu_request(cpu: &str) -> String {
    format!("    resources:\n      requests:\n        cpu: {cpu}\n")
}

#[test]
fn resource_quota_refuses_past_hard_and_counts_used() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.namespace("q1");
    k.create_yaml(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\n  namespace: q1\nspec:\n  hard:\n    pods: \"2\"\n",
    );
    k.create_yaml(&pod("q1", "p1", "", ""));
    k.create_yaml(&pod("q1", "p2", "", ""));
    let err = k.stdin_err(&["create", "-f", "-"], &pod("q1", "p3", "", ""));
    assert!(
        err.contains(
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{err}"
    );
    // A dry run is checked the same way, and charges nothing.
    let err = k.stdin_err(
        &["create", "--dry-run=server", "-f", "-"],
        &pod("q1", "p4", "", ""),
    );
    assert!(err.contains("exceeded quota: q"), "{err}");
    let used = |k: &crate::common::Kubectl| -> Value {
        k.json(&["get", "resourcequota", "q", "-n", "q1"])["status"]["used"].clone()
    };
    assert!(
        poll_until(
            Duration::from_secs(10),
            Duration::from_millis(200),
            || used(&k)["pods"] == "2"
        ),
        "{}",
        used(&k)
    );
    let described = k.ok(&["describe", "quota", "q", "-n", "q1"]);
    let line = described
        .lines()
        .find(|l| l.starts_with("pods"))
        .unwrap_or_else(|| panic!("{described}"));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["pods", "2", "2"],
        "{described}"
    );
    // Deleting a pod frees its unit once the controller recounts.
    k.ok(&[
        "delete",
        "pod",
        "p1",
        "-n",
        "q1",
        "--grace-period=0",
        "--force",
    ]);
    assert!(
        poll_until(
            Duration::from_secs(10),
            Duration::from_millis(200),
            || used(&k)["pods"] == "1"
        ),
        "{}",
        used(&k)
    );
    k.create_yaml(&pod("q1", "p3", "", ""));

    // Compute quotas: explicit requests are required, sums are enforced.
    k.namespace("q2");
    k.create_yaml(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: c\n  namespace: q2\nspec:\n  hard:\n    requests.cpu: \"1\"\n",
    );
    let err = k.stdin_err(&["create", "-f", "-"], &pod("q2", "bare", "", ""));
    assert!(
        err.contains(
            "pods \"bare\" is forbidden: failed quota: c: must specify requests.cpu for: c"
        ),
        "{err}"
    );
    k.create_yaml(&pod("q2", "a", "", &cpu_request("600m")));
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &pod("q2", "b", "", &cpu_request("600m")),
    );
    assert!(
        err.contains(
            "pods \"b\" is forbidden: exceeded quota: c, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
        ),
        "{err}"
    );
    k.create_yaml(&pod("q2", "b", "", &cpu_request("400m")));

    // Object counts and services.
    k.namespace("q3");
    k.create_yaml(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: objs\n  namespace: q3\nspec:\n  hard:\n    configmaps: \"1\"\n    services.nodeports: \"1\"\n",
    );
    let before = k.json(&["get", "configmaps", "-n", "q3"])["items"]
        .as_array()
        .map_or(0, Vec::len);
    if before == 0 {
        k.ok(&["create", "configmap", "one", "-n", "q3"]);
    }
    let err = k.err(&["create", "configmap", "two", "-n", "q3"]);
    assert!(
        err.contains("configmaps \"two\" is forbidden: exceeded quota: objs, requested: configmaps=1, used: configmaps=1, limited: configmaps=1"),
        "{err}"
    );
    let err = k.err(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        "q3",
        "--tcp=80:80,81:81",
    ]);
    assert!(
        err.contains("services \"np\" is forbidden: exceeded quota: objs, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"),
        "{err}"
    );
    k.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        "q3",
        "--tcp=80:80",
    ]);
    // An update that grows usage is charged too: ClusterIP → NodePort.
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "cip",
        "-n",
        "q3",
        "--tcp=80:80",
    ]);
    let err = k.err(&[
        "patch",
        "service",
        "cip",
        "-n",
        "q3",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    assert!(
        err.contains("services \"cip\" is forbidden: exceeded quota: objs, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"),
        "{err}"
    );
}

#[test]
fn concurrent_creates_never_pass_the_quota() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    k.namespace("race");
    k.create_yaml(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\n  namespace: race\nspec:\n  hard:\n    pods: \"3\"\n",
    );
    let created: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let k = server.kubectl(KUBECTL_NEWEST);
                s.spawn(move || {
                    let out = k.run_stdin(
                        &["create", "-f", "-"],
                        &pod("race", &format!("p{i}"), "", ""),
                    );
                    if !out.status.success() {
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(err.contains("exceeded quota: q"), "{err}");
                    }
                    usize::from(out.status.success())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(created, 3);
    let pods = k.json(&["get", "pods", "-n", "race"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(3));
}

#[test]
fn limit_ranges_storage_classes_priorities_and_system_namespaces() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);

    // LimitRanger: defaults fill what a container lacks, and say so.
    k.namespace("lr");
    k.create_yaml(
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\n  namespace: lr\nspec:\n  limits:\n  - type: Container\n    default:\n      cpu: 500m\n      memory: 256Mi\n    defaultRequest:\n      cpu: 100m\n      memory: 128Mi\n    min:\n      cpu: 100m\n",
    );
    k.create_yaml(&pod("lr", "defaulted", "", ""));
    let p = k.json(&["get", "pod", "defaulted", "-n", "lr"]);
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"]["cpu"], "100m", "{res}");
    assert_eq!(res["requests"]["memory"], "128Mi", "{res}");
    assert_eq!(res["limits"]["cpu"], "500m", "{res}");
    assert_eq!(res["limits"]["memory"], "256Mi", "{res}");
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &pod("lr", "small", "", &cpu_request("50m")),
    );
    assert!(
        err.contains("pods \"small\" is forbidden: minimum cpu usage per Container is 100m, but request is 50m"),
        "{err}"
    );

    // DefaultStorageClass: the newest default class.
    for (name, default) in [("slow", "true"), ("fast", "true"), ("other", "false")] {
        k.create_yaml(&format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n  annotations:\n    storageclass.kubernetes.io/is-default-class: \"{default}\"\nprovisioner: example.com/x\n"
        ));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let claim = |name: &str, class: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: lr\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
        )
    };
    k.create_yaml(&claim("data", ""));
    let c = k.json(&["get", "pvc", "data", "-n", "lr"]);
    assert_eq!(c["spec"]["storageClassName"], "fast", "{c}");
    k.create_yaml(&claim("none", "  storageClassName: \"\"\n"));
    let c = k.json(&["get", "pvc", "none", "-n", "lr"]);
    assert_eq!(c["spec"]["storageClassName"], "", "{c}");

    // LimitRanger on claims: max storage per PersistentVolumeClaim.
    k.create_yaml(
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: claims\n  namespace: lr\nspec:\n  limits:\n  - type: PersistentVolumeClaim\n    max:\n      storage: 2Gi\n",
    );
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &claim("big", "").replace("1Gi", "5Gi"),
    );
    assert!(
        err.contains("persistentvolumeclaims \"big\" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"),
        "{err}"
    );

    // Priority: from the named class, built-in system classes, unknown refused.
    k.create_yaml(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\npreemptionPolicy: Never\n",
    );
    k.create_yaml(&pod("lr", "important", "  priorityClassName: high\n", ""));
    let p = k.json(&["get", "pod", "important", "-n", "lr"]);
    assert_eq!(p["spec"]["priority"], 1000, "{}", p["spec"]);
    assert_eq!(p["spec"]["preemptionPolicy"], "Never");
    k.create_yaml(&pod(
        "lr",
        "critical",
        "  priorityClassName: system-node-critical\n",
        "",
    ));
    let p = k.json(&["get", "pod", "critical", "-n", "lr"]);
    assert_eq!(p["spec"]["priority"], 2000001000);
    // The system classes exist as objects, as on any upstream cluster.
    let classes = k.json(&[
        "get",
        "priorityclass",
        "system-node-critical",
        "system-cluster-critical",
    ]);
    let values: Vec<_> = classes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, vec![2000001000, 2000000000], "{classes}");
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &pod("lr", "lost", "  priorityClassName: nope\n", ""),
    );
    assert!(
        err.contains("pods \"lost\" is forbidden: no PriorityClass with name nope was found"),
        "{err}"
    );
    // A global default class is given to pods naming none.
    k.create_yaml(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: everyone\nvalue: 10\nglobalDefault: true\n",
    );
    k.create_yaml(&pod("lr", "plain", "", ""));
    let p = k.json(&["get", "pod", "plain", "-n", "lr"]);
    assert_eq!(p["spec"]["priority"], 10);
    assert_eq!(p["spec"]["priorityClassName"], "everyone");

    // NamespaceLifecycle: system namespaces stay.
    for ns in ["kube-system", "default"] {
        let err = k.err(&["delete", "namespace", ns, "--wait=false"]);
        assert!(
            err.contains(&format!(
                "Error from server (Forbidden): namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )),
            "{err}"
        );
    }
    k.ok(&["get", "namespace", "kube-system"]);
}
