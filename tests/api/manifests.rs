//! Auto-deploying manifests against a real `nanokube server` and kubectl:
//! a file dropped into `<data-dir>/server/manifests` is live within 5 s,
//! edits update (and prune) its objects, removing it deletes them, `.skip`
//! leaves them alone, a bad file is a Warning Event while the others are
//! still applied, an unchanged dir writes nothing over a resync period, and
//! the embedded `coredns.yaml` is staged and removed by `--disable coredns`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{poll_until, Kubectl, Proc, KUBECTL_NEWEST};

const LIVE: Duration = Duration::from_secs(5);

fn dir(p: &Proc) -> PathBuf {
    p.data_dir.join("server").join("manifests")
}

/// Writes through a temporary dotfile and a rename, as a careful user
/// would (the deploy loop ignores dotfiles).
fn write(p: &Proc, file: &str, text: &str) {
    let tmp = dir(p).join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir(p).join(file)).unwrap();
}

fn exists(k: &Kubectl, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    k.run(&all).status.success()
}

fn data(k: &Kubectl, ns: &str, name: &str) -> String {
    k.ok(&[
        "get",
        "configmap",
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.data.k}",
    ])
}

fn wait(what: &str, p: &Proc, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, Duration::from_millis(100), cond),
        "{what} within {timeout:?}\n{}",
        p.log()
    );
}

const WEB_V1: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  k: one
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: mf
data:
  k: extra
---
apiVersion: v1
kind: Namespace
metadata:
  name: mf
";

const WEB_V2: &str = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: web
    labels: {tier: front}
  data:
    k: two
- apiVersion: v1
  kind: Namespace
  metadata:
    name: mf
";

#[test]
fn dropped_edited_pruned_and_removed_manifests_with_no_writes_when_unchanged() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);

    let started = Instant::now();
    write(&p, "web.yaml", WEB_V1);
    wait("web.yaml applied", &p, LIVE, || {
        exists(&k, &["configmap", "web"]) && exists(&k, &["configmap", "extra", "-n", "mf"])
    });
    let live = started.elapsed();
    println!(
        "manifest live after {:.2} s (target <= 5 s)",
        live.as_secs_f64()
    );
    let cm = k.json(&["get", "configmap", "web"]);
    assert_eq!(
        cm["metadata"]["annotations"]["nanokube.io/manifest"], "web.yaml",
        "{cm}"
    );

    // Edit: a changed value, a new label, an object taken out of the file.
    write(&p, "web.yaml", WEB_V2);
    wait("web.yaml edit applied", &p, LIVE, || {
        data(&k, "default", "web") == "two" && !exists(&k, &["configmap", "extra", "-n", "mf"])
    });
    let cm = k.json(&["get", "configmap", "web"]);
    assert_eq!(cm["metadata"]["labels"]["tier"], "front", "{cm}");
    assert!(exists(&k, &["namespace", "mf"]));

    // Unchanged file: nothing is written over a whole resync period.
    std::thread::sleep(Duration::from_secs(3));
    let before = p.revision();
    std::thread::sleep(Duration::from_secs(17));
    let after = p.revision();
    assert_eq!(
        before,
        after,
        "an unchanged manifests dir wrote {} revisions",
        after - before
    );

    // Removing the file deletes what it created.
    std::fs::remove_file(dir(&p).join("web.yaml")).unwrap();
    wait("web.yaml objects deleted", &p, LIVE, || {
        !exists(&k, &["configmap", "web"])
    });
    wait("namespace mf deleted", &p, Duration::from_secs(30), || {
        !exists(&k, &["namespace", "mf"])
    });
}

#[test]
fn skip_files_and_bad_files_are_reported_while_others_apply() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    let cm = |name: &str, value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {value}\n")
    };

    write(&p, "keep.yaml", &cm("keep", "a"));
    wait("keep.yaml applied", &p, LIVE, || {
        exists(&k, &["configmap", "keep"])
    });
    // `.skip`: edits and even removal leave the objects as they are.
    std::fs::write(dir(&p).join("keep.yaml.skip"), "").unwrap();
    write(&p, "keep.yaml", &cm("keep", "b"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(data(&k, "default", "keep"), "a");
    std::fs::remove_file(dir(&p).join("keep.yaml")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(data(&k, "default", "keep"), "a");

    // A YAML syntax error and an unknown kind: Events, and the other
    // files (and the good object of the same file) still applied.
    write(
        &p,
        "broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n",
    );
    write(
        &p,
        "unknown.yaml",
        &format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n---\n{}",
            cm("beside-widget", "c")
        ),
    );
    write(&p, "good.yaml", &cm("good", "d"));
    // Too large for a last-applied annotation (256 KiB in all): applied
    // without one.
    write(&p, "big.yaml", &cm("big", &"x".repeat(200 * 1024)));
    wait("good objects applied", &p, LIVE, || {
        exists(&k, &["configmap", "good"])
            && exists(&k, &["configmap", "beside-widget"])
            && exists(&k, &["configmap", "big"])
    });
    let mut events = String::new();
    wait("warning events", &p, LIVE, || {
        events = k.ok(&["get", "events", "-A", "--field-selector", "type=Warning"]);
        events.contains("ParseManifestFailed") && events.contains("ApplyManifestFailed")
    });
    assert!(events.contains("broken.yaml"), "{events}");
    assert!(
        events.contains(r#"no matches for kind \"Widget\" in version \"example.com/v1\""#)
            || events.contains(r#"no matches for kind "Widget" in version "example.com/v1""#),
        "{events}"
    );
    // Failing files are retried at each resync, but the same failure is
    // neither written nor reported again.
    let before = p.revision();
    std::thread::sleep(Duration::from_secs(17));
    let after = p.revision();
    assert_eq!(
        before,
        after,
        "failing manifests wrote {} revisions",
        after - before
    );

    // Fixing the file applies it.
    write(&p, "broken.yaml", &cm("fixed", "e"));
    wait("fixed file applied", &p, LIVE, || {
        exists(&k, &["configmap", "fixed"])
    });
}

fn copy_dir(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn embedded_coredns_is_staged_and_disable_removes_it() {
    let mut first = Proc::server();
    let k = first.kubectl(KUBECTL_NEWEST);
    let staged = std::fs::read_to_string(dir(&first).join("coredns.yaml")).unwrap();
    assert!(staged.contains("clusterIP: 10.43.0.10"), "{staged}");
    let svc = k.json(&["get", "service", "kube-dns", "-n", "kube-system"]);
    assert_eq!(
        svc["metadata"]["annotations"]["nanokube.io/manifest"], "coredns.yaml",
        "{svc}"
    );

    // The same data dir started again with `--disable coredns`.
    first.kill();
    let old = first.data_dir.clone();
    let second = Proc::server_with(|d| {
        copy_dir(&old, d);
        vec!["--disable".into(), "coredns".into()]
    });
    let k = second.kubectl(KUBECTL_NEWEST);
    assert!(!dir(&second).join("coredns.yaml").exists());
    wait("kube-dns deleted", &second, LIVE, || {
        !exists(&k, &["service", "kube-dns", "-n", "kube-system"])
    });
}
