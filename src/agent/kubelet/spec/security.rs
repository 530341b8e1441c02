//! Security contexts: the pod's and each container's, merged as upstream's
//! `DetermineEffectiveSecurityContext` (container fields override the
//! pod's), then turned into CRI's Linux security contexts.

use std::path::{Component, Path};

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, SELinuxOptions, SeccompProfile, SecurityContext,
};

use super::{pod_ref, ImageUser, SpecError};
use crate::agent::cri::api;
use crate::agent::cri::api::security_profile::ProfileType;

/// Upstream's default masked paths (kept in sync with moby's defaults).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Who an image runs as, as upstream's getImageUser reads `ImageStatus`:
/// the uid if numeric, else the user name, else root.
pub fn image_user(image: &api::Image) -> ImageUser {
    match (&image.uid, image.username.as_str()) {
        (Some(uid), _) => ImageUser::Uid(uid.value),
        (None, "") => ImageUser::Uid(0),
        (None, name) => ImageUser::Name(name.to_string()),
    }
}

fn pod_sc(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

fn flag(v: Option<bool>) -> bool {
    v.unwrap_or(false)
}

/// The container's security context with the pod-level fields it leaves
/// unset filled in.
pub(super) fn effective(pod: &Pod, c: &Container) -> SecurityContext {
    let mut sc = c.security_context.clone().unwrap_or_default();
    if let Some(p) = pod_sc(pod) {
        sc.run_as_user = sc.run_as_user.or(p.run_as_user);
        sc.run_as_group = sc.run_as_group.or(p.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(p.run_as_non_root);
        if sc.se_linux_options.is_none() {
            sc.se_linux_options = p.se_linux_options.clone();
        }
        if sc.seccomp_profile.is_none() {
            sc.seccomp_profile = p.seccomp_profile.clone();
        }
    }
    sc
}

/// Network, PID and IPC namespaces: the node's with hostNetwork/hostPID/
/// hostIPC; PID shared by the pod only with shareProcessNamespace.
pub(super) fn namespaces(pod: &Pod) -> api::NamespaceOption {
    use api::NamespaceMode::{Container, Node, Pod as PodNs};
    let spec = pod.spec.as_ref();
    let host = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f) == Some(true)
    };
    let pid = if host(|s| s.host_pid) {
        Node
    } else if host(|s| s.share_process_namespace) {
        PodNs
    } else {
        Container
    };
    api::NamespaceOption {
        network: if host(|s| s.host_network) {
            Node
        } else {
            PodNs
        } as i32,
        pid: pid as i32,
        ipc: if host(|s| s.host_ipc) { Node } else { PodNs } as i32,
        ..Default::default()
    }
}

fn selinux(o: Option<&SELinuxOptions>) -> Option<api::SeLinuxOption> {
    o.map(|o| api::SeLinuxOption {
        user: o.user.clone().unwrap_or_default(),
        role: o.role.clone().unwrap_or_default(),
        r#type: o.type_.clone().unwrap_or_default(),
        level: o.level.clone().unwrap_or_default(),
    })
}

/// fsGroup first, then supplementalGroups, as upstream appends them.
fn supplemental_groups(pod: &Pod) -> (Vec<i64>, i32) {
    let Some(p) = pod_sc(pod) else {
        return (Vec::new(), 0);
    };
    let mut groups: Vec<i64> = p.fs_group.into_iter().collect();
    groups.extend(p.supplemental_groups.iter().flatten());
    let policy = match p.supplemental_groups_policy.as_deref() {
        Some("Strict") => api::SupplementalGroupsPolicy::Strict,
        _ => api::SupplementalGroupsPolicy::Merge,
    };
    (groups, policy as i32)
}

fn privileged(c: &Container) -> bool {
    flag(c.security_context.as_ref().and_then(|s| s.privileged))
}

/// Whether any container of the pod (init and ephemeral included) is
/// privileged: the sandbox must then allow it.
fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .any(|e| flag(e.security_context.as_ref().and_then(|s| s.privileged)));
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(privileged)
        || ephemeral
}

/// The sandbox's security context. Its seccomp profile is always the
/// runtime's default, as upstream: the pause process needs nothing more.
pub(super) fn sandbox_security(pod: &Pod) -> api::LinuxSandboxSecurityContext {
    let p = pod_sc(pod);
    let (supplemental_groups, supplemental_groups_policy) = supplemental_groups(pod);
    api::LinuxSandboxSecurityContext {
        namespace_options: Some(namespaces(pod)),
        selinux_options: selinux(p.and_then(|p| p.se_linux_options.as_ref())),
        run_as_user: p
            .and_then(|p| p.run_as_user)
            .map(|value| api::Int64Value { value }),
        run_as_group: p
            .and_then(|p| p.run_as_group)
            .map(|value| api::Int64Value { value }),
        readonly_rootfs: false,
        supplemental_groups,
        supplemental_groups_policy,
        privileged: has_privileged_container(pod),
        seccomp: Some(profile(ProfileType::RuntimeDefault, String::new())),
        ..Default::default()
    }
}

fn profile(kind: ProfileType, localhost_ref: String) -> api::SecurityProfile {
    api::SecurityProfile {
        profile_type: kind as i32,
        localhost_ref,
    }
}

/// The container's seccomp profile: its own, else the pod's, else
/// Unconfined (upstream's default without `--seccomp-default`).
fn seccomp(
    p: Option<&SeccompProfile>,
    root: Option<&Path>,
) -> Result<api::SecurityProfile, SpecError> {
    let Some(p) = p else {
        return Ok(profile(ProfileType::Unconfined, String::new()));
    };
    match p.type_.as_str() {
        "RuntimeDefault" => Ok(profile(ProfileType::RuntimeDefault, String::new())),
        "Unconfined" => Ok(profile(ProfileType::Unconfined, String::new())),
        "Localhost" => {
            let Some(name) = p.localhost_profile.as_deref() else {
                return Err(SpecError::Invalid(
                    "localhostProfile must be set if seccompProfile type is Localhost".into(),
                ));
            };
            let relative = Path::new(name);
            if name.is_empty()
                || !relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(SpecError::Invalid(format!(
                    "localhostProfile {name:?} must be a relative path without '..'"
                )));
            }
            let Some(root) = root else {
                return Err(SpecError::Invalid(
                    "localhost seccomp profiles are not available on this node".into(),
                ));
            };
            Ok(profile(
                ProfileType::Localhost,
                root.join(relative).display().to_string(),
            ))
        }
        other => Err(SpecError::Invalid(format!(
            "unknown seccomp profile type {other:?}"
        ))),
    }
}

/// CRI takes capability names without `CAP_` (containerd adds it back);
/// a `CAP_` written in the pod would become `CAP_CAP_…` and fail, so it is
/// taken off here.
fn capability_names(list: Option<&Vec<String>>) -> Vec<String> {
    list.into_iter()
        .flatten()
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            upper
                .strip_prefix("CAP_")
                .map(str::to_string)
                .unwrap_or(upper)
        })
        .collect()
}

/// Upstream's verifyRunAsNonRoot.
fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    sc: &SecurityContext,
    image: &ImageUser,
) -> Result<(), SpecError> {
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let who = format!("pod: {:?}, container: {}", pod_ref(pod), c.name);
    if let Some(uid) = sc.run_as_user {
        if uid == 0 {
            return Err(SpecError::Invalid(format!(
                "container's runAsUser breaks non-root policy ({who})"
            )));
        }
        return Ok(());
    }
    match image {
        ImageUser::Uid(0) => Err(SpecError::Invalid(format!(
            "container has runAsNonRoot and image will run as root ({who})"
        ))),
        ImageUser::Name(name) => Err(SpecError::Invalid(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root ({who})"
        ))),
        _ => Ok(()),
    }
}

/// The container's Linux security context.
pub(super) fn container_security(
    pod: &Pod,
    c: &Container,
    image: &ImageUser,
    seccomp_root: Option<&Path>,
) -> Result<api::LinuxContainerSecurityContext, SpecError> {
    let sc = effective(pod, c);
    verify_run_as_non_root(pod, c, &sc, image)?;
    let privileged = flag(sc.privileged);
    let (supplemental_groups, supplemental_groups_policy) = supplemental_groups(pod);
    let caps = sc.capabilities.as_ref();
    // Unmasked /proc (procMount) and privileged containers get no masks.
    let unmasked = privileged || sc.proc_mount.as_deref() == Some("Unmasked");
    let paths = |list: &[&str]| -> Vec<String> {
        if unmasked {
            Vec::new()
        } else {
            list.iter().map(|p| p.to_string()).collect()
        }
    };
    let mut out = api::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| api::Capability {
            add_capabilities: capability_names(c.add.as_ref()),
            drop_capabilities: capability_names(c.drop.as_ref()),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(namespaces(pod)),
        selinux_options: selinux(sc.se_linux_options.as_ref()),
        run_as_user: sc.run_as_user.map(|value| api::Int64Value { value }),
        run_as_group: sc.run_as_group.map(|value| api::Int64Value { value }),
        readonly_rootfs: flag(sc.read_only_root_filesystem),
        supplemental_groups,
        supplemental_groups_policy,
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: paths(&MASKED_PATHS),
        readonly_paths: paths(&READONLY_PATHS),
        seccomp: Some(seccomp(sc.seccomp_profile.as_ref(), seccomp_root)?),
        ..Default::default()
    };
    // Without a user of its own the container runs as the image's, named
    // explicitly as upstream does (a runAsGroup alone needs a user).
    if out.run_as_user.is_none() {
        match image {
            ImageUser::Uid(value) => out.run_as_user = Some(api::Int64Value { value: *value }),
            ImageUser::Name(name) => out.run_as_username = name.clone(),
            ImageUser::Unknown => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
