//! `kubectl debug` with ephemeral containers on a real node, with kubectl
//! 1.27 and 1.33: the container is added through pods/ephemeralcontainers,
//! the kubelet starts it in the pod's sandbox sharing the target's process
//! namespace, reports it in status.ephemeralContainerStatuses, and logs and
//! exec reach it. The subresource's rules answer with upstream's texts.

use std::time::Duration;

use crate::common::agent::*;
use crate::common::images::BUSYBOX;
use crate::common::*;
use serde_json::{json, Value};

const NS: &str = "default";
const POD: &str = "target";
/// The target's process, which a debug container sharing its process
/// namespace sees in `ps`.
const TARGET_SCRIPT: &str = "exec sleep 3600";

#[test]
fn kubectl_debug_runs_ephemeral_containers() {
    let c = Cluster::start();
    c.apply_json(&pod_manifest(
        NS,
        POD,
        json!({"containers": [busybox_container(POD, TARGET_SCRIPT)],
               "terminationGracePeriodSeconds": 1}),
    ));
    c.wait_running(NS, POD, POD_TIMEOUT);

    for version in [KUBECTL_OLDEST, KUBECTL_NEWEST] {
        let name = format!("dbg-{}", version.replace('.', "-"));
        let k = c.kubectl_version(version);
        k.ok(&[
            "debug",
            "-n",
            NS,
            POD,
            "--image",
            BUSYBOX,
            "--image-pull-policy=Never",
            "-c",
            &name,
            "--target",
            POD,
            "--",
            "sh",
            "-c",
            &format!("echo hi-{name}; ps; sleep 60"),
        ]);
        // kubectl logs on the ephemeral container: its own output, and the
        // target's process seen through the shared PID namespace.
        let log = c.wait_log(NS, POD, Some(&name), &format!("hi-{name}"), POD_TIMEOUT);
        assert!(
            log.contains("sleep 3600"),
            "{name} does not see the target's processes:\n{log}"
        );
        let pod = c.wait_pod(NS, POD, POD_TIMEOUT, "report the debug container", |p| {
            ephemeral_status(p, &name)
                .is_some_and(|s| s["state"]["running"].is_object() && s["ready"] == json!(false))
        });
        let spec = &pod["spec"]["ephemeralContainers"];
        assert!(
            spec.as_array()
                .into_iter()
                .flatten()
                .any(|e| e["name"] == json!(name) && e["targetContainerName"] == json!(POD)),
            "spec.ephemeralContainers: {spec}"
        );
        // exec reaches the ephemeral container.
        let out = c.exec(version, NS, POD, Some(&name), &["echo", "exec-ok"]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("exec-ok"),
            "exec into {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The pod's own container keeps running, untouched.
        assert_eq!(restart_count(&pod, POD), 0);

        // -i: kubectl waits for the container to run, then attaches.
        let interactive = format!("{name}-i");
        let out = run_with_timeout(
            &mut k.command(&[
                "debug",
                "-i",
                "-n",
                NS,
                POD,
                "--image",
                BUSYBOX,
                "--image-pull-policy=Never",
                "-c",
                &interactive,
                "--",
                "sh",
                "-c",
                "read line; echo got-$line",
            ]),
            Some(b"hello\n"),
            Duration::from_secs(90),
        );
        // kubectl saw the container running (status) and attached; what
        // it sent reached the container's stdin. The attach session ends
        // with kubectl's stdin, so the answer is read from the log.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.contains("If you don't see a command prompt"),
            "kubectl {version} debug -i: {}\nstderr:\n{stderr}",
            out.status
        );
        let log = c.wait_log(NS, POD, Some(&interactive), "got-", POD_TIMEOUT);
        assert!(log.contains("got-hello"), "{interactive}: {log}");
    }

    // A name already used by a container: upstream's field error (after
    // four ephemeral containers).
    let err = c.kubectl_version(KUBECTL_NEWEST).err(&[
        "debug",
        "-n",
        NS,
        POD,
        "--image",
        BUSYBOX,
        "--image-pull-policy=Never",
        "-c",
        POD,
        "--",
        "true",
    ]);
    assert!(
        err.contains("spec.ephemeralContainers[4].name: Duplicate value: \"target\""),
        "{err}"
    );

    // Ephemeral containers cannot be removed or changed once added.
    let path = format!("/api/v1/namespaces/{NS}/pods/{POD}/ephemeralcontainers");
    let mut pod = c.get(&path);
    assert_eq!(pod["kind"], json!("Pod"));
    // Unconditional updates (pods allow them, as upstream): the kubelet
    // writes the pod's status meanwhile, and a stale resourceVersion would
    // be refused with 409 before the checks these PUTs are about.
    if let Some(meta) = pod["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let list = pod["spec"]["ephemeralContainers"].clone();
    let all = list.as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), 4, "{list}");
    pod["spec"]["ephemeralContainers"] = json!(all[..3]);
    let (code, status) = c.api("PUT", &path, Some(&pod));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        json!(format!(
            "Pod \"{POD}\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"{}\" may not be removed\n",
            all[3]["name"].as_str().unwrap_or_default()
        ))
    );
    let mut changed = list.clone();
    changed[0]["image"] = json!("busybox:other");
    pod["spec"]["ephemeralContainers"] = changed;
    let (code, status) = c.api("PUT", &path, Some(&pod));
    assert_eq!(code, 422, "{status}");
    let first = list[0]["name"].as_str().unwrap_or_default();
    assert!(
        status["message"].as_str().is_some_and(|m| m.starts_with(&format!(
            "Pod \"{POD}\" is invalid: spec.ephemeralContainers[{first}]: Forbidden: existing ephemeral containers \"{first}\" may not be changed\n"
        ))),
        "{status}"
    );
    // Probes, ports and resources are refused.
    let mut with_port = list.clone();
    if let Some(a) = with_port.as_array_mut() {
        a.push(json!({"name": "ports", "image": BUSYBOX, "ports": [{"containerPort": 80}]}));
    }
    pod["spec"]["ephemeralContainers"] = with_port;
    let (code, status) = c.api("PUT", &path, Some(&pod));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        json!(format!(
            "Pod \"{POD}\" is invalid: spec.ephemeralContainers[4].ports: Forbidden: cannot be set for an Ephemeral Container"
        ))
    );

    // Deleting the pod takes its ephemeral containers with it.
    c.delete_pod(NS, POD);
    c.wait_gone(NS, POD, Duration::from_secs(60));
    c.shutdown();
}

fn ephemeral_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["ephemeralContainerStatuses"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == json!(name))
}
