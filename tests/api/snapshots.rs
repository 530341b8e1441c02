//! `nanokube datastore snapshot`: an online save while 16 clients write,
//! restored into a fresh data dir, holds exactly the store at the snapshot's
//! revision; ls/delete/prune; restore refused while the server runs and for
//! damaged files; scheduled snapshots with retention.
//!
//! "Exactly" is checked two ways: the restored `/snap/` keys equal the
//! original's keys read at the snapshot's revision (key, value, create and
//! mod revision, version), and against the writers' own log: every put
//! acknowledged at a revision up to the snapshot's is there, none after.
//! Writes acknowledged before the save started are at or below the
//! snapshot's revision, writes after it finished above.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Proc, KUBECTL_NEWEST, NANOKUBE};
use etcd_client::GetOptions;

const WRITERS: usize = 16;

fn snapshot(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(NANOKUBE)
        .args(["datastore", "snapshot"])
        .args(args)
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .output()
        .expect("run nanokube datastore snapshot")
}

fn snapshot_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = snapshot(data_dir, args);
    assert!(
        out.status.success(),
        "`snapshot {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn snapshot_err(data_dir: &Path, args: &[&str]) -> String {
    let out = snapshot(data_dir, args);
    assert!(
        !out.status.success(),
        "`snapshot {}` succeeded but should not have:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn save_json(data_dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["save", "-o", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&snapshot_ok(data_dir, &args)).unwrap()
}

fn ls(data_dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&snapshot_ok(data_dir, &["ls", "-o", "json"])).unwrap()
}

/// (value, create_revision, mod_revision, version) per key under `prefix`.
type Keys = BTreeMap<String, (String, i64, i64, i64)>;

async fn keys_at(url: &str, prefix: &str, revision: i64) -> Keys {
    let mut c = crate::common::connect(url).await;
    let mut opts = GetOptions::new().with_prefix();
    if revision > 0 {
        opts = opts.with_revision(revision);
    }
    let resp = c.get(prefix, Some(opts)).await.expect("get");
    resp.kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_string(),
                (
                    kv.value_str().unwrap().to_string(),
                    kv.create_revision(),
                    kv.mod_revision(),
                    kv.version(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_under_16_writers_restores_exactly_the_snapshot_revision() {
    let p = Proc::server();
    let k = p.kubectl(KUBECTL_NEWEST);
    k.namespace("snap");
    for i in 0..3 {
        k.configmap(
            "snap",
            &format!("cm-{i}"),
            &[("i", &i.to_string())],
            &[("snap", "yes")],
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (stop, url) = (stop.clone(), p.url());
        writers.push(tokio::spawn(async move {
            let mut c = crate::common::connect(&url).await;
            let mut acked: Vec<(String, i64)> = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("/snap/{w:02}/{seq:06}");
                let resp = c.put(key.clone(), format!("w{w} s{seq}"), None).await;
                acked.push((key, resp.expect("put").header().unwrap().revision()));
                seq += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = p.revision();
    let data_dir = p.data_dir.clone();
    let started = std::time::Instant::now();
    let saved = tokio::task::spawn_blocking(move || save_json(&data_dir, &[]))
        .await
        .unwrap();
    let save_ms = started.elapsed().as_millis();
    let after = p.revision();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let rev = saved["revision"].as_i64().unwrap();
    let path = PathBuf::from(
        saved["location"]
            .as_str()
            .unwrap()
            .strip_prefix("file://")
            .unwrap(),
    );
    assert!(
        before <= rev && rev <= after,
        "snapshot revision {rev} outside [{before}, {after}]"
    );
    assert!(
        acked.iter().any(|(_, r)| *r > rev),
        "no write after the snapshot"
    );
    assert!(
        acked.iter().any(|(_, r)| *r <= rev),
        "no write before the snapshot"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let expected = keys_at(&p.url(), "/snap/", rev).await;
    eprintln!(
        "snapshot at revision {rev} (store {before}..{after} during the save), {} of {} \
         acknowledged puts in it, {} bytes, save command {save_ms} ms",
        expected.len(),
        acked.len(),
        saved["size"]
    );

    // Restore into a fresh data dir before its server first starts.
    let snap = path.clone();
    let restored = tokio::task::spawn_blocking(move || {
        Proc::server_with(|d| {
            let out = snapshot_ok(d, &["restore", snap.to_str().unwrap()]);
            assert!(out.contains(&format!("(revision {rev})")), "{out}");
            Vec::new()
        })
    })
    .await
    .unwrap();
    let got = keys_at(&restored.url(), "/snap/", 0).await;
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "restored keys differ from the original at {rev}"
    );
    for (key, r) in &acked {
        match got.get(key) {
            Some((_, _, m, _)) => assert!(*r <= rev && m == r, "{key} at {r}: restored {m}"),
            None => assert!(*r > rev, "{key} acknowledged at {r} <= {rev} is missing"),
        }
    }
    // The API serves the restored objects.
    let names = restored.kubectl(KUBECTL_NEWEST).ok(&[
        "get",
        "configmaps",
        "-n",
        "snap",
        "-o",
        "name",
        "--sort-by",
        ".metadata.name",
        "-l",
        "snap=yes",
    ]);
    assert_eq!(
        names.trim(),
        "configmap/cm-0\nconfigmap/cm-1\nconfigmap/cm-2"
    );
    // The store went on far above the snapshot; older history is compacted,
    // so clients holding older resourceVersions relist.
    assert!(restored.revision() >= rev + 1_000_000_000);
    let mut c = crate::common::connect(&restored.url()).await;
    let err = c
        .get(
            "/snap/",
            Some(GetOptions::new().with_prefix().with_revision(rev)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("compacted"), "{err}");
    let watch = format!("/api/v1/namespaces/snap/configmaps?watch=1&resourceVersion={rev}");
    // As upstream: a watch event of type ERROR with a 410 Expired Status.
    let event = restored
        .kubectl(KUBECTL_NEWEST)
        .ok(&["get", "--raw", &watch]);
    assert!(
        event.contains(r#""code":410"#) && event.contains("too old resource version"),
        "{event}"
    );
}

#[test]
fn restore_is_refused_while_running_and_for_damaged_files() {
    let mut p = Proc::server();
    let saved = save_json(&p.data_dir, &[]);
    let path = saved["location"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_string();
    let err = snapshot_err(&p.data_dir, &["restore", &path]);
    assert!(err.contains("the server is running"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let tmp = crate::common::tempdir();
    let fresh = tmp.path().join("fresh");
    let bytes = std::fs::read(&path).unwrap();
    let truncated = tmp.path().join("truncated");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let scribbled = tmp.path().join("scribbled");
    let mut b = bytes.clone();
    for x in &mut b[4096..12288] {
        *x = 0xa5;
    }
    std::fs::write(&scribbled, &b).unwrap();
    let text = tmp.path().join("text");
    std::fs::write(&text, "not a snapshot\n").unwrap();
    for bad in [&truncated, &scribbled, &text] {
        let err = snapshot_err(&fresh, &["restore", bad.to_str().unwrap()]);
        assert!(
            err.contains("is not a usable snapshot"),
            "{}: {err}",
            bad.display()
        );
    }
    assert!(!fresh.join("server/db/state.db").exists());

    // Stopped: the store is replaced, the old one kept aside.
    p.terminate(Duration::from_secs(20));
    let out = snapshot_ok(&p.data_dir, &["restore", &path, "--bump-revision", "10"]);
    assert!(out.contains("the previous store was moved to"), "{out}");
    let db_dir = p.data_dir.join("server/db");
    let aside = std::fs::read_dir(&db_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("state.db.old-"))
        .count();
    assert_eq!(aside, 1);
}

#[test]
fn ls_delete_and_prune() {
    let p = Proc::server();
    let d = &p.data_dir;
    let mut names = Vec::new();
    for i in 0..3 {
        if i > 0 {
            // Names carry unix seconds.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let s = save_json(d, &["--name", "manual", "--node-name", "n1"]);
        names.push(s["name"].as_str().unwrap().to_string());
    }
    assert!(names[0].starts_with("manual-n1-"), "{names:?}");
    let listed = ls(d);
    let listed_names: Vec<&str> = listed.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        listed_names,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(listed.iter().all(|e| e["revision"].as_i64().unwrap() > 1));
    let table = snapshot_ok(d, &["ls"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains(&names[0]), "{table}");

    let out = snapshot_ok(d, &["delete", &names[1]]);
    assert!(out.contains(&names[1]), "{out}");
    let err = snapshot_err(d, &["delete", "manual-n1-1"]);
    assert!(err.contains("no snapshot named manual-n1-1"), "{err}");
    let out = snapshot_ok(
        d,
        &[
            "prune",
            "--name",
            "manual",
            "--node-name",
            "n1",
            "--snapshot-retention",
            "1",
        ],
    );
    assert!(out.contains(&names[0]), "{out}");
    let left: Vec<String> = ls(d)
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [names[2].clone()]);
}

#[test]
fn scheduled_snapshots_every_second_keep_the_retention() {
    let tmp = crate::common::tempdir();
    let dir = tmp.path().join("snaps");
    let dir_arg = dir.to_str().unwrap().to_string();
    let mut p = Proc::server_with(|_| {
        vec![
            "--snapshot-schedule-cron".into(),
            "*/1 * * * * *".into(),
            // k3s's name for the flag
            "--etcd-snapshot-retention".into(),
            "2".into(),
            "--snapshot-dir".into(),
            dir_arg,
        ]
    });
    let saved = |p: &Proc| p.log().matches("datastore snapshot saved").count();
    assert!(
        crate::common::poll_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || saved(&p) >= 4
        ),
        "fewer than 4 scheduled snapshots in 20 s:\n{}",
        p.log()
    );
    p.terminate(Duration::from_secs(20));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("scheduled-")),
        "{names:?}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
}
