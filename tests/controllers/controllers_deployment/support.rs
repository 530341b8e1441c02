//! Test support for `controllers_deployment.rs`: a background availability
//! probe.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::count;
use crate::common::hollow::kubectl;
use crate::common::Proc;

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
        let cmd = kubectl(p).command(&["get", "deployment", name, "-o", "json"]);
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

impl Drop for AvailabilityProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
