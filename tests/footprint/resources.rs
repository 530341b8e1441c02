//! Resource use: an idle datastore does not write to disk, and it stays small
//! in memory. Run with `cargo test --release --test footprint resources -- --nocapture` to see
//! the figures.

use std::time::Duration;

use crate::common::Proc;

const KEYS: usize = 10_000;
const CONCURRENCY: usize = 16;

/// Writes `KEYS` keys with 100-byte values from `CONCURRENCY` connections.
async fn write_keys(p: &Proc) {
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let url = p.url();
        tasks.push(tokio::spawn(async move {
            let mut c = crate::common::connect(&url).await;
            for i in (t..KEYS).step_by(CONCURRENCY) {
                let value = format!("{i:0100}");
                assert_eq!(value.len(), 100);
                c.put(format!("/res/{i:06}"), value, None)
                    .await
                    .unwrap_or_else(|e| panic!("put {i}: {e}"));
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("writing 10,000 keys took more than 5 minutes")
            .expect("writer panicked");
    }
    let mut c = p.client().await;
    let r = c
        .get(
            "/res/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.count(), KEYS as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_datastore_writes_nothing() {
    let mut p = Proc::datastore();
    write_keys(&p).await;
    // let group commits, checkpoints and the like settle
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = crate::common::proc_write_bytes(p.pid());
    // the measurement itself: 60 idle seconds
    tokio::time::sleep(Duration::from_secs(60)).await;
    p.assert_alive();
    let after = crate::common::proc_write_bytes(p.pid());
    println!(
        "idle disk writes over 60 s after {KEYS} keys: {} bytes",
        after - before
    );
    assert_eq!(
        after - before,
        0,
        "the idle datastore wrote {} bytes in 60 s; stderr:\n{}",
        after - before,
        p.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_after_10k_keys() {
    let mut p = Proc::datastore();
    let rss_start = crate::common::proc_rss_kib(p.pid());
    write_keys(&p).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.assert_alive();
    let rss = crate::common::proc_rss_kib(p.pid());
    println!(
        "VmRSS: {rss_start} KiB at start, {rss} KiB ({:.1} MiB) after {KEYS} keys",
        rss as f64 / 1024.0
    );
    // What the keys cost, and the whole process: the one binary also
    // carries the API server, controllers and scheduler, whose code pages
    // count in the RSS of `nanokube datastore` too.
    assert!(
        rss.saturating_sub(rss_start) <= 8 * 1024,
        "{KEYS} keys cost {} KiB of RSS (over 8 MiB)",
        rss.saturating_sub(rss_start)
    );
    // The whole process: most of it are the binary's pages at start since
    // it carries the API server, the security plugins, custom resources and
    // the agent (24.5 MiB measured with issue 10's code).
    assert!(
        rss <= 28 * 1024,
        "VmRSS {rss} KiB after {KEYS} keys exceeds 28 MiB"
    );
}
