//! The one place that maps upstream definition names to our Rust types.
//!
//! Schemas come from `k8s-openapi`'s `JsonSchema` impls, which carry the
//! upstream descriptions and definition names; everything else in this
//! module only ever deals in names.

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, autoscaling::v1 as asv1,
    autoscaling::v2 as asv2, batch::v1 as batch, coordination::v1 as coord, core::v1 as core,
    discovery::v1 as disc, events::v1 as events, networking::v1 as net, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as sched, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Adds the schema of `T` (and everything it reaches) to the generator's
/// definitions. Returned `$ref` is only used by the name check in tests.
pub(super) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_for<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

macro_rules! definitions {
    ($($name:literal => $ty:ty,)*) => {
        pub(super) static DEFINITIONS: &[(&str, SchemaFn)] = &[
            $(($name, schema_for::<$ty>),)*
        ];
    };
}

definitions! {
    // core/v1
    "io.k8s.api.core.v1.Pod" => core::Pod,
    "io.k8s.api.core.v1.Service" => core::Service,
    "io.k8s.api.core.v1.Endpoints" => core::Endpoints,
    "io.k8s.api.core.v1.Namespace" => core::Namespace,
    "io.k8s.api.core.v1.Node" => core::Node,
    "io.k8s.api.core.v1.ConfigMap" => core::ConfigMap,
    "io.k8s.api.core.v1.Secret" => core::Secret,
    "io.k8s.api.core.v1.ServiceAccount" => core::ServiceAccount,
    "io.k8s.api.core.v1.PersistentVolume" => core::PersistentVolume,
    "io.k8s.api.core.v1.PersistentVolumeClaim" => core::PersistentVolumeClaim,
    "io.k8s.api.core.v1.ResourceQuota" => core::ResourceQuota,
    "io.k8s.api.core.v1.LimitRange" => core::LimitRange,
    "io.k8s.api.core.v1.Event" => core::Event,
    "io.k8s.api.core.v1.ReplicationController" => core::ReplicationController,
    "io.k8s.api.core.v1.PodTemplate" => core::PodTemplate,
    "io.k8s.api.core.v1.Binding" => core::Binding,
    // other groups
    "io.k8s.api.events.v1.Event" => events::Event,
    "io.k8s.api.apps.v1.Deployment" => apps::Deployment,
    "io.k8s.api.apps.v1.ReplicaSet" => apps::ReplicaSet,
    "io.k8s.api.apps.v1.StatefulSet" => apps::StatefulSet,
    "io.k8s.api.apps.v1.DaemonSet" => apps::DaemonSet,
    "io.k8s.api.apps.v1.ControllerRevision" => apps::ControllerRevision,
    "io.k8s.api.batch.v1.Job" => batch::Job,
    "io.k8s.api.batch.v1.CronJob" => batch::CronJob,
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler" => asv1::HorizontalPodAutoscaler,
    "io.k8s.api.autoscaling.v1.Scale" => asv1::Scale,
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler" => asv2::HorizontalPodAutoscaler,
    "io.k8s.api.networking.v1.Ingress" => net::Ingress,
    "io.k8s.api.networking.v1.IngressClass" => net::IngressClass,
    "io.k8s.api.networking.v1.NetworkPolicy" => net::NetworkPolicy,
    "io.k8s.api.discovery.v1.EndpointSlice" => disc::EndpointSlice,
    "io.k8s.api.coordination.v1.Lease" => coord::Lease,
    "io.k8s.api.rbac.v1.Role" => rbac::Role,
    "io.k8s.api.rbac.v1.RoleBinding" => rbac::RoleBinding,
    "io.k8s.api.rbac.v1.ClusterRole" => rbac::ClusterRole,
    "io.k8s.api.rbac.v1.ClusterRoleBinding" => rbac::ClusterRoleBinding,
    "io.k8s.api.storage.v1.StorageClass" => storage::StorageClass,
    "io.k8s.api.storage.v1.CSIDriver" => storage::CSIDriver,
    "io.k8s.api.storage.v1.VolumeAttachment" => storage::VolumeAttachment,
    "io.k8s.api.policy.v1.PodDisruptionBudget" => policy::PodDisruptionBudget,
    "io.k8s.api.policy.v1.Eviction" => policy::Eviction,
    "io.k8s.api.scheduling.v1.PriorityClass" => sched::PriorityClass,
    "io.k8s.api.authentication.v1.TokenRequest" => authn::TokenRequest,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition" =>
        apiext::CustomResourceDefinition,
    // meta types every document carries
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status" => meta::Status,
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" => meta::ListMeta,
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" => meta::ObjectMeta,
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" => meta::DeleteOptions,
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent" => meta::WatchEvent<RawExtension>,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch" => meta::Patch,
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList" => meta::APIResourceList,
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup" => meta::APIGroup,
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList" => meta::APIGroupList,
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions" => meta::APIVersions,
}

pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// Definitions every document includes, whatever kinds it serves.
pub(super) const META_ROOTS: &[&str] = &[
    STATUS,
    LIST_META,
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    DELETE_OPTIONS,
    WATCH_EVENT,
    PATCH,
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
];

/// Discovery documents only appear in the whole-cluster v2 document, as
/// upstream (the per group-version v3 documents do not serve /api, /apis).
pub(super) const DISCOVERY_ROOTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
];

/// Group, version, kind of a definition that is a kind of its own (not
/// through a served resource): subresource bodies and meta kinds.
pub(super) fn intrinsic_gvk(
    definition: &str,
) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match definition {
        "io.k8s.api.autoscaling.v1.Scale" => ("autoscaling", "v1", "Scale"),
        "io.k8s.api.policy.v1.Eviction" => ("policy", "v1", "Eviction"),
        "io.k8s.api.core.v1.Binding" => ("", "v1", "Binding"),
        "io.k8s.api.authentication.v1.TokenRequest" => {
            ("authentication.k8s.io", "v1", "TokenRequest")
        }
        STATUS => ("", "v1", "Status"),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList" => ("", "v1", "APIResourceList"),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup" => ("", "v1", "APIGroup"),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList" => ("", "v1", "APIGroupList"),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions" => ("", "v1", "APIVersions"),
        _ => return None,
    })
}

/// Meta kinds that upstream registers in every group version.
pub(super) fn in_every_group(definition: &str) -> bool {
    matches!(definition, DELETE_OPTIONS | WATCH_EVENT)
}

pub(super) fn lookup(name: &str) -> Option<SchemaFn> {
    DEFINITIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, f)| *f)
}

/// `io.k8s.api.apps.v1.Deployment` -> `io.k8s.api.apps.v1.DeploymentList`.
pub(super) fn list_name(definition: &str) -> String {
    format!("{definition}List")
}

/// The definition a subresource reads and writes when it is not the
/// resource's own kind.
pub(super) fn subresource_body(subresource: &str) -> Option<&'static str> {
    Some(match subresource {
        "scale" => "io.k8s.api.autoscaling.v1.Scale",
        "eviction" => "io.k8s.api.policy.v1.Eviction",
        "binding" => "io.k8s.api.core.v1.Binding",
        "token" => "io.k8s.api.authentication.v1.TokenRequest",
        _ => return None,
    })
}
