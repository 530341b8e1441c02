//! The node agent runs real pods (containerd, CNI bridge, busybox image
//! imported from `<data-dir>/agent/images/`): `nanokube server` alone
//! registers a Ready node, and one cluster then runs every pod scenario in
//! parallel — HTTP to pod IPs, restarts and CrashLoopBackOff, probes,
//! volumes, init containers, OOM kills, users, bad input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::agent::*;
use crate::common::*;
use serde_json::{json, Value};

const NS: &str = "default";

#[test]
fn node_ready_and_pods_run() {
    let c = Cluster::start();
    run_scenarios(vec![
        ("node_is_registered", Box::new(|| node_is_registered(&c))),
        ("httpd_deployment", Box::new(|| httpd_deployment(&c))),
        ("crash_loop_backoff", Box::new(|| crash_loop_backoff(&c))),
        ("liveness_restarts", Box::new(|| liveness_restarts(&c))),
        ("readiness_toggles", Box::new(|| readiness_toggles(&c))),
        (
            "config_volumes_update",
            Box::new(|| config_volumes_update(&c)),
        ),
        ("empty_dir_shared", Box::new(|| empty_dir_shared(&c))),
        (
            "init_containers_first",
            Box::new(|| init_containers_first(&c)),
        ),
        ("memory_limit_oom", Box::new(|| memory_limit_oom(&c))),
        ("run_as_user", Box::new(|| run_as_user(&c))),
        ("missing_image", Box::new(|| missing_image(&c))),
        (
            "invalid_specs_rejected",
            Box::new(|| invalid_specs_rejected(&c)),
        ),
        (
            "missing_configmap_waits",
            Box::new(|| missing_configmap_waits(&c)),
        ),
    ]);
    c.shutdown();
}

/// The node's InternalIP.
fn internal_ip(node: &Value) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or_else(|| panic!("no InternalIP: {}", node["status"]["addresses"]))
        .to_string()
}

/// The Node: Ready, runtime and versions, capacity, labels, podCIDR, Lease.
fn node_is_registered(c: &Cluster) {
    eprintln!("cold start to node Ready: {:?}", c.cold_start);
    let node = c.get(&format!("/api/v1/nodes/{}", c.node));
    let st = &node["status"];
    assert_eq!(node_condition(&node, "Ready"), Some("True"), "{st}");
    for cond in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(node_condition(&node, cond), Some("False"), "{cond}: {st}");
    }
    let info = &st["nodeInfo"];
    assert!(
        info["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("containerd://")),
        "nodeInfo: {info}"
    );
    for field in [
        "kubeletVersion",
        "kernelVersion",
        "osImage",
        "architecture",
        "operatingSystem",
    ] {
        assert!(
            info[field].as_str().is_some_and(|v| !v.is_empty()),
            "nodeInfo.{field}: {info}"
        );
    }
    assert_eq!(
        st["capacity"]["pods"], "110",
        "capacity: {}",
        st["capacity"]
    );
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(
            st["allocatable"][r].is_string(),
            "allocatable.{r}: {}",
            st["allocatable"]
        );
    }
    let internal_ip = internal_ip(&node);
    // Detected, not given: the machine's own address, never loopback nor
    // a pod bridge (other clusters' bridges may exist on this host).
    let addrs = run_with_timeout(
        std::process::Command::new("ip").args(["-o", "-4", "addr", "show"]),
        None,
        CLIENT_TIMEOUT,
    );
    let addrs = String::from_utf8_lossy(&addrs.stdout).into_owned();
    let dev = addrs
        .lines()
        .find(|l| l.contains(&format!(" inet {internal_ip}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| {
            panic!("InternalIP {internal_ip} is no address of this machine:\n{addrs}")
        });
    assert!(
        dev != "lo" && !dev.starts_with("nk") && !dev.starts_with("cni"),
        "InternalIP {internal_ip} is on {dev}, a loopback or pod bridge:\n{addrs}"
    );
    let labels = &node["metadata"]["labels"];
    assert_eq!(
        labels["kubernetes.io/hostname"],
        c.node.as_str(),
        "labels: {labels}"
    );
    assert_eq!(labels["kubernetes.io/os"], "linux", "labels: {labels}");
    assert!(
        labels["node-role.kubernetes.io/control-plane"].is_string(),
        "a server's node carries the control-plane role: {labels}"
    );
    let cidr = node["spec"]["podCIDR"].as_str().unwrap_or_default();
    let prefix = c
        .cluster_cidr
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert!(
        cidr.starts_with(&format!("{prefix}.")),
        "podCIDR {cidr:?} not in {}",
        c.cluster_cidr
    );
    let lease = c.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
        c.node
    ));
    assert_eq!(
        lease["spec"]["holderIdentity"],
        c.node.as_str(),
        "lease: {lease}"
    );
}

/// A Deployment of 3 httpd pods becomes ready; every pod IP answers HTTP
/// from the host with the pod's own name; statuses are complete.
fn httpd_deployment(c: &Cluster) {
    let mut web = busybox_container(
        "httpd",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["ports"] = json!([{"containerPort": 8080}]);
    web["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1});
    c.apply_json(&json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [web], "terminationGracePeriodSeconds": 1},
            },
        },
    }));
    let deadline = Instant::now() + Duration::from_secs(90);
    let pods = loop {
        let pods = c.pods_by_label(NS, "app=web");
        let ready = pods
            .iter()
            .filter(|p| is_running(p) && condition(p, "Ready") == Some("True"))
            .count();
        if pods.len() == 3 && ready == 3 {
            break pods;
        }
        if Instant::now() > deadline {
            let names: Vec<String> = pods
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
                .collect();
            let details: Vec<String> = names.iter().map(|n| c.describe(NS, n)).collect();
            panic!(
                "3 web pods not Ready within 90 s ({ready} of {}):\n{}",
                pods.len(),
                details.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let node_ip = internal_ip(&c.get(&format!("/api/v1/nodes/{}", c.node)));
    let mut ips = Vec::new();
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let ip = pod_ip(p);
        assert!(
            c.in_cluster_cidr(ip),
            "pod {name} IP {ip} not in {}",
            c.cluster_cidr
        );
        assert!(!ips.contains(&ip), "two pods share IP {ip}");
        ips.push(ip);
        let body = wait_http(SocketAddr::new(ip, 8080), "/", Duration::from_secs(15));
        assert_eq!(body.trim(), name, "pod {name} at {ip} answered {body:?}");
        let st = &p["status"];
        for cond in [
            "PodScheduled",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodReadyToStartContainers",
        ] {
            assert_eq!(
                condition(p, cond),
                Some("True"),
                "{name} condition {cond}: {st}"
            );
        }
        assert_eq!(
            st["hostIP"],
            node_ip.as_str(),
            "{name}: hostIP is the node's InternalIP"
        );
        assert!(st["startTime"].is_string(), "{name}: {st}");
        assert_eq!(st["qosClass"], "BestEffort", "{name}: {st}");
        assert_eq!(st["podIPs"][0]["ip"], ip.to_string(), "{name}: {st}");
        let cs = container_status(p, "httpd");
        assert!(
            cs["containerID"]
                .as_str()
                .is_some_and(|id| id.starts_with("containerd://")),
            "{cs}"
        );
        assert!(
            cs["imageID"].as_str().is_some_and(|id| !id.is_empty()),
            "{cs}"
        );
        assert!(
            cs["image"].as_str().is_some_and(|i| i.contains("busybox")),
            "{cs}"
        );
        assert_eq!(cs["ready"], true, "{cs}");
        assert_eq!(cs["started"], true, "{cs}");
        assert_eq!(cs["restartCount"], 0, "{cs}");
        assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    }
}

/// A container exiting 1 restarts with growing back-off and reports
/// CrashLoopBackOff, restartCount and the last termination.
fn crash_loop_backoff(c: &Cluster) {
    c.apply_json(&pod_manifest(
        NS,
        "crash",
        json!({"containers": [busybox_container("crash", "echo crashing; exit 1")]}),
    ));
    let t0 = Instant::now();
    let mut restarts_at: Vec<Duration> = Vec::new();
    let mut backoff_message = None;
    let pod = loop {
        let pod = c.pod(NS, "crash").expect("pod crash exists");
        let count = restart_count(&pod, "crash") as usize;
        while restarts_at.len() < count {
            restarts_at.push(t0.elapsed());
        }
        let waiting = &container_status(&pod, "crash")["state"]["waiting"];
        if waiting["reason"] == "CrashLoopBackOff" {
            backoff_message = waiting["message"].as_str().map(str::to_string);
        }
        if count >= 3 && backoff_message.is_some() {
            break pod;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            panic!(
                "no CrashLoopBackOff with 3 restarts within 120 s (restarts at {restarts_at:?}, \
                 back-off seen: {backoff_message:?})\n{}",
                c.describe(NS, "crash")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let msg = backoff_message.unwrap_or_default();
    assert!(
        msg.contains("back-off"),
        "CrashLoopBackOff message: {msg:?}"
    );
    let last = &container_status(&pod, "crash")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1, "lastState: {last}");
    assert_eq!(last["reason"], "Error", "lastState: {last}");
    // Upstream: 10 s, then 20 s, … between restarts (the first restart
    // may come at once).
    let gap12 = restarts_at[1] - restarts_at[0];
    let gap23 = restarts_at[2] - restarts_at[1];
    assert!(
        gap12 >= Duration::from_secs(8) && gap23 >= Duration::from_secs(16) && gap23 > gap12,
        "back-off does not grow as 10 s, 20 s: restarts at {restarts_at:?}"
    );
    assert_eq!(pod["status"]["phase"], "Running", "{}", pod["status"]);
}

/// A liveness probe that starts failing restarts the container, with an
/// Unhealthy event.
fn liveness_restarts(c: &Cluster) {
    let mut ctr = busybox_container(
        "app",
        "touch /tmp/alive; sleep 4; rm /tmp/alive; exec sleep 3600",
    );
    ctr["livenessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/alive"]},
        "initialDelaySeconds": 1,
        "periodSeconds": 1,
        "failureThreshold": 2,
    });
    c.apply_json(&pod_manifest(
        NS,
        "liveness",
        json!({"containers": [ctr], "terminationGracePeriodSeconds": 2}),
    ));
    c.wait_running(NS, "liveness", POD_TIMEOUT);
    let pod = c.wait_pod(
        NS,
        "liveness",
        Duration::from_secs(45),
        "restart after failed liveness probes",
        |p| restart_count(p, "app") >= 1,
    );
    let cs = container_status(&pod, "app");
    assert!(cs["lastState"]["terminated"].is_object(), "{cs}");
    c.wait_event(
        NS,
        "liveness",
        Duration::from_secs(15),
        "Unhealthy (liveness)",
        |e| {
            e["reason"] == "Unhealthy"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Liveness probe failed"))
        },
    );
    c.wait_running(NS, "liveness", POD_TIMEOUT);
}

/// An exec readiness probe on a file the test creates and removes flips
/// the Ready and ContainersReady conditions (and never restarts).
fn readiness_toggles(c: &Cluster) {
    let mut ctr = busybox_container("app", "exec sleep 3600");
    ctr["readinessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/ready"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    });
    c.apply_json(&pod_manifest(
        NS,
        "readiness",
        json!({"containers": [ctr], "terminationGracePeriodSeconds": 1}),
    ));
    c.wait_running(NS, "readiness", POD_TIMEOUT);
    std::thread::sleep(Duration::from_secs(3));
    let pod = c.pod(NS, "readiness").expect("pod exists");
    assert_eq!(condition(&pod, "Ready"), Some("False"), "{}", pod["status"]);
    assert_eq!(
        container_status(&pod, "app")["ready"],
        false,
        "{}",
        pod["status"]
    );
    c.exec_ok(NS, "readiness", None, &["touch", "/tmp/ready"]);
    let pod = c.wait_ready(NS, "readiness", true, Duration::from_secs(20));
    assert_eq!(
        condition(&pod, "ContainersReady"),
        Some("True"),
        "{}",
        pod["status"]
    );
    c.exec_ok(NS, "readiness", None, &["rm", "/tmp/ready"]);
    let pod = c.wait_ready(NS, "readiness", false, Duration::from_secs(20));
    assert_eq!(restart_count(&pod, "app"), 0, "{}", pod["status"]);
}

/// ConfigMap and Secret volumes show their data (secret mode honoured) and
/// later their updates.
fn config_volumes_update(c: &Cluster) {
    let objects = |greeting: &str, password: &str| {
        json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": NS},
             "data": {"greeting": greeting}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec", "namespace": NS},
             "stringData": {"password": password}},
        ]})
    };
    c.apply_json(&objects("hello", "s3cret"));
    let mut ctr = busybox_container("app", "exec sleep 3600");
    ctr["volumeMounts"] = json!([
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "sec", "mountPath": "/etc/sec"},
    ]);
    c.apply_json(&pod_manifest(
        NS,
        "volumes",
        json!({
            "containers": [ctr],
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            ],
        }),
    ));
    c.wait_running(NS, "volumes", POD_TIMEOUT);
    let read = |path: &str| c.exec_ok(NS, "volumes", None, &["cat", path]);
    assert_eq!(read("/etc/cfg/greeting"), "hello");
    assert_eq!(read("/etc/sec/password"), "s3cret");
    let mode = c.exec_ok(
        NS,
        "volumes",
        None,
        &["stat", "-L", "-c", "%a", "/etc/sec/password"],
    );
    assert_eq!(mode.trim(), "400", "secret defaultMode");
    c.apply_json(&objects("bonjour", "changed"));
    let t0 = Instant::now();
    loop {
        let (g, p) = (read("/etc/cfg/greeting"), read("/etc/sec/password"));
        if g == "bonjour" && p == "changed" {
            eprintln!(
                "configMap/secret update visible in the pod after {:?}",
                t0.elapsed()
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(75),
            "update not visible within 75 s: greeting {g:?}, password {p:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// An emptyDir written by one container is read by the other; a Memory
/// emptyDir is a tmpfs.
fn empty_dir_shared(c: &Cluster) {
    let mut writer = busybox_container("writer", "echo shared-data > /data/f; exec sleep 3600");
    writer["volumeMounts"] =
        json!([{"name": "data", "mountPath": "/data"}, {"name": "mem", "mountPath": "/mem"}]);
    let mut reader = busybox_container("reader", "exec sleep 3600");
    reader["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    c.apply_json(&pod_manifest(
        NS,
        "shared",
        json!({
            "containers": [writer, reader],
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "mem", "emptyDir": {"medium": "Memory"}},
            ],
        }),
    ));
    c.wait_running(NS, "shared", POD_TIMEOUT);
    let ok = poll_until(Duration::from_secs(10), Duration::from_millis(500), || {
        let out = c.exec("default", NS, "shared", Some("reader"), &["cat", "/data/f"]);
        String::from_utf8_lossy(&out.stdout) == "shared-data\n"
    });
    assert!(
        ok,
        "reader does not see the writer's file\n{}",
        c.describe(NS, "shared")
    );
    let mounts = c.exec_ok(NS, "shared", Some("writer"), &["cat", "/proc/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/mem") && l.contains("tmpfs")),
        "medium Memory is not a tmpfs:\n{mounts}"
    );
}

/// Init containers run in order, to completion, before the app starts.
fn init_containers_first(c: &Cluster) {
    let mount = json!([{"name": "work", "mountPath": "/work"}]);
    let mut first = busybox_container("first", "echo one > /work/order");
    first["volumeMounts"] = mount.clone();
    let mut second = busybox_container("second", "test -f /work/order && echo two >> /work/order");
    second["volumeMounts"] = mount.clone();
    let mut app = busybox_container("main", "cat /work/order; exec sleep 3600");
    app["volumeMounts"] = mount;
    c.apply_json(&pod_manifest(
        NS,
        "init",
        json!({
            "initContainers": [first, second],
            "containers": [app],
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "work", "emptyDir": {}}],
        }),
    ));
    let pod = c.wait_running(NS, "init", POD_TIMEOUT);
    assert_eq!(
        condition(&pod, "Initialized"),
        Some("True"),
        "{}",
        pod["status"]
    );
    for name in ["first", "second"] {
        let t = &container_status(&pod, name)["state"]["terminated"];
        assert_eq!(t["reason"], "Completed", "{name}: {}", pod["status"]);
        assert_eq!(t["exitCode"], 0, "{name}: {}", pod["status"]);
    }
    let log = c.wait_log(NS, "init", Some("main"), "two", POD_TIMEOUT);
    assert_eq!(log, "one\ntwo\n", "init containers ran out of order");
    let finished = container_status(&pod, "second")["state"]["terminated"]["finishedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = container_status(&pod, "main")["state"]["running"]["startedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        started >= finished,
        "main started {started} before init finished {finished}"
    );
}

/// A container past its 20Mi memory limit is OOM-killed and says so.
fn memory_limit_oom(c: &Cluster) {
    // Doubles a string 26 times (64 MiB): far past the limit, but bounded
    // should the limit be missing.
    let mut ctr = busybox_container(
        "hog",
        "x=a; i=0; while [ $i -lt 26 ]; do x=$x$x; i=$((i+1)); done; echo survived",
    );
    ctr["resources"] = json!({"limits": {"memory": "20Mi"}, "requests": {"memory": "20Mi"}});
    c.apply_json(&pod_manifest(
        NS,
        "oom",
        json!({"containers": [ctr], "restartPolicy": "Never"}),
    ));
    let pod = c.wait_pod(NS, "oom", POD_TIMEOUT, "terminate", |p| {
        container_status(p, "hog")["state"]["terminated"].is_object()
    });
    let t = &container_status(&pod, "hog")["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{}", pod["status"]);
    assert_eq!(t["exitCode"], 137, "{}", pod["status"]);
    let pod = c.wait_pod(NS, "oom", Duration::from_secs(20), "become Failed", |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["qosClass"], "Burstable", "{}", pod["status"]);
}

/// `runAsUser`/`runAsGroup` 1000 run the process as uid/gid 1000.
fn run_as_user(c: &Cluster) {
    c.apply_json(&pod_manifest(
        NS,
        "uid",
        json!({
            "containers": [busybox_container("app", "id -u; id -g; exec sleep 3600")],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "terminationGracePeriodSeconds": 1,
        }),
    ));
    c.wait_running(NS, "uid", POD_TIMEOUT);
    let log = c.wait_log(NS, "uid", None, "1000\n1000", POD_TIMEOUT);
    assert_eq!(log, "1000\n1000\n");
}

/// An image nobody serves: ErrImagePull, then ImagePullBackOff, with the
/// reason in the message. The registry is a closed port on loopback, so
/// the pull sends nothing off the machine.
fn missing_image(c: &Cluster) {
    let image = format!("127.0.0.1:{}/nanokube-test/nonexistent:1", free_port());
    c.apply_json(&pod_manifest(
        NS,
        "badimage",
        json!({"containers": [{"name": "app", "image": image, "imagePullPolicy": "Always"}]}),
    ));
    let mut seen: Vec<String> = Vec::new();
    let pod = c.wait_pod(
        NS,
        "badimage",
        Duration::from_secs(90),
        "reach ImagePullBackOff",
        |p| {
            let w = &container_status(p, "app")["state"]["waiting"];
            if let Some(r) = w["reason"].as_str() {
                if !seen.iter().any(|s| s == r) {
                    seen.push(r.to_string());
                }
            }
            w["reason"] == "ImagePullBackOff"
        },
    );
    // ErrImagePull may last less than a poll; then an event tells
    // (upstream records "Error: ErrImagePull").
    if !seen.iter().any(|r| r == "ErrImagePull") {
        c.wait_event(
            NS,
            "badimage",
            Duration::from_secs(15),
            "reporting ErrImagePull",
            |e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("ErrImagePull"))
            },
        );
    }
    let w = &container_status(&pod, "app")["state"]["waiting"];
    assert!(
        w["message"]
            .as_str()
            .is_some_and(|m| m.contains("nonexistent")),
        "waiting message does not name the image: {w}"
    );
    assert_eq!(pod["status"]["phase"], "Pending", "{}", pod["status"]);
    c.wait_event(
        NS,
        "badimage",
        Duration::from_secs(15),
        "Failed (pull)",
        |e| e["reason"] == "Failed" && e["type"] == "Warning",
    );
}

/// Invalid probe and volume specs are refused by API validation (422).
fn invalid_specs_rejected(c: &Cluster) {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bad-probe",
            {
                let mut ctr = busybox_container("app", "sleep 1");
                ctr["readinessProbe"] = json!({"exec": {"command": ["true"]}, "periodSeconds": -1});
                json!({"containers": [ctr]})
            },
            "periodSeconds",
        ),
        (
            "bad-mount",
            {
                let mut ctr = busybox_container("app", "sleep 1");
                ctr["volumeMounts"] = json!([{"name": "nope", "mountPath": "/x"}]);
                json!({"containers": [ctr]})
            },
            "volumeMounts",
        ),
        (
            "bad-hostpath",
            json!({
                "containers": [busybox_container("app", "sleep 1")],
                "volumes": [{"name": "h", "hostPath": {"path": "/tmp", "type": "Bogus"}}],
            }),
            "hostPath",
        ),
    ];
    for (name, spec, field) in cases {
        let (code, body) = c.api(
            "POST",
            &format!("/api/v1/namespaces/{NS}/pods"),
            Some(&pod_manifest(NS, name, spec)),
        );
        assert_eq!(code, 422, "{name}: {body}");
        assert_eq!(body["reason"], "Invalid", "{name}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(field)),
            "{name}: {body}"
        );
    }
}

/// A pod whose ConfigMap does not exist yet waits with an event naming
/// it, and starts once the ConfigMap is created.
fn missing_configmap_waits(c: &Cluster) {
    let mut ctr = busybox_container("app", "cat /etc/late/key; echo; exec sleep 3600");
    ctr["volumeMounts"] = json!([{"name": "late", "mountPath": "/etc/late"}]);
    c.apply_json(&pod_manifest(
        NS,
        "late",
        json!({
            "containers": [ctr],
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "late", "configMap": {"name": "late-cfg"}}],
        }),
    ));
    c.wait_event(
        NS,
        "late",
        Duration::from_secs(30),
        "naming the missing ConfigMap",
        |e| {
            e["type"] == "Warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("late-cfg"))
        },
    );
    let pod = c.pod(NS, "late").expect("pod late exists");
    assert!(
        !is_running(&pod),
        "started without its ConfigMap: {}",
        pod["status"]
    );
    assert_eq!(pod["status"]["phase"], "Pending", "{}", pod["status"]);
    c.apply_json(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "late-cfg", "namespace": NS},
        "data": {"key": "arrived"},
    }));
    c.wait_running(NS, "late", Duration::from_secs(90));
    c.wait_log(NS, "late", None, "arrived", POD_TIMEOUT);
}
