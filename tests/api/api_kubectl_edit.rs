//! Real kubectl (1.27 and 1.33) changing objects on `nanokube server`:
//! the `create` generators, `label`, `annotate`, every `patch` type, `edit`,
//! `scale`, `set image`, `rollout restart`, `delete` in its forms, `diff`
//! and server-side dry runs.

use crate::common::{both_versions, Proc, KUBECTL_OLDEST};
use serde_json::{json, Value};

both_versions!(
    create_generators,
    label_and_annotate,
    patch_merge_json_strategic,
    edit_with_editor_and_kube_editor,
    scale_set_image_rollout_restart,
    delete_forms,
    diff_and_server_dry_run,
);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn create_generators(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    assert_eq!(
        k.ok(&["create", "namespace", "gen"]),
        "namespace/gen created\n"
    );
    let ns = k.json(&["get", "namespace", "gen"]);
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "gen",
        "{ns}"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "configmap",
            "x",
            "-n",
            "gen",
            "--from-literal=a=b",
            "--from-literal=c=d"
        ]),
        "configmap/x created\n"
    );
    let cm = k.json(&["get", "configmap", "x", "-n", "gen"]);
    assert_eq!(cm["data"], json!({"a": "b", "c": "d"}));
    assert_eq!(
        k.ok(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "gen",
            "--from-literal=k=v"
        ]),
        "secret/s created\n"
    );
    let s = k.json(&["get", "secret", "s", "-n", "gen"]);
    assert_eq!(s["data"], json!({"k": "dg=="}), "data is base64");
    assert_eq!(s["type"], "Opaque");
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "d",
            "-n",
            "gen",
            "--image=nginx:1.25",
            "--replicas=2"
        ]),
        "deployment.apps/d created\n"
    );
    let d = k.json(&["get", "deployment", "d", "-n", "gen"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"], json!({"matchLabels": {"app": "d"}}));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["name"],
        "nginx"
    );
    assert_eq!(
        k.ok(&["create", "serviceaccount", "robot", "-n", "gen"]),
        "serviceaccount/robot created\n"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "service",
            "clusterip",
            "svc",
            "-n",
            "gen",
            "--tcp=80:8080"
        ]),
        "service/svc created\n"
    );
    let svc = k.json(&["get", "service", "svc", "-n", "gen"]);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert!(svc["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.43.")));
    // creating it again: AlreadyExists
    let err = k.err(&[
        "create",
        "configmap",
        "x",
        "-n",
        "gen",
        "--from-literal=a=b",
    ]);
    assert_eq!(
        err,
        "error: failed to create configmap: configmaps \"x\" already exists\n"
    );
}

fn label_and_annotate(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    k.configmap("default", "x", &[("a", "1")], &[]);
    assert_eq!(
        k.ok(&["label", "cm", "x", "tier=web"]),
        "configmap/x labeled\n"
    );
    let err = k.err(&["label", "cm", "x", "tier=db"]);
    assert_eq!(
        err,
        "error: 'tier' already has a value (web), and --overwrite is false\n"
    );
    assert_eq!(
        k.ok(&["label", "cm", "x", "tier=db", "--overwrite"]),
        "configmap/x labeled\n"
    );
    assert_eq!(
        k.ok(&["label", "cm", "x", "extra=1"]),
        "configmap/x labeled\n"
    );
    assert_eq!(
        k.ok(&["label", "cm", "x", "extra-"]),
        "configmap/x unlabeled\n"
    );
    let cm = k.json(&["get", "cm", "x"]);
    assert_eq!(cm["metadata"]["labels"], json!({"tier": "db"}));

    // kubectl 1.27 prints "annotate" (its own bug, fixed in 1.28)
    let annotated = if version == KUBECTL_OLDEST {
        "configmap/x annotate\n"
    } else {
        "configmap/x annotated\n"
    };
    assert_eq!(
        k.ok(&["annotate", "cm", "x", "note=hello world"]),
        annotated
    );
    let err = k.err(&["annotate", "cm", "x", "note=bye"]);
    assert_eq!(
        err,
        "error: --overwrite is false but found the following declared annotation(s): \
         'note' already has a value (hello world)\n"
    );
    assert_eq!(
        k.ok(&["annotate", "cm", "x", "note=bye", "--overwrite"]),
        annotated
    );
    assert_eq!(k.ok(&["annotate", "cm", "x", "other=1"]), annotated);
    assert_eq!(k.ok(&["annotate", "cm", "x", "other-"]), annotated);
    let cm = k.json(&["get", "cm", "x"]);
    assert_eq!(cm["metadata"]["annotations"], json!({"note": "bye"}));
    // by selector, over several objects
    k.configmap("default", "y", &[("a", "1")], &[("tier", "db")]);
    assert_eq!(
        k.ok(&["label", "cm", "-l", "tier=db", "team=blue"]),
        "configmap/x labeled\nconfigmap/y labeled\n"
    );
    let names = k.ok(&["get", "cm", "-l", "team=blue", "-o", "name"]);
    assert_eq!(names, "configmap/x\nconfigmap/y\n");
}

fn patch_merge_json_strategic(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    k.configmap("default", "x", &[("a", "1"), ("b", "2")], &[]);
    assert_eq!(
        k.ok(&[
            "patch",
            "cm",
            "x",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"a":null,"m":"3"}}"#
        ]),
        "configmap/x patched\n"
    );
    assert_eq!(
        k.json(&["get", "cm", "x"])["data"],
        json!({"b": "2", "m": "3"})
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "cm",
            "x",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/data/j","value":"4"},{"op":"remove","path":"/data/b"}]"#
        ]),
        "configmap/x patched\n"
    );
    assert_eq!(
        k.json(&["get", "cm", "x"])["data"],
        json!({"j": "4", "m": "3"})
    );
    let rv = k.json(&["get", "cm", "x"])["metadata"]["resourceVersion"].clone();
    assert_eq!(
        k.ok(&[
            "patch",
            "cm",
            "x",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"m":"3"}}"#
        ]),
        "configmap/x patched (no change)\n"
    );
    assert_eq!(
        k.json(&["get", "cm", "x"])["metadata"]["resourceVersion"],
        rv
    );
    // a failing JSON patch test op
    let err = k.err(&[
        "patch",
        "cm",
        "x",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/data/m","value":"nope"}]"#,
    ]);
    assert!(err.contains("/data/m"), "{err}");
    assert_eq!(
        k.json(&["get", "cm", "x"])["data"],
        json!({"j": "4", "m": "3"})
    );

    // strategic merge: containers and env merge by name
    k.ok(&["apply", "-f", &fixture("app-v1.yaml")]);
    let sm = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"NEW","value":"5"}]}]}}}}"#;
    assert_eq!(
        k.ok(&["patch", "deployment", "web", "-p", sm]),
        "deployment.apps/web patched\n"
    );
    let d = k.json(&["get", "deployment", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["env"],
        json!([{"name": "NEW", "value": "5"}, {"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}]),
        "strategic merge prepends the new env var, keeps the others"
    );
    assert_eq!(c["image"], "nginx:1.25");
    let del = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"DROP","$patch":"delete"}]}]}}}}"#;
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "strategic",
        "-p",
        del,
    ]);
    let d = k.json(&["get", "deployment", "web"]);
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["NEW", "KEEP"]);
    // the same patch as a merge patch replaces the whole containers list,
    // which leaves the container without an image: rejected
    let err = k.err(&["patch", "deployment", "web", "--type", "merge", "-p", sm]);
    assert!(
        err.contains(
            "The Deployment \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        ),
        "{err}"
    );
    let err = k.err(&["patch", "cm", "x", "--type", "strategic", "-p", "{not json"]);
    assert!(
        err.starts_with("Error from server (BadRequest): error decoding patch: "),
        "{err}"
    );
}

fn edit_with_editor_and_kube_editor(version: &str) {
    let p = Proc::server();
    k_edit(&p, version, "EDITOR");
    k_edit(&p, version, "KUBE_EDITOR");
}

fn k_edit(p: &Proc, version: &str, var: &str) {
    let name = format!("edit-{}", var.to_lowercase().replace('_', "-"));
    let k = p.kubectl(version);
    k.configmap("default", &name, &[("color", "blue")], &[]);
    let k = k.env(var, "sed -i s/blue/green/");
    let k = if var == "KUBE_EDITOR" {
        // KUBE_EDITOR wins over EDITOR
        k.env("EDITOR", "false")
    } else {
        k
    };
    assert_eq!(
        k.ok(&["edit", "configmap", &name]),
        format!("configmap/{name} edited\n")
    );
    let cm = k.json(&["get", "configmap", &name]);
    assert_eq!(cm["data"], json!({"color": "green"}));
    // an edit that changes nothing
    let out = k.run(&["edit", "configmap", &name]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Edit cancelled, no changes made.\n"
    );
    // an edit the server rejects leaves the object alone
    let bad = p.kubectl(version).env(var, "sed -i s/color:/Bad_Key!:/");
    let bad = if var == "KUBE_EDITOR" {
        bad.env("EDITOR", "false")
    } else {
        bad
    };
    let err = bad.err(&["edit", "configmap", &name]);
    assert!(err.contains("is invalid"), "{err}");
    assert_eq!(
        k.json(&["get", "configmap", &name])["data"],
        json!({"color": "green"})
    );
}

fn scale_set_image_rollout_restart(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    k.ok(&["apply", "-f", &fixture("app-v1.yaml")]);
    assert_eq!(
        k.ok(&["scale", "deployment", "web", "--replicas=3"]),
        "deployment.apps/web scaled\n"
    );
    let d = k.json(&["get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    let scale = k.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]);
    let scale: Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    let err = k.err(&[
        "scale",
        "deployment",
        "web",
        "--replicas=5",
        "--current-replicas=2",
    ]);
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");

    assert_eq!(
        k.ok(&["set", "image", "deployment/web", "web=nginx:2"]),
        "deployment.apps/web image updated\n"
    );
    let d = k.json(&["get", "deployment", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let err = k.err(&["set", "image", "deployment/web", "nosuch=nginx:2"]);
    assert_eq!(err, "error: unable to find container named \"nosuch\"\n");

    let generation = d["metadata"]["generation"].as_i64().unwrap();
    assert_eq!(
        k.ok(&["rollout", "restart", "deployment/web"]),
        "deployment.apps/web restarted\n"
    );
    let d = k.json(&["get", "deployment", "web"]);
    let at = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no restartedAt annotation: {d}"));
    assert!(at.len() >= 20 && at.contains('T'), "{at}");
    assert_eq!(d["metadata"]["generation"].as_i64(), Some(generation + 1));
    assert_eq!(d["spec"]["replicas"], 3);
}

fn delete_forms(version: &str) {
    let p = Proc::server();
    let k = p.kubectl(version);
    let deleted = |what: &str, _ns: &str| format!("{what} deleted\n");
    k.configmap("default", "w", &[("a", "1")], &[]);
    assert_eq!(
        k.ok(&["delete", "cm", "w", "--wait"]),
        deleted("configmap \"w\"", "default")
    );
    let err = k.err(&["get", "cm", "w"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"w\" not found\n"
    );
    let err = k.err(&["delete", "cm", "w"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"w\" not found\n"
    );
    assert_eq!(k.ok(&["delete", "cm", "w", "--ignore-not-found"]), "");

    k.configmap("default", "g", &[("a", "1")], &[]);
    assert_eq!(
        k.ok(&["delete", "cm", "g", "--grace-period=5"]),
        deleted("configmap \"g\"", "default")
    );
    k.err(&["get", "cm", "g"]);

    // an unscheduled pod goes at once, with or without --force
    k.ok(&["create", "-f", &fixture("pod.yaml")]);
    let out = k.run(&["delete", "pod", "p", "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, deleted("pod \"p\" force", "default"));
    assert!(
        stderr.starts_with("Warning: Immediate deletion does not wait for confirmation"),
        "{stderr}"
    );
    k.err(&["get", "pod", "p"]);
    k.ok(&["create", "-f", &fixture("pod.yaml")]);
    assert_eq!(
        k.ok(&["delete", "pod", "p"]),
        deleted("pod \"p\"", "default")
    );
    k.err(&["get", "pod", "p"]);

    // --all in one namespace leaves the others alone
    k.namespace("ns1");
    k.namespace("ns2");
    for (ns, name) in [("ns1", "a"), ("ns1", "b"), ("ns2", "c")] {
        k.configmap(ns, name, &[("k", "v")], &[]);
    }
    // (every namespace gets the root CA; its controller puts it back)
    for ns in ["ns1", "ns2"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !k
            .run(&["get", "cm", "kube-root-ca.crt", "-n", ns])
            .status
            .success()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no kube-root-ca.crt in {ns}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let out = k.ok(&["delete", "cm", "--all", "-n", "ns1"]);
    assert_eq!(
        out,
        format!(
            "{}{}{}",
            deleted("configmap \"a\"", "ns1"),
            deleted("configmap \"b\"", "ns1"),
            deleted("configmap \"kube-root-ca.crt\"", "ns1")
        )
    );
    let left = k.ok(&["get", "cm", "-n", "ns1", "-o", "name"]);
    assert!(
        left.lines().all(|l| l == "configmap/kube-root-ca.crt"),
        "{left}"
    );
    assert_eq!(
        k.ok(&["get", "cm", "-n", "ns2", "-o", "name"]),
        "configmap/c\nconfigmap/kube-root-ca.crt\n"
    );
    // by label, and a namespace with its contents
    k.configmap("ns2", "l", &[("k", "v")], &[("drop", "yes")]);
    assert_eq!(
        k.ok(&["delete", "cm", "-n", "ns2", "-l", "drop=yes"]),
        deleted("configmap \"l\"", "ns2")
    );
    assert_eq!(
        k.ok(&["get", "cm", "-n", "ns2", "-o", "name"]),
        "configmap/c\nconfigmap/kube-root-ca.crt\n"
    );
}

fn diff_and_server_dry_run(version: &str) {
    require_diff();
    let p = Proc::server();
    let k = p.kubectl(version);
    let v1 = fixture("app-v1.yaml");
    let v2 = fixture("app-v2.yaml");
    // nothing exists: everything is new
    let out = k.run(&["diff", "-f", &v1]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("+  name: web-config"), "{diff}");
    k.ok(&["apply", "-f", &v1]);
    let before = k.json(&["get", "deployment", "web"]);
    // unchanged (for the objects without stringData)
    let cm_only = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let out = k.run_stdin(&["diff", "-f", "-"], cm_only);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    // changed
    let out = k.run(&["diff", "-f", &v2]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let diff = String::from_utf8_lossy(&out.stdout);
    for line in [
        "-        image: nginx:1.25",
        "+        image: nginx:1.26",
        "-        - name: DROP",
        "+        - name: ADDED",
        "+          name: https",
        "-  a: \"1\"",
        "+  a: changed",
    ] {
        assert!(
            diff.lines().any(|l| l.trim_end() == line),
            "no line {line:?} in:\n{diff}"
        );
    }
    // diff is a server dry run: nothing changed (the controller may still
    // be writing status, so compare what a write of the spec would change)
    let after = k.json(&["get", "deployment", "web"]);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(after["spec"], before["spec"]);

    let out = k.ok(&["apply", "--dry-run=server", "-f", &v2]);
    assert_eq!(
        out,
        "deployment.apps/web configured (server dry run)\nservice/web unchanged (server dry run)\n\
         configmap/web-config configured (server dry run)\nsecret/web-secret configured (server dry run)\n"
    );
    let after = k.json(&["get", "deployment", "web"]);
    for part in [
        "/spec",
        "/metadata/generation",
        "/metadata/annotations",
        "/metadata/labels",
    ] {
        assert_eq!(
            after.pointer(part),
            before.pointer(part),
            "apply --dry-run=server changed {part}"
        );
    }
    assert_eq!(
        k.json(&["get", "cm", "web-config"])["data"],
        json!({"a": "1", "b": "2"})
    );
    // a dry-run create does not create
    let out = k.stdin_ok(
        &["apply", "--dry-run=server", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ghost\n",
    );
    assert_eq!(out, "configmap/ghost created (server dry run)\n");
    let err = k.err(&["get", "cm", "ghost"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"ghost\" not found\n"
    );
}

fn require_diff() {
    crate::common::require_tool("diff", "diffutils");
}
