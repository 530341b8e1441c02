//! Applying resolved plans: file-system work only, run on a blocking
//! thread.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::resolve::{Plan, VolumePlan};
use super::{atomic_writer, empty_dir, host_path, mounts, ownership, plugin};
use super::{Layout, PodCtx, PodVolume, VolumeError};

/// Upstream's mode for the pod's own directories.
const POD_DIR_MODE: u32 = 0o750;
/// Volume directories of the payload kinds (they wrap an emptyDir upstream).
const PAYLOAD_DIR_MODE: u32 = 0o777;

/// Applies every plan; one result per volume.
pub(crate) fn apply_all(
    layout: &Layout,
    ctx: &PodCtx,
    memory_size: Option<u64>,
    plans: &[VolumePlan],
) -> Vec<(String, Result<PodVolume, VolumeError>)> {
    plans
        .iter()
        .map(|p| (p.name.clone(), apply(layout, ctx, memory_size, p)))
        .collect()
}

fn apply(
    layout: &Layout,
    ctx: &PodCtx,
    memory_size: Option<u64>,
    p: &VolumePlan,
) -> Result<PodVolume, VolumeError> {
    let done = |host_path, kind| {
        Ok(PodVolume {
            host_path,
            read_only: p.read_only,
            kind,
        })
    };
    match &p.plan {
        Plan::EmptyDir { memory, size_limit } => {
            let dir = layout.volume_dir(plugin::EMPTY_DIR, &p.name);
            // The volume's own limit counts when it is the smaller one.
            let size = match (size_limit, memory_size) {
                (Some(l), Some(m)) => Some((*l).min(m)),
                (l, m) => l.or(m),
            };
            empty_dir::setup(&dir, *memory, size, ctx.fs_group)?;
            done(dir, plugin::EMPTY_DIR)
        }
        Plan::HostPath { path, type_ } => {
            host_path::check(path, type_)?;
            done(path.clone(), plugin::HOST_PATH)
        }
        Plan::Local { path } => {
            if !path.is_absolute() || fs::symlink_metadata(path).is_err() {
                return Err(VolumeError::Invalid(format!(
                    "local volume path {} does not exist",
                    path.display()
                )));
            }
            if let (Some(gid), false) = (ctx.fs_group, p.read_only) {
                // Only when the root does not match yet: `setup` runs on
                // every sync and a local volume may be large.
                ownership::set_volume_ownership(path, gid, false, true)?;
            }
            done(path.clone(), plugin::LOCAL)
        }
        Plan::Payload {
            plugin,
            tmpfs,
            files,
        } => {
            let dir = layout.volume_dir(plugin, &p.name);
            let created = !dir.is_dir();
            if created {
                create_dir_all(&dir)?;
            }
            let mounted = if *tmpfs {
                let is_mount = mounts::is_mount_point(&dir)
                    .map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?;
                if !is_mount {
                    mounts::mount_tmpfs(&dir, memory_size)?;
                }
                !is_mount
            } else {
                false
            };
            if created || mounted {
                fs::set_permissions(&dir, fs::Permissions::from_mode(PAYLOAD_DIR_MODE))
                    .map_err(|e| VolumeError::io(format!("chmod {}", dir.display()), e))?;
            }
            atomic_writer::write(&dir, files, ctx.fs_group)?;
            done(dir, plugin)
        }
    }
}

/// Creates `dir` and its missing parents with the pod directory mode.
pub(crate) fn create_dir_all(dir: &Path) -> Result<(), VolumeError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(POD_DIR_MODE)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(VolumeError::io(format!("creating {}", dir.display()), e)),
    }
}
