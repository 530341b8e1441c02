//! Running containerd: start it in its own process group (a ^C on the
//! agent's terminal must not reach it), record its pid, wait until CRI
//! answers, restart it with backoff when it dies, and publish Up/Down.
//!
//! A containerd left by a previous agent run (recorded in the pid file) is
//! stopped first. Its shims and containers are separate processes and
//! survive: that is how an agent restart keeps pods running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use super::config::Layout;
use super::{Error, Health};
use crate::agent::cri::Cri;

/// How often readiness is polled: the cold start budget is a few seconds.
const POLL: Duration = Duration::from_millis(20);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A containerd that ran this long before dying restarts without delay growth.
const STABLE: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// containerd's log is rotated (one old copy) past this size at each start.
const LOG_ROTATE: u64 = 20 << 20;

pub struct Supervisor {
    stop: oneshot::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Starts containerd and returns once its CRI plugin answers.
    pub async fn start(
        binary: PathBuf,
        layout: Layout,
        health: watch::Sender<Health>,
    ) -> Result<Supervisor, Error> {
        stop_stale(&layout.pid_file, &layout.config).await;
        let started = Instant::now();
        let mut child = spawn(&binary, &layout)?;
        if let Err(e) = wait_ready(&layout, &mut child).await {
            terminate(&mut child).await;
            let _ = std::fs::remove_file(&layout.pid_file);
            return Err(e);
        }
        tracing::info!(
            pid = child.id(),
            ms = started.elapsed().as_millis() as u64,
            "containerd is ready"
        );
        health.send_replace(Health::Up);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(supervise(binary, layout, child, health, stop_rx));
        Ok(Supervisor { stop, task })
    }

    /// Stops supervising; terminates containerd unless `leave_running`.
    pub async fn stop(self, leave_running: bool) {
        let _ = self.stop.send(leave_running);
        let _ = self.task.await;
    }
}

async fn supervise(
    binary: PathBuf,
    layout: Layout,
    mut child: Child,
    health: watch::Sender<Health>,
    mut stop: oneshot::Receiver<bool>,
) {
    let mut backoff = BACKOFF_START;
    let mut since = Instant::now();
    loop {
        let status = tokio::select! {
            status = child.wait() => status,
            leave = &mut stop => {
                let leave = leave.unwrap_or(false);
                if leave {
                    tracing::info!(pid = child.id(), "leaving containerd running");
                } else {
                    terminate(&mut child).await;
                    let _ = std::fs::remove_file(&layout.pid_file);
                }
                return;
            }
        };
        let reason = match status {
            Ok(s) => format!("containerd exited ({s})"),
            Err(e) => format!("containerd: {e}"),
        };
        let reason = match log_tail(&layout.log) {
            Some(tail) => format!("{reason}: {tail}"),
            None => reason,
        };
        tracing::warn!(%reason, "containerd died; restarting in {}s", backoff.as_secs());
        health.send_replace(Health::Down(reason));
        if since.elapsed() >= STABLE {
            backoff = BACKOFF_START;
        }
        // Restart attempts until one answers, or until told to stop.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut stop => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            let mut next = match spawn(&binary, &layout) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "restarting containerd");
                    health.send_replace(Health::Down(e.to_string()));
                    continue;
                }
            };
            match wait_ready(&layout, &mut next).await {
                Ok(()) => {
                    tracing::info!(pid = next.id(), "containerd restarted");
                    health.send_replace(Health::Up);
                    child = next;
                    since = Instant::now();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "restarting containerd");
                    health.send_replace(Health::Down(e.to_string()));
                    terminate(&mut next).await;
                }
            }
        }
    }
}

fn spawn(binary: &Path, layout: &Layout) -> Result<Child, Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| Error::Io { path, source: e }
    };
    if std::fs::metadata(&layout.log)
        .map(|m| m.len() > LOG_ROTATE)
        .unwrap_or(false)
    {
        let _ = std::fs::rename(&layout.log, layout.log.with_extension("log.1"));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&layout.log)
        .map_err(io(&layout.log))?;
    let log2 = log.try_clone().map_err(io(&layout.log))?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(&layout.config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(io(binary))?;
    if let Some(pid) = child.id() {
        std::fs::write(&layout.pid_file, format!("{pid}\n")).map_err(io(&layout.pid_file))?;
    }
    Ok(child)
}

/// Polls CRI `Version` until it answers (the CRI plugin refuses every call
/// until it has initialised), failing early if containerd exits.
async fn wait_ready(layout: &Layout, child: &mut Child) -> Result<(), Error> {
    let endpoint = format!("unix://{}", layout.socket.display());
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::Io {
            path: "containerd".into(),
            source: e,
        })? {
            return Err(Error::Exited {
                status: status.to_string(),
                log: log_tail(&layout.log).unwrap_or_default(),
            });
        }
        if layout.socket.exists() && answers(&endpoint).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                secs: READY_TIMEOUT.as_secs(),
                log: log_tail(&layout.log).unwrap_or_default(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn answers(endpoint: &str) -> bool {
    let Ok(cri) = Cri::new(endpoint) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), cri.version()).await,
        Ok(Ok(_))
    )
}

/// SIGTERM, then SIGKILL after the grace period.
async fn terminate(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(pid, "containerd ignored SIGTERM; killing it");
        let _ = child.kill().await;
    }
}

/// Stops the containerd a previous run recorded, if that pid still runs
/// containerd with our config (pids are reused).
async fn stop_stale(pid_file: &Path, config: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let ours = args.first().is_some_and(|a| a.ends_with("containerd"))
        && args.iter().any(|a| Path::new(a) == config);
    if !ours {
        return;
    }
    tracing::info!(
        pid,
        "stopping the containerd of a previous run (containers keep running)"
    );
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while alive(pid) {
        if Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            tokio::time::sleep(Duration::from_millis(100)).await;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Running and not a zombie.
pub fn alive(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The last few lines of containerd's log, as one line.
fn log_tail(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    (!tail.is_empty()).then_some(tail)
}

/// For a runtime we did not start: probe it and publish Up/Down.
pub async fn watch_external(cri: Cri, health: watch::Sender<Health>) {
    loop {
        let next = match tokio::time::timeout(Duration::from_secs(5), cri.version()).await {
            Ok(Ok(_)) => Health::Up,
            Ok(Err(e)) => Health::Down(e.to_string()),
            Err(_) => Health::Down("the container runtime did not answer within 5s".into()),
        };
        health.send_if_modified(|h| {
            let changed = *h != next;
            *h = next;
            changed
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        assert!(log_tail(&log).is_none());
        std::fs::write(&log, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(log_tail(&log).unwrap(), "b / c / d");
    }

    #[test]
    fn liveness() {
        assert!(alive(Pid::this()));
        assert!(!alive(Pid::from_raw(i32::MAX)));
    }

    #[tokio::test]
    async fn stale_pid_of_another_program_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("containerd.pid");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, format!("{}\n", sleeper.id())).unwrap();
        stop_stale(&pid_file, &dir.path().join("config.toml")).await;
        assert!(sleeper.try_wait().unwrap().is_none());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
