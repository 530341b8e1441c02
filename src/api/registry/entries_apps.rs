//! apps/v1, batch/v1 and autoscaling kinds: the workloads.

use super::entries_core::{scale, status, BASE};
use super::{Resource, Strategy};

const APPS: Resource = Resource {
    group: "apps",
    strategy: Strategy::SPEC,
    ..BASE
};

const BATCH: Resource = Resource {
    group: "batch",
    strategy: Strategy::SPEC,
    ..BASE
};

pub(super) static RESOURCES: &[Resource] = &[
    Resource {
        kind: "ControllerRevision",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        definition: Some("io.k8s.api.apps.v1.ControllerRevision"),
        storage: "controllerrevisions",
        strategy: Strategy::PLAIN,
        ..APPS
    },
    Resource {
        kind: "DaemonSet",
        plural: "daemonsets",
        singular: "daemonset",
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[status("apps", "v1", "DaemonSet")],
        definition: Some("io.k8s.api.apps.v1.DaemonSet"),
        storage: "daemonsets",
        strategy: crate::api::kinds::DAEMON_SET,
        ..APPS
    },
    Resource {
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[scale("scale"), status("apps", "v1", "Deployment")],
        definition: Some("io.k8s.api.apps.v1.Deployment"),
        storage: "deployments",
        strategy: crate::api::kinds::DEPLOYMENT,
        ..APPS
    },
    Resource {
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[scale("scale"), status("apps", "v1", "ReplicaSet")],
        definition: Some("io.k8s.api.apps.v1.ReplicaSet"),
        storage: "replicasets",
        strategy: crate::api::kinds::REPLICA_SET,
        ..APPS
    },
    Resource {
        kind: "StatefulSet",
        plural: "statefulsets",
        singular: "statefulset",
        short_names: &["sts"],
        categories: &["all"],
        subresources: &[scale("scale"), status("apps", "v1", "StatefulSet")],
        definition: Some("io.k8s.api.apps.v1.StatefulSet"),
        storage: "statefulsets",
        strategy: crate::api::kinds::STATEFUL_SET,
        ..APPS
    },
    Resource {
        kind: "CronJob",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        short_names: &["cj"],
        categories: &["all"],
        subresources: &[status("batch", "v1", "CronJob")],
        definition: Some("io.k8s.api.batch.v1.CronJob"),
        storage: "cronjobs",
        strategy: crate::api::kinds::CRON_JOB,
        ..BATCH
    },
    Resource {
        kind: "Job",
        plural: "jobs",
        singular: "job",
        categories: &["all"],
        subresources: &[status("batch", "v1", "Job")],
        definition: Some("io.k8s.api.batch.v1.Job"),
        storage: "jobs",
        strategy: crate::api::kinds::JOB,
        ..BATCH
    },
    // v2 first: it is the storage version and the preferred one.
    Resource {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &[status("autoscaling", "v2", "HorizontalPodAutoscaler")],
        definition: Some("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"),
        storage: "horizontalpodautoscalers",
        strategy: crate::api::kinds::HORIZONTAL_POD_AUTOSCALER,
        ..BASE
    },
    Resource {
        group: "autoscaling",
        version: "v1",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &[status("autoscaling", "v1", "HorizontalPodAutoscaler")],
        definition: Some("io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"),
        storage: "horizontalpodautoscalers",
        strategy: crate::api::convert::HPA_V1,
        ..BASE
    },
];
