//! The status a kubelet would report for a pod on a hollow node: phase,
//! addresses, conditions and one status per container, all made up.

use serde_json::{json, Value};

/// How the pod's containers are doing right now.
#[derive(Debug, Clone)]
pub enum State {
    /// Running since `since`; `ready` once readiness "passed".
    Running { since: String, ready: bool },
    /// Every container exited with `code` at `at`.
    Exited {
        since: String,
        at: String,
        code: i32,
    },
}

/// Everything the status is made of.
pub struct View<'a> {
    pub pod: &'a Value,
    pub host_ip: String,
    pub pod_ip: String,
    /// `status.startTime`: when the hollow kubelet took the pod.
    pub start_time: &'a str,
    /// When the pod's readiness last changed (conditions' transition time).
    pub ready_changed: &'a str,
    pub restart_count: u32,
    /// The previous run's termination (OnFailure restarts), or null.
    pub last_state: Value,
    pub state: State,
}

pub fn terminated(since: &str, at: &str, code: i32, container_id: &str) -> Value {
    json!({"terminated": {
        "exitCode": code,
        "reason": if code == 0 { "Completed" } else { "Error" },
        "startedAt": since,
        "finishedAt": at,
        "containerID": container_id,
    }})
}

fn container_id(pod: &Value, name: &str) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    format!("hollow://{uid}-{name}")
}

fn containers<'a>(pod: &'a Value, key: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
    pod["spec"][key].as_array().into_iter().flatten().map(|c| {
        (
            c["name"].as_str().unwrap_or_default(),
            c["image"].as_str().unwrap_or_default(),
        )
    })
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, at: &str) -> Value {
    let mut c = json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": at,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The whole `status` object.
pub fn build(v: &View<'_>) -> Value {
    let pod = v.pod;
    let (phase, ready) = match &v.state {
        State::Running { ready, .. } => ("Running", *ready),
        State::Exited { code: 0, .. } => ("Succeeded", false),
        State::Exited { .. } => ("Failed", false),
    };
    let names: Vec<&str> = containers(pod, "containers").map(|(n, _)| n).collect();
    let statuses: Vec<Value> = containers(pod, "containers")
        .map(|(name, image)| {
            let id = container_id(pod, name);
            let state = match &v.state {
                State::Running { since, .. } => json!({"running": {"startedAt": since}}),
                State::Exited { since, at, code } => terminated(since, at, *code, &id),
            };
            json!({
                "name": name,
                "image": image,
                "imageID": format!("hollow://{image}"),
                "containerID": id,
                "ready": ready,
                "started": matches!(v.state, State::Running { .. }),
                "restartCount": v.restart_count,
                "state": state,
                "lastState": if v.last_state.is_null() { json!({}) } else { v.last_state.clone() },
            })
        })
        .collect();
    let init: Vec<Value> = containers(pod, "initContainers")
        .map(|(name, image)| {
            let id = container_id(pod, name);
            json!({
                "name": name,
                "image": image,
                "imageID": format!("hollow://{image}"),
                "containerID": id,
                "ready": true,
                "started": false,
                "restartCount": 0,
                "state": terminated(v.start_time, v.start_time, 0, &id),
                "lastState": {},
            })
        })
        .collect();
    let not_ready = match (&v.state, phase) {
        (_, "Succeeded") => Some("PodCompleted"),
        _ if ready => None,
        _ => Some("ContainersNotReady"),
    };
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            matches!(v.state, State::Running { .. }),
            None,
            v.start_time,
        ),
        condition("Initialized", true, None, v.start_time),
        condition("Ready", ready, not_ready, v.ready_changed),
        condition("ContainersReady", ready, not_ready, v.ready_changed),
        condition("PodScheduled", true, None, v.start_time),
    ];
    if !ready && not_ready == Some("ContainersNotReady") {
        let message = format!("containers with unready status: [{}]", names.join(" "));
        for c in &mut conditions[2..4] {
            c["message"] = json!(message);
        }
    }
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": v.host_ip,
        "hostIPs": [{"ip": v.host_ip}],
        "podIP": v.pod_ip,
        "podIPs": [{"ip": v.pod_ip}],
        "startTime": v.start_time,
        "containerStatuses": statuses,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "metadata": {"uid": "u1"},
            "spec": {
                "containers": [{"name": "app", "image": "nginx"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
            },
        })
    }

    fn view(pod: &Value, state: State) -> View<'_> {
        View {
            pod,
            host_ip: "198.18.0.1".into(),
            pod_ip: "10.42.0.2".into(),
            start_time: "t0",
            ready_changed: "t1",
            restart_count: 0,
            last_state: Value::Null,
            state,
        }
    }

    #[test]
    fn running_and_ready() {
        let p = pod();
        let s = build(&view(
            &p,
            State::Running {
                since: "t0".into(),
                ready: true,
            },
        ));
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIPs"][0]["ip"], "10.42.0.2");
        let cs = &s["containerStatuses"][0];
        assert_eq!(cs["containerID"], "hollow://u1-app");
        assert_eq!(cs["imageID"], "hollow://nginx");
        assert_eq!(cs["state"]["running"]["startedAt"], "t0");
        assert_eq!(cs["ready"], true);
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready");
        assert_eq!(ready.unwrap()["status"], "True");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn exits() {
        let p = pod();
        let failed = State::Exited {
            since: "t0".into(),
            at: "t2".into(),
            code: 3,
        };
        let s = build(&view(&p, failed));
        assert_eq!(s["phase"], "Failed");
        let t = &s["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (t["exitCode"].as_i64(), t["reason"].as_str()),
            (Some(3), Some("Error"))
        );
        let ok = State::Exited {
            since: "t0".into(),
            at: "t2".into(),
            code: 0,
        };
        let s = build(&view(&p, ok));
        assert_eq!(s["phase"], "Succeeded");
        assert_eq!(s["conditions"][2]["reason"], "PodCompleted");
    }
}
