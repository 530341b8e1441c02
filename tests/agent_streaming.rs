//! Streaming through the node agent with real kubectl: `logs -f`, `exec`
//! (exit codes, stdin, large output), `port-forward` and `cp` both ways,
//! each with kubectl 1.27 (SPDY/3.1) and 1.33 (WebSocket) where the
//! protocol differs. One cluster, one pod, scenarios in parallel.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::agent::*;
use common::*;
use serde_json::json;

const NS: &str = "default";
const POD: &str = "tools";

/// httpd in the background (port-forward target), then one numbered line
/// a second (the log to follow).
const SCRIPT: &str = "mkdir -p /www && echo pf-ok > /www/index.html && httpd -p 8080 -h /www && \
                      i=0; while :; do echo line-$i; i=$((i+1)); sleep 1; done";

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
    run_scenarios(vec![
        ("logs_follow", Box::new(|| logs_follow(&c))),
        ("exec_spdy", Box::new(|| exec(&c, KUBECTL_SPDY))),
        ("exec_websocket", Box::new(|| exec(&c, KUBECTL_WEBSOCKET))),
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
    c.shutdown();
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
/// them, exit codes propagate.
fn exec(c: &Cluster, version: &str) {
    let out = c.exec(
        version,
        NS,
        POD,
        None,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
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

    let out = c.exec(version, NS, POD, None, &["id", "-u"]);
    assert!(out.status.success(), "kubectl {version}: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");

    let input = b"hello from stdin\nsecond line\n";
    let out = c.exec_stdin(version, NS, POD, None, &["cat"], Some(input));
    assert!(out.status.success(), "kubectl {version} exec -i: {out:?}");
    assert_eq!(out.stdout, input, "kubectl {version} exec -i echoed stdin");

    let out = c.exec(version, NS, POD, None, &["seq", "1", "20000"]);
    assert!(out.status.success(), "kubectl {version}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        20000,
        "kubectl {version}: large output cut"
    );
    assert_eq!(text.lines().last(), Some("20000"));

    let out = c.exec(version, NS, POD, None, &["/no/such/command"]);
    assert!(
        !out.status.success(),
        "kubectl {version}: a missing command succeeded"
    );
}

/// `port-forward` to the pod's httpd; two connections through it.
fn port_forward(c: &Cluster, version: &str) {
    let local = free_port();
    let spec = format!("{local}:8080");
    let pf = c.kubectl_version(version).background(&[
        "port-forward",
        "-n",
        NS,
        &format!("pod/{POD}"),
        &spec,
        "--address",
        "127.0.0.1",
    ]);
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
    k.ok(&[
        "cp",
        up.to_str().expect("utf-8"),
        &format!("{NS}/{POD}:{remote}"),
    ]);
    let sum = c.exec_ok(NS, POD, None, &["sha256sum", &remote]);
    let want = common::images::sha256_digest(&data);
    assert_eq!(
        sum.split_whitespace().next().map(|h| format!("sha256:{h}")),
        Some(want),
        "kubectl {version} cp to the pod changed the file"
    );
    let down = dir.join("down.bin");
    k.ok(&[
        "cp",
        &format!("{NS}/{POD}:{remote}"),
        down.to_str().expect("utf-8"),
    ]);
    let back = std::fs::read(&down).expect("read copied file");
    assert!(
        back == data,
        "kubectl {version} cp from the pod: {} bytes differ",
        back.len()
    );
}
