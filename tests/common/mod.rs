//! Shared helpers for the integration tests (and the datastore benchmark,
//! which includes this file with `#[path]`).
//!
//! Every test starts the real `nanokube` binary in a fresh temporary data
//! directory, waits until it answers, and kills it (SIGKILL + wait) when the
//! [`Proc`] guard is dropped, also when the test panics.
//!
//! Setting `NANOKUBE_TEST_TARGET=etcd` makes [`Proc::datastore`] start a real
//! etcd instead of `nanokube datastore`; that is how the expectations of the
//! etcd-compatibility tests were checked against the reference.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test: the one cargo built, or the one named by
/// `NANOKUBE_TEST_BIN` (how a release artefact such as the static
/// `dist/nanokube` is put through the tests). Use it where a `&str` path
/// goes: `Command::new(NANOKUBE)`, `Proc::spawn(.., NANOKUBE, ..)`.
pub static NANOKUBE: &TestBin = &TestBin;

/// The path of the binary under test, resolved once (see [`NANOKUBE`]).
pub struct TestBin;

impl TestBin {
    fn path() -> &'static str {
        static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PATH.get_or_init(|| match std::env::var("NANOKUBE_TEST_BIN") {
            // Absolute, so children started in another directory find it too.
            Ok(p) if !p.is_empty() => std::fs::canonicalize(&p)
                .unwrap_or_else(|e| panic!("NANOKUBE_TEST_BIN={p}: {e}"))
                .to_str()
                .unwrap_or_else(|| panic!("NANOKUBE_TEST_BIN={p}: not UTF-8"))
                .to_string(),
            _ => env!("CARGO_BIN_EXE_nanokube").to_string(),
        })
    }
}

impl std::ops::Deref for TestBin {
    type Target = str;
    fn deref(&self) -> &str {
        Self::path()
    }
}

impl AsRef<std::ffi::OsStr> for TestBin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        Self::path().as_ref()
    }
}

impl AsRef<Path> for TestBin {
    fn as_ref(&self) -> &Path {
        Path::new(Self::path())
    }
}

impl std::fmt::Display for TestBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::path())
    }
}

/// How long a server may take to start answering.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `etcdctl` invocation may take.
pub const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh temporary directory on the same file system as the target dir
/// (not a tmpfs `/tmp`, so disk-write accounting and fsync are real).
pub fn tempdir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("create CARGO_TARGET_TMPDIR");
    tempfile::Builder::new()
        .prefix("nk-")
        .tempdir_in(base)
        .expect("create temp dir")
}

/// A temporary directory with a short path (for unix sockets, whose paths
/// are limited to 108 bytes).
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nk-")
        .tempdir()
        .expect("create temp dir")
}

/// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's
/// ephemeral range (32768+) and the NodePort range (30000+): a port handed
/// out by binding :0 comes from the ephemeral range, where an outgoing
/// connection can take it as its source port before the server listens on
/// it ("Address already in use"). Successive calls walk the range from a
/// per-process start, so tests running in parallel do not pick the same.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 16_000;
    const COUNT: u32 = 14_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % COUNT;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(cmd).is_file()))
        .unwrap_or(false)
}

/// Fails (never skips) when `etcdctl` is not installed.
pub fn require_etcdctl() {
    require_tool("etcdctl", "etcd-client");
}

/// Fails (never skips) when the program `cmd` from Debian package `package`
/// is not installed.
pub fn require_tool(cmd: &str, package: &str) {
    assert!(
        on_path(cmd),
        "`{cmd}` is not installed but this test needs it: install the Debian package \
         `{package}` (apt-get install -y {package})"
    );
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Which kind of process a [`Proc`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Datastore,
    Server,
    Etcd,
    /// `nanokube agent` (see `hollow.rs`).
    Agent,
}

/// A server process under test; killed (SIGKILL + wait) on drop.
pub struct Proc {
    child: Option<Child>,
    pub kind: Kind,
    /// The TCP port of the etcd API.
    pub port: u16,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// The HTTPS port of the Kubernetes API (servers only).
    pub api_port: Option<u16>,
    /// The admin kubeconfig the server wrote (servers only).
    pub kubeconfig_path: Option<PathBuf>,
    log_path: PathBuf,
    // Dropped after the child was killed (fields drop in declaration order,
    // but `Drop::drop` runs first anyway).
    _tmp: Option<tempfile::TempDir>,
}

impl Proc {
    /// `nanokube datastore` (or etcd when `NANOKUBE_TEST_TARGET=etcd`) on a
    /// fresh data dir; waits until it answers.
    pub fn datastore() -> Proc {
        Self::datastore_with(&[])
    }

    /// Like [`Proc::datastore`] with extra command-line arguments.
    pub fn datastore_with(extra: &[&str]) -> Proc {
        let tmp = tempdir();
        let mut p = if std::env::var("NANOKUBE_TEST_TARGET").as_deref() == Ok("etcd") {
            Self::spawn_etcd(tmp.path())
        } else {
            Self::spawn_datastore(&tmp.path().join("data"), tmp.path(), extra)
        };
        p._tmp = Some(tmp);
        p.wait_ready();
        p
    }

    /// `nanokube datastore` on an existing data dir (for restarts); the
    /// log goes to `log_dir`. Does not wait.
    pub fn spawn_datastore(data_dir: &Path, log_dir: &Path, extra: &[&str]) -> Proc {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "datastore",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen-address",
            &listen,
        ];
        args.extend_from_slice(extra);
        Self::spawn(Kind::Datastore, NANOKUBE, &args, port, data_dir, log_dir)
    }

    /// `nanokube datastore` on an existing data dir; waits until it answers.
    pub fn datastore_at(data_dir: &Path, log_dir: &Path) -> Proc {
        let mut p = Self::spawn_datastore(data_dir, log_dir, &[]);
        p.wait_ready();
        p
    }

    /// `nanokube server` on a fresh data dir with the etcd API also on TCP;
    /// waits until both the unix socket and the TCP port answer.
    pub fn server() -> Proc {
        Self::server_with(|_| Vec::new())
    }

    /// Like [`Proc::server`] with extra arguments, made from the data dir.
    ///
    /// Always runs with `--disable-agent`, the API on a free port on
    /// 127.0.0.1 and the admin kubeconfig in `<data-dir>/kubeconfig.yaml`,
    /// unless `extra` passes its own `--https-listen-port`,
    /// `--bind-address` or `--write-kubeconfig`.
    pub fn server_with(extra: impl FnOnce(&Path) -> Vec<String>) -> Proc {
        let mut p = Self::spawn_server_with(extra);
        p.wait_ready();
        p
    }

    /// Like [`Proc::server_with`] but does not wait until it answers.
    pub fn spawn_server_with(extra: impl FnOnce(&Path) -> Vec<String>) -> Proc {
        let tmp = short_tempdir();
        let port = free_port();
        let data_dir = tmp.path().join("d");
        let listen = format!("127.0.0.1:{port}");
        let extra = extra(&data_dir);
        let has = |flag: &str| {
            extra
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        let value_of = |flag: &str| -> Option<String> {
            let eq = format!("{flag}=");
            extra.iter().enumerate().find_map(|(i, a)| {
                if a == flag {
                    extra.get(i + 1).cloned()
                } else {
                    a.strip_prefix(&eq).map(str::to_string)
                }
            })
        };
        let mut own: Vec<String> = Vec::new();
        let api_port = match value_of("--https-listen-port") {
            Some(v) => v.parse().expect("--https-listen-port is a number"),
            None => {
                let p = free_port();
                own.extend(["--https-listen-port".into(), p.to_string()]);
                p
            }
        };
        if !has("--bind-address") {
            own.extend(["--bind-address".into(), "127.0.0.1".into()]);
        }
        let kubeconfig = match value_of("--write-kubeconfig") {
            Some(v) => PathBuf::from(v),
            None => {
                let k = data_dir.join("kubeconfig.yaml");
                own.extend([
                    "--write-kubeconfig".into(),
                    k.to_string_lossy().into_owned(),
                ]);
                k
            }
        };
        if !has("--disable-agent") {
            own.push("--disable-agent".into());
        }
        let mut args = vec![
            "server",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--datastore-listen-address",
            &listen,
        ];
        args.extend(own.iter().map(String::as_str));
        args.extend(extra.iter().map(String::as_str));
        let mut p = Self::spawn(Kind::Server, NANOKUBE, &args, port, &data_dir, tmp.path());
        p.api_port = Some(api_port);
        p.kubeconfig_path = Some(kubeconfig);
        p._tmp = Some(tmp);
        p
    }

    /// A real etcd 3.4 listening on loopback only. Does not wait.
    pub fn spawn_etcd(dir: &Path) -> Proc {
        require_tool("etcd", "etcd-server");
        let port = free_port();
        let peer = free_port();
        let data_dir = dir.join("etcd-data");
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let cluster = format!("default={peer_url}");
        let args = [
            "--name",
            "default",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &cluster,
        ];
        Self::spawn(Kind::Etcd, "etcd", &args, port, &data_dir, dir)
    }

    fn spawn(
        kind: Kind,
        program: &str,
        args: &[&str],
        port: u16,
        data_dir: &Path,
        log_dir: &Path,
    ) -> Proc {
        std::fs::create_dir_all(log_dir).expect("create log dir");
        // One log file per start, so a restart does not hide the first log.
        let mut n = 0;
        let log_path = loop {
            let candidate = log_dir.join(format!("stderr-{n}.log"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let log = std::fs::File::create(&log_path).expect("create log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} {args:?}: {e}"));
        Proc {
            child: Some(child),
            kind,
            port,
            data_dir: data_dir.to_path_buf(),
            api_port: None,
            kubeconfig_path: None,
            log_path,
            _tmp: None,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (for etcd-client)
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `https://127.0.0.1:PORT`: the Kubernetes API of `nanokube server`.
    pub fn api_url(&self) -> String {
        format!(
            "https://127.0.0.1:{}",
            self.api_port.expect("not a server: no API port")
        )
    }

    /// The admin kubeconfig `nanokube server` wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig_path
            .clone()
            .expect("not a server: no kubeconfig")
    }

    /// `unix://<data-dir>/server/etcd.sock`, for `etcdctl --endpoints`.
    pub fn unix_endpoint(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    /// The unix socket of `nanokube server`.
    pub fn socket_path(&self) -> PathBuf {
        self.data_dir.join("server").join("etcd.sock")
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("server").join("db").join("state.db")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("process already stopped").id() as i32
    }

    /// The process's stderr so far (last 8 KiB).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        tail(&text, 8192).to_string()
    }

    /// Panics with the log when the process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("process already stopped");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "{:?} process exited unexpectedly ({status}); its stderr:\n{}",
                self.kind,
                self.log()
            );
        }
    }

    /// Waits until the TCP port (and for `server`, the unix socket) accepts
    /// connections and `etcdctl endpoint health` (when available) succeeds.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr: SocketAddr = self.endpoint().parse().unwrap();
        loop {
            self.assert_alive();
            let tcp_ok = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
            let unix_ok = self.kind != Kind::Server
                || std::os::unix::net::UnixStream::connect(self.socket_path()).is_ok();
            if tcp_ok && unix_ok {
                break;
            }
            self.check_deadline(deadline, "accept connections");
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.kind == Kind::Server {
            loop {
                self.assert_alive();
                if self.readyz() == Some(200) {
                    break;
                }
                self.check_deadline(deadline, "answer 200 to GET /readyz");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !on_path("etcdctl") {
            return;
        }
        loop {
            self.assert_alive();
            let out = self.ctl(&["endpoint", "health", "--command-timeout=2s"]);
            if out.status.success() {
                break;
            }
            self.check_deadline(deadline, "pass `etcdctl endpoint health`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The status code of `GET /readyz` on the API port (anonymous, like a
    /// load balancer's health check), or `None` when nothing answered.
    pub fn readyz(&self) -> Option<u16> {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.api_port?).parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return None;
        }
        let url = format!("{}/readyz", self.api_url());
        http_status(&url)
    }

    fn check_deadline(&self, deadline: Instant, what: &str) {
        if Instant::now() > deadline {
            panic!(
                "{:?} on port {} did not {what} within {:?}; its stderr:\n{}",
                self.kind,
                self.port,
                READY_TIMEOUT,
                self.log()
            );
        }
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; SIGKILLs and
    /// panics when it does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} did not exit within {timeout:?} after SIGTERM; its stderr:\n{}",
                    self.kind,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `etcdctl` against this process (does not check the status).
    pub fn ctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint(), args, None)
    }

    /// Runs `etcdctl` with `stdin` as standard input.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        etcdctl(&self.endpoint(), args, Some(stdin.as_bytes()))
    }

    /// Runs `etcdctl`, asserts success, returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        self.expect_ok(args, &out)
    }

    /// Runs `etcdctl` with standard input, asserts success, returns stdout.
    pub fn ctl_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.ctl_stdin(args, stdin);
        self.expect_ok(args, &out)
    }

    /// Runs `etcdctl`, asserts failure, returns stderr.
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            !out.status.success(),
            "`etcdctl {}` succeeded but should have failed; stdout:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn expect_ok(&self, args: &[&str], out: &Output) -> String {
        assert!(
            out.status.success(),
            "`etcdctl {}` failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver stderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout.clone()).expect("etcdctl printed non-UTF-8")
    }

    /// The store's current revision (from `etcdctl get -w json`).
    pub fn revision(&self) -> i64 {
        let out = self.ctl_ok(&["get", "/nonexistent-key-for-revision", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("get -w json");
        v["header"]["revision"].as_i64().expect("header.revision")
    }

    /// Starts a background `etcdctl` (e.g. `watch`) whose stdout lines can
    /// be read with a timeout; killed on drop.
    pub fn ctl_background(&self, args: &[&str]) -> LineReader {
        require_etcdctl();
        let endpoints = format!("--endpoints={}", self.endpoint());
        LineReader::spawn(
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(endpoints)
                .args(args),
        )
    }

    /// An etcd-client connection.
    pub async fn client(&self) -> etcd_client::Client {
        connect(&self.url()).await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects an etcd-client, with bounded timeouts.
pub async fn connect(url: &str) -> etcd_client::Client {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30));
    tokio::time::timeout(
        Duration::from_secs(10),
        etcd_client::Client::connect([url], Some(opts)),
    )
    .await
    .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
    .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Runs `etcdctl` with `ETCDCTL_API=3 --endpoints=ENDPOINT ARGS`, with a
/// timeout; `stdin` is fed to it (or /dev/null).
pub fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    require_etcdctl();
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args);
    run_with_timeout(&mut cmd, stdin, ETCDCTL_TIMEOUT)
}

/// Runs a command to completion, killing it (and panicking) after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).expect("write stdin");
        drop(pipe);
    }
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// A child process whose stdout is read line by line in the background;
/// killed on drop.
pub struct LineReader {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LineReader {
    pub fn spawn(cmd: &mut Command) -> LineReader {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(line) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        LineReader {
            child,
            lines: rx,
            stderr,
        }
    }

    /// The next line, or `None` after `timeout` (or at end of output).
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next `n` lines; panics (showing what came) when they do not
    /// arrive within `timeout` in total.
    pub fn expect_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => panic!(
                    "expected {n} lines within {timeout:?}, got {}: {got:?}; stderr:\n{}",
                    got.len(),
                    self.stderr()
                ),
            }
        }
        got
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for LineReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `write_bytes` of `/proc/PID/io`: bytes this process caused to be sent to
/// the storage layer.
pub fn proc_write_bytes(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/io: {e}"));
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .map(|v| v.trim().parse().expect("write_bytes number"))
        .expect("write_bytes in /proc/PID/io")
}

/// `VmRSS` of `/proc/PID/status`, in KiB.
pub fn proc_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| {
            v.trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("VmRSS number")
        })
        .expect("VmRSS in /proc/PID/status")
}

/// Decodes standard base64 (as etcdctl's JSON output uses).
pub fn base64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("invalid base64 character {:?}", c as char),
        }
    }
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// The base64 field `field` of a JSON object, decoded to a string ("" when
/// absent, as etcdctl omits empty values).
pub fn b64_field(obj: &serde_json::Value, field: &str) -> String {
    match obj.get(field).and_then(|v| v.as_str()) {
        Some(s) => String::from_utf8(base64_decode(s)).expect("utf-8"),
        None => String::new(),
    }
}

/// Polls `cond` every `every` until it is true or `timeout` passed.
pub fn poll_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------
// The Kubernetes API: curl and kubectl against a `nanokube server`.

mod kube;
pub use kube::*;

/// Runs `$scenario(version)` as one test per kubectl version (1.27, 1.33):
/// `both_versions!(a, b)` makes modules `a` and `b`, each with the tests
/// `kubectl_1_27` and `kubectl_1_33`.
#[allow(unused_macros)]
macro_rules! both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn kubectl_1_27() {
                super::$scenario($crate::common::KUBECTL_OLDEST);
            }
            #[test]
            fn kubectl_1_33() {
                super::$scenario($crate::common::KUBECTL_NEWEST);
            }
        }
    )*};
}
// Used by some test binaries only.
#[allow(unused_imports)]
pub(crate) use both_versions;

/// How a benchmark binary was started: `None` for `--list` (it is not a
/// libtest harness), else (smoke, scale). Without `--bench` (as under
/// `cargo test --all-targets`) it is a smoke run at `smoke_scale`; with it,
/// `NANOKUBE_BENCH_SCALE` (default 1) scales every count.
pub fn bench_mode(smoke_scale: f64) -> Option<(bool, f64)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return None;
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    if smoke {
        return Some((true, smoke_scale));
    }
    let scale = match std::env::var("NANOKUBE_BENCH_SCALE") {
        Ok(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .unwrap_or_else(|| panic!("NANOKUBE_BENCH_SCALE={s:?} is not a positive number")),
        Err(_) => 1.0,
    };
    Some((false, scale))
}
pub mod agent;
pub mod hollow;
pub mod images;
pub mod multihost;
pub mod services;
pub mod users;
pub mod webhook;
