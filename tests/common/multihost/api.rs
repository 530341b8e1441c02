//! The API in host 0 as the multi-host tests use it, from the root
//! namespace through the bridge: curl for polling, kubectl for what users
//! type.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::agent::is_running;
use super::super::*;
use super::MultiHost;

impl MultiHost {
    /// `METHOD path` with the admin credentials; (status, JSON or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let creds = self.creds.as_ref().expect("credentials are read at start");
        creds.request(method, &format!("{}{path}", self.api_url()), body)
    }

    /// `GET path`, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        let (code, v) = self.api("GET", path, None);
        assert_eq!(code, 200, "GET {path} answered {code}: {v}");
        v
    }

    /// `/usr/bin/kubectl` with the admin kubeconfig (host 0's address).
    pub fn k(&self) -> Kubectl<'_> {
        let server = self.hosts[0]
            .proc
            .as_ref()
            .expect("the server in host 0 is not running");
        let mut k = server.kubectl(KUBECTL_NEWEST);
        k.bin = PathBuf::from("/usr/bin/kubectl");
        k.version = "default".into();
        k
    }

    /// `kubectl apply -f -` of `yaml` (or JSON).
    pub fn apply(&self, yaml: &str) -> String {
        self.k().stdin_ok(&["apply", "-f", "-"], yaml)
    }

    /// Every node object.
    pub fn nodes(&self) -> Vec<Value> {
        let list = self.get("/api/v1/nodes");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The Ready condition's status of node `name` ("" when unknown).
    pub fn node_ready(&self, name: &str) -> String {
        let (code, node) = self.api("GET", &format!("/api/v1/nodes/{name}"), None);
        if code != 200 {
            return String::new();
        }
        super::node_condition(&node, "Ready")
            .unwrap_or("")
            .to_string()
    }

    /// Waits until node `name`'s Ready condition is `want` ("True",
    /// "False", "Unknown"); returns how long that took.
    pub fn wait_node_condition(&self, name: &str, want: &str, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let got = self.node_ready(name);
            if got == want {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < timeout,
                "node {name} Ready is {got:?}, not {want:?}, after {timeout:?}\nserver stderr:\n{}",
                self.hosts[0].log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pod, or `None` when it does not exist.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        let (code, v) = self.api("GET", &format!("/api/v1/namespaces/{ns}/pods/{name}"), None);
        match code {
            200 => Some(v),
            404 => None,
            _ => panic!("GET pod {ns}/{name} answered {code}: {v}"),
        }
    }

    /// Pods matching a label selector such as `app=web`.
    pub fn pods_by_label(&self, ns: &str, selector: &str) -> Vec<Value> {
        let sel = selector.replace('=', "%3D").replace(',', "%2C");
        let list = self.get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={sel}"));
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `n` pods not being deleted match `selector`, all
    /// running and Ready, and `cond` holds for them; returns them.
    /// Terminating pods are left out (on an unreachable node they stay
    /// until its kubelet confirms, as upstream).
    pub fn wait_pods(
        &self,
        ns: &str,
        selector: &str,
        n: usize,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.pods_by_label(ns, selector);
            let live: Vec<Value> = pods
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .cloned()
                .collect();
            let ok = live.len() == n
                && live.iter().all(|p| {
                    is_running(p) && super::super::agent::condition(p, "Ready") == Some("True")
                })
                && cond(&live);
            if ok {
                return live;
            }
            if Instant::now() > deadline {
                let summary: Vec<String> = pods.iter().map(pod_line).collect();
                panic!(
                    "{ns} pods {selector}: not {n} running and Ready{what} within {timeout:?}; \
                     they are:\n  {}\nserver stderr:\n{}",
                    summary.join("\n  "),
                    self.hosts[0].log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `kubectl exec -n NS POD -- CMD`, asserting success; stdout.
    pub fn exec(&self, ns: &str, pod: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", "-n", ns, pod, "--"];
        args.extend_from_slice(cmd);
        self.k().ok(&args)
    }

    /// `kubectl exec -n NS POD -- CMD` retried every 500 ms until its
    /// stdout and stderr satisfy `want`; returns that output.
    pub fn exec_until(
        &self,
        ns: &str,
        pod: &str,
        cmd: &[&str],
        timeout: Duration,
        mut want: impl FnMut(&str) -> bool,
    ) -> String {
        let mut args = vec!["exec", "-n", ns, pod, "--"];
        args.extend_from_slice(cmd);
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.k().run(&args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if want(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl exec {ns}/{pod} -- {cmd:?}: not the expected output within \
                 {timeout:?}; the last:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `name node phase ip [deleting]` of a pod, for failure messages.
pub fn pod_line(p: &Value) -> String {
    format!(
        "{} node={} phase={} ip={}{}",
        p["metadata"]["name"].as_str().unwrap_or("?"),
        p["spec"]["nodeName"].as_str().unwrap_or("-"),
        p["status"]["phase"].as_str().unwrap_or("-"),
        p["status"]["podIP"].as_str().unwrap_or("-"),
        if p["metadata"]["deletionTimestamp"].is_null() {
            ""
        } else {
            " (terminating)"
        }
    )
}

/// `spec.nodeName` of a pod ("" when unscheduled).
pub fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"].as_str().unwrap_or("").to_string()
}
