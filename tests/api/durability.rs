//! Every acknowledged write survives a SIGKILL in the middle of a write
//! storm, and the SQLite file stays consistent.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::Proc;
use etcd_client::GetOptions;

const CLIENTS: usize = 16;

fn value_for(client: usize, seq: u64) -> String {
    format!("client={client} seq={seq} {}", "p".repeat(64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let tmp = crate::common::tempdir();
    let data_dir = tmp.path().join("data");
    let mut p = Proc::datastore_at(&data_dir, tmp.path());
    let url = p.url();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for client in 0..CLIENTS {
        let stop = stop.clone();
        let url = url.clone();
        writers.push(tokio::spawn(async move {
            let mut c = crate::common::connect(&url).await;
            // (seq, revision) of every acknowledged put, in order
            let mut acked: Vec<(u64, i64)> = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("/dur/{client:02}/{seq:08}");
                match c.put(key, value_for(client, seq), None).await {
                    Ok(resp) => {
                        let rev = resp.header().expect("put response header").revision();
                        acked.push((seq, rev));
                    }
                    // the server is gone: this put may or may not be stored
                    Err(_) => break,
                }
                seq += 1;
            }
            acked
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = nix::unistd::Pid::from_raw(p.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
    p.kill(); // reap
    stop.store(true, Ordering::Relaxed);

    let mut acked: Vec<Vec<(u64, i64)>> = Vec::new();
    for w in writers {
        let a = tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("writer did not stop after the kill")
            .expect("writer task panicked");
        acked.push(a);
    }
    let total: usize = acked.iter().map(|a| a.len()).sum();
    println!("acknowledged puts before SIGKILL: {total}");
    for (client, a) in acked.iter().enumerate() {
        assert!(!a.is_empty(), "client {client} got no put acknowledged");
    }

    // Revisions: strictly increasing per client, unique across clients.
    let mut all_revs = HashSet::new();
    for (client, a) in acked.iter().enumerate() {
        for pair in a.windows(2) {
            assert!(
                pair[1].1 > pair[0].1,
                "client {client}: revision went from {} to {}",
                pair[0].1,
                pair[1].1
            );
        }
        for &(seq, rev) in a {
            assert!(
                all_revs.insert(rev),
                "revision {rev} (client {client} seq {seq}) acknowledged twice"
            );
        }
    }
    let max_rev = *all_revs.iter().max().unwrap();

    // Restart on the same data dir.
    let mut p = Proc::datastore_at(&data_dir, tmp.path());
    let mut c = p.client().await;
    for (client, a) in acked.iter().enumerate() {
        let resp = c
            .get(
                format!("/dur/{client:02}/"),
                Some(GetOptions::new().with_prefix()),
            )
            .await
            .expect("range after restart");
        let stored: BTreeMap<String, (String, i64)> = resp
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap().to_string(),
                    (kv.value_str().unwrap().to_string(), kv.mod_revision()),
                )
            })
            .collect();
        for &(seq, rev) in a {
            let key = format!("/dur/{client:02}/{seq:08}");
            let (value, mod_rev) = stored.get(&key).unwrap_or_else(|| {
                panic!(
                    "acknowledged key {key} (revision {rev}) lost after SIGKILL; \
                     server stderr:\n{}",
                    p.log()
                )
            });
            assert_eq!(value, &value_for(client, seq), "value of {key}");
            assert_eq!(*mod_rev, rev, "mod_revision of {key}");
        }
        // Nothing but the acknowledged keys and at most the one put that
        // was in flight at the kill.
        let last = a.last().unwrap().0;
        for key in stored.keys() {
            let seq: u64 = key.rsplit('/').next().unwrap().parse().unwrap();
            assert!(
                seq <= last + 1,
                "unexpected key {key} (last acked seq {last})"
            );
        }
    }

    let resp = c.put("/dur/after", "restart", None).await.unwrap();
    let new_rev = resp.header().unwrap().revision();
    assert!(
        new_rev > max_rev,
        "revision after restart {new_rev} <= acknowledged revision {max_rev}"
    );
    let status = c.status().await.expect("status");
    assert_eq!(status.header().unwrap().revision(), new_rev);
    drop(c);

    let exit = p.terminate(Duration::from_secs(15));
    assert!(
        exit.success(),
        "clean shutdown on SIGTERM should exit 0, got {exit}; stderr:\n{}",
        p.log()
    );

    let db = p.db_path();
    assert!(db.exists(), "{} missing", db.display());
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open state.db read-only");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("PRAGMA integrity_check");
    assert_eq!(check, "ok", "integrity_check of {}", db.display());
}
