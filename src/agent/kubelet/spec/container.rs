//! A container's CRI configuration, as upstream's generateContainerConfig
//! and generateLinuxContainerConfig.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::expand::expand;
use super::sandbox::pod_labels;
use super::{resources, security, ContainerContext, SpecError};
use crate::agent::cri::{api, labels};

/// Annotation names upstream's kubelet puts on containers; an adopting or
/// reporting kubelet reads them back from CRI.
pub mod annotations {
    /// FNV-32a of the container's spec (see [`super::container_hash`]).
    pub const HASH: &str = "io.kubernetes.container.hash";
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
    pub const PRE_STOP_HANDLER: &str = "io.kubernetes.container.preStopHandler";
    pub const PORTS: &str = "io.kubernetes.container.ports";
    pub const POD_DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";
    pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
}

/// A hash of what the container runs, without its resources (those may
/// be resized in place): a running container whose hash differs from the
/// spec's was started from an older spec. Hex, as upstream.
pub fn container_hash(container: &Container) -> String {
    let mut c = container.clone();
    c.resources = None;
    c.resize_policy = None;
    // Serializing a typed container cannot fail: every field is plain data.
    let bytes = serde_json::to_vec(&c).unwrap_or_default();
    let mut hash: u32 = 2_166_136_261;
    for b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(16_777_619);
    }
    format!("{hash:x}")
}

fn container_annotations(pod: &Pod, c: &Container, restart_count: u32) -> HashMap<String, String> {
    let mut out = HashMap::from([
        (annotations::HASH.to_string(), container_hash(c)),
        (labels::RESTART_COUNT.to_string(), restart_count.to_string()),
        (
            annotations::TERMINATION_MESSAGE_PATH.to_string(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            annotations::TERMINATION_MESSAGE_POLICY.to_string(),
            c.termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
    ]);
    if let Some(s) = pod.metadata.deletion_grace_period_seconds {
        out.insert(annotations::POD_DELETION_GRACE_PERIOD.into(), s.to_string());
    }
    if let Some(s) = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    {
        out.insert(
            annotations::POD_TERMINATION_GRACE_PERIOD.into(),
            s.to_string(),
        );
    }
    if let Some(pre_stop) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        if let Ok(json) = serde_json::to_string(pre_stop) {
            out.insert(annotations::PRE_STOP_HANDLER.into(), json);
        }
    }
    if let Some(ports) = c.ports.as_ref().filter(|p| !p.is_empty()) {
        if let Ok(json) = serde_json::to_string(ports) {
            out.insert(annotations::PORTS.into(), json);
        }
    }
    out
}

/// The CreateContainer configuration of `container` in `pod`. Command and
/// args get `$(VAR)` expanded from `ctx.env`; an empty command keeps the
/// image's entrypoint and args then replace the image's cmd (the runtime
/// applies that rule).
pub fn container_config(
    pod: &Pod,
    container: &Container,
    ctx: &ContainerContext,
) -> Result<api::ContainerConfig, SpecError> {
    if ctx.image_ref.is_empty() {
        return Err(SpecError::Invalid(format!(
            "no image for container {:?}",
            container.name
        )));
    }
    let expand_all = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter().flatten().map(|s| expand(s, &ctx.env)).collect()
    };
    let mut container_labels = pod_labels(pod);
    container_labels.insert(labels::CONTAINER_NAME.into(), container.name.clone());
    let linux = api::LinuxContainerConfig {
        resources: Some(resources::container_resources(
            pod,
            container,
            ctx.memory_capacity,
        )?),
        security_context: Some(security::container_security(
            pod,
            container,
            &ctx.image_user,
            ctx.seccomp_root,
        )?),
    };
    Ok(api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: container.name.clone(),
            attempt: ctx.restart_count,
        }),
        image: Some(api::ImageSpec {
            image: ctx.image_ref.to_string(),
            user_specified_image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: ctx
            .env
            .iter()
            .map(|(key, value)| api::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts: ctx.mounts.clone(),
        labels: container_labels,
        annotations: container_annotations(pod, container, ctx.restart_count),
        log_path: ctx.log_path.clone(),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        linux: Some(linux),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerPort, ExecAction, Lifecycle, LifecycleHandler, PodSecurityContext, SecurityContext,
    };

    use super::super::testutil::{container, pod_with};
    use super::super::ImageUser;
    use super::*;

    fn app() -> Container {
        let mut c = container(
            "app",
            &[("memory", "128Mi")],
            &[("memory", "256Mi"), ("cpu", "500m")],
        );
        c.command = Some(vec!["/bin/sh".into(), "-c".into()]);
        c.args = Some(vec!["echo $(GREETING) $$(GREETING) $(MISSING)".into()]);
        c.working_dir = Some("/srv".into());
        c.tty = Some(true);
        c.stdin = Some(true);
        c.ports = Some(vec![ContainerPort {
            container_port: 80,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        c.lifecycle = Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["sleep".into(), "5".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        c
    }

    fn ctx() -> ContainerContext<'static> {
        ContainerContext {
            image_ref: "sha256:abc",
            env: vec![("GREETING".into(), "hello".into())],
            mounts: vec![api::Mount {
                container_path: "/data".into(),
                host_path: "/agent/pods/uid-1/volumes/kubernetes.io~empty-dir/data".into(),
                ..Default::default()
            }],
            restart_count: 3,
            log_path: "app/3.log".into(),
            memory_capacity: 4 << 30,
            ..Default::default()
        }
    }

    #[test]
    fn builds_the_container() {
        let c = app();
        let mut pod = pod_with(vec![c.clone()], vec![]);
        pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(30);
        let cfg = container_config(&pod, &c, &ctx()).unwrap();
        let meta = cfg.metadata.unwrap();
        assert_eq!((meta.name.as_str(), meta.attempt), ("app", 3));
        let image = cfg.image.unwrap();
        assert_eq!(
            (image.image.as_str(), image.user_specified_image.as_str()),
            ("sha256:abc", "busybox:1.36")
        );
        assert_eq!(cfg.command, vec!["/bin/sh", "-c"]);
        assert_eq!(cfg.args, vec!["echo hello $(GREETING) $(MISSING)"]);
        assert_eq!(cfg.working_dir, "/srv");
        assert_eq!(cfg.envs[0].key, "GREETING");
        assert_eq!(cfg.mounts.len(), 1);
        assert_eq!(cfg.log_path, "app/3.log");
        assert!(cfg.tty && cfg.stdin && !cfg.stdin_once);
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "app");
        assert_eq!(cfg.labels[labels::POD_NAME], "web");
        assert_eq!(cfg.labels[labels::POD_NAMESPACE], "default");
        assert_eq!(cfg.labels[labels::POD_UID], "uid-1");
        assert_eq!(cfg.labels[labels::MANAGED_BY], "true");
        let a = &cfg.annotations;
        assert_eq!(a[labels::RESTART_COUNT], "3");
        assert_eq!(
            a[annotations::TERMINATION_MESSAGE_PATH],
            "/dev/termination-log"
        );
        assert_eq!(a[annotations::TERMINATION_MESSAGE_POLICY], "File");
        assert_eq!(a[annotations::POD_TERMINATION_GRACE_PERIOD], "30");
        assert_eq!(
            a[annotations::PRE_STOP_HANDLER],
            r#"{"exec":{"command":["sleep","5"]}}"#
        );
        assert_eq!(
            a[annotations::PORTS],
            r#"[{"containerPort":80,"protocol":"TCP"}]"#
        );
        assert_eq!(a[annotations::HASH], container_hash(&c));
        assert!(!a.contains_key(annotations::POD_DELETION_GRACE_PERIOD));
        let linux = cfg.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (512, 50_000, 100_000)
        );
        assert_eq!(r.memory_limit_in_bytes, 256 << 20);
        assert_eq!(r.oom_score_adj, 1000 - 1000 * 128 / 4096);
        assert!(linux.security_context.unwrap().namespace_options.is_some());
    }

    #[test]
    fn no_command_keeps_the_image_entrypoint() {
        let mut c = container("app", &[], &[]);
        c.args = Some(vec!["-v".into()]);
        let pod = pod_with(vec![c.clone()], vec![]);
        let cfg = container_config(&pod, &c, &ctx()).unwrap();
        assert!(cfg.command.is_empty());
        assert_eq!(cfg.args, vec!["-v"]);
    }

    #[test]
    fn hash_ignores_resources_only() {
        let a = app();
        let mut b = a.clone();
        b.resources = None;
        assert_eq!(container_hash(&a), container_hash(&b));
        b.image = Some("busybox:1.37".into());
        assert_ne!(container_hash(&a), container_hash(&b));
    }

    #[test]
    fn refusals() {
        let c = app();
        let pod = pod_with(vec![c.clone()], vec![]);
        let no_image = ContainerContext {
            image_ref: "",
            ..ctx()
        };
        assert!(matches!(
            container_config(&pod, &c, &no_image),
            Err(SpecError::Invalid(_))
        ));
        let mut root = pod.clone();
        root.spec.as_mut().unwrap().security_context = Some(PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        });
        let mut c0 = c.clone();
        c0.security_context = Some(SecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        });
        let err = container_config(&root, &c0, &ctx()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container's runAsUser breaks non-root policy (pod: \"web_default(uid-1)\", container: app)"
        );
        let image_root = ContainerContext {
            image_user: ImageUser::Uid(0),
            ..ctx()
        };
        assert!(container_config(&root, &c, &image_root).is_err());
        let bad = container("app", &[("cpu", "many")], &[]);
        assert!(matches!(
            container_config(&pod, &bad, &ctx()),
            Err(SpecError::Invalid(_))
        ));
    }
}
