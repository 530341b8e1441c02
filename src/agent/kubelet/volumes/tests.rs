//! The volume manager end to end on a temporary agent dir, with the fake
//! API. Tests that mount (tmpfs, subPath binds) unmount through
//! `teardown` or an `UnmountGuard`.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::fake::FakeClient;
use super::mounts::{is_mount_point, UnmountGuard};
use super::*;

struct Env {
    _dir: tempfile::TempDir,
    agent: PathBuf,
    client: FakeClient,
    vm: VolumeManager<FakeClient>,
    _guard: UnmountGuard,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().canonicalize().unwrap().join("agent");
    fs::create_dir_all(&agent).unwrap();
    let client = FakeClient::default();
    let vm = VolumeManager::new(client.clone(), agent.clone());
    Env {
        _guard: UnmountGuard(agent.clone()),
        _dir: dir,
        agent,
        client,
        vm,
    }
}

fn pod(uid: &str, volumes: Value, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": uid,
                     "labels": {"app": "web"}},
        "spec": {"volumes": volumes, "containers": containers},
    }))
    .unwrap()
}

fn container(mounts: Value) -> Container {
    serde_json::from_value(json!({"name": "app", "volumeMounts": mounts})).unwrap()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[tokio::test]
async fn config_map_waits_then_appears_and_updates() {
    let e = env();
    let p = pod(
        "u1",
        json!([{"name": "cfg", "configMap": {"name": "app", "items": [
            {"key": "k", "path": "dir/k.txt", "mode": 0o600}]}}]),
        json!([]),
    );
    let err = e.vm.setup(&p).await.unwrap_err();
    assert!(matches!(err, VolumeError::Waiting(_)));
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\" not found"
    );

    e.client.put(
        "configmaps",
        Some("ns"),
        "app",
        json!({"data": {"k": "v1"}}),
    );
    let vols = e.vm.setup(&p).await.unwrap();
    let v = vols.get("cfg").unwrap();
    assert!(v.read_only);
    assert_eq!(v.kind, plugin::CONFIG_MAP);
    assert_eq!(
        v.host_path,
        e.agent.join("pods/u1/volumes/kubernetes.io~configmap/cfg")
    );
    assert_eq!(read(&v.host_path.join("dir/k.txt")), "v1");
    let version = fs::read_link(v.host_path.join("..data")).unwrap();

    // Unchanged: no new version.
    e.vm.setup(&p).await.unwrap();
    assert_eq!(fs::read_link(v.host_path.join("..data")).unwrap(), version);

    e.client.put(
        "configmaps",
        Some("ns"),
        "app",
        json!({"data": {"k": "v2"}}),
    );
    e.vm.setup(&p).await.unwrap();
    assert_eq!(read(&v.host_path.join("dir/k.txt")), "v2");
    assert_ne!(fs::read_link(v.host_path.join("..data")).unwrap(), version);

    // The key disappears: the pod waits (upstream keeps the old files).
    e.client
        .put("configmaps", Some("ns"), "app", json!({"data": {}}));
    let err = e.vm.setup(&p).await.unwrap_err();
    assert!(
        err.to_string().contains("non-existent config key: k"),
        "{err}"
    );
    assert_eq!(read(&v.host_path.join("dir/k.txt")), "v2");
    e.vm.teardown("u1").await.unwrap();
    assert!(!e.agent.join("pods/u1/volumes").exists());
}

#[tokio::test]
async fn optional_sources_and_secret_on_tmpfs() {
    let e = env();
    let p = pod(
        "u2",
        json!([
            {"name": "opt", "configMap": {"name": "nope", "optional": true}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        ]),
        json!([]),
    );
    e.client.put(
        "secrets",
        Some("ns"),
        "s",
        json!({"data": {"pw": "aHVudGVyMg=="}}),
    );
    let vols = e.vm.setup(&p).await.unwrap();
    let opt = &vols.get("opt").unwrap().host_path;
    assert!(opt.join("..data").exists());
    let names: Vec<_> = fs::read_dir(opt).unwrap().collect();
    assert_eq!(names.len(), 2, "only ..data and its version dir");

    let sec = vols.get("sec").unwrap();
    assert!(sec.read_only);
    assert!(
        is_mount_point(&sec.host_path).unwrap(),
        "secrets live on tmpfs"
    );
    assert_eq!(read(&sec.host_path.join("pw")), "hunter2");
    let mode = fs::metadata(sec.host_path.join("pw")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o400);
    // Again: still one mount.
    e.vm.setup(&p).await.unwrap();
    let count = mounts::mount_points()
        .unwrap()
        .iter()
        .filter(|m| **m == sec.host_path)
        .count();
    assert_eq!(count, 1);

    e.vm.teardown("u2").await.unwrap();
    assert!(!is_mount_point(&sec.host_path).unwrap());
    assert!(!e.agent.join("pods/u2/volumes").exists());
    e.vm.teardown("u2").await.unwrap();
}

#[tokio::test]
async fn projected_token_waits_for_the_api_then_is_cached() {
    let e = env();
    let mut p = pod(
        "u3",
        json!([{"name": "kube-api-access", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault",
                                     "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [
                {"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}}]),
        json!([]),
    );
    p.spec.as_mut().unwrap().service_account_name = Some("builder".into());
    e.client.put(
        "configmaps",
        Some("ns"),
        "kube-root-ca.crt",
        json!({"data": {"ca.crt": "PEM"}}),
    );
    let err = e.vm.setup(&p).await.unwrap_err();
    assert!(matches!(err, VolumeError::Waiting(_)));
    assert!(err.to_string().contains("TokenRequest"), "{err}");

    e.client.tokens.store(true, Ordering::SeqCst);
    let vols = e.vm.setup(&p).await.unwrap();
    let dir = &vols.get("kube-api-access").unwrap().host_path;
    assert_eq!(read(&dir.join("token")), "token-builder-1");
    assert_eq!(read(&dir.join("ca.crt")), "PEM");
    assert_eq!(read(&dir.join("namespace")), "ns");
    let body = e.client.last_token_request.lock().unwrap().clone().unwrap();
    assert_eq!(body["spec"]["audiences"], json!(["vault"]));
    assert_eq!(body["spec"]["boundObjectRef"]["uid"], "u3");
    assert_eq!(body["spec"]["boundObjectRef"]["kind"], "Pod");

    e.vm.setup(&p).await.unwrap();
    assert_eq!(e.client.token_requests.load(Ordering::SeqCst), 1, "cached");
    e.vm.teardown("u3").await.unwrap();
}

#[tokio::test]
async fn downward_api_labels_follow_the_pod() {
    let e = env();
    let mut p = pod(
        "u4",
        json!([{"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]),
        json!([]),
    );
    let vols = e.vm.setup(&p).await.unwrap();
    let f = vols.get("info").unwrap().host_path.join("labels");
    assert_eq!(read(&f), "app=\"web\"");
    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "front".into());
    e.vm.setup(&p).await.unwrap();
    assert_eq!(read(&f), "app=\"web\"\ntier=\"front\"");
    e.vm.teardown("u4").await.unwrap();
}

#[tokio::test]
async fn empty_dir_and_container_mounts_with_subpaths() {
    let e = env();
    let p = pod(
        "u5",
        json!([{"name": "work", "emptyDir": {}},
               {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]),
        json!([]),
    );
    let vols = e.vm.setup(&p).await.unwrap();
    let work = vols.get("work").unwrap().host_path.clone();
    assert_eq!(fs::metadata(&work).unwrap().mode() & 0o777, 0o777);
    assert!(is_mount_point(&vols.get("mem").unwrap().host_path).unwrap());

    let c = container(json!([
        {"name": "work", "mountPath": "/work"},
        {"name": "work", "mountPath": "/logs", "subPathExpr": "logs/$(POD)", "readOnly": true},
        {"name": "mem", "mountPath": "/cache", "mountPropagation": "HostToContainer"},
    ]));
    let env = [("POD".to_string(), "web-1".to_string())];
    let m = e.vm.container_mounts(&p, &vols, &c, &env).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].host_path, work.to_string_lossy());
    assert!(!m[0].readonly);
    assert!(m[1].readonly);
    let sub = e.agent.join("pods/u5/volume-subpaths/work/app/1");
    assert_eq!(m[1].host_path, sub.to_string_lossy());
    assert!(is_mount_point(&sub).unwrap());
    assert!(work.join("logs/web-1").is_dir(), "created as upstream");
    let mode = fs::metadata(work.join("logs/web-1")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o777, "the volume root's mode, whatever the umask");
    // What is written through the bind lands in the volume.
    fs::write(sub.join("x"), "1").unwrap();
    assert_eq!(read(&work.join("logs/web-1/x")), "1");
    assert_eq!(
        m[2].propagation,
        api::MountPropagation::PropagationHostToContainer as i32
    );
    assert!(mounts::is_shared(&vols.get("mem").unwrap().host_path));
    // Asking again (container restart) reuses the bind.
    e.vm.container_mounts(&p, &vols, &c, &env).unwrap();
    let binds = mounts::mount_points()
        .unwrap()
        .iter()
        .filter(|m| **m == sub)
        .count();
    assert_eq!(binds, 1);

    // A missing variable, an escape by `..`, an escape by symlink.
    let bad = container(json!([{"name": "work", "mountPath": "/x", "subPathExpr": "$(NOPE)"}]));
    let err = e.vm.container_mounts(&p, &vols, &bad, &env).unwrap_err();
    assert_eq!(err.to_string(), "missing value for NOPE");
    let bad = container(json!([{"name": "work", "mountPath": "/x", "subPath": "a/../../b"}]));
    assert!(e.vm.container_mounts(&p, &vols, &bad, &env).is_err());
    let outside = e.agent.join("outside");
    fs::create_dir(&outside).unwrap();
    symlink(&outside, work.join("evil")).unwrap();
    let bad = container(json!([{"name": "work", "mountPath": "/x", "subPath": "evil"}]));
    let err = e.vm.container_mounts(&p, &vols, &bad, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to prepare subPath for volumeMount \"work\" of container \"app\""
    );
    let bad = container(json!([{"name": "work", "mountPath": "/x", "subPath": "evil/new"}]));
    assert!(e.vm.container_mounts(&p, &vols, &bad, &env).is_err());
    assert!(
        !outside.join("new").exists(),
        "no directory made through the symlink"
    );
    // An inside symlink is fine (configMap keys are symlinks too).
    symlink("logs", work.join("alias")).unwrap();
    let ok = container(json!([{"name": "work", "mountPath": "/x", "subPath": "alias"}]));
    e.vm.container_mounts(&p, &vols, &ok, &env).unwrap();
    let missing = container(json!([{"name": "nope", "mountPath": "/x"}]));
    assert!(e.vm.container_mounts(&p, &vols, &missing, &env).is_err());
    let bidi = container(json!([{"name": "work", "mountPath": "/x",
                                 "mountPropagation": "Bidirectional"}]));
    assert!(e.vm.container_mounts(&p, &vols, &bidi, &env).is_err());
    // A disk volume with propagation becomes a shared bind of itself.
    let h2c = container(json!([{"name": "work", "mountPath": "/x",
                                "mountPropagation": "HostToContainer"}]));
    e.vm.container_mounts(&p, &vols, &h2c, &env).unwrap();
    assert!(mounts::is_shared(&work));
    assert_eq!(read(&work.join("logs/web-1/x")), "1");

    e.vm.teardown("u5").await.unwrap();
    assert!(!e.agent.join("pods/u5/volumes").exists());
    assert!(!e.agent.join("pods/u5/volume-subpaths").exists());
    assert!(outside.exists());
    let left: Vec<_> = mounts::mount_points()
        .unwrap()
        .into_iter()
        .filter(|m| m.starts_with(e.agent.join("pods/u5")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn claims_host_paths_and_unsupported_kinds() {
    let e = env();
    let host = e.agent.join("host-data");
    let p = pod(
        "u6",
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "c", "readOnly": true}}]),
        json!([]),
    );
    e.client.put(
        "persistentvolumeclaims",
        Some("ns"),
        "c",
        json!({"metadata": {"uid": "cu"}, "spec": {}, "status": {"phase": "Pending"}}),
    );
    let err = e.vm.setup(&p).await.unwrap_err();
    assert!(err
        .to_string()
        .ends_with("persistentvolumeclaim \"c\" is not bound"));
    e.client.put(
        "persistentvolumeclaims",
        Some("ns"),
        "c",
        json!({"metadata": {"uid": "cu"}, "spec": {"volumeName": "pv"},
               "status": {"phase": "Bound"}}),
    );
    e.client.put(
        "persistentvolumes",
        None,
        "pv",
        json!({"spec": {"claimRef": {"uid": "cu"},
               "hostPath": {"path": host, "type": "DirectoryOrCreate"}}}),
    );
    let vols = e.vm.setup(&p).await.unwrap();
    let v = vols.get("data").unwrap();
    assert_eq!((v.host_path.as_path(), v.read_only), (host.as_path(), true));
    assert!(host.is_dir());

    let bad = pod(
        "u7",
        json!([{"name": "share", "nfs": {"server": "x", "path": "/"}},
               {"name": "h", "hostPath": {"path": host.join("nope"), "type": "File"}}]),
        json!([]),
    );
    let err = e.vm.setup(&bad).await.unwrap_err();
    assert!(matches!(err, VolumeError::Invalid(_)));
    assert!(
        err.to_string().contains("nfs volumes are not supported"),
        "{err}"
    );
    e.client.remove("persistentvolumes", None, "pv");
}

#[tokio::test]
async fn orphans_are_removed_and_live_pods_kept() {
    let e = env();
    for uid in ["live", "gone"] {
        let p = pod(
            uid,
            json!([{"name": "m", "emptyDir": {"medium": "Memory"}}]),
            json!([]),
        );
        e.vm.setup(&p).await.unwrap();
    }
    fs::write(e.agent.join("pods/gone/etc-hosts"), "x").unwrap();
    let live: HashSet<String> = ["live".to_string()].into();
    e.vm.cleanup_orphans(&live).await.unwrap();
    assert!(e.agent.join("pods/live/volumes").exists());
    assert!(!e.agent.join("pods/gone/volumes").exists());
    assert!(e.agent.join("pods/gone/etc-hosts").exists());
    e.vm.teardown("live").await.unwrap();
    assert!(e.vm.teardown("../x").await.is_err());
}
