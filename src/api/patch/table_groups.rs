//! Patch metadata of the API groups other than core: apps/v1, batch/v1,
//! autoscaling/v1+v2, networking, discovery, coordination, rbac, storage,
//! policy, scheduling and events (k8s.io/api `<group>/<version>/types.go`,
//! v1.33 tags), and of `ObjectMeta` (k8s.io/apimachinery
//! `pkg/apis/meta/v1/types.go`).

use super::schema::{
    apps_v1, batch_v1, core_v1, merge_by, merge_by_into, merge_scalars, meta_v1, replace,
    retain_keys, to, Def, META_ONLY,
};

pub(super) static DEFS: &[Def] = &[
    (apps_v1!("ControllerRevision"), META_ONLY),
    (
        apps_v1!("DaemonSet"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(apps_v1!("DaemonSetSpec"))),
            ("status", to(apps_v1!("DaemonSetStatus"))),
        ],
    ),
    (
        apps_v1!("DaemonSetSpec"),
        &[("template", to(core_v1!("PodTemplateSpec")))],
    ),
    (
        apps_v1!("DaemonSetStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        apps_v1!("Deployment"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(apps_v1!("DeploymentSpec"))),
            ("status", to(apps_v1!("DeploymentStatus"))),
        ],
    ),
    (
        apps_v1!("DeploymentSpec"),
        &[
            ("template", to(core_v1!("PodTemplateSpec"))),
            ("strategy", retain_keys()),
        ],
    ),
    (
        apps_v1!("DeploymentStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        apps_v1!("ReplicaSet"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(apps_v1!("ReplicaSetSpec"))),
            ("status", to(apps_v1!("ReplicaSetStatus"))),
        ],
    ),
    (
        apps_v1!("ReplicaSetSpec"),
        &[("template", to(core_v1!("PodTemplateSpec")))],
    ),
    (
        apps_v1!("ReplicaSetStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        apps_v1!("StatefulSet"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(apps_v1!("StatefulSetSpec"))),
            ("status", to(apps_v1!("StatefulSetStatus"))),
        ],
    ),
    (
        apps_v1!("StatefulSetSpec"),
        &[
            ("template", to(core_v1!("PodTemplateSpec"))),
            (
                "volumeClaimTemplates",
                to(core_v1!("PersistentVolumeClaim")),
            ),
        ],
    ),
    (
        apps_v1!("StatefulSetStatus"),
        &[("conditions", merge_by("type"))],
    ),
    (
        batch_v1!("CronJob"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(batch_v1!("CronJobSpec"))),
        ],
    ),
    (
        batch_v1!("CronJobSpec"),
        &[("jobTemplate", to(batch_v1!("JobTemplateSpec")))],
    ),
    (
        batch_v1!("Job"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(batch_v1!("JobSpec"))),
            ("status", to(batch_v1!("JobStatus"))),
        ],
    ),
    (
        batch_v1!("JobSpec"),
        &[("template", to(core_v1!("PodTemplateSpec")))],
    ),
    (batch_v1!("JobStatus"), &[("conditions", merge_by("type"))]),
    (
        batch_v1!("JobTemplateSpec"),
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to(batch_v1!("JobSpec"))),
        ],
    ),
    (
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
        META_ONLY,
    ),
    ("io.k8s.api.autoscaling.v1.Scale", META_ONLY),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            (
                "status",
                to("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"),
            ),
        ],
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        &[("conditions", merge_by("type"))],
    ),
    (
        meta_v1!("ObjectMeta"),
        &[
            ("ownerReferences", merge_by("uid")),
            ("finalizers", merge_scalars()),
        ],
    ),
    (meta_v1!("PartialObjectMetadata"), META_ONLY),
    ("io.k8s.api.networking.v1.IPAddress", META_ONLY),
    ("io.k8s.api.networking.v1.Ingress", META_ONLY),
    ("io.k8s.api.networking.v1.IngressClass", META_ONLY),
    ("io.k8s.api.networking.v1.NetworkPolicy", META_ONLY),
    (
        "io.k8s.api.networking.v1.ServiceCIDR",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("status", to("io.k8s.api.networking.v1.ServiceCIDRStatus")),
        ],
    ),
    (
        "io.k8s.api.networking.v1.ServiceCIDRStatus",
        &[("conditions", merge_by("type"))],
    ),
    ("io.k8s.api.discovery.v1.EndpointSlice", META_ONLY),
    ("io.k8s.api.coordination.v1.Lease", META_ONLY),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            (
                "webhooks",
                merge_by_into(
                    "name",
                    "io.k8s.api.admissionregistration.v1.MutatingWebhook",
                ),
            ),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        &[("matchConditions", merge_by("name"))],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            (
                "webhooks",
                merge_by_into(
                    "name",
                    "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
                ),
            ),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        &[("matchConditions", merge_by("name"))],
    ),
    ("io.k8s.api.rbac.v1.ClusterRole", META_ONLY),
    ("io.k8s.api.rbac.v1.ClusterRoleBinding", META_ONLY),
    ("io.k8s.api.rbac.v1.Role", META_ONLY),
    ("io.k8s.api.rbac.v1.RoleBinding", META_ONLY),
    ("io.k8s.api.storage.v1.CSIDriver", META_ONLY),
    (
        "io.k8s.api.storage.v1.CSINode",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to("io.k8s.api.storage.v1.CSINodeSpec")),
        ],
    ),
    (
        "io.k8s.api.storage.v1.CSINodeSpec",
        &[("drivers", merge_by("name"))],
    ),
    ("io.k8s.api.storage.v1.CSIStorageCapacity", META_ONLY),
    ("io.k8s.api.storage.v1.StorageClass", META_ONLY),
    ("io.k8s.api.storage.v1.VolumeAttachment", META_ONLY),
    ("io.k8s.api.policy.v1.Eviction", META_ONLY),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudget",
        &[
            ("metadata", to(meta_v1!("ObjectMeta"))),
            ("spec", to("io.k8s.api.policy.v1.PodDisruptionBudgetSpec")),
            (
                "status",
                to("io.k8s.api.policy.v1.PodDisruptionBudgetStatus"),
            ),
        ],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        &[("selector", replace())],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        &[("conditions", merge_by("type"))],
    ),
    ("io.k8s.api.scheduling.v1.PriorityClass", META_ONLY),
    ("io.k8s.api.events.v1.Event", META_ONLY),
];
