//! persistentVolumeClaim (and generic ephemeral) volumes: the claim must be
//! Bound; its PersistentVolume must be a hostPath or local volume, which
//! containers then use in place.

use std::path::PathBuf;

use serde_json::Value;

use super::resolve::Plan;
use super::{PodCtx, VolumeError};
use crate::client::{Client, ResourceId};

/// Resolves claim `name` in the pod's namespace. `ephemeral`: the claim
/// must also be controlled by the pod (upstream refuses to use a claim of
/// the same name created by someone else).
pub(crate) async fn resolve<C: Client>(
    client: &C,
    ctx: &PodCtx,
    name: &str,
    ephemeral: bool,
) -> Result<Plan, VolumeError> {
    let claims = ResourceId::new("", "v1", "persistentvolumeclaims");
    let pvc = match client.get(&claims, Some(&ctx.namespace), name).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => {
            return Err(VolumeError::Waiting(format!(
                "persistentvolumeclaim {name:?} not found"
            )))
        }
        Err(e) => {
            return Err(VolumeError::Client(
                format!(
                    "couldn't get persistentvolumeclaim {}/{name}",
                    ctx.namespace
                ),
                e,
            ))
        }
    };
    let pv_name = check_claim(&pvc, ctx, name, ephemeral)?;
    let volumes = ResourceId::new("", "v1", "persistentvolumes");
    let pv = match client.get(&volumes, None, &pv_name).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => {
            return Err(VolumeError::Waiting(format!(
                "persistentvolume {pv_name:?} not found"
            )))
        }
        Err(e) => {
            return Err(VolumeError::Client(
                format!("couldn't get persistentvolume {pv_name}"),
                e,
            ))
        }
    };
    let claim_uid = pvc.pointer("/metadata/uid").and_then(Value::as_str);
    plan_for(&pv, &pv_name, claim_uid)
}

/// The claim's volume name when it is usable by this pod.
fn check_claim(
    pvc: &Value,
    ctx: &PodCtx,
    name: &str,
    ephemeral: bool,
) -> Result<String, VolumeError> {
    if pvc.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(VolumeError::Waiting(format!(
            "can't start pod because persistentvolumeclaim {}/{name} is being deleted",
            ctx.namespace
        )));
    }
    if ephemeral {
        let owned = pvc
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(ctx.uid.as_str())
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            });
        if !owned {
            return Err(VolumeError::Invalid(format!(
                "PVC {}/{name} was not created for pod {}/{} (pod is not owner)",
                ctx.namespace, ctx.namespace, ctx.name
            )));
        }
    }
    let phase = pvc.pointer("/status/phase").and_then(Value::as_str);
    let volume = pvc
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if phase != Some("Bound") || volume.is_empty() {
        return Err(VolumeError::Waiting(format!(
            "persistentvolumeclaim {name:?} is not bound"
        )));
    }
    Ok(volume.to_string())
}

fn plan_for(pv: &Value, pv_name: &str, claim_uid: Option<&str>) -> Result<Plan, VolumeError> {
    let bound_to = pv.pointer("/spec/claimRef/uid").and_then(Value::as_str);
    if bound_to.is_some() && claim_uid.is_some() && bound_to != claim_uid {
        return Err(VolumeError::Waiting(format!(
            "persistentvolume {pv_name:?} is bound to a different claim"
        )));
    }
    if pv.pointer("/spec/volumeMode").and_then(Value::as_str) == Some("Block") {
        return Err(VolumeError::Invalid(format!(
            "persistentvolume {pv_name:?}: block volumes are not supported on this node"
        )));
    }
    let text = |p: &str| pv.pointer(p).and_then(Value::as_str).unwrap_or_default();
    if pv.pointer("/spec/hostPath").is_some() {
        return Ok(Plan::HostPath {
            path: PathBuf::from(text("/spec/hostPath/path")),
            type_: text("/spec/hostPath/type").to_string(),
        });
    }
    if pv.pointer("/spec/local").is_some() {
        return Ok(Plan::Local {
            path: PathBuf::from(text("/spec/local/path")),
        });
    }
    Err(VolumeError::Invalid(format!(
        "persistentvolume {pv_name:?}: unsupported volume type (only hostPath and local \
         persistent volumes are supported on this node)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> PodCtx {
        PodCtx {
            namespace: "ns".into(),
            name: "web".into(),
            uid: "pod-uid".into(),
            fs_group: None,
        }
    }

    #[test]
    fn claims_must_be_bound_and_owned() {
        let pending = json!({"spec": {}, "status": {"phase": "Pending"}});
        let e = check_claim(&pending, &ctx(), "data", false).unwrap_err();
        assert_eq!(e.to_string(), "persistentvolumeclaim \"data\" is not bound");
        let bound = json!({"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}});
        assert_eq!(check_claim(&bound, &ctx(), "data", false).unwrap(), "pv1");
        let e = check_claim(&bound, &ctx(), "web-data", true).unwrap_err();
        assert!(e.to_string().contains("pod is not owner"), "{e}");
        let owned = json!({"metadata": {"ownerReferences": [
                {"uid": "pod-uid", "controller": true, "kind": "Pod", "name": "web"}]},
            "spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}});
        assert_eq!(
            check_claim(&owned, &ctx(), "web-data", true).unwrap(),
            "pv1"
        );
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}});
        assert!(matches!(
            check_claim(&deleting, &ctx(), "data", false),
            Err(VolumeError::Waiting(_))
        ));
    }

    #[test]
    fn persistent_volume_kinds() {
        let hp = json!({"spec": {"hostPath": {"path": "/srv/x", "type": "Directory"},
            "claimRef": {"uid": "c1"}}});
        match plan_for(&hp, "pv1", Some("c1")).unwrap() {
            Plan::HostPath { path, type_ } => {
                assert_eq!(
                    (path, type_.as_str()),
                    (PathBuf::from("/srv/x"), "Directory")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan_for(&hp, "pv1", Some("c2")),
            Err(VolumeError::Waiting(_))
        ));
        let local = json!({"spec": {"local": {"path": "/mnt/disk"}}});
        assert!(matches!(
            plan_for(&local, "pv2", None),
            Ok(Plan::Local { .. })
        ));
        let nfs = json!({"spec": {"nfs": {"server": "x", "path": "/"}}});
        let e = plan_for(&nfs, "pv3", None).unwrap_err();
        assert!(e.to_string().contains("unsupported volume type"));
        let block = json!({"spec": {"volumeMode": "Block", "local": {"path": "/dev/sdb"}}});
        assert!(matches!(
            plan_for(&block, "pv4", None),
            Err(VolumeError::Invalid(_))
        ));
    }
}
