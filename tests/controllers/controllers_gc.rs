//! Garbage collection, namespace deletion, service accounts, pod GC,
//! Endpoints and EndpointSlices against real kubectl: owners and
//! dependents are ConfigMaps made here with ownerReferences, pods get their
//! IPs and readiness through the status subresource.

use std::time::{Duration, Instant};

use crate::common::hollow::{hollow_agent, hollow_node_names, HOLLOW_PREFIX};
use crate::common::{Kubectl, Proc, KUBECTL_NEWEST};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `cond` until true; panics with `what` and the server log.
fn wait_for(p: &Proc, timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\nserver log:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The object, or None when kubectl reports NotFound.
fn get(k: &Kubectl, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let out = k.run(&all);
    if out.status.success() {
        return serde_json::from_slice(&out.stdout).ok();
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotFound"), "kubectl {all:?} failed: {err}");
    None
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A ConfigMap in `ns` owned by the ConfigMaps `owners` (name, uid, block).
fn owned_configmap(
    k: &Kubectl,
    ns: &str,
    name: &str,
    owners: &[(&str, &str, bool)],
    finalizers: &[&str],
) {
    let refs: Vec<String> = owners
        .iter()
        .map(|(n, u, block)| {
            format!("  - {{apiVersion: v1, kind: ConfigMap, name: {n}, uid: {u}, blockOwnerDeletion: {block}}}\n")
        })
        .collect();
    let fins = format!("[{}]", finalizers.join(", "));
    k.create_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  finalizers: {fins}\n  ownerReferences:\n{}data: {{a: b}}\n",
        refs.concat()
    ));
}

fn configmap(k: &Kubectl, ns: &str, name: &str) -> Value {
    k.configmap(ns, name, &[("a", "b")], &[]);
    k.json(&["get", "configmap", name, "-n", ns])
}

fn owner_uids(v: &Value) -> Vec<String> {
    v["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn background_deletion_removes_dependents_and_keeps_those_with_a_live_owner() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    let a = configmap(&k, "default", "owner-a");
    let b = configmap(&k, "default", "owner-b");
    owned_configmap(
        &k,
        "default",
        "only-a",
        &[("owner-a", &uid(&a), false)],
        &[],
    );
    owned_configmap(
        &k,
        "default",
        "both",
        &[("owner-a", &uid(&a), false), ("owner-b", &uid(&b), false)],
        &[],
    );
    // A reference whose uid does not match the live object is dangling too.
    owned_configmap(
        &k,
        "default",
        "stale-ref",
        &[("owner-b", "00000000-dead-beef-0000-000000000000", false)],
        &[],
    );
    wait_for(
        &p,
        TIMEOUT,
        "the dependent of a mismatched uid to go",
        || get(&k, &["configmap", "stale-ref"]).is_none(),
    );
    k.ok(&["delete", "configmap", "owner-a"]);
    wait_for(&p, TIMEOUT, "only-a to be collected", || {
        get(&k, &["configmap", "only-a"]).is_none()
    });
    wait_for(
        &p,
        TIMEOUT,
        "the dangling reference of `both` to be removed",
        || get(&k, &["configmap", "both"]).is_some_and(|v| owner_uids(&v) == vec![uid(&b)]),
    );
    assert!(get(&k, &["configmap", "owner-b"]).is_some());
}

#[test]
fn orphan_and_foreground_cascades() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    // --cascade=orphan: the dependent stays without the reference.
    let o = configmap(&k, "default", "orphan-owner");
    owned_configmap(
        &k,
        "default",
        "orphan-dep",
        &[("orphan-owner", &uid(&o), true)],
        &[],
    );
    k.ok(&["delete", "configmap", "orphan-owner", "--cascade=orphan"]);
    assert!(
        get(&k, &["configmap", "orphan-owner"]).is_none(),
        "kubectl waited for the owner to go"
    );
    let dep = get(&k, &["configmap", "orphan-dep"]).expect("orphaned dependent kept");
    assert!(owner_uids(&dep).is_empty(), "reference removed: {dep}");

    // --cascade=foreground: the owner waits for its blocking dependent.
    let f = configmap(&k, "default", "fg-owner");
    owned_configmap(
        &k,
        "default",
        "fg-dep",
        &[("fg-owner", &uid(&f), true)],
        &["example.com/hold"],
    );
    k.ok(&[
        "delete",
        "configmap",
        "fg-owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    wait_for(&p, TIMEOUT, "the dependent to be deleted", || {
        get(&k, &["configmap", "fg-dep"])
            .is_some_and(|d| d["metadata"]["deletionTimestamp"].is_string())
    });
    let owner = get(&k, &["configmap", "fg-owner"]).expect("owner waits for its dependents");
    assert!(owner["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        owner["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        get(&k, &["configmap", "fg-owner"]).is_some(),
        "still blocked"
    );
    k.ok(&[
        "patch",
        "configmap",
        "fg-dep",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for(&p, TIMEOUT, "the foreground owner to go", || {
        get(&k, &["configmap", "fg-owner"]).is_none()
    });
    assert!(get(&k, &["configmap", "fg-dep"]).is_none());
}

#[test]
fn deleting_a_namespace_reports_progress_and_removes_everything() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    k.namespace("doomed");
    configmap(&k, "doomed", "plain");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "doomed",
        "--from-literal=a=b",
    ]);
    owned_configmap(&k, "doomed", "held", &[], &["example.com/hold"]);
    k.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let condition = |ns: &Value, kind: &str| -> Option<Value> {
        ns["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == kind)
            .cloned()
    };
    wait_for(
        &p,
        TIMEOUT,
        "the namespace conditions to show the held configmap",
        || {
            get(&k, &["namespace", "doomed"]).is_some_and(|ns| {
            condition(&ns, "NamespaceContentRemaining").is_some_and(|c| {
                c["status"] == "True"
                    && c["reason"] == "SomeResourcesRemain"
                    && c["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
            }) && condition(&ns, "NamespaceFinalizersRemaining").is_some_and(|c| {
                c["message"]
                    == "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            })
        })
        },
    );
    let ns = get(&k, &["namespace", "doomed"]).expect("namespace still there");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let failure =
        condition(&ns, "NamespaceDeletionContentFailure").expect("content failure condition");
    assert_eq!(failure["status"], "False");
    assert_eq!(failure["reason"], "ContentDeleted");
    assert!(get(&k, &["secret", "s", "-n", "doomed"]).is_none());
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for(&p, TIMEOUT, "the namespace to be gone", || {
        get(&k, &["namespace", "doomed"]).is_none()
    });
}

#[test]
fn every_namespace_gets_a_default_account_and_the_root_ca() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    let ca =
        std::fs::read_to_string(p.data_dir.join("server/tls/server-ca.crt")).expect("server CA");
    k.namespace("fresh");
    let has_both = || {
        get(&k, &["serviceaccount", "default", "-n", "fresh"]).is_some()
            && get(&k, &["configmap", "kube-root-ca.crt", "-n", "fresh"])
                .is_some_and(|cm| cm["data"]["ca.crt"] == ca)
    };
    wait_for(&p, TIMEOUT, "default account and root CA", has_both);
    let cm = k.json(&["get", "configmap", "kube-root-ca.crt", "-n", "fresh"]);
    assert!(cm["metadata"]["annotations"]["kubernetes.io/description"]
        .as_str()
        .is_some_and(|d| d.starts_with("Contains a CA bundle")));
    assert!(get(&k, &["serviceaccount", "default", "-n", "kube-system"]).is_some());
    k.ok(&["delete", "serviceaccount", "default", "-n", "fresh"]);
    k.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "fresh"]);
    wait_for(&p, TIMEOUT, "both to come back", has_both);
    k.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "fresh",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"x"}}"#,
    ]);
    wait_for(&p, TIMEOUT, "the CA to be restored", has_both);
}

#[test]
fn pods_of_a_deleted_node_are_collected() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    k.create_yaml("apiVersion: v1\nkind: Node\nmetadata:\n  name: gone-node\n");
    k.create_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stranded\n  namespace: default\nspec:\n  nodeName: gone-node\n  containers:\n  - {name: c, image: busybox}\n",
    );
    k.create_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: unscheduled\n  namespace: default\nspec:\n  schedulerName: nobody\n  containers:\n  - {name: c, image: busybox}\n",
    );
    k.ok(&["delete", "node", "gone-node"]);
    // 40 s quarantine and a 20 s period, as upstream.
    wait_for(
        &p,
        Duration::from_secs(100),
        "the stranded pod to be deleted",
        || get(&k, &["pod", "stranded"]).is_none(),
    );
    assert!(
        get(&k, &["pod", "unscheduled"]).is_some(),
        "unscheduled live pods are kept"
    );
}

fn web_pod(k: &Kubectl, name: &str, finalizers: &str) {
    k.create_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: web}}\n  finalizers: {finalizers}\nspec:\n  schedulerName: nobody\n  containers:\n  - name: c\n    image: busybox\n    ports: [{{name: http, containerPort: 8080}}]\n"
    ));
}

fn set_status(k: &Kubectl, pod: &str, ip: &str, ready: bool) {
    let ready = if ready { "True" } else { "False" };
    let patch = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{ready}"}}]}}}}"#
    );
    k.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
}

fn ips(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn web_slices(k: &Kubectl) -> Vec<Value> {
    k.json(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn endpoints_and_slices_follow_pods() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    web_pod(&k, "web-1", "[]");
    web_pod(&k, "web-2", "[example.com/hold]");
    k.create_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n  labels: {tier: front}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    set_status(&k, "web-1", "10.42.0.11", true);
    set_status(&k, "web-2", "10.42.0.12", false);
    wait_for(
        &p,
        TIMEOUT,
        "endpoints with a ready and a not-ready address",
        || {
            get(&k, &["endpoints", "web"]).is_some_and(|ep| {
                let s = &ep["subsets"][0];
                ips(&s["addresses"]) == ["10.42.0.11"]
                    && ips(&s["notReadyAddresses"]) == ["10.42.0.12"]
            })
        },
    );
    let ep = k.json(&["get", "endpoints", "web"]);
    let subset = &ep["subsets"][0];
    assert_eq!(
        subset["ports"],
        serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(subset["addresses"][0]["targetRef"]["kind"], "Pod");
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "web-1");
    assert_eq!(ep["metadata"]["labels"]["tier"], "front");
    assert!(
        ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            .is_string()
    );

    wait_for(&p, TIMEOUT, "one slice with both pods", || {
        let s = web_slices(&k);
        s.len() == 1 && s[0]["endpoints"].as_array().is_some_and(|e| e.len() == 2)
    });
    let slice = &web_slices(&k)[0];
    assert!(slice["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("web-") && n.len() == 9));
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(
        slice["ports"],
        serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let rv = slice["metadata"]["resourceVersion"].clone();
    // Nothing changes, nothing is written.
    let ep_rv = k.json(&["get", "endpoints", "web"])["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        web_slices(&k)[0]["metadata"]["resourceVersion"],
        rv,
        "idle slice rewritten"
    );
    let ep_now = k.json(&["get", "endpoints", "web"]);
    assert_eq!(
        ep_now["metadata"]["resourceVersion"], ep_rv,
        "idle endpoints rewritten"
    );

    // A terminating pod leaves Endpoints but stays in the slice as terminating.
    k.ok(&["delete", "pod", "web-2", "--wait=false"]);
    wait_for(
        &p,
        TIMEOUT,
        "the terminating pod to leave the endpoints",
        || {
            get(&k, &["endpoints", "web"]).is_some_and(|ep| {
                ep["subsets"][0]["notReadyAddresses"].is_null()
                    && ips(&ep["subsets"][0]["addresses"]) == ["10.42.0.11"]
            })
        },
    );
    wait_for(&p, TIMEOUT, "the slice to mark it terminating", || {
        web_slices(&k).first().is_some_and(|s| {
            s["endpoints"].as_array().into_iter().flatten().any(|e| {
                e["targetRef"]["name"] == "web-2"
                    && e["conditions"] == serde_json::json!({"ready": false, "serving": false, "terminating": true})
            })
        })
    });
    let updated = &web_slices(&k)[0];
    assert_ne!(
        updated["metadata"]["resourceVersion"], rv,
        "updated in place"
    );
    assert_eq!(updated["metadata"]["name"], slice["metadata"]["name"]);
    k.ok(&[
        "patch",
        "pod",
        "web-2",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);

    // The service going takes its Endpoints and slices along.
    k.ok(&["delete", "service", "web"]);
    wait_for(
        &p,
        TIMEOUT,
        "endpoints and slices to go with the service",
        || get(&k, &["endpoints", "web"]).is_none() && web_slices(&k).is_empty(),
    );
    let kubernetes = k.json(&["get", "endpoints", "kubernetes"]);
    assert!(
        kubernetes["subsets"][0]["addresses"].is_array(),
        "the API's own endpoints are left alone"
    );
}

#[test]
fn foreground_deletion_goes_down_the_chain() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    let top = configmap(&k, "default", "top");
    owned_configmap(&k, "default", "middle", &[("top", &uid(&top), true)], &[]);
    let middle = k.json(&["get", "configmap", "middle"]);
    owned_configmap(
        &k,
        "default",
        "bottom",
        &[("middle", &uid(&middle), true)],
        &["example.com/hold"],
    );
    k.ok(&[
        "delete",
        "configmap",
        "top",
        "--cascade=foreground",
        "--wait=false",
    ]);
    // The middle has dependents, so it is deleted in the foreground too.
    wait_for(&p, TIMEOUT, "the middle to wait for the bottom", || {
        get(&k, &["configmap", "middle"]).is_some_and(|m| {
            m["metadata"]["deletionTimestamp"].is_string()
                && m["metadata"]["finalizers"] == serde_json::json!(["foregroundDeletion"])
        }) && get(&k, &["configmap", "bottom"])
            .is_some_and(|b| b["metadata"]["deletionTimestamp"].is_string())
    });
    assert!(
        get(&k, &["configmap", "top"]).is_some(),
        "the top waits for the chain"
    );
    k.ok(&[
        "patch",
        "configmap",
        "bottom",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for(&p, TIMEOUT, "the whole chain to go", || {
        get(&k, &["configmap", "top"]).is_none() && get(&k, &["configmap", "middle"]).is_none()
    });
}

#[test]
fn pods_on_hollow_nodes_become_ready_endpoints() {
    let p = Proc::server();
    let _agent = hollow_agent(&p, 2, &[]);
    let k = p.kubectl(KUBECTL_NEWEST);
    // Bound here, so this does not depend on the scheduler.
    let node = &hollow_node_names(HOLLOW_PREFIX, 2)[0];
    k.create_yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hw\n  namespace: default\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: hw}}\n  template:\n    metadata:\n      labels: {{app: hw}}\n    spec:\n      nodeName: {node}\n      containers:\n      - name: c\n        image: nginx\n        ports: [{{name: http, containerPort: 8080}}]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: hw\n  namespace: default\nspec:\n  selector: {{app: hw}}\n  ports: [{{port: 80, targetPort: http}}]\n"
    ));
    let ready_addresses = |n: usize| {
        get(&k, &["endpoints", "hw"]).is_some_and(|ep| {
            let addrs = &ep["subsets"][0]["addresses"];
            ips(addrs).len() == n
                && addrs.as_array().into_iter().flatten().all(|a| {
                    a["nodeName"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("hollow"))
                })
        })
    };
    wait_for(
        &p,
        Duration::from_secs(90),
        "three ready addresses on hollow nodes",
        || ready_addresses(3),
    );
    wait_for(&p, TIMEOUT, "three ready endpoints in the slice", || {
        let slices = k.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=hw",
        ]);
        let ready = slices["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .count();
        ready == 3
    });
    k.ok(&["scale", "deployment", "hw", "--replicas=1"]);
    wait_for(
        &p,
        Duration::from_secs(60),
        "one address after scaling down",
        || ready_addresses(1),
    );
}
