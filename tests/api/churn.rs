//! Steady churn does not grow the files without bound: automatic compaction
//! drops old history, its rows are purged, freed pages are reused and the
//! WAL is checkpointed and restarted.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::Proc;

const KEYS: usize = 100;
const CLIENTS: usize = 16;
const VALUE: usize = 1024;

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    p.into()
}

/// `rounds` overwrites of every key, spread over `CLIENTS` connections.
async fn churn(p: &Proc, rounds: usize) {
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let url = p.url();
        tasks.push(tokio::spawn(async move {
            let mut c = crate::common::connect(&url).await;
            // Incompressible, so the store's value compression cannot hide growth.
            let mut x = (t as u64 + 1) * 0x9E37_79B9_7F4A_7C15;
            for i in (t..KEYS * rounds).step_by(CLIENTS) {
                let value: Vec<u8> = (0..VALUE / 8)
                    .flat_map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x.to_le_bytes()
                    })
                    .collect();
                c.put(format!("/churn/{:03}", i % KEYS), value, None)
                    .await
                    .unwrap_or_else(|e| panic!("put {i}: {e}"));
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("churn took more than 5 minutes")
            .expect("writer panicked");
    }
}

/// Waits until automatic compaction has caught up with the head.
async fn await_compaction(p: &Proc) -> i64 {
    let mut c = p.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = c
            .status()
            .await
            .expect("status")
            .header()
            .map_or(0, |h| h.revision());
        // A read below the compaction point fails; find whether head-150 is gone.
        let probe = c
            .get(
                "/churn/000",
                Some(etcd_client::GetOptions::new().with_revision(head - 150)),
            )
            .await;
        if probe.is_err() {
            return head;
        }
        assert!(
            Instant::now() < deadline,
            "automatic compaction did not run within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stay_bounded_under_churn() {
    let p = Proc::datastore_with(&[
        "--compaction-interval",
        "1",
        "--compaction-retention",
        "0",
        "--compaction-min-revisions",
        "100",
    ]);
    let db = p.db_path();
    churn(&p, 100).await; // 10,000 writes
    await_compaction(&p).await;
    // Let the writer purge compacted rows while idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = file_len(&db);
    let first_wal = file_len(&wal_path(&db));
    churn(&p, 500).await; // 50,000 more writes: 55 MiB of values
    await_compaction(&p).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = file_len(&db);
    let wal = file_len(&wal_path(&db));
    println!(
        "after 10k writes: db {first} B, wal {first_wal} B; after 60k: db {second} B, wal {wal} B"
    );
    // History is bounded by what one compaction interval (1 s) of writes
    // leaves behind: a few MiB here. Without compaction, purging and page
    // reuse the 60,000 writes of 1 KiB would need more than 60 MiB.
    for (when, size) in [("10k", first), ("60k", second)] {
        assert!(
            size < 16 << 20,
            "database is {size} bytes after {when} writes"
        );
    }
    // The writer restarts the WAL once it passes 16 MiB; the file is cut
    // back to journal_size_limit (20 MiB) when restarted.
    for (when, size) in [("10k", first_wal), ("60k", wal)] {
        assert!(size <= 20 << 20, "wal is {size} bytes after {when} writes");
    }
    let mut c = p.client().await;
    let r = c
        .get(
            "/churn/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .expect("count");
    assert_eq!(r.count(), KEYS as i64);
}
