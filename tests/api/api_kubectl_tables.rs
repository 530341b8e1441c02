//! The tables real kubectl (1.27 and 1.33) prints from `nanokube server`'s
//! server-side Table responses: upstream's column names for `get` and
//! `get -o wide` of the common kinds, the cells that do not depend on time,
//! and `get events`.

use crate::common::{both_versions, header_columns, Kubectl, Proc};

both_versions!(table_columns_match_upstream, get_events_lists_created_event);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The cells of a table row (split on runs of 2+ spaces; empty cells vanish).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// Creates one object of each kind the table test prints, in `default`.
fn one_of_each(k: &Kubectl<'_>) {
    k.ok(&["apply", "-f", &fixture("app-v1.yaml")]);
    k.ok(&["create", "-f", &fixture("pod.yaml")]);
    k.ok(&["create", "-f", &fixture("node.yaml")]);
    k.ok(&["create", "-f", &fixture("event.yaml")]);
}

fn table_columns_match_upstream(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    one_of_each(&k);
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "pods",
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        (
            "deployments",
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        (
            "services",
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            &["SELECTOR"],
        ),
        (
            "nodes",
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            &[
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ],
        ),
        ("namespaces", &["NAME", "STATUS", "AGE"], &[]),
        ("configmaps", &["NAME", "DATA", "AGE"], &[]),
        ("secrets", &["NAME", "TYPE", "DATA", "AGE"], &[]),
        (
            "events",
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            &[],
        ),
    ];
    for (resource, normal, wide_extra) in cases {
        let out = k.ok(&["get", resource]);
        assert_eq!(
            header_columns(&out),
            *normal,
            "kubectl get {resource}:\n{out}"
        );
        let wide = k.ok(&["get", resource, "-o", "wide"]);
        let mut expected: Vec<&str> = normal.to_vec();
        expected.extend_from_slice(wide_extra);
        if *resource == "events" {
            expected = vec![
                "LAST SEEN",
                "TYPE",
                "REASON",
                "OBJECT",
                "SUBOBJECT",
                "SOURCE",
                "MESSAGE",
                "FIRST SEEN",
                "COUNT",
                "NAME",
            ];
        }
        assert_eq!(
            header_columns(&wide),
            expected,
            "kubectl get {resource} -o wide:\n{wide}"
        );
    }
    // the rows' cells that do not depend on time
    let pod = k.ok(&["get", "pod", "p", "-o", "wide"]);
    let row = cells(pod.lines().nth(1).unwrap());
    assert_eq!(row[..4], ["p", "0/1", "Pending", "0"], "{pod}");
    assert_eq!(row[5..], ["<none>", "<none>", "<none>", "<none>"], "{pod}");
    let svc = k.ok(&["get", "svc", "web", "-o", "wide"]);
    let row = cells(svc.lines().nth(1).unwrap());
    assert_eq!(row[..2], ["web", "ClusterIP"], "{svc}");
    assert!(row[2].starts_with("10.43."), "{svc}");
    assert_eq!(row[3..5], ["<none>", "80/TCP"], "{svc}");
    assert_eq!(row[6], "app=web", "{svc}");
    let kubernetes = k.ok(&["get", "svc", "kubernetes"]);
    let row = cells(kubernetes.lines().nth(1).unwrap());
    assert_eq!(
        row[..5],
        ["kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP"],
        "{kubernetes}"
    );
    let node = k.ok(&["get", "node", "n1"]);
    let row = cells(node.lines().nth(1).unwrap());
    assert_eq!(row[..3], ["n1", "Unknown", "worker"], "{node}");
    let ns = k.ok(&["get", "ns"]);
    let names: Vec<&str> = ns.lines().skip(1).map(|l| cells(l)[0]).collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"],
        "{ns}"
    );
    assert!(ns.lines().skip(1).all(|l| cells(l)[1] == "Active"), "{ns}");
    let secrets = k.ok(&["get", "secret", "web-secret"]);
    assert_eq!(
        cells(secrets.lines().nth(1).unwrap())[..3],
        ["web-secret", "Opaque", "1"],
        "{secrets}"
    );
}

fn get_events_lists_created_event(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    assert_eq!(
        k.ok(&["create", "-f", &fixture("event.yaml")]),
        "event/web.17a0c0ffee created\n"
    );
    let out = k.ok(&["get", "events"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let row = cells(lines[1]);
    assert_eq!(
        row[1..],
        ["Warning", "Testing", "pod/web", "hello from the test"],
        "{out}"
    );
    assert!(
        row[0].ends_with('d'),
        "LAST SEEN of a 2024 event is in days: {out}"
    );
    let wide = k.ok(&["get", "events", "-o", "wide"]);
    let row = cells(wide.lines().nth(1).unwrap());
    assert_eq!(row[1..4], ["Warning", "Testing", "pod/web"], "{wide}");
    assert_eq!(row[4..6], ["tester, n1", "hello from the test"], "{wide}");
    assert_eq!(row[7..], ["3", "web.17a0c0ffee"], "{wide}");
    // the same event through events.k8s.io/v1
    let e = k.json(&["get", "events.v1.events.k8s.io", "web.17a0c0ffee"]);
    assert_eq!(e["apiVersion"], "events.k8s.io/v1");
    assert_eq!(e["regarding"]["name"], "web");
    assert_eq!(e["note"], "hello from the test");
    assert_eq!(e["deprecatedCount"], 3);
}
