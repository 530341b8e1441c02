//! What a pod (or a persistent volume) references, as upstream's
//! `VisitPodSecretNames`, `VisitPodConfigmapNames`, the graph populator's
//! claim and account edges and `VisitPVSecretNames` (kubelet-visible
//! secrets only).

use serde_json::Value;

use crate::api::meta;

/// The objects one pod bound to a node references, by name, all in the
/// pod's namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PodRefs {
    pub namespace: String,
    pub uid: String,
    pub secrets: Vec<String>,
    pub configmaps: Vec<String>,
    pub claims: Vec<String>,
    pub service_account: String,
    pub resource_claims: Vec<String>,
}

fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn items<'a>(v: &'a Value, path: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn push(list: &mut Vec<String>, name: Option<&str>) {
    if let Some(n) = name {
        if !list.iter().any(|x| x == n) {
            list.push(n.to_string());
        }
    }
}

/// Secret references of volume sources a pod and a PV share the shape of.
const VOLUME_SECRET_REFS: &[&str] = &[
    "/cephfs/secretRef/name",
    "/cinder/secretRef/name",
    "/flexVolume/secretRef/name",
    "/iscsi/secretRef/name",
    "/rbd/secretRef/name",
    "/scaleIO/secretRef/name",
    "/storageos/secretRef/name",
];

impl PodRefs {
    pub(crate) fn of(pod: &Value) -> PodRefs {
        let mut r = PodRefs {
            namespace: meta::meta_str(pod, "namespace").unwrap_or("").to_string(),
            uid: meta::uid(pod).unwrap_or("").to_string(),
            service_account: text(pod, "/spec/serviceAccountName")
                .unwrap_or("")
                .to_string(),
            ..PodRefs::default()
        };
        for s in items(pod, "/spec/imagePullSecrets") {
            push(&mut r.secrets, text(s, "/name"));
        }
        for kind in ["containers", "initContainers", "ephemeralContainers"] {
            for c in items(pod, &format!("/spec/{kind}")) {
                for from in items(c, "/envFrom") {
                    push(&mut r.secrets, text(from, "/secretRef/name"));
                    push(&mut r.configmaps, text(from, "/configMapRef/name"));
                }
                for env in items(c, "/env") {
                    push(&mut r.secrets, text(env, "/valueFrom/secretKeyRef/name"));
                    push(
                        &mut r.configmaps,
                        text(env, "/valueFrom/configMapKeyRef/name"),
                    );
                }
            }
        }
        let pod_name = meta::name(pod);
        for v in items(pod, "/spec/volumes") {
            push(&mut r.secrets, text(v, "/secret/secretName"));
            push(&mut r.secrets, text(v, "/azureFile/secretName"));
            push(&mut r.secrets, text(v, "/csi/nodePublishSecretRef/name"));
            for path in VOLUME_SECRET_REFS {
                push(&mut r.secrets, text(v, path));
            }
            push(&mut r.configmaps, text(v, "/configMap/name"));
            for src in items(v, "/projected/sources") {
                push(&mut r.secrets, text(src, "/secret/name"));
                push(&mut r.configmaps, text(src, "/configMap/name"));
            }
            push(&mut r.claims, text(v, "/persistentVolumeClaim/claimName"));
            // A generic ephemeral volume's claim is named after pod and volume.
            if v.get("ephemeral").is_some_and(|e| !e.is_null()) {
                if let Some(vol) = text(v, "/name") {
                    push(&mut r.claims, Some(&format!("{pod_name}-{vol}")));
                }
            }
        }
        for c in items(pod, "/spec/resourceClaims") {
            push(&mut r.resource_claims, text(c, "/resourceClaimName"));
        }
        for c in items(pod, "/status/resourceClaimStatuses") {
            push(&mut r.resource_claims, text(c, "/resourceClaimName"));
        }
        r
    }
}

/// The secrets (namespace, name) a kubelet may read for a persistent
/// volume: the node-side CSI secrets and the in-tree plugins' secret
/// references, in the bound claim's namespace unless the PV names one.
pub(super) fn pv_secrets(pv: &Value) -> Vec<(String, String)> {
    let claim_ns = text(pv, "/spec/claimRef/namespace").unwrap_or("");
    let spec = pv.get("spec").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    let mut add = |ns: Option<&str>, name: Option<&str>| {
        if let Some(name) = name {
            out.push((ns.unwrap_or(claim_ns).to_string(), name.to_string()));
        }
    };
    for field in [
        "nodePublishSecretRef",
        "nodeStageSecretRef",
        "nodeExpandSecretRef",
    ] {
        add(
            text(spec, &format!("/csi/{field}/namespace")),
            text(spec, &format!("/csi/{field}/name")),
        );
    }
    add(
        text(spec, "/azureFile/secretNamespace"),
        text(spec, "/azureFile/secretName"),
    );
    for path in VOLUME_SECRET_REFS {
        let ns_path = path.replace("/name", "/namespace");
        add(text(spec, &ns_path), text(spec, path));
    }
    out
}

/// Whether a pod update can change what the graph holds for it: another
/// node, another pod under the same name, or new resource claim statuses
/// (everything else a pod references is immutable).
pub(super) fn graph_relevant_change(old: &Value, new: &Value) -> bool {
    old.pointer("/spec/nodeName") != new.pointer("/spec/nodeName")
        || meta::uid(old) != meta::uid(new)
        || old.pointer("/status/resourceClaimStatuses")
            != new.pointer("/status/resourceClaimStatuses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_references_every_kind() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "a", "uid": "u1"},
            "spec": {
                "serviceAccountName": "sa",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{
                    "name": "c",
                    "envFrom": [{"secretRef": {"name": "envs"}}, {"configMapRef": {"name": "envc"}}],
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "ks", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "kc", "key": "k"}}},
                        {"name": "C", "value": "plain"},
                    ],
                }],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol"}},
                    {"name": "m", "configMap": {"name": "volc"}},
                    {"name": "p", "projected": {"sources": [
                        {"secret": {"name": "proj"}}, {"configMap": {"name": "projc"}},
                        {"serviceAccountToken": {"path": "t"}},
                    ]}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}},
                    {"name": "x", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}},
                ],
            },
        });
        let r = PodRefs::of(&pod);
        assert_eq!(r.namespace, "a");
        assert_eq!(r.service_account, "sa");
        assert_eq!(
            r.secrets,
            ["pull", "envs", "ks", "init", "vol", "proj", "csi"]
        );
        assert_eq!(r.configmaps, ["envc", "kc", "volc", "projc"]);
        assert_eq!(r.claims, ["data", "p-e"]);
    }

    #[test]
    fn pv_secrets_default_to_the_claim_namespace() {
        let pv = json!({"spec": {
            "claimRef": {"namespace": "a", "name": "data"},
            "csi": {"driver": "d", "nodeStageSecretRef": {"name": "stage"},
                    "controllerPublishSecretRef": {"name": "ctrl"}},
            "rbd": {"secretRef": {"name": "rbd", "namespace": "ceph"}},
        }});
        assert_eq!(
            pv_secrets(&pv),
            [
                ("a".to_string(), "stage".to_string()),
                ("ceph".to_string(), "rbd".to_string())
            ]
        );
    }

    #[test]
    fn status_only_updates_do_not_touch_the_graph() {
        let old = json!({"metadata": {"uid": "1"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        let mut new = old.clone();
        new["status"]["phase"] = json!("Running");
        assert!(!graph_relevant_change(&old, &new));
        new["spec"]["nodeName"] = json!("n2");
        assert!(graph_relevant_change(&old, &new));
    }
}
