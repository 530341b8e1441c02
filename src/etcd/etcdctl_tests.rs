//! The real etcdctl (3.4) against the server over TCP and a Unix socket.
//! Ignored by default: `cargo test etcdctl -- --ignored` where etcdctl is
//! installed.

use std::time::Duration;

use super::e2e_tests::{start, CLUSTER, MEMBER};
use super::EtcdInfo;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs etcdctl on PATH"]
async fn etcdctl_smoke() {
    let srv = start().await;
    let dir = std::env::temp_dir().join(format!("nanokube-etcd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("etcd.sock");
    let _ = std::fs::remove_file(&sock);
    let unix = tokio::net::UnixListener::bind(&sock).unwrap();
    let info = EtcdInfo {
        name: "test".into(),
        client_urls: vec![format!("unix://{}", sock.display())],
        member_id: MEMBER,
        cluster_id: CLUSTER,
    };
    tokio::spawn(super::serve_unix(
        srv.backend.clone(),
        info,
        unix,
        std::future::pending(),
    ));
    let tcp = srv.endpoint.trim_start_matches("http://").to_string();
    // Go clients send the socket path as :authority, and h2 refuses a "/"
    // in it; a relative path (run from the socket's directory) is accepted.
    let unix_ep = "unix://etcd.sock".to_string();
    let cleanup = dir.clone();
    let run = move |ep: &str, args: &[&str], stdin: Option<&str>| {
        let mut cmd = std::process::Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={ep}"))
            .args(args);
        cmd.current_dir(&dir);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        cmd.stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("etcdctl runs");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("$ etcdctl {}\n{text}", args.join(" "));
        (out.status.success(), text)
    };
    let watch_ep = tcp.clone();
    let watcher = std::thread::spawn(move || {
        let out = std::process::Command::new("timeout")
            .args([
                "3",
                "etcdctl",
                &format!("--endpoints={watch_ep}"),
                "watch",
                "--prefix",
                "/w",
                "--prev-kv",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    });
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        assert!(run(&tcp, &["put", "/w/a", "1"], None).0);
        assert!(run(&unix_ep, &["put", "/w/a", "2"], None).0);
        assert!(run(&tcp, &["get", "--prefix", "/w", "-w", "json"], None).0);
        assert!(run(&tcp, &["del", "/w/a", "--prev-kv"], None).0);
        let txn = "value(\"/w/b\") = \"\"\n\nput /w/b x\n\nget /w/zzz\n\n";
        assert!(run(&tcp, &["txn"], Some(txn)).0);
        let (ok, grant) = run(&tcp, &["lease", "grant", "60"], None);
        assert!(ok);
        let id = grant.split_whitespace().nth(1).unwrap().to_string();
        assert!(run(&tcp, &["put", "/w/l", "v", "--lease", &id], None).0);
        assert!(run(&tcp, &["lease", "keep-alive", "--once", &id], None).0);
        assert!(run(&tcp, &["lease", "timetolive", "--keys", &id], None).0);
        assert!(run(&tcp, &["lease", "list"], None).0);
        assert!(run(&tcp, &["lease", "revoke", &id], None).0);
        assert!(run(&tcp, &["endpoint", "status", "-w", "table"], None).0);
        assert!(run(&unix_ep, &["endpoint", "health"], None).0);
        assert!(run(&tcp, &["endpoint", "hashkv"], None).0);
        assert!(run(&tcp, &["member", "list", "-w", "table"], None).0);
        assert!(run(&tcp, &["alarm", "list"], None).0);
        assert!(run(&tcp, &["defrag"], None).0);
        assert!(run(&tcp, &["compaction", "3"], None).0);
        assert!(!run(&tcp, &["get", "/w/b", "--rev", "2"], None).0);
        assert!(!run(&tcp, &["member", "remove", "abc"], None).0);
        assert!(!run(&tcp, &["snapshot", "save", "snap.db"], None).0);
    })
    .await
    .unwrap();
    let events = watcher.join().unwrap();
    println!("watch output:\n{events}");
    assert!(events.contains("PUT") && events.contains("DELETE"));
    let _ = std::fs::remove_dir_all(&cleanup);
}
