//! Ephemeral containers (`kubectl debug`): started once in the pod's
//! sandbox, never restarted, no probes or hooks. With a
//! `targetContainerName` the container joins the target's process
//! namespace (CRI NamespaceMode TARGET), as upstream's kubelet does.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};

use super::observe::Sandbox;
use super::start::{self, StartInput, Waiting};
use super::volumes::PodVolumes;
use super::worker::Worker;
use crate::agent::cri::api;
use crate::client::Client;

const RETRY: Duration = Duration::from_secs(2);

/// The pod's ephemeral containers as plain containers (the fields they
/// share), with the name of the container each targets.
pub fn containers(pod: &Pod) -> Vec<(Container, Option<String>)> {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .filter_map(as_container)
        .collect()
}

fn as_container(ec: &EphemeralContainer) -> Option<(Container, Option<String>)> {
    let mut v = serde_json::to_value(ec).ok()?;
    let target = v
        .as_object_mut()
        .and_then(|m| m.remove("targetContainerName"))
        .and_then(|t| t.as_str().map(str::to_string))
        .filter(|t| !t.is_empty());
    let c = serde_json::from_value::<Container>(v).ok()?;
    Some((c, target))
}

/// Starts the ephemeral containers that never ran; returns when to try
/// again if one had to wait (image pull, target not running yet).
pub async fn sync<C: Client + Clone>(
    w: &mut Worker<C>,
    sandbox: &Sandbox,
    sandbox_config: &api::PodSandboxConfig,
    volumes: &PodVolumes,
) -> Option<Instant> {
    let mut wake: Option<Instant> = None;
    for (c, target) in containers(&w.pod) {
        // Once created, an ephemeral container is never started again.
        if w.runtime.latest(&c.name).is_some() {
            continue;
        }
        let target_id = match &target {
            None => None,
            Some(t) => match w.runtime.latest(t).filter(|i| i.running()) {
                Some(i) => Some(i.id.clone()),
                None => {
                    let track = w.tracks.entry(c.name.clone()).or_default();
                    track.waiting = Some(Waiting {
                        reason: "ContainerCreating".into(),
                        message: format!("target container {t:?} is not running"),
                        event: None,
                    });
                    wake = Some(
                        wake.map_or(Instant::now() + RETRY, |x| x.min(Instant::now() + RETRY)),
                    );
                    continue;
                }
            },
        };
        let input = StartInput {
            pod: &w.pod,
            sandbox_id: &sandbox.id,
            sandbox_config,
            pod_ip: sandbox.ip,
            volumes,
            restart_count: 0,
            pid_target: target_id.as_deref(),
        };
        let mut pull = std::mem::take(&mut w.tracks.entry(c.name.clone()).or_default().pull);
        let result = start::start(&w.ctx, &input, &c, &mut pull).await;
        let track = w.tracks.entry(c.name.clone()).or_default();
        track.pull = pull;
        match result {
            Ok(_) => track.waiting = None,
            Err(waiting) => {
                let at = match waiting.reason.as_str() {
                    "ImagePullBackOff" => track.pull.waiting().unwrap_or(Instant::now() + RETRY),
                    _ => Instant::now() + RETRY,
                };
                track.waiting = Some(waiting);
                wake = Some(wake.map_or(at, |x| x.min(at)));
            }
        }
    }
    wake
}

/// Joins the target container's PID namespace, unless the pod shares one
/// namespace among all containers (or the host's), where it already does.
pub fn target_pid_namespace(config: &mut api::ContainerConfig, target_id: &str) {
    let Some(ns) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    else {
        return;
    };
    if ns.pid == api::NamespaceMode::Container as i32 {
        ns.pid = api::NamespaceMode::Target as i32;
        ns.target_id = target_id.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ephemeral_containers_convert_with_their_target() {
        let pod: Pod = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "app"}],
                     "ephemeralContainers": [
                        {"name": "dbg", "image": "busybox", "targetContainerName": "app",
                         "command": ["sh"], "stdin": true, "tty": true},
                        {"name": "plain", "image": "busybox"}]}
        }))
        .unwrap();
        let got = containers(&pod);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.name, "dbg");
        assert_eq!(got[0].0.command.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(got[0].0.tty, Some(true));
        assert_eq!(got[0].1.as_deref(), Some("app"));
        assert_eq!(got[1].1, None);
    }

    #[test]
    fn target_only_replaces_a_private_pid_namespace() {
        let mut config = api::ContainerConfig {
            linux: Some(api::LinuxContainerConfig {
                security_context: Some(api::LinuxContainerSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        pid: api::NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        target_pid_namespace(&mut config, "abc");
        let ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap();
        assert_eq!(ns.pid, api::NamespaceMode::Target as i32);
        assert_eq!(ns.target_id, "abc");
        let mut shared = config.clone();
        if let Some(ns) = shared
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .and_then(|s| s.namespace_options.as_mut())
        {
            ns.pid = api::NamespaceMode::Pod as i32;
            ns.target_id.clear();
        }
        target_pid_namespace(&mut shared, "abc");
        let ns = shared
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.pid, api::NamespaceMode::Pod as i32);
    }
}
