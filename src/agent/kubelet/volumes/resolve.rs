//! From a pod's `Volume` to a [`VolumePlan`]: everything that needs the API
//! (configmaps, secrets, claims, tokens) is fetched here, so applying the
//! plan is pure file-system work.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Pod, Volume, VolumeProjection};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::atomic_writer::Payload;
use super::token::TokenCache;
use super::{downward, payload, plugin, pvc, PodCtx, VolumeError};
use crate::client::Client;

/// What to do for one volume.
#[derive(Debug)]
pub(crate) enum Plan {
    EmptyDir {
        memory: bool,
        size_limit: Option<u64>,
    },
    /// A host path with upstream's `type` check ("" checks nothing).
    HostPath { path: PathBuf, type_: String },
    /// configMap, secret, downwardAPI, projected: files written by the
    /// atomic writer, on a tmpfs for all but configMap.
    Payload {
        plugin: &'static str,
        tmpfs: bool,
        files: Payload,
    },
    /// A local PersistentVolume: used in place, must exist.
    Local { path: PathBuf },
}

#[derive(Debug)]
pub(crate) struct VolumePlan {
    pub name: String,
    pub plan: Plan,
    pub read_only: bool,
}

/// Upstream's file mode when none is given (`0644`).
const DEFAULT_MODE: u32 = 0o644;

pub(crate) fn mode(m: Option<i32>, default: u32) -> Result<u32, VolumeError> {
    match m {
        None => Ok(default),
        Some(m) if (0..=0o777).contains(&m) => Ok(m as u32),
        Some(m) => Err(VolumeError::Invalid(format!(
            "invalid file mode {m:#o}: must be between 0 and 0777"
        ))),
    }
}

pub(crate) async fn resolve<C: Client>(
    client: &C,
    tokens: &TokenCache,
    allocatable: &BTreeMap<String, Quantity>,
    ctx: &PodCtx,
    pod: &Pod,
    vol: &Volume,
) -> Result<VolumePlan, VolumeError> {
    super::check_component("volume name", &vol.name)?;
    let plan = |plan, read_only| {
        Ok(VolumePlan {
            name: vol.name.clone(),
            plan,
            read_only,
        })
    };
    if let Some(ed) = &vol.empty_dir {
        let memory = match ed.medium.as_deref().unwrap_or("") {
            "" => false,
            "Memory" => true,
            m if m.starts_with("HugePages") => {
                return Err(VolumeError::Invalid(
                    "hugepages-backed emptyDir volumes are not supported on this node".into(),
                ))
            }
            m => {
                return Err(VolumeError::Invalid(format!(
                    "unknown storage medium {m:?}"
                )))
            }
        };
        let size_limit = match &ed.size_limit {
            Some(q) => Some(quantity_bytes(q)?).filter(|s| *s > 0),
            None => None,
        };
        return plan(Plan::EmptyDir { memory, size_limit }, false);
    }
    if let Some(hp) = &vol.host_path {
        let path = PathBuf::from(&hp.path);
        let type_ = hp.type_.clone().unwrap_or_default();
        return plan(Plan::HostPath { path, type_ }, false);
    }
    if let Some(cm) = &vol.config_map {
        let default = mode(cm.default_mode, DEFAULT_MODE)?;
        let optional = cm.optional.unwrap_or(false);
        let files = payload::config_map(
            client,
            &ctx.namespace,
            &cm.name,
            cm.items.as_deref(),
            default,
            optional,
        )
        .await?;
        return plan(payload_plan(plugin::CONFIG_MAP, false, files), true);
    }
    if let Some(s) = &vol.secret {
        let default = mode(s.default_mode, DEFAULT_MODE)?;
        let name = s.secret_name.as_deref().unwrap_or_default();
        let optional = s.optional.unwrap_or(false);
        let files = payload::secret(
            client,
            &ctx.namespace,
            name,
            s.items.as_deref(),
            default,
            optional,
        )
        .await?;
        return plan(payload_plan(plugin::SECRET, true, files), true);
    }
    if let Some(d) = &vol.downward_api {
        let default = mode(d.default_mode, DEFAULT_MODE)?;
        let items = d.items.as_deref().unwrap_or_default();
        let files = downward::payload(pod, items, default, allocatable)?;
        return plan(payload_plan(plugin::DOWNWARD_API, true, files), true);
    }
    if let Some(p) = &vol.projected {
        let default = mode(p.default_mode, DEFAULT_MODE)?;
        let sources = p.sources.as_deref().unwrap_or_default();
        let files = projected(client, tokens, allocatable, ctx, pod, sources, default).await?;
        return plan(payload_plan(plugin::PROJECTED, true, files), true);
    }
    if let Some(c) = &vol.persistent_volume_claim {
        let read_only = c.read_only.unwrap_or(false);
        let p = pvc::resolve(client, ctx, &c.claim_name, false).await?;
        return plan(p, read_only);
    }
    if vol.ephemeral.is_some() {
        // Generic ephemeral volume: the claim the ephemeral volume
        // controller created for this pod, `<pod>-<volume>`.
        let claim = format!("{}-{}", ctx.name, vol.name);
        let p = pvc::resolve(client, ctx, &claim, true).await?;
        return plan(p, false);
    }
    Err(VolumeError::Invalid(unsupported(vol)))
}

fn payload_plan(plugin: &'static str, tmpfs: bool, files: Payload) -> Plan {
    Plan::Payload {
        plugin,
        tmpfs,
        files,
    }
}

/// The message for an in-tree kind this node cannot mount.
fn unsupported(vol: &Volume) -> String {
    let kinds: [(&str, bool); 22] = [
        (
            "awsElasticBlockStore",
            vol.aws_elastic_block_store.is_some(),
        ),
        ("azureDisk", vol.azure_disk.is_some()),
        ("azureFile", vol.azure_file.is_some()),
        ("cephfs", vol.cephfs.is_some()),
        ("cinder", vol.cinder.is_some()),
        ("csi", vol.csi.is_some()),
        ("fc", vol.fc.is_some()),
        ("flexVolume", vol.flex_volume.is_some()),
        ("flocker", vol.flocker.is_some()),
        ("gcePersistentDisk", vol.gce_persistent_disk.is_some()),
        ("gitRepo", vol.git_repo.is_some()),
        ("glusterfs", vol.glusterfs.is_some()),
        ("image", vol.image.is_some()),
        ("iscsi", vol.iscsi.is_some()),
        ("nfs", vol.nfs.is_some()),
        ("photonPersistentDisk", vol.photon_persistent_disk.is_some()),
        ("portworxVolume", vol.portworx_volume.is_some()),
        ("quobyte", vol.quobyte.is_some()),
        ("rbd", vol.rbd.is_some()),
        ("scaleIO", vol.scale_io.is_some()),
        ("storageos", vol.storageos.is_some()),
        ("vsphereVolume", vol.vsphere_volume.is_some()),
    ];
    match kinds.iter().find(|(_, set)| *set) {
        Some((kind, _)) => format!(
            "unsupported volume type: {kind} volumes are not supported on this node \
             (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, \
             persistentVolumeClaim and ephemeral with hostPath or local volumes)"
        ),
        None => "unsupported volume type: the volume names no source".into(),
    }
}

/// Every source of a projected volume, merged into one payload.
async fn projected<C: Client>(
    client: &C,
    tokens: &TokenCache,
    allocatable: &BTreeMap<String, Quantity>,
    ctx: &PodCtx,
    pod: &Pod,
    sources: &[VolumeProjection],
    default: u32,
) -> Result<Payload, VolumeError> {
    let mut files = Payload::new();
    for source in sources {
        if let Some(cm) = &source.config_map {
            let optional = cm.optional.unwrap_or(false);
            let items = cm.items.as_deref();
            let part =
                payload::config_map(client, &ctx.namespace, &cm.name, items, default, optional)
                    .await?;
            files.extend(part);
        } else if let Some(s) = &source.secret {
            let optional = s.optional.unwrap_or(false);
            let items = s.items.as_deref();
            let part =
                payload::secret(client, &ctx.namespace, &s.name, items, default, optional).await?;
            files.extend(part);
        } else if let Some(d) = &source.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            files.extend(downward::payload(pod, items, default, allocatable)?);
        } else if let Some(t) = &source.service_account_token {
            let sa = pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.as_deref())
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            let token = tokens.get(client, ctx, sa, t).await?;
            files.insert(
                t.path.clone(),
                super::atomic_writer::FileProjection {
                    data: token.into_bytes(),
                    mode: default,
                },
            );
        } else if source.cluster_trust_bundle.is_some() {
            return Err(VolumeError::Invalid(
                "clusterTrustBundle projections are not supported on this node".into(),
            ));
        }
    }
    Ok(files)
}

/// A quantity in bytes (rounded up, as upstream's `Value()`).
pub(crate) fn quantity_bytes(q: &Quantity) -> Result<u64, VolumeError> {
    crate::api::quantity::parse(&q.0)
        .and_then(|p| p.in_units(0))
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| VolumeError::Invalid(format!("invalid quantity {:?}", q.0)))
}

/// The size of memory-backed volumes, as upstream computes it: node
/// allocatable memory, lowered to the pod's memory limit when every
/// container has one. `None`: the kernel's default (half the memory).
pub(crate) fn memory_volume_size(
    pod: &Pod,
    allocatable: &BTreeMap<String, Quantity>,
) -> Option<u64> {
    let node = allocatable
        .get("memory")
        .and_then(|q| quantity_bytes(q).ok());
    let pod_limit = pod_memory_limit(pod);
    match (node, pod_limit) {
        (Some(n), Some(p)) if p > 0 && p <= n => Some(p),
        (Some(n), _) => Some(n),
        (None, Some(p)) if p > 0 => Some(p),
        _ => None,
    }
}

/// The pod's memory limit: app and sidecar containers add up, a regular
/// init container counts on its own; `None` when any container has none.
fn pod_memory_limit(pod: &Pod) -> Option<u64> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &k8s_openapi::api::core::v1::Container| -> Option<u64> {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        quantity_bytes(q).ok()
    };
    let mut sum = 0u64;
    for c in &spec.containers {
        sum = sum.saturating_add(limit(c)?);
    }
    let mut max_init = 0u64;
    for c in spec.init_containers.as_deref().unwrap_or_default() {
        let l = limit(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sum = sum.saturating_add(l);
        } else {
            max_init = max_init.max(l);
        }
    }
    Some(sum.max(max_init))
}
