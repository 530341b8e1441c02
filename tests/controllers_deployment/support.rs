//! Test support for `controllers_deployment.rs`: a fake kubelet and a
//! background availability probe.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::common::{Proc, KUBECTL_NEWEST};
use super::{count, NEVER_READY, READY_AFTER};

/// The program and arguments of a kubectl invocation, for threads.
fn kubectl_argv(p: &Proc, args: &[&str]) -> (std::ffi::OsString, Vec<std::ffi::OsString>) {
    let cmd = p.kubectl(KUBECTL_NEWEST).command(args);
    let program = cmd.get_program().to_owned();
    (program, cmd.get_args().map(|a| a.to_owned()).collect())
}

/// Marks pods Running and Ready once `ready-after-seconds` passed since
/// their creation, as a kubelet would; unbound pods are deleted at once.
pub struct FakeKubelet {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKubelet {
    pub fn start(p: &Proc) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (program, list_args) = kubectl_argv(p, &["get", "pods", "-o", "json"]);
        let (_, patch_base) =
            kubectl_argv(p, &["patch", "--subresource=status", "--type=merge", "pod"]);
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let out = std::process::Command::new(&program)
                    .args(&list_args)
                    .output();
                let pods = out
                    .ok()
                    .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
                    .and_then(|v| v["items"].as_array().cloned())
                    .unwrap_or_default();
                for pod in pods {
                    let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                    let never = pod["metadata"]["annotations"][NEVER_READY] == "true";
                    if ready || never || !pod["metadata"]["deletionTimestamp"].is_null() {
                        continue;
                    }
                    let after: u64 = pod["metadata"]["annotations"][READY_AFTER]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if age_secs(&pod) < after {
                        continue;
                    }
                    let now = pod_now();
                    let patch = format!(
                        "{{\"status\":{{\"phase\":\"Running\",\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"{now}\"}}]}}}}"
                    );
                    let name = pod["metadata"]["name"].as_str().unwrap_or("");
                    let _ = std::process::Command::new(&program)
                        .args(&patch_base)
                        .args([name, "-p", &patch])
                        .output();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        FakeKubelet {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Now as RFC 3339 with seconds, as the API writes times.
fn pod_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whole seconds since the pod's creationTimestamp.
fn age_secs(pod: &Value) -> u64 {
    let created = pod["metadata"]["creationTimestamp"].as_str().unwrap_or("");
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return 0;
    };
    (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0) as u64
}

/// Samples `availableReplicas` in the background while a rollout runs.
pub struct AvailabilityProbe {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicI64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AvailabilityProbe {
    pub fn start(p: &Proc, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let min = Arc::new(AtomicI64::new(i64::MAX));
        let cmd = {
            let k = p.kubectl(KUBECTL_NEWEST);
            k.command(&["get", "deployment", name, "-o", "json"])
        };
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let (s, m) = (Arc::clone(&stop), Arc::clone(&min));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let out = std::process::Command::new(&program).args(&args).output();
                if let Some(d) = out
                    .ok()
                    .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
                {
                    m.fetch_min(count(&d, "availableReplicas"), Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        AvailabilityProbe {
            stop,
            min,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("probe thread");
        }
        self.min.load(Ordering::SeqCst)
    }
}
