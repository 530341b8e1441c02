//! Streaming through the node agent with real kubectl: `logs -f`, `exec`
//! (exit codes, stdin, large output, a TTY and its size), `attach`,
//! `port-forward` and `cp` both ways, each with kubectl 1.27 (SPDY/3.1)
//! and 1.33 (WebSocket, which the API server translates to SPDY for the
//! runtime). The 1.33 runs prove WebSocket was used: client-go logs any
//! fallback to SPDY at `-v=4`, and the API server's translation counters
//! in /metrics must have moved. One cluster, one pod, scenarios in
//! parallel.

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use crate::common::agent::*;
use crate::common::*;
use serde_json::json;

const NS: &str = "default";
const POD: &str = "tools";

/// httpd in the background (port-forward target), then one numbered line
/// a second (the log to follow).
const SCRIPT: &str = "mkdir -p /www && echo pf-ok > /www/index.html && httpd -p 8080 -h /www && \
                      i=0; while :; do echo line-$i; i=$((i+1)); sleep 1; done";

const TRANSLATED: &str = "apiserver_stream_translator_requests_total";
const TUNNELLED: &str = "apiserver_stream_tunnel_requests_total";

#[test]
fn logs_exec_port_forward_cp() {
    let c = Cluster::start();
    c.apply_json(&pod_manifest(
        NS,
        POD,
        json!({"containers": [busybox_container(POD, SCRIPT)], "terminationGracePeriodSeconds": 1}),
    ));
    c.wait_running(NS, POD, POD_TIMEOUT);
    c.wait_log(NS, POD, None, "line-1", POD_TIMEOUT);
    let before = (counter(&c, TRANSLATED), counter(&c, TUNNELLED));
    run_scenarios(vec![
        ("logs_follow", Box::new(|| logs_follow(&c))),
        ("exec_spdy", Box::new(|| exec(&c, KUBECTL_SPDY))),
        ("exec_websocket", Box::new(|| exec(&c, KUBECTL_WEBSOCKET))),
        ("tty_spdy", Box::new(|| tty(&c, KUBECTL_SPDY))),
        ("tty_websocket", Box::new(|| tty(&c, KUBECTL_WEBSOCKET))),
        ("attach_spdy", Box::new(|| attach(&c, KUBECTL_SPDY))),
        (
            "attach_websocket",
            Box::new(|| attach(&c, KUBECTL_WEBSOCKET)),
        ),
        (
            "port_forward_spdy",
            Box::new(|| port_forward(&c, KUBECTL_SPDY)),
        ),
        (
            "port_forward_websocket",
            Box::new(|| port_forward(&c, KUBECTL_WEBSOCKET)),
        ),
        ("cp_spdy", Box::new(|| cp(&c, KUBECTL_SPDY))),
        ("cp_websocket", Box::new(|| cp(&c, KUBECTL_WEBSOCKET))),
    ]);
    // kubectl 1.33 alone made 5 exec, 1 tty, 1 attach and 2 cp sessions
    // and one port-forward: each must have been a translated WebSocket.
    let after = (counter(&c, TRANSLATED), counter(&c, TUNNELLED));
    assert!(
        after.0 >= before.0 + 9,
        "translated exec/attach sessions {before:?} -> {after:?}"
    );
    assert!(
        after.1 > before.1,
        "tunnelled port-forward sessions {before:?} -> {after:?}"
    );
    c.shutdown();
}

/// A counter of the API server's /metrics (code 101).
fn counter(c: &Cluster, name: &str) -> u64 {
    let text = c.k().ok(&["get", "--raw", "/metrics"]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{code=\"101\"}} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Extra kubectl flags: with WebSocket, `-v=4` makes client-go log a
/// fallback to SPDY, which [`assert_no_fallback`] looks for.
fn verbosity(version: &str) -> &'static [&'static str] {
    if version == KUBECTL_WEBSOCKET {
        &["-v=4"]
    } else {
        &[]
    }
}

fn assert_no_fallback(version: &str, stderr: &str) {
    if version == KUBECTL_WEBSOCKET {
        assert!(
            !stderr.to_ascii_lowercase().contains("fallback"),
            "kubectl {version} fell back to SPDY:\n{stderr}"
        );
    }
}

/// `kubectl exec` (`-i` with stdin) with the version's verbosity.
fn kexec(c: &Cluster, version: &str, cmd: &[&str], stdin: Option<&[u8]>) -> Output {
    let k = c.kubectl_version(version);
    let mut args = vec!["exec", "-n", NS, POD];
    args.extend_from_slice(verbosity(version));
    if stdin.is_some() {
        args.push("-i");
    }
    args.push("--");
    args.extend_from_slice(cmd);
    let out = run_with_timeout(&mut k.command(&args), stdin, Duration::from_secs(60));
    assert_no_fallback(version, &String::from_utf8_lossy(&out.stderr));
    out
}

fn line_number(line: &str) -> u64 {
    line.trim()
        .strip_prefix("line-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected log line {line:?}"))
}

/// `logs -f` delivers lines as the container prints them; `--tail` and
/// `--timestamps` shape the output.
fn logs_follow(c: &Cluster) {
    let follow = c
        .k()
        .background(&["logs", "-f", "-n", NS, POD, "--tail", "2"]);
    let first = follow.expect_lines(2, Duration::from_secs(15));
    let last = line_number(&first[1]);
    assert_eq!(line_number(&first[0]) + 1, last, "{first:?}");
    // Printed after the command started: only a live stream carries them.
    let more = follow.expect_lines(2, Duration::from_secs(10));
    assert_eq!(line_number(&more[0]), last + 1, "{first:?} then {more:?}");
    assert_eq!(line_number(&more[1]), last + 2, "{first:?} then {more:?}");
    drop(follow);

    let one = c.k().ok(&["logs", "-n", NS, POD, "--tail", "1"]);
    assert_eq!(one.lines().count(), 1, "--tail 1 printed {one:?}");
    line_number(&one);
    let stamped = c
        .k()
        .ok(&["logs", "-n", NS, POD, "--tail", "1", "--timestamps"]);
    let (ts, text) = stamped
        .trim_end()
        .split_once(' ')
        .unwrap_or_else(|| panic!("--timestamps printed {stamped:?}"));
    assert!(
        ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T') && ts.ends_with('Z'),
        "not an RFC 3339 timestamp: {stamped:?}"
    );
    line_number(text);
}

/// Commands run, their stdout/stderr come back apart, stdin reaches
/// them (and its end too), exit codes propagate.
fn exec(c: &Cluster, version: &str) {
    let out = kexec(
        c,
        version,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "kubectl {version} exec exit code; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "out\n",
        "kubectl {version}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err"),
        "kubectl {version} stderr"
    );

    let out = kexec(c, version, &["id", "-u"], None);
    assert!(out.status.success(), "kubectl {version}: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");

    // `cat` only ends when stdin's end reaches it (v5's close signal).
    let input = b"hello from stdin\nsecond line\n";
    let out = kexec(c, version, &["cat"], Some(input));
    assert!(out.status.success(), "kubectl {version} exec -i: {out:?}");
    assert_eq!(out.stdout, input, "kubectl {version} exec -i echoed stdin");

    let out = kexec(c, version, &["seq", "1", "20000"], None);
    assert!(out.status.success(), "kubectl {version}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        20000,
        "kubectl {version}: large output cut"
    );
    assert_eq!(text.lines().last(), Some("20000"));

    let out = kexec(c, version, &["/no/such/command"], None);
    assert!(
        !out.status.success(),
        "kubectl {version}: a missing command succeeded"
    );
}

/// `exec -ti` under a pseudo-terminal (util-linux `script`): the
/// terminal's size reaches the container through the resize channel.
fn tty(c: &Cluster, version: &str) {
    let k = c.kubectl_version(version);
    let mut args = vec!["exec", "-ti", "-n", NS, POD];
    args.extend_from_slice(verbosity(version));
    // The size arrives as a resize event after the process started.
    args.extend(["--", "sh", "-c", "sleep 1; stty size"]);
    let cmd = k.command(&args);
    let mut line = String::from("stty cols 123 rows 45; exec");
    line.push_str(&format!(" {:?}", cmd.get_program()));
    for a in cmd.get_args() {
        line.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let out = run_with_timeout(&mut script, None, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl {version} exec -ti: {out:?}");
    assert!(
        // `script` echoes its stdin's end as `^@` before the output.
        text.lines().any(|l| l.trim().ends_with("45 123")),
        "kubectl {version} exec -ti: the terminal size did not arrive: {text:?}"
    );
    assert_no_fallback(version, &text);
}

/// `attach` follows the container's output live.
fn attach(c: &Cluster, version: &str) {
    let mut args = vec!["attach", "-n", NS, POD];
    args.extend_from_slice(verbosity(version));
    let attached = c.kubectl_version(version).background(&args);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let Some(line) = attached.next_line(Duration::from_secs(20)) else {
            panic!(
                "kubectl {version} attach: {seen:?}; stderr:\n{}",
                attached.stderr()
            );
        };
        if line.starts_with("line-") {
            seen.push(line_number(&line));
        }
    }
    assert_eq!(seen[0] + 1, seen[1], "kubectl {version} attach {seen:?}");
    assert_no_fallback(version, &attached.stderr());
}

/// `port-forward` to the pod's httpd; two connections through it.
fn port_forward(c: &Cluster, version: &str) {
    let local = free_port();
    let spec = format!("{local}:8080");
    let target = format!("pod/{POD}");
    let mut args = vec!["port-forward", "-n", NS, &target, &spec];
    args.extend(["--address", "127.0.0.1"]);
    args.extend_from_slice(verbosity(version));
    let pf = c.kubectl_version(version).background(&args);
    let line = pf.next_line(Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "kubectl {version} port-forward printed nothing; stderr:\n{}",
            pf.stderr()
        )
    });
    assert!(
        line.contains(&format!("127.0.0.1:{local}")),
        "kubectl {version}: {line}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{local}").parse().expect("address");
    for _ in 0..2 {
        let body = wait_http(addr, "/", Duration::from_secs(10));
        assert_eq!(body, "pf-ok\n", "kubectl {version} port-forward");
    }
    // Connections at the same time: several streams in one session.
    std::thread::scope(|s| {
        let all: Vec<_> = (0..4)
            .map(|_| s.spawn(move || wait_http(addr, "/", Duration::from_secs(10))))
            .collect();
        for h in all {
            let body = h.join().expect("connection thread");
            assert_eq!(body, "pf-ok\n", "kubectl {version} port-forward");
        }
    });
    assert_no_fallback(version, &pf.stderr());
}

/// `kubectl cp` into the pod and back: the bytes survive both ways.
fn cp(c: &Cluster, version: &str) {
    let dir = c.root.join(format!("cp-{version}"));
    std::fs::create_dir_all(&dir).expect("create cp dir");
    // 256 KiB of pseudo-random bytes (xorshift), not compressible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let up = dir.join("up.bin");
    std::fs::write(&up, &data).expect("write local file");
    let remote = format!("/tmp/cp-{version}.bin");
    let k = c.kubectl_version(version);
    let copy = |from: &str, to: &str| {
        let mut args = vec!["cp", from, to];
        args.extend_from_slice(verbosity(version));
        let out = k.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {version} cp {from} {to}: {stderr}"
        );
        assert_no_fallback(version, &stderr);
    };
    copy(up.to_str().expect("utf-8"), &format!("{NS}/{POD}:{remote}"));
    let sum = c.exec_ok(NS, POD, None, &["sha256sum", &remote]);
    let want = crate::common::images::sha256_digest(&data);
    assert_eq!(
        sum.split_whitespace().next().map(|h| format!("sha256:{h}")),
        Some(want),
        "kubectl {version} cp to the pod changed the file"
    );
    let down = dir.join("down.bin");
    copy(
        &format!("{NS}/{POD}:{remote}"),
        down.to_str().expect("utf-8"),
    );
    let back = std::fs::read(&down).expect("read copied file");
    assert!(
        back == data,
        "kubectl {version} cp from the pod: {} bytes differ",
        back.len()
    );
}
