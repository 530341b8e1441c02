//! Code run inside other network namespaces (a host's, a pod's): a thread
//! that joins the namespace with setns(2) (only that thread moves), and a
//! plain TCP transfer between two namespaces for throughput figures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `f` on a new thread that first joins the network namespace at
/// `netns` (`/var/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(netns)
                .unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {}: {e}", netns.display()));
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// The pid of the first live process whose command line contains
/// `marker` (e.g. a token in a pod's `sh -c` script).
pub fn pid_with_cmdline(marker: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .is_ok_and(|c| c.contains(marker) && !c.contains("nanokube"))
        })
}

/// Sends `bytes` over one TCP connection from a thread in `client_ns` to
/// a listener on `server` in `server_ns`; bytes per second as the
/// receiver saw them (first byte to end of stream).
pub fn tcp_throughput(server_ns: &Path, server: SocketAddr, client_ns: &Path, bytes: u64) -> f64 {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            in_netns(server_ns, || {
                let l = TcpListener::bind(server)
                    .unwrap_or_else(|e| panic!("bind {server} in {}: {e}", server_ns.display()));
                let _ = tx.send(());
                let (mut conn, _) = l.accept().expect("accept the transfer");
                conn.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("read timeout");
                let mut buf = vec![0u8; 256 * 1024];
                let mut got = 0u64;
                let mut t0 = None;
                loop {
                    let n = conn.read(&mut buf).expect("read the transfer");
                    if n == 0 {
                        break;
                    }
                    t0.get_or_insert_with(Instant::now);
                    got += n as u64;
                }
                (got, t0.map(|t| t.elapsed()).unwrap_or_default())
            })
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the receiver did not listen");
        in_netns(client_ns, || {
            let mut c = TcpStream::connect_timeout(&server, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connect {server}: {e}"));
            c.set_write_timeout(Some(Duration::from_secs(30)))
                .expect("write timeout");
            let chunk = vec![0x5au8; 256 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                c.write_all(&chunk[..n]).expect("send the transfer");
                left -= n as u64;
            }
            c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        });
        let (got, took) = receiver.join().expect("receiver thread");
        assert_eq!(got, bytes, "the receiver got {got} of {bytes} bytes");
        got as f64 / took.as_secs_f64().max(1e-6)
    })
}
