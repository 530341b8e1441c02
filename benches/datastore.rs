//! `nanokube datastore` against a real etcd 3.4, side by side, same workload.
//!
//! `cargo bench --bench datastore` runs the full comparison (about two
//! minutes); `NANOKUBE_BENCH_SCALE=0.1` shrinks every count. When run by
//! `cargo test --all-targets` (no `--bench` argument) it runs a smoke version
//! at scale 0.01 that only checks that everything works.
//!
//! Needs `etcd` (Debian package `etcd-server`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Proc;
use etcd_client::{Client, GetOptions, WatchOptions};

/// Pids of the servers, for the watchdog.
static PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

const KIB: usize = 1024;

struct Config {
    scale: f64,
    smoke: bool,
}

impl Config {
    /// `n` scaled, at least `min`.
    fn n(&self, n: usize, min: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(min)
    }

    fn secs(&self, s: f64, min: f64) -> Duration {
        Duration::from_secs_f64((s * self.scale).max(min))
    }
}

fn main() {
    let Some((smoke, scale)) = common::bench_mode(0.01) else {
        return;
    };
    if !common_tool("etcd") {
        eprintln!(
            "error: the datastore benchmark needs `etcd` 3.4: install the Debian package \
             `etcd-server` (apt-get install -y etcd-server)"
        );
        std::process::exit(2);
    }
    let limit = if smoke {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(900)
    };
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("error: benchmark exceeded its time limit of {limit:?}; killing servers");
        for &pid in PIDS.lock().unwrap().iter() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::process::exit(1);
    });

    let cfg = Config { scale, smoke };
    let started = Instant::now();
    let ok = run(&cfg);
    if smoke {
        println!(
            "datastore bench smoke run (scale {scale}) finished in {:.1} s; \
             run `cargo bench --bench datastore` for figures",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "benchmark finished in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if !ok {
        std::process::exit(1);
    }
}

fn common_tool(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(cmd).is_file()))
        .unwrap_or(false)
}

/// One row of the result table.
struct Row {
    name: String,
    nanokube: f64,
    etcd: f64,
    higher_is_better: bool,
    unit: &'static str,
}

/// One server under test.
struct Target {
    name: &'static str,
    proc_: Proc,
}

fn run(cfg: &Config) -> bool {
    let nk_dir = common::tempdir();
    let etcd_dir = common::tempdir();
    let mut nk = Proc::spawn_datastore(&nk_dir.path().join("data"), nk_dir.path(), &[]);
    PIDS.lock().unwrap().push(nk.pid());
    let mut etcd = Proc::spawn_etcd(etcd_dir.path());
    PIDS.lock().unwrap().push(etcd.pid());
    nk.wait_ready();
    etcd.wait_ready();
    let etcd_version = etcd_version();
    let targets = [
        Target {
            name: "nanokube",
            proc_: nk,
        },
        Target {
            name: "etcd",
            proc_: etcd,
        },
    ];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows: Vec<Row> = Vec::new();
    let mut ok = true;
    let mut push = |name: String, unit: &'static str, hib: bool, v: [f64; 2]| {
        rows.push(Row {
            name,
            nanokube: v[0],
            etcd: v[1],
            higher_is_better: hib,
            unit,
        })
    };

    rt.block_on(async {
        let urls: Vec<String> = targets.iter().map(|t| t.proc_.url()).collect();

        // 1. sequential put latency
        let n = cfg.n(2000, 20);
        let mut p50 = [0.0; 2];
        let mut p99 = [0.0; 2];
        for (i, url) in urls.iter().enumerate() {
            let lat = sequential_puts(url, n).await;
            p50[i] = micros(percentile(&lat, 0.50));
            p99[i] = micros(percentile(&lat, 0.99));
        }
        push(format!("sequential put p50 ({n}, 1 KiB)"), "µs", false, p50);
        push(format!("sequential put p99 ({n}, 1 KiB)"), "µs", false, p99);

        // 2. put throughput
        let dur = cfg.secs(5.0, 0.3);
        for clients in [1usize, 16, 64] {
            let mut tput = [0.0; 2];
            let mut errs = [0.0; 2];
            for (i, url) in urls.iter().enumerate() {
                let (done, errors) = throughput(url, clients, dur, i).await;
                tput[i] = done as f64 / dur.as_secs_f64();
                errs[i] = errors as f64;
                if errors > 0 {
                    println!(
                        "{}: {errors} errors with {clients} concurrent clients",
                        targets[i].name
                    );
                }
            }
            if clients == 64 && errs[0] > 0.0 {
                println!("FAIL: nanokube had {} errors with 64 clients", errs[0]);
                ok = false;
            }
            push(
                format!("put throughput, {clients} clients"),
                "ops/s",
                true,
                tput,
            );
            push(format!("put errors, {clients} clients"), "", false, errs);
        }

        // 3. range of 1000 keys
        let keys = cfg.n(1000, 10);
        let ranges = cfg.n(200, 5);
        let mut p50 = [0.0; 2];
        let mut p99 = [0.0; 2];
        for (i, url) in urls.iter().enumerate() {
            let lat = range_latency(url, keys, ranges).await;
            p50[i] = micros(percentile(&lat, 0.50));
            p99[i] = micros(percentile(&lat, 0.99));
        }
        push(
            format!("range of {keys} keys p50 (1 KiB)"),
            "µs",
            false,
            p50,
        );
        push(
            format!("range of {keys} keys p99 (1 KiB)"),
            "µs",
            false,
            p99,
        );

        // 4. watch delivery latency
        let watchers = if cfg.scale >= 0.5 { 100 } else { 10 };
        let events = cfg.n(1000, 10);
        let mut p50 = [0.0; 2];
        let mut p99 = [0.0; 2];
        for (i, url) in urls.iter().enumerate() {
            let lat = watch_latency(url, watchers, events).await;
            p50[i] = micros(percentile(&lat, 0.50));
            p99[i] = micros(percentile(&lat, 0.99));
        }
        push(
            format!("watch delivery p50 ({watchers} watchers, {events} puts)"),
            "µs",
            false,
            p50,
        );
        push(
            format!("watch delivery p99 ({watchers} watchers, {events} puts)"),
            "µs",
            false,
            p99,
        );

        // 5. disk bytes per 10k puts, in steady state: fresh processes (no
        // deferred work from the phases above), a warm-up of 10k puts, then
        // 30k measured puts. SQLite's WAL checkpoints and etcd's backend
        // commits both run several times inside the window, so work deferred
        // past its ends (at most one checkpoint interval) is a small share.
        let n = cfg.n(10_000, 100);
        for (kind, label) in [
            (Payload::Object, "1 KiB JSON objects"),
            (Payload::Random, "1 KiB random bytes"),
        ] {
            let mut bytes = [0.0; 2];
            let fresh_nk_dir = common::tempdir();
            let fresh_etcd_dir = common::tempdir();
            let mut fresh = [
                Proc::spawn_datastore(&fresh_nk_dir.path().join("data"), fresh_nk_dir.path(), &[]),
                Proc::spawn_etcd(fresh_etcd_dir.path()),
            ];
            for p in fresh.iter_mut() {
                PIDS.lock().unwrap().push(p.pid());
                p.wait_ready();
            }
            for (i, p) in fresh.iter().enumerate() {
                let url = p.url();
                let warm = fixed_puts_of(&url, 16, n, "/bench/disk/warm/", kind).await;
                assert_eq!(warm, 0, "{}: errors while warming up", targets[i].name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                let before = common::proc_write_bytes(p.pid());
                let errors = fixed_puts_of(&url, 16, 3 * n, "/bench/disk/", kind).await;
                assert_eq!(errors, 0, "{}: errors while writing", targets[i].name);
                // let group commits / the backend batch interval flush
                tokio::time::sleep(Duration::from_secs(1)).await;
                let after = common::proc_write_bytes(p.pid());
                bytes[i] = (after - before) as f64 * 10_000.0 / (3 * n) as f64 / (1024.0 * 1024.0);
            }
            drop(fresh);
            push(
                format!("disk writes per 10k puts ({label}, 16 clients)"),
                "MiB",
                false,
                bytes,
            );
        }
    });
    drop(rt);

    // 6. idle RSS
    std::thread::sleep(Duration::from_secs(if cfg.smoke { 0 } else { 2 }));
    let mut rss = [0.0; 2];
    for (i, t) in targets.iter().enumerate() {
        rss[i] = common::proc_rss_kib(t.proc_.pid()) as f64 / 1024.0;
    }
    push("idle RSS after the runs".to_string(), "MiB", false, rss);

    let mut targets = targets;
    for t in targets.iter_mut() {
        t.proc_.assert_alive();
    }

    print_table(cfg, &etcd_version, &rows);
    ok
}

fn etcd_version() -> String {
    let out = std::process::Command::new("etcd").arg("--version").output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version:").trim().to_string())
        })
        .unwrap_or_else(|| "?".to_string())
}

fn print_table(cfg: &Config, etcd_version: &str, rows: &[Row]) {
    println!();
    println!(
        "nanokube datastore vs etcd {etcd_version} (scale {}, {} build of nanokube)",
        cfg.scale,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<50} {:>12} {:>12} {:>14}  better",
        "metric", "nanokube", "etcd", "nanokube/etcd"
    );
    println!("{}", "-".repeat(50 + 1 + 12 + 1 + 12 + 1 + 14 + 8));
    for r in rows {
        let name = if r.unit.is_empty() {
            r.name.clone()
        } else {
            format!("{} [{}]", r.name, r.unit)
        };
        let ratio = if r.etcd != 0.0 {
            format!("{:.2}", r.nanokube / r.etcd)
        } else if r.nanokube == 0.0 {
            "=".to_string()
        } else {
            "inf".to_string()
        };
        println!(
            "{:<50} {:>12} {:>12} {:>14}  {}",
            name,
            fmt_num(r.nanokube),
            fmt_num(r.etcd),
            ratio,
            if r.higher_is_better {
                "higher"
            } else {
                "lower"
            }
        );
    }
    println!();
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort();
    let idx = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[idx]
}

/// What a value looks like.
#[derive(Clone, Copy)]
enum Payload {
    /// A Kubernetes object as the API server stores it: JSON, ~1 KiB, with
    /// per-object names, uids, timestamps and a data blob.
    Object,
    /// 1 KiB of pseudo-random bytes: the worst case for compression.
    Random,
}

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    x |= 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn value_1k(tag: usize) -> Vec<u8> {
    payload(Payload::Object, tag)
}

fn payload(kind: Payload, tag: usize) -> Vec<u8> {
    let mut next = xorshift(tag as u64 * 0x9E37_79B9_7F4A_7C15 + 7);
    match kind {
        Payload::Random => (0..KIB / 8).flat_map(|_| next().to_le_bytes()).collect(),
        Payload::Object => {
            let uid = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                next() as u32,
                next() as u16,
                next() as u16,
                next() as u16,
                next() & 0xffff_ffff_ffff
            );
            // 96 random bytes, base64-like, as a Secret or ConfigMap holds.
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let blob: String = (0..128)
                .map(|_| ALPHABET[(next() % 64) as usize] as char)
                .collect();
            let mut v = format!(
                concat!(
                    r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"app-config-{tag}","#,
                    r#""namespace":"team-{ns}","uid":"{uid}","resourceVersion":"{rv}","#,
                    r#""creationTimestamp":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z","#,
                    r#""labels":{{"app.kubernetes.io/name":"app-{tag}","app.kubernetes.io/part-of":"shop","#,
                    r#""app.kubernetes.io/managed-by":"helm","pod-template-hash":"{hash:x}"}},"#,
                    r#""annotations":{{"meta.helm.sh/release-name":"shop","meta.helm.sh/release-namespace":"team-{ns}"}},"#,
                    r#""managedFields":[{{"manager":"helm","operation":"Update","apiVersion":"v1","#,
                    r#""time":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z","fieldsType":"FieldsV1","#,
                    r#""fieldsV1":{{"f:data":{{".":{{}},"f:config.yaml":{{}},"f:token":{{}}}}}}}}]}},"#,
                    r#""data":{{"config.yaml":"server:
  port: {port}
  replicas: {rep}
  log: info
","#,
                    r#""token":"{blob}"}}}}"#
                ),
                tag = tag,
                ns = tag % 17,
                uid = uid,
                rv = 1000 + tag,
                day = 1 + tag % 28,
                h = tag % 24,
                m = tag % 60,
                s = (tag * 7) % 60,
                hash = next() & 0xff_ffff_ffff,
                port = 8000 + tag % 1000,
                rep = 1 + tag % 5,
                blob = blob,
            )
            .into_bytes();
            v.resize(KIB, b' ');
            v
        }
    }
}

async fn sequential_puts(url: &str, n: usize) -> Vec<Duration> {
    let mut c = common::connect(url).await;
    let value = value_1k(0);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.put(format!("/bench/seq/{i:08}"), value.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("{url}: sequential put {i}: {e}"));
        lat.push(t.elapsed());
    }
    lat
}

/// `clients` separate connections put 1 KiB values for `dur`; returns
/// (acknowledged puts, errors).
async fn throughput(url: &str, clients: usize, dur: Duration, run: usize) -> (u64, u64) {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(common::connect(url).await);
    }
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for (ci, mut c) in conns.into_iter().enumerate() {
        let done = done.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let value = value_1k(ci);
            let mut i = 0u64;
            while Instant::now() < deadline {
                let key = format!("/bench/tp/{run}/{clients}/{ci:03}/{i:08}");
                match c.put(key, value.clone(), None).await {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("throughput task");
    }
    (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed))
}

/// `n` puts of 1 KiB spread over `clients` connections; returns errors.
async fn fixed_puts(url: &str, clients: usize, n: usize, prefix: &str) -> u64 {
    fixed_puts_of(url, clients, n, prefix, Payload::Object).await
}

async fn fixed_puts_of(url: &str, clients: usize, n: usize, prefix: &str, kind: Payload) -> u64 {
    let mut tasks = Vec::new();
    let errors = Arc::new(AtomicU64::new(0));
    for ci in 0..clients {
        let url = url.to_string();
        let prefix = prefix.to_string();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = common::connect(&url).await;
            for i in (ci..n).step_by(clients) {
                if c.put(format!("{prefix}{i:08}"), payload(kind, i), None)
                    .await
                    .is_err()
                {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("put task");
    }
    errors.load(Ordering::Relaxed)
}

async fn range_latency(url: &str, keys: usize, ranges: usize) -> Vec<Duration> {
    let errors = fixed_puts(url, 16, keys, "/bench/range/").await;
    assert_eq!(errors, 0, "{url}: errors while loading range keys");
    let mut c = common::connect(url).await;
    let mut lat = Vec::with_capacity(ranges);
    for _ in 0..ranges {
        let t = Instant::now();
        let r = c
            .get("/bench/range/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap_or_else(|e| panic!("{url}: range: {e}"));
        lat.push(t.elapsed());
        assert_eq!(r.kvs().len(), keys);
    }
    lat
}

async fn watch_latency(url: &str, watchers: usize, events: usize) -> Vec<Duration> {
    let base = Instant::now();
    let prefix = format!("/bench/watch/{}/", base.elapsed().as_nanos());
    let mut streams = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut c = common::connect(url).await;
        let mut ws = c
            .watch(prefix.clone(), Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap_or_else(|e| panic!("{url}: watch: {e}"));
        let first = tokio::time::timeout(Duration::from_secs(10), ws.message())
            .await
            .expect("watch creation timed out")
            .expect("watch stream")
            .expect("watch created response");
        assert!(first.created(), "first watch response is the creation");
        streams.push((c, ws));
    }
    let mut tasks = Vec::new();
    for (c, mut ws) in streams {
        tasks.push(tokio::spawn(async move {
            let _keep = c;
            let mut lat = Vec::with_capacity(events);
            while lat.len() < events {
                let msg = match ws.message().await {
                    Ok(Some(m)) => m,
                    other => panic!("watch stream ended: {other:?}"),
                };
                let now = base.elapsed();
                for e in msg.events() {
                    let v = e.kv().expect("event kv").value();
                    let sent: u64 = std::str::from_utf8(&v[..20]).unwrap().parse().unwrap();
                    lat.push(now.saturating_sub(Duration::from_nanos(sent)));
                }
            }
            lat
        }));
    }
    let mut c: Client = common::connect(url).await;
    for i in 0..events {
        let sent = base.elapsed().as_nanos() as u64;
        let mut v = format!("{sent:020}").into_bytes();
        v.resize(256, b'w');
        c.put(format!("{prefix}{i:08}"), v, None)
            .await
            .unwrap_or_else(|e| panic!("{url}: watch put: {e}"));
    }
    let mut all = Vec::with_capacity(watchers * events);
    for t in tasks {
        let lat = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("watchers did not receive every event within 60 s")
            .expect("watch task");
        all.extend(lat);
    }
    all
}
