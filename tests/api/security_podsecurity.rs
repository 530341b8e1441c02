//! PodSecurity admission with real kubectl against `nanokube server
//! --disable-agent`: enforce refuses pods with upstream's violation list,
//! warn adds the `Warning:` kubectl prints, workloads are never refused,
//! raising a namespace's enforce level names the pods that break it, bad
//! labels are invalid, and kube-system is exempt (as k3s configures it).

use std::time::Duration;

use crate::common::{poll_until, Kubectl, Proc, KUBECTL_NEWEST, KUBECTL_OLDEST};

/// The violations of a pod with one container `c` that only sets
/// `privileged: true`, under restricted.
const PRIVILEGED_UNDER_RESTRICTED: &str = "privileged (container \"c\" must not set securityContext.privileged=true), \
allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

/// What a plain pod breaks under restricted.
const PLAIN_UNDER_RESTRICTED: &str = "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

/// A namespace with PodSecurity `labels` (`mode=level` pairs).
fn namespace(k: &Kubectl, name: &str, labels: &[(&str, &str)]) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(mode, level)| format!("    pod-security.kubernetes.io/{mode}: {level}\n"))
        .collect();
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("  labels:\n{}", labels.concat())
    };
    k.create_yaml(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n{labels}"
    ));
}

/// A pod `name` with one busybox container `c` and extra spec lines.
fn pod(ns: &str, name: &str, container_extra: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec_extra}  \
         containers:\n  - name: c\n    image: busybox\n{container_extra}"
    )
}

const PRIVILEGED: &str = "    securityContext:\n      privileged: true\n";

/// `kubectl create -f -`: (success, stderr).
fn create(k: &Kubectl, yaml: &str) -> (bool, String) {
    let out = k.run_stdin(&["create", "-f", "-"], yaml);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn enforce_refuses_with_the_violation_list_and_warn_only_warns() {
    let server = Proc::server();
    for version in [KUBECTL_NEWEST, KUBECTL_OLDEST] {
        let k = server.kubectl(version);
        let ns = |s: &str| format!("{s}-{}", version.replace('.', ""));

        // restricted: the privileged pod is refused with every violation
        let r = ns("restricted");
        namespace(&k, &r, &[("enforce", "restricted")]);
        let stderr = k.stdin_err(&["create", "-f", "-"], &pod(&r, "p", PRIVILEGED, ""));
        assert_eq!(
            stderr,
            format!(
                "Error from server (Forbidden): error when creating \"STDIN\": pods \"p\" is forbidden: \
                 violates PodSecurity \"restricted:latest\": {PRIVILEGED_UNDER_RESTRICTED}\n"
            ),
            "kubectl {version}"
        );
        // the -version label shows in the message
        k.ok(&[
            "label",
            "ns",
            &r,
            "pod-security.kubernetes.io/enforce-version=v1.30",
        ]);
        let stderr = k.stdin_err(&["create", "-f", "-"], &pod(&r, "p", PRIVILEGED, ""));
        assert!(
            stderr.contains("violates PodSecurity \"restricted:v1.30\": privileged ("),
            "{stderr}"
        );
        assert!(k.err(&["get", "pod", "p", "-n", &r]).contains("NotFound"));

        // baseline: a plain pod is fine, hostNetwork is not
        let b = ns("baseline");
        namespace(&k, &b, &[("enforce", "baseline")]);
        let (ok, stderr) = create(&k, &pod(&b, "plain", "", ""));
        assert!(ok && stderr.is_empty(), "{stderr}");
        let stderr = k.stdin_err(
            &["create", "-f", "-"],
            &pod(&b, "hostnet", "", "  hostNetwork: true\n"),
        );
        assert_eq!(
            stderr,
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"hostnet\" is forbidden: \
             violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)\n"
        );

        // warn only: accepted, with the warning kubectl prints
        let w = ns("warn");
        namespace(&k, &w, &[("warn", "restricted")]);
        let (ok, stderr) = create(&k, &pod(&w, "p", "", ""));
        assert!(ok, "{stderr}");
        assert_eq!(
            stderr,
            format!("Warning: would violate PodSecurity \"restricted:latest\": {PLAIN_UNDER_RESTRICTED}\n")
        );
        // enforce baseline + warn restricted: the privileged pod is refused
        // at baseline, without a warning on top
        let both = ns("both");
        namespace(
            &k,
            &both,
            &[("enforce", "baseline"), ("warn", "restricted")],
        );
        let stderr = k.stdin_err(&["create", "-f", "-"], &pod(&both, "p", PRIVILEGED, ""));
        assert!(!stderr.contains("Warning:"), "{stderr}");
        assert!(
            stderr.ends_with(
                "violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set \
                 securityContext.privileged=true)\n"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn workloads_warn_controllers_are_refused_and_labels_are_checked() {
    let server = Proc::server();
    let k = server.kubectl(KUBECTL_NEWEST);
    namespace(
        &k,
        "r",
        &[("enforce", "restricted"), ("warn", "restricted")],
    );
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: r\n\
        spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      \
        labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n";
    let (ok, stderr) = create(&k, deployment);
    assert!(ok, "a Deployment is never refused: {stderr}");
    assert_eq!(
        stderr,
        format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {PLAIN_UNDER_RESTRICTED}\n"
        )
    );
    // its pods are refused in the ReplicaSet controller, with the reason in
    // the ReplicaSet's events (as upstream)
    let refused = "is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false";
    let mut events = String::new();
    let seen = poll_until(Duration::from_secs(30), Duration::from_millis(300), || {
        events = k.ok(&[
            "get",
            "events",
            "-n",
            "r",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        events.contains(refused)
    });
    assert!(seen, "no FailedCreate event with the violation: {events:?}");
    assert!(
        events.starts_with("Error creating: pods \"web-"),
        "{events}"
    );
    assert_eq!(k.ok(&["get", "pods", "-n", "r", "-o", "name"]), "");

    // enforce only (upstream): workloads get no warning, only pods are judged
    namespace(&k, "e", &[("enforce", "restricted")]);
    let (ok, stderr) = create(&k, &deployment.replace("namespace: r", "namespace: e"));
    assert!(ok && stderr.is_empty(), "{stderr}");

    // raising the enforce level names the pods that break it
    namespace(&k, "x", &[]);
    for name in ["p1", "p2"] {
        k.create_yaml(&pod("x", name, PRIVILEGED, ""));
    }
    k.create_yaml(&pod("x", "plain", "", ""));
    let out = k.run(&[
        "label",
        "ns",
        "x",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Warning: existing pods in namespace \"x\" violate the new PodSecurity enforce level \"baseline:latest\"\n\
         Warning: p1 (and 1 other pod): privileged\n"
    );
    // those pods stay, but only updates that change images are judged again
    k.ok(&["label", "pod", "p1", "-n", "x", "touched=yes"]);
    let stderr = k.err(&["set", "image", "pod/p1", "-n", "x", "c=busybox:1.36"]);
    assert_eq!(
        stderr,
        "error: failed to patch image update to pod template: pods \"p1\" is forbidden: \
         violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)\n"
    );
    // the upstream way to try a level first: a server-side dry run
    let out = k.run(&[
        "label",
        "--dry-run=server",
        "--overwrite",
        "ns",
        "x",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Warning: existing pods in namespace \"x\" violate the new PodSecurity enforce level \"restricted:latest\"\n\
             Warning: p1 (and 1 other pod): privileged, allowPrivilegeEscalation != false, unrestricted capabilities, \
             runAsNonRoot != true, seccompProfile\n\
             Warning: plain: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, \
             seccompProfile\n"
        )
    );
    let labels = k.ok(&["get", "ns", "x", "-o", "jsonpath={.metadata.labels}"]);
    assert!(
        labels.contains("\"pod-security.kubernetes.io/enforce\":\"baseline\""),
        "{labels}"
    );
    // relaxing it says nothing
    let out = k.run(&[
        "label",
        "ns",
        "x",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=privileged",
    ]);
    assert!(out.status.success() && out.stderr.is_empty());

    // bad label values are invalid
    let stderr = k.err(&[
        "label",
        "ns",
        "x",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=strict",
    ]);
    assert_eq!(
        stderr,
        "The Namespace \"x\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
         Invalid value: \"strict\": must be one of privileged, baseline, restricted\n"
    );
    let stderr = k.stdin_err(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bad\n  labels:\n    \
         pod-security.kubernetes.io/warn-version: \"1.30\"\n",
    );
    assert!(
        stderr.contains(
            "metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"1.30\": \
             must be \"latest\" or \"v1.x\""
        ),
        "{stderr}"
    );

    // kube-system is exempt, as k3s configures it
    k.ok(&[
        "label",
        "ns",
        "kube-system",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let (ok, stderr) = create(&k, &pod("kube-system", "system-priv", PRIVILEGED, ""));
    assert!(ok && stderr.is_empty(), "{stderr}");
}
