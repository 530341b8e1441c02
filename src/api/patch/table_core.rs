//! Patch metadata of core/v1 (k8s.io/api `core/v1/types.go`, v1.33 tags).

use super::schema::{
    core_v1, merge_by, merge_by_into, merge_retain, merge_retain_into, merge_scalars, meta_v1, to,
    Def, META_ONLY,
};

pub(super) static DEFS: &[Def] = &[
    (core_v1!("Binding"), META_ONLY),
    (
        core_v1!("ComponentStatus"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("conditions", merge_by("type")),
        ],
    ),
    (core_v1!("ConfigMap"), META_ONLY),
    (
        core_v1!("Container"),
        &[
            ("ports", merge_by("containerPort")),
            ("env", merge_by("name")),
            ("volumeMounts", merge_by("mountPath")),
            ("volumeDevices", merge_by("devicePath")),
        ],
    ),
    (
        core_v1!("ContainerStatus"),
        &[
            ("volumeMounts", merge_by("mountPath")),
            ("allocatedResourcesStatus", merge_by("name")),
        ],
    ),
    (core_v1!("Endpoints"), META_ONLY),
    (
        core_v1!("EphemeralContainer"),
        &[
            ("ports", merge_by("containerPort")),
            ("env", merge_by("name")),
            ("volumeMounts", merge_by("mountPath")),
            ("volumeDevices", merge_by("devicePath")),
        ],
    ),
    (
        core_v1!("EphemeralVolumeSource"),
        &[(
            "volumeClaimTemplate",
            to(core_v1!("PersistentVolumeClaimTemplate")),
        )],
    ),
    (core_v1!("Event"), META_ONLY),
    (core_v1!("LimitRange"), META_ONLY),
    (
        core_v1!("Namespace"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("status", to(core_v1!("NamespaceStatus"))),
        ],
    ),
    (
        core_v1!("NamespaceStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        core_v1!("Node"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(core_v1!("NodeSpec"))),
            ("status", to(core_v1!("NodeStatus"))),
        ],
    ),
    (core_v1!("NodeSpec"), &[("podCIDRs", merge_scalars())]),
    (
        core_v1!("NodeStatus"),
        &[
            ("conditions", merge_by("type")),
            ("addresses", merge_by("type")),
        ],
    ),
    (core_v1!("PersistentVolume"), META_ONLY),
    (
        core_v1!("PersistentVolumeClaim"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("status", to(core_v1!("PersistentVolumeClaimStatus"))),
        ],
    ),
    (
        core_v1!("PersistentVolumeClaimStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (core_v1!("PersistentVolumeClaimTemplate"), META_ONLY),
    (
        core_v1!("Pod"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(core_v1!("PodSpec"))),
            ("status", to(core_v1!("PodStatus"))),
        ],
    ),
    (
        core_v1!("PodSpec"),
        &[
            ("volumes", merge_retain_into("name", core_v1!("Volume"))),
            (
                "initContainers",
                merge_by_into("name", core_v1!("Container")),
            ),
            ("containers", merge_by_into("name", core_v1!("Container"))),
            (
                "ephemeralContainers",
                merge_by_into("name", core_v1!("EphemeralContainer")),
            ),
            ("imagePullSecrets", merge_by("name")),
            ("hostAliases", merge_by("ip")),
            ("topologySpreadConstraints", merge_by("topologyKey")),
            ("schedulingGates", merge_by("name")),
            ("resourceClaims", merge_retain("name")),
        ],
    ),
    (
        core_v1!("PodStatus"),
        &[
            ("conditions", merge_by("type")),
            ("hostIPs", merge_by("ip")),
            ("podIPs", merge_by("ip")),
            ("initContainerStatuses", to(core_v1!("ContainerStatus"))),
            ("containerStatuses", to(core_v1!("ContainerStatus"))),
            (
                "ephemeralContainerStatuses",
                to(core_v1!("ContainerStatus")),
            ),
            ("resourceClaimStatuses", merge_retain("name")),
        ],
    ),
    (
        core_v1!("PodStatusResult"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("status", to(core_v1!("PodStatus"))),
        ],
    ),
    (
        core_v1!("PodTemplate"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("template", to(core_v1!("PodTemplateSpec"))),
        ],
    ),
    (
        core_v1!("PodTemplateSpec"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(core_v1!("PodSpec"))),
        ],
    ),
    (core_v1!("RangeAllocation"), META_ONLY),
    (
        core_v1!("ReplicationController"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(core_v1!("ReplicationControllerSpec"))),
            ("status", to(core_v1!("ReplicationControllerStatus"))),
        ],
    ),
    (
        core_v1!("ReplicationControllerSpec"),
        &[("template", to(core_v1!("PodTemplateSpec")))],
    ),
    (
        core_v1!("ReplicationControllerStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (core_v1!("ResourceQuota"), META_ONLY),
    (core_v1!("Secret"), META_ONLY),
    (
        core_v1!("Service"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(core_v1!("ServiceSpec"))),
            ("status", to(core_v1!("ServiceStatus"))),
        ],
    ),
    (
        core_v1!("ServiceAccount"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("secrets", merge_by("name")),
        ],
    ),
    (core_v1!("ServiceSpec"), &[("ports", merge_by("port"))]),
    (
        core_v1!("ServiceStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        core_v1!("Volume"),
        &[("ephemeral", to(core_v1!("EphemeralVolumeSource")))],
    ),
];
