//! Real kubectl (the oldest and newest supported, 1.27 and 1.33) against
//! `nanokube server`: discovery, `apply` with upstream's three-way merge,
//! every `get` output format and selector, and `get --watch`. Table columns
//! are in `api_kubectl_tables.rs`, mutating verbs in `api_kubectl_edit.rs`.

use std::time::Duration;

use crate::common::{both_versions, header_columns, Kubectl, Proc, KUBECTL_NEWEST};
use serde_json::{json, Value};

both_versions!(
    cluster_info,
    api_resources_and_versions,
    apply_then_apply_changed_version,
    get_output_formats_and_selectors,
    get_watch_prints_changes,
);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Removes ANSI colour sequences (`cluster-info` colours its output).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The cells of a table row (split on runs of 2+ spaces; empty cells vanish).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn cluster_info(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    let out = strip_ansi(&k.ok(&["cluster-info"]));
    assert_eq!(
        out,
        format!(
            "Kubernetes control plane is running at {0}\nCoreDNS is running at \
             {0}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n\n\
             To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
            p.api_url()
        )
    );
}

/// (short name, NAME, APIVERSION, NAMESPACED, KIND) as upstream lists them.
const SHORT_NAMES: &[(&str, &str, &str, &str, &str)] = &[
    ("po", "pods", "v1", "true", "Pod"),
    ("svc", "services", "v1", "true", "Service"),
    ("deploy", "deployments", "apps/v1", "true", "Deployment"),
    ("rs", "replicasets", "apps/v1", "true", "ReplicaSet"),
    ("sts", "statefulsets", "apps/v1", "true", "StatefulSet"),
    ("ds", "daemonsets", "apps/v1", "true", "DaemonSet"),
    ("cm", "configmaps", "v1", "true", "ConfigMap"),
    ("ns", "namespaces", "v1", "false", "Namespace"),
    ("no", "nodes", "v1", "false", "Node"),
    ("pv", "persistentvolumes", "v1", "false", "PersistentVolume"),
    (
        "pvc",
        "persistentvolumeclaims",
        "v1",
        "true",
        "PersistentVolumeClaim",
    ),
    ("sa", "serviceaccounts", "v1", "true", "ServiceAccount"),
    ("ep", "endpoints", "v1", "true", "Endpoints"),
    ("ev", "events", "v1", "true", "Event"),
    (
        "hpa",
        "horizontalpodautoscalers",
        "autoscaling/v2",
        "true",
        "HorizontalPodAutoscaler",
    ),
    ("cj", "cronjobs", "batch/v1", "true", "CronJob"),
    (
        "ing",
        "ingresses",
        "networking.k8s.io/v1",
        "true",
        "Ingress",
    ),
    (
        "netpol",
        "networkpolicies",
        "networking.k8s.io/v1",
        "true",
        "NetworkPolicy",
    ),
    (
        "pdb",
        "poddisruptionbudgets",
        "policy/v1",
        "true",
        "PodDisruptionBudget",
    ),
    (
        "pc",
        "priorityclasses",
        "scheduling.k8s.io/v1",
        "false",
        "PriorityClass",
    ),
    (
        "sc",
        "storageclasses",
        "storage.k8s.io/v1",
        "false",
        "StorageClass",
    ),
    (
        "crd",
        "customresourcedefinitions",
        "apiextensions.k8s.io/v1",
        "false",
        "CustomResourceDefinition",
    ),
    ("quota", "resourcequotas", "v1", "true", "ResourceQuota"),
    ("limits", "limitranges", "v1", "true", "LimitRange"),
    (
        "rc",
        "replicationcontrollers",
        "v1",
        "true",
        "ReplicationController",
    ),
];

/// Resources without short names that must be listed (NAME, APIVERSION).
const OTHER_RESOURCES: &[(&str, &str)] = &[
    ("secrets", "v1"),
    ("podtemplates", "v1"),
    ("bindings", "v1"),
    ("controllerrevisions", "apps/v1"),
    ("jobs", "batch/v1"),
    ("leases", "coordination.k8s.io/v1"),
    ("endpointslices", "discovery.k8s.io/v1"),
    ("events", "events.k8s.io/v1"),
    ("ingressclasses", "networking.k8s.io/v1"),
    ("clusterrolebindings", "rbac.authorization.k8s.io/v1"),
    ("clusterroles", "rbac.authorization.k8s.io/v1"),
    ("rolebindings", "rbac.authorization.k8s.io/v1"),
    ("roles", "rbac.authorization.k8s.io/v1"),
    ("csidrivers", "storage.k8s.io/v1"),
    ("volumeattachments", "storage.k8s.io/v1"),
];

fn api_resources_and_versions(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    let out = k.ok(&["api-resources"]);
    assert_eq!(
        header_columns(&out),
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(cells).collect();
    for &(short, name, api_version, namespaced, kind) in SHORT_NAMES {
        let row = rows
            .iter()
            .find(|r| r.len() == 5 && r[0] == name && r[2] == api_version)
            .unwrap_or_else(|| panic!("no row for {name} ({api_version}) in:\n{out}"));
        assert!(
            row[1].split(',').any(|s| s == short),
            "{name}: short names {:?} lack {short}",
            row[1]
        );
        assert_eq!(
            (row[3], row[4]),
            (namespaced, kind),
            "{name}'s row: {row:?}"
        );
    }
    for &(name, api_version) in OTHER_RESOURCES {
        assert!(
            rows.iter()
                .any(|r| r.first() == Some(&name) && r.contains(&api_version)),
            "no row for {name} ({api_version}) in:\n{out}"
        );
    }
    // every short name resolves, in one `get` across all namespaces
    let shorts: Vec<&str> = SHORT_NAMES.iter().map(|s| s.0).collect();
    let list = shorts.join(",");
    let names = k.ok(&["get", &list, "-A", "-o", "name"]);
    assert!(
        names.lines().any(|l| l == "namespace/default"),
        "`get {list} -A -o name` printed:\n{names}"
    );
    assert!(
        names.lines().any(|l| l == "service/kubernetes"),
        "`get {list} -A -o name` printed:\n{names}"
    );
    // `-o name` of a cluster-scoped kind only
    let ns = k.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(ns.lines().any(|l| l == "namespaces"), "{ns}");
    assert!(!ns.lines().any(|l| l == "pods"), "{ns}");

    let versions = k.ok(&["api-versions"]);
    let lines: Vec<&str> = versions.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "api-versions is sorted");
    for v in [
        "apiextensions.k8s.io/v1",
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "networking.k8s.io/v1",
        "policy/v1",
        "rbac.authorization.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "storage.k8s.io/v1",
        "v1",
    ] {
        assert!(lines.contains(&v), "api-versions lacks {v}:\n{versions}");
    }
}

#[test]
fn explain_deployment_strategy() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    let out = k.ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        out.starts_with("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n"),
        "{out}"
    );
    assert!(
        out.contains("FIELD: strategy <DeploymentStrategy>"),
        "{out}"
    );
    assert!(
        out.contains("The deployment strategy to use to replace existing pods with new ones."),
        "{out}"
    );
    assert!(
        out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
        "{out}"
    );
    // Upstream also prints `enum: Recreate, RollingUpdate` here; the
    // schemas we generate from carry no enum values (a known gap).
    assert!(out.contains("type\t<string>\n"), "{out}");
    assert!(
        out.contains("DeploymentStrategy describes how to replace existing pods with new ones."),
        "{out}"
    );
    assert!(
        out.contains("\"Recreate\"") && out.contains("\"RollingUpdate\""),
        "{out}"
    );
}

/// The env of the first container as name → value.
fn env_of(deploy: &Value) -> Vec<(String, String)> {
    deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap_or_else(|| panic!("no env: {deploy}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn apply_then_apply_changed_version(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    // (`kubectl create namespace` itself is tested in api_kubectl_edit.rs)
    k.namespace("demo");
    let v1 = fixture("app-v1.yaml");
    assert_eq!(
        k.ok(&["apply", "-n", "demo", "-f", &v1]),
        "deployment.apps/web created\nservice/web created\nconfigmap/web-config created\n\
         secret/web-secret created\n"
    );
    // changes made by someone else, which apply must keep
    assert_eq!(
        k.ok(&["set", "env", "-n", "demo", "deployment/web", "OOB=x"]),
        "deployment.apps/web env updated\n"
    );
    assert_eq!(
        k.ok(&["label", "-n", "demo", "deployment/web", "owner=ops"]),
        "deployment.apps/web labeled\n"
    );
    let before = k.json(&["get", "-n", "demo", "deployment", "web"]);
    assert_eq!(
        before["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let v2 = fixture("app-v2.yaml");
    assert_eq!(
        k.ok(&["apply", "-n", "demo", "-f", &v2]),
        // the Secret is always "configured": its stringData is never stored,
        // so every apply patches it in again (upstream does the same)
        "deployment.apps/web configured\nservice/web unchanged\nconfigmap/web-config configured\n\
         secret/web-secret configured\n"
    );
    let d = k.json(&["get", "-n", "demo", "deployment", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.26", "{d}");
    assert_eq!(
        env_of(&d),
        [("KEEP", "1"), ("ADDED", "3"), ("OOB", "x")].map(|(a, b)| (a.to_string(), b.to_string())),
        "env merged by name: DROP removed, ADDED added, OOB (not ours) kept, \
         in upstream's $setElementOrder order"
    );
    assert_eq!(
        c["ports"],
        json!([
            {"containerPort": 80, "name": "http", "protocol": "TCP"},
            {"containerPort": 443, "name": "https", "protocol": "TCP"}
        ]),
        "ports merged by containerPort, defaults filled"
    );
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web", "owner": "ops"})
    );
    assert_eq!(
        d["spec"]["strategy"]["type"], "RollingUpdate",
        "defaulted field kept"
    );
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(d["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(d["metadata"]["generation"].as_i64() > before["metadata"]["generation"].as_i64());
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("no last-applied-configuration: {d}"));
    let last: Value = serde_json::from_str(last).expect("last-applied is JSON");
    assert_eq!(
        last["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(last["metadata"]["namespace"], "demo");

    let cm = k.json(&["get", "-n", "demo", "configmap", "web-config"]);
    assert_eq!(cm["data"], json!({"a": "changed", "b": "2"}));
    let secret = k.json(&["get", "-n", "demo", "secret", "web-secret"]);
    assert_eq!(secret["data"], json!({"password": "czNjcmV0"}));
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none(), "{secret}");
    // applying the same file again changes nothing; kubectl still sends
    // the Deployment a patch (the live env has OOB, so its
    // $setElementOrder/env differs) and the Secret its stringData, which
    // the server must treat as no-ops (same resourceVersion)
    assert_eq!(
        k.ok(&["apply", "-n", "demo", "-f", &v2]),
        "deployment.apps/web configured\nservice/web unchanged\nconfigmap/web-config unchanged\n\
         secret/web-secret configured\n"
    );
    let again = k.json(&["get", "-n", "demo", "deployment", "web"]);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        d["metadata"]["resourceVersion"]
    );
    assert_eq!(env_of(&again), env_of(&d));
    let secret_again = k.json(&["get", "-n", "demo", "secret", "web-secret"]);
    assert_eq!(
        secret_again["metadata"]["resourceVersion"],
        secret["metadata"]["resourceVersion"]
    );
}

/// Creates configmaps a, b, c in `ns1` and d in `ns2` with labels.
fn labelled_configmaps(k: &Kubectl<'_>) {
    k.namespace("ns1");
    k.namespace("ns2");
    let data = [("k", "v")];
    k.configmap("ns1", "a", &data, &[("app", "x"), ("env", "a")]);
    k.configmap("ns1", "b", &data, &[("env", "b")]);
    k.configmap("ns1", "c", &data, &[("app", "x"), ("env", "c")]);
    k.configmap("ns2", "d", &data, &[("app", "x"), ("env", "a")]);
}

fn get_output_formats_and_selectors(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    labelled_configmaps(&k);
    k.ok(&["apply", "-n", "ns1", "-f", &fixture("app-v1.yaml")]);

    // The deployment controller creates the ReplicaSet (no nodes: nothing
    // becomes ready), so wait for UP-TO-DATE.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut wide = k.ok(&["get", "-n", "ns1", "deployment", "web", "-o", "wide"]);
    while cells(wide.lines().nth(1).unwrap_or("")).get(2) != Some(&"2")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        wide = k.ok(&["get", "-n", "ns1", "deployment", "web", "-o", "wide"]);
    }
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(lines.len(), 2, "{wide}");
    let row = cells(lines[1]);
    // NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR
    assert_eq!(row.len(), 8, "{wide}");
    assert_eq!(&row[..4], ["web", "0/2", "2", "0"], "{wide}");
    assert_eq!(&row[5..], ["web", "nginx:1.25", "app=web"], "{wide}");

    let yaml = k.ok(&["get", "-n", "ns1", "configmap", "a", "-o", "yaml"]);
    assert!(
        yaml.starts_with("apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n"),
        "{yaml}"
    );
    let v: Value = serde_saphyr::from_str(&yaml).expect("-o yaml is YAML");
    assert_eq!(v["metadata"]["labels"], json!({"app": "x", "env": "a"}));

    let j = k.json(&["get", "-n", "ns1", "configmap", "a"]);
    assert_eq!(j["kind"], "ConfigMap");
    assert_eq!(j["metadata"]["namespace"], "ns1");
    assert!(j["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert!(
        j["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36),
        "{j}"
    );
    assert!(j["metadata"]["creationTimestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let list = k.json(&["get", "-n", "ns1", "configmaps"]);
    assert_eq!(list["kind"], "List");
    let jp = k.ok(&[
        "get",
        "-n",
        "ns1",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas}",
    ]);
    assert_eq!(jp, "nginx:1.25 2");
    let jp = k.ok(&[
        "get",
        "-n",
        "ns1",
        "cm",
        "-l",
        "app=x",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(jp, "a c");
    let cc = k.ok(&[
        "get",
        "-n",
        "ns1",
        "cm",
        "-l",
        "env",
        "-o",
        "custom-columns=NAME:.metadata.name,ENV:.metadata.labels.env,VALUE:.data.k",
    ]);
    assert_eq!(
        cc,
        "NAME   ENV   VALUE\na      a     v\nb      b     v\nc      c     v\n"
    );

    let name = |args: &[&str]| -> String {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "name"]);
        k.ok(&all)
    };
    assert_eq!(
        name(&["-n", "ns1", "cm", "-l", "app=x"]),
        "configmap/a\nconfigmap/c\n"
    );
    assert_eq!(
        name(&["-n", "ns1", "cm", "-l", "env in (a,b)"]),
        "configmap/a\nconfigmap/b\n"
    );
    assert_eq!(
        name(&["-n", "ns1", "cm", "-l", "env notin (a,b),env"]),
        "configmap/c\n"
    );
    assert_eq!(
        name(&["-n", "ns1", "cm", "-l", "!app,env"]),
        "configmap/b\n"
    );
    assert_eq!(
        name(&["-n", "ns1", "cm", "--field-selector", "metadata.name=b"]),
        "configmap/b\n"
    );
    assert_eq!(
        name(&[
            "-n",
            "ns1",
            "cm",
            "-l",
            "env",
            "--field-selector",
            "metadata.name!=b"
        ]),
        "configmap/a\nconfigmap/c\n"
    );
    assert_eq!(
        name(&["-n", "ns1", "deploy,svc,cm,secret", "-l", "app=web"]),
        "deployment.apps/web\nservice/web\n"
    );

    for all in ["--all-namespaces", "-A"] {
        let t = k.ok(&["get", "cm", all, "-l", "app=x"]);
        assert_eq!(
            header_columns(&t),
            ["NAMESPACE", "NAME", "DATA", "AGE"],
            "{t}"
        );
        let rows: Vec<Vec<&str>> = t.lines().skip(1).map(|l| cells(l)[..3].to_vec()).collect();
        assert_eq!(
            rows,
            [["ns1", "a", "1"], ["ns1", "c", "1"], ["ns2", "d", "1"]],
            "{t}"
        );
    }
    let out = k.run(&["get", "-n", "ns2", "cm", "-l", "app=nothing"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No resources found in ns2 namespace.\n"
    );
    let err = k.err(&["get", "-n", "ns1", "cm", "missing"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"missing\" not found\n"
    );
}

fn get_watch_prints_changes(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    k.configmap("default", "w", &[("a", "1")], &[]);
    let watch = k.background(&["get", "cm", "w", "--watch"]);
    let first = watch.expect_lines(2, Duration::from_secs(20));
    assert_eq!(
        header_columns(&first[0]),
        ["NAME", "DATA", "AGE"],
        "{first:?}"
    );
    assert_eq!(cells(&first[1])[..2], ["w", "1"], "{first:?}");
    k.ok(&["patch", "configmap", "w", "-p", r#"{"data":{"b":"2"}}"#]);
    let next = watch.expect_lines(1, Duration::from_secs(20));
    assert_eq!(cells(&next[0])[..2], ["w", "2"], "{next:?}");
    k.configmap("default", "other", &[("a", "1")], &[]);
    k.ok(&["delete", "configmap", "w"]);
    // `get NAME -w` only shows that object; the deletion is another line
    let last = watch.expect_lines(1, Duration::from_secs(20));
    assert_eq!(cells(&last[0])[..2], ["w", "2"], "{last:?}");
    assert_eq!(watch.next_line(Duration::from_millis(500)), None);

    // -o name watch: one line per event
    let watch = k.background(&["get", "cm", "-w", "-o", "name"]);
    assert_eq!(
        watch.expect_lines(2, Duration::from_secs(20)),
        ["configmap/kube-root-ca.crt", "configmap/other"]
    );
    k.configmap("default", "late", &[("a", "1")], &[]);
    assert_eq!(
        watch.expect_lines(1, Duration::from_secs(20)),
        ["configmap/late"]
    );
}
