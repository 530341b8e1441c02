//! The cluster's API, pods, events and streaming, as the tests use them:
//! curl for polling (cheap), kubectl for what users type.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::*;
use super::*;

impl Cluster {
    /// `METHOD path` on the API with the admin credentials (curl: cheap
    /// enough to poll with); (status, JSON body or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let creds = self.creds.as_ref().expect("credentials are read at start");
        creds.request(method, &format!("{}{path}", self.server.api_url()), body)
    }

    /// `GET path`, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        let (code, v) = self.api("GET", path, None);
        assert_eq!(
            code,
            200,
            "GET {path} answered {code}: {v}\nserver stderr:\n{}",
            self.log()
        );
        v
    }

    /// `/usr/bin/kubectl` (the distribution's default version).
    pub fn k(&self) -> Kubectl<'_> {
        let mut k = self.server.kubectl(KUBECTL_NEWEST);
        k.bin = PathBuf::from("/usr/bin/kubectl");
        k.version = "default".into();
        k
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> String {
        self.k().stdin_ok(&["apply", "-f", "-"], yaml)
    }

    /// `kubectl apply` of a JSON manifest.
    pub fn apply_json(&self, manifest: &Value) -> String {
        self.apply(&manifest.to_string())
    }

    /// `kubectl delete pod` without waiting.
    pub fn delete_pod(&self, ns: &str, name: &str) {
        self.k()
            .ok(&["delete", "pod", "-n", ns, name, "--wait=false"]);
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

    /// Events whose involved object is `name` in `ns`.
    pub fn events_for(&self, ns: &str, name: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/namespaces/{ns}/events"));
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["involvedObject"]["name"] == name)
            .cloned()
            .collect()
    }

    /// `reason: message` of every event of `name`.
    pub fn event_lines(&self, ns: &str, name: &str) -> Vec<String> {
        self.events_for(ns, name)
            .iter()
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e["type"].as_str().unwrap_or(""),
                    e["reason"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Waits until an event of `name` satisfies `pred`; returns it.
    pub fn wait_event(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events_for(ns, name).into_iter().find(|e| pred(e)) {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no event of {ns}/{name} {what} within {timeout:?}\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The pod's status, its events and the server log's tail, for
    /// failure messages.
    pub fn describe(&self, ns: &str, name: &str) -> String {
        let status = match self.pod(ns, name) {
            Some(p) => serde_json::to_string_pretty(&p["status"]).unwrap_or_default(),
            None => "(pod not found)".into(),
        };
        format!(
            "pod {ns}/{name} status:\n{status}\nevents:\n  {}\nserver stderr (tail):\n{}",
            self.event_lines(ns, name).join("\n  "),
            tail(&self.log(), 4096)
        )
    }

    /// Polls the pod every 250 ms until `cond` holds; returns it. Panics
    /// with the pod's status, events and the server log.
    pub fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.pod(ns, name) {
                if cond(&p) {
                    return p;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "pod {ns}/{name} did not {what} within {timeout:?}\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the pod is Running with every container running.
    pub fn wait_running(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        self.wait_pod(ns, name, timeout, "run", is_running)
    }

    /// Waits until the pod's Ready condition is `ready`.
    pub fn wait_ready(&self, ns: &str, name: &str, ready: bool, timeout: Duration) -> Value {
        let want = if ready { "True" } else { "False" };
        self.wait_pod(ns, name, timeout, &format!("become Ready={want}"), |p| {
            condition(p, "Ready") == Some(want)
        })
    }

    /// Waits until the pod object is gone; returns how long that took.
    pub fn wait_gone(&self, ns: &str, name: &str, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            if self.pod(ns, name).is_none() {
                return t0.elapsed();
            }
            if t0.elapsed() > timeout {
                panic!(
                    "pod {ns}/{name} still exists {timeout:?} after deletion\n{}",
                    self.describe(ns, name)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the node is Ready (the server must stay alive).
    pub fn wait_node_ready(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let path = format!("/api/v1/nodes/{}", self.node);
        loop {
            self.server.assert_alive();
            let (code, node) = self.api("GET", &path, None);
            if code == 200 && node_condition(&node, "Ready") == Some("True") {
                return node;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {} not Ready within {timeout:?} (GET answered {code}: {node})\n\
                     server stderr:\n{}\ncontainerd log (tail):\n{}",
                    self.node,
                    self.log(),
                    self.containerd_log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // -- streaming --------------------------------------------------------

    /// `kubectl logs` (default kubectl), asserting success.
    pub fn logs(&self, ns: &str, pod: &str, container: Option<&str>) -> String {
        let mut args = vec!["logs", "-n", ns, pod];
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        self.k().ok(&args)
    }

    /// Waits until the pod's log (of `container`) contains `text`.
    pub fn wait_log(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        text: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut args = vec!["logs", "-n", ns, pod];
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        loop {
            let out = self.k().run(&args);
            let log = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && log.contains(text) {
                return log;
            }
            if Instant::now() > deadline {
                panic!(
                    "log of {ns}/{pod} {container:?} has no {text:?} within {timeout:?}; \
                     last output:\n{log}\nstderr:\n{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.describe(ns, pod)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `kubectl exec` with kubectl `version` ("default" = /usr/bin/kubectl);
    /// does not check the status.
    pub fn exec(
        &self,
        version: &str,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
    ) -> Output {
        self.exec_stdin(version, ns, pod, container, cmd, None)
    }

    /// Like [`Cluster::exec`] with `-i` and `stdin` when given.
    pub fn exec_stdin(
        &self,
        version: &str,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let k = self.kubectl_version(version);
        let mut args = vec!["exec", "-n", ns, pod];
        if stdin.is_some() {
            args.push("-i");
        }
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        args.push("--");
        args.extend_from_slice(cmd);
        run_with_timeout(&mut k.command(&args), stdin, CLIENT_TIMEOUT)
    }

    /// `kubectl exec` (default kubectl) asserting success; stdout.
    pub fn exec_ok(&self, ns: &str, pod: &str, container: Option<&str>, cmd: &[&str]) -> String {
        let out = self.exec("default", ns, pod, container, cmd);
        assert!(
            out.status.success(),
            "kubectl exec {ns}/{pod} {container:?} -- {cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.describe(ns, pod)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl `version` ("1.27" … "1.33", or "default").
    pub fn kubectl_version(&self, version: &str) -> Kubectl<'_> {
        if version == "default" {
            self.k()
        } else {
            self.server.kubectl(version)
        }
    }
}
