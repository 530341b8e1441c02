//! One container's `volumeMounts` → CRI mounts.

use k8s_openapi::api::core::v1::Container;

use super::{subpath, Layout, PodVolumes, VolumeError};
use crate::agent::cri::api::{self, MountPropagation};

pub(crate) fn mounts(
    layout: &Layout,
    vols: &PodVolumes,
    c: &Container,
    env: &[(String, String)],
) -> Result<Vec<api::Mount>, VolumeError> {
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    let mut out = Vec::new();
    for (index, m) in c.volume_mounts.iter().flatten().enumerate() {
        let vol = vols.get(&m.name).ok_or_else(|| {
            VolumeError::Invalid(format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, c.name
            ))
        })?;
        let mut sub = m.sub_path.clone().unwrap_or_default();
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            sub = subpath::expand(expr, env).map_err(VolumeError::Invalid)?;
        }
        let host_path = if sub.is_empty() {
            vol.host_path.clone()
        } else {
            subpath::validate(&sub)?;
            subpath::prepare(layout, &vol.host_path, &sub, &m.name, &c.name, index)?
        };
        let readonly = m.read_only.unwrap_or(false) || vol.read_only;
        let propagation = propagation(m.mount_propagation.as_deref(), privileged)?;
        if m.recursive_read_only.as_deref() == Some("Enabled") {
            // containerd before 2.0 ignores the CRI field; refusing is
            // upstream's answer for runtimes without the feature.
            return Err(VolumeError::Invalid(format!(
                "volume {:?} requested recursive read-only mode, but it is not supported by the runtime",
                m.name
            )));
        }
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly,
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

fn propagation(mode: Option<&str>, privileged: bool) -> Result<MountPropagation, VolumeError> {
    match mode {
        None | Some("None") => Ok(MountPropagation::PropagationPrivate),
        Some("HostToContainer") => Ok(MountPropagation::PropagationHostToContainer),
        Some("Bidirectional") if privileged => Ok(MountPropagation::PropagationBidirectional),
        Some("Bidirectional") => Err(VolumeError::Invalid(
            "Bidirectional mount propagation is available only to privileged containers".into(),
        )),
        Some(other) => Err(VolumeError::Invalid(format!(
            "invalid MountPropagation mode: {other:?}"
        ))),
    }
}
