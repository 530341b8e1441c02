//! Upstream's OpenAPI markers of built-in types (k8s.io/api v1.33
//! `+listType`, `+listMapKey`, `+mapType`, `+structType`) where the
//! strategic-merge tables do not imply them, and the links to reach them.
//!
//! kube-openapi types server-side apply by `x-kubernetes-list-type` first
//! and by the patch strategy only where a list has none; `types` does the
//! same with the patch tables as the fallback. The rows below were made
//! from the Go sources by comparing both, so only the differences are here.
//! Definition names leave out `io.k8s.api.` and the apimachinery and
//! apiextensions package paths (`meta.v1.`, `apiextensions.v1.`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::types::ListType;

/// Lists whose marker differs from what their patch strategy implies (no
/// strategy, more keys than the merge key, or atomic despite a merge key):
/// definition, field, `atomic`, `set` or `map=<key>,<key>`.
const LISTS: &str = "
batch.v1.JobStatus conditions atomic
batch.v1.PodFailurePolicyOnExitCodesRequirement values set
batch.v1.UncountedTerminatedPods failed set
batch.v1.UncountedTerminatedPods succeeded set
core.v1.Container ports map=containerPort,protocol
core.v1.EphemeralContainer ports map=containerPort,protocol
core.v1.PodSpec topologySpreadConstraints map=topologyKey,whenUnsatisfiable
core.v1.PodStatus hostIPs atomic
core.v1.ResourceRequirements claims map=name
core.v1.ResourceStatus resources map=resourceID
core.v1.ServiceSpec ports map=port,protocol
discovery.v1.Endpoint addresses set
storage.v1.CSIDriverSpec volumeLifecycleModes set
apiextensions.v1.CustomResourceDefinitionStatus conditions map=type
apiextensions.v1.JSONSchemaProps x-kubernetes-validations map=rule
";

/// Maps marked `x-kubernetes-map-type: atomic`: definition, field.
const ATOMIC_MAPS: &str = "
core.v1.PodSpec nodeSelector
core.v1.ReplicationControllerSpec selector
core.v1.ServiceSpec selector
";

/// Structs marked `+structType=atomic`: replaced and owned whole.
const ATOMIC_STRUCTS: &str = "
autoscaling.v1.CrossVersionObjectReference
core.v1.ConfigMapKeySelector
core.v1.EndpointAddress
core.v1.EndpointPort
core.v1.LocalObjectReference
core.v1.NodeSelector
core.v1.NodeSelectorTerm
core.v1.ObjectFieldSelector
core.v1.ObjectReference
core.v1.ResourceFieldSelector
core.v1.ScopeSelector
core.v1.SecretKeySelector
core.v1.SecretReference
core.v1.TopologySelectorTerm
core.v1.TypedLocalObjectReference
discovery.v1.EndpointPort
networking.v1.ServiceBackendPort
rbac.v1.RoleRef
rbac.v1.Subject
meta.v1.LabelSelector
meta.v1.OwnerReference
";

/// The definition of a field's object or list item where the patch tables
/// do not link it, on the way to the rows above: definition, field, child.
const LINKS: &str = "
admissionregistration.v1.MutatingWebhook namespaceSelector meta.v1.LabelSelector
admissionregistration.v1.MutatingWebhook objectSelector meta.v1.LabelSelector
admissionregistration.v1.ValidatingWebhook namespaceSelector meta.v1.LabelSelector
admissionregistration.v1.ValidatingWebhook objectSelector meta.v1.LabelSelector
apps.v1.DaemonSetSpec selector meta.v1.LabelSelector
apps.v1.DeploymentSpec selector meta.v1.LabelSelector
apps.v1.ReplicaSetSpec selector meta.v1.LabelSelector
apps.v1.StatefulSetSpec selector meta.v1.LabelSelector
authentication.v1.SelfSubjectReview metadata meta.v1.ObjectMeta
authentication.v1.TokenReview metadata meta.v1.ObjectMeta
authorization.v1.LocalSubjectAccessReview metadata meta.v1.ObjectMeta
authorization.v1.SelfSubjectAccessReview metadata meta.v1.ObjectMeta
authorization.v1.SelfSubjectRulesReview metadata meta.v1.ObjectMeta
authorization.v1.SubjectAccessReview metadata meta.v1.ObjectMeta
autoscaling.v1.HorizontalPodAutoscaler spec autoscaling.v1.HorizontalPodAutoscalerSpec
autoscaling.v1.HorizontalPodAutoscalerSpec scaleTargetRef autoscaling.v1.CrossVersionObjectReference
autoscaling.v2.ExternalMetricSource metric autoscaling.v2.MetricIdentifier
autoscaling.v2.ExternalMetricStatus metric autoscaling.v2.MetricIdentifier
autoscaling.v2.HorizontalPodAutoscaler spec autoscaling.v2.HorizontalPodAutoscalerSpec
autoscaling.v2.HorizontalPodAutoscalerSpec metrics autoscaling.v2.MetricSpec
autoscaling.v2.HorizontalPodAutoscalerStatus currentMetrics autoscaling.v2.MetricStatus
autoscaling.v2.MetricIdentifier selector meta.v1.LabelSelector
autoscaling.v2.MetricSpec external autoscaling.v2.ExternalMetricSource
autoscaling.v2.MetricSpec object autoscaling.v2.ObjectMetricSource
autoscaling.v2.MetricSpec pods autoscaling.v2.PodsMetricSource
autoscaling.v2.MetricStatus external autoscaling.v2.ExternalMetricStatus
autoscaling.v2.MetricStatus object autoscaling.v2.ObjectMetricStatus
autoscaling.v2.MetricStatus pods autoscaling.v2.PodsMetricStatus
autoscaling.v2.ObjectMetricSource metric autoscaling.v2.MetricIdentifier
autoscaling.v2.ObjectMetricStatus metric autoscaling.v2.MetricIdentifier
autoscaling.v2.PodsMetricSource metric autoscaling.v2.MetricIdentifier
autoscaling.v2.PodsMetricStatus metric autoscaling.v2.MetricIdentifier
batch.v1.CronJob status batch.v1.CronJobStatus
batch.v1.CronJobStatus active core.v1.ObjectReference
batch.v1.JobSpec podFailurePolicy batch.v1.PodFailurePolicy
batch.v1.JobSpec selector meta.v1.LabelSelector
batch.v1.JobStatus uncountedTerminatedPods batch.v1.UncountedTerminatedPods
batch.v1.PodFailurePolicy rules batch.v1.PodFailurePolicyRule
batch.v1.PodFailurePolicyRule onExitCodes batch.v1.PodFailurePolicyOnExitCodesRequirement
core.v1.Affinity nodeAffinity core.v1.NodeAffinity
core.v1.Affinity podAffinity core.v1.PodAffinity
core.v1.Affinity podAntiAffinity core.v1.PodAntiAffinity
core.v1.Binding target core.v1.ObjectReference
core.v1.CSIPersistentVolumeSource controllerExpandSecretRef core.v1.SecretReference
core.v1.CSIPersistentVolumeSource controllerPublishSecretRef core.v1.SecretReference
core.v1.CSIPersistentVolumeSource nodeExpandSecretRef core.v1.SecretReference
core.v1.CSIPersistentVolumeSource nodePublishSecretRef core.v1.SecretReference
core.v1.CSIPersistentVolumeSource nodeStageSecretRef core.v1.SecretReference
core.v1.CSIVolumeSource nodePublishSecretRef core.v1.LocalObjectReference
core.v1.CephFSPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.CephFSVolumeSource secretRef core.v1.LocalObjectReference
core.v1.CinderPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.CinderVolumeSource secretRef core.v1.LocalObjectReference
core.v1.ClusterTrustBundleProjection labelSelector meta.v1.LabelSelector
core.v1.Container env core.v1.EnvVar
core.v1.Container resources core.v1.ResourceRequirements
core.v1.ContainerStatus allocatedResourcesStatus core.v1.ResourceStatus
core.v1.ContainerStatus resources core.v1.ResourceRequirements
core.v1.DownwardAPIProjection items core.v1.DownwardAPIVolumeFile
core.v1.DownwardAPIVolumeFile fieldRef core.v1.ObjectFieldSelector
core.v1.DownwardAPIVolumeFile resourceFieldRef core.v1.ResourceFieldSelector
core.v1.DownwardAPIVolumeSource items core.v1.DownwardAPIVolumeFile
core.v1.EndpointAddress targetRef core.v1.ObjectReference
core.v1.EndpointSubset addresses core.v1.EndpointAddress
core.v1.EndpointSubset notReadyAddresses core.v1.EndpointAddress
core.v1.EndpointSubset ports core.v1.EndpointPort
core.v1.Endpoints subsets core.v1.EndpointSubset
core.v1.EnvVar valueFrom core.v1.EnvVarSource
core.v1.EnvVarSource configMapKeyRef core.v1.ConfigMapKeySelector
core.v1.EnvVarSource fieldRef core.v1.ObjectFieldSelector
core.v1.EnvVarSource resourceFieldRef core.v1.ResourceFieldSelector
core.v1.EnvVarSource secretKeyRef core.v1.SecretKeySelector
core.v1.EphemeralContainer env core.v1.EnvVar
core.v1.EphemeralContainer resources core.v1.ResourceRequirements
core.v1.Event involvedObject core.v1.ObjectReference
core.v1.Event related core.v1.ObjectReference
core.v1.FlexPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.FlexVolumeSource secretRef core.v1.LocalObjectReference
core.v1.ISCSIPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.ISCSIVolumeSource secretRef core.v1.LocalObjectReference
core.v1.NodeAffinity preferredDuringSchedulingIgnoredDuringExecution core.v1.PreferredSchedulingTerm
core.v1.NodeAffinity requiredDuringSchedulingIgnoredDuringExecution core.v1.NodeSelector
core.v1.NodeSelector nodeSelectorTerms core.v1.NodeSelectorTerm
core.v1.PersistentVolume spec core.v1.PersistentVolumeSpec
core.v1.PersistentVolumeClaim spec core.v1.PersistentVolumeClaimSpec
core.v1.PersistentVolumeClaimSpec dataSource core.v1.TypedLocalObjectReference
core.v1.PersistentVolumeClaimSpec selector meta.v1.LabelSelector
core.v1.PersistentVolumeClaimTemplate spec core.v1.PersistentVolumeClaimSpec
core.v1.PersistentVolumeSpec cephfs core.v1.CephFSPersistentVolumeSource
core.v1.PersistentVolumeSpec cinder core.v1.CinderPersistentVolumeSource
core.v1.PersistentVolumeSpec claimRef core.v1.ObjectReference
core.v1.PersistentVolumeSpec csi core.v1.CSIPersistentVolumeSource
core.v1.PersistentVolumeSpec flexVolume core.v1.FlexPersistentVolumeSource
core.v1.PersistentVolumeSpec iscsi core.v1.ISCSIPersistentVolumeSource
core.v1.PersistentVolumeSpec nodeAffinity core.v1.VolumeNodeAffinity
core.v1.PersistentVolumeSpec rbd core.v1.RBDPersistentVolumeSource
core.v1.PersistentVolumeSpec scaleIO core.v1.ScaleIOPersistentVolumeSource
core.v1.PersistentVolumeSpec storageos core.v1.StorageOSPersistentVolumeSource
core.v1.PodAffinity preferredDuringSchedulingIgnoredDuringExecution core.v1.WeightedPodAffinityTerm
core.v1.PodAffinity requiredDuringSchedulingIgnoredDuringExecution core.v1.PodAffinityTerm
core.v1.PodAffinityTerm labelSelector meta.v1.LabelSelector
core.v1.PodAffinityTerm namespaceSelector meta.v1.LabelSelector
core.v1.PodAntiAffinity preferredDuringSchedulingIgnoredDuringExecution core.v1.WeightedPodAffinityTerm
core.v1.PodAntiAffinity requiredDuringSchedulingIgnoredDuringExecution core.v1.PodAffinityTerm
core.v1.PodSpec affinity core.v1.Affinity
core.v1.PodSpec imagePullSecrets core.v1.LocalObjectReference
core.v1.PodSpec resources core.v1.ResourceRequirements
core.v1.PodSpec topologySpreadConstraints core.v1.TopologySpreadConstraint
core.v1.PreferredSchedulingTerm preference core.v1.NodeSelectorTerm
core.v1.ProjectedVolumeSource sources core.v1.VolumeProjection
core.v1.RBDPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.RBDVolumeSource secretRef core.v1.LocalObjectReference
core.v1.ResourceQuota spec core.v1.ResourceQuotaSpec
core.v1.ResourceQuotaSpec scopeSelector core.v1.ScopeSelector
core.v1.ScaleIOPersistentVolumeSource secretRef core.v1.SecretReference
core.v1.ScaleIOVolumeSource secretRef core.v1.LocalObjectReference
core.v1.ServiceAccount imagePullSecrets core.v1.LocalObjectReference
core.v1.ServiceAccount secrets core.v1.ObjectReference
core.v1.StorageOSPersistentVolumeSource secretRef core.v1.ObjectReference
core.v1.StorageOSVolumeSource secretRef core.v1.LocalObjectReference
core.v1.TopologySpreadConstraint labelSelector meta.v1.LabelSelector
core.v1.Volume cephfs core.v1.CephFSVolumeSource
core.v1.Volume cinder core.v1.CinderVolumeSource
core.v1.Volume csi core.v1.CSIVolumeSource
core.v1.Volume downwardAPI core.v1.DownwardAPIVolumeSource
core.v1.Volume flexVolume core.v1.FlexVolumeSource
core.v1.Volume iscsi core.v1.ISCSIVolumeSource
core.v1.Volume projected core.v1.ProjectedVolumeSource
core.v1.Volume rbd core.v1.RBDVolumeSource
core.v1.Volume scaleIO core.v1.ScaleIOVolumeSource
core.v1.Volume storageos core.v1.StorageOSVolumeSource
core.v1.VolumeNodeAffinity required core.v1.NodeSelector
core.v1.VolumeProjection clusterTrustBundle core.v1.ClusterTrustBundleProjection
core.v1.VolumeProjection downwardAPI core.v1.DownwardAPIProjection
core.v1.WeightedPodAffinityTerm podAffinityTerm core.v1.PodAffinityTerm
discovery.v1.Endpoint targetRef core.v1.ObjectReference
discovery.v1.EndpointSlice endpoints discovery.v1.Endpoint
discovery.v1.EndpointSlice ports discovery.v1.EndpointPort
events.v1.Event regarding core.v1.ObjectReference
events.v1.Event related core.v1.ObjectReference
networking.v1.HTTPIngressPath backend networking.v1.IngressBackend
networking.v1.HTTPIngressRuleValue paths networking.v1.HTTPIngressPath
networking.v1.Ingress spec networking.v1.IngressSpec
networking.v1.IngressBackend resource core.v1.TypedLocalObjectReference
networking.v1.IngressBackend service networking.v1.IngressServiceBackend
networking.v1.IngressRule http networking.v1.HTTPIngressRuleValue
networking.v1.IngressServiceBackend port networking.v1.ServiceBackendPort
networking.v1.IngressSpec defaultBackend networking.v1.IngressBackend
networking.v1.IngressSpec rules networking.v1.IngressRule
networking.v1.NetworkPolicy spec networking.v1.NetworkPolicySpec
networking.v1.NetworkPolicyEgressRule to networking.v1.NetworkPolicyPeer
networking.v1.NetworkPolicyIngressRule from networking.v1.NetworkPolicyPeer
networking.v1.NetworkPolicyPeer namespaceSelector meta.v1.LabelSelector
networking.v1.NetworkPolicyPeer podSelector meta.v1.LabelSelector
networking.v1.NetworkPolicySpec egress networking.v1.NetworkPolicyEgressRule
networking.v1.NetworkPolicySpec ingress networking.v1.NetworkPolicyIngressRule
networking.v1.NetworkPolicySpec podSelector meta.v1.LabelSelector
policy.v1.PodDisruptionBudgetSpec selector meta.v1.LabelSelector
rbac.v1.AggregationRule clusterRoleSelectors meta.v1.LabelSelector
rbac.v1.ClusterRole aggregationRule rbac.v1.AggregationRule
rbac.v1.ClusterRoleBinding roleRef rbac.v1.RoleRef
rbac.v1.ClusterRoleBinding subjects rbac.v1.Subject
rbac.v1.RoleBinding roleRef rbac.v1.RoleRef
rbac.v1.RoleBinding subjects rbac.v1.Subject
storage.v1.CSIDriver spec storage.v1.CSIDriverSpec
storage.v1.StorageClass allowedTopologies core.v1.TopologySelectorTerm
storage.v1.VolumeAttachment spec storage.v1.VolumeAttachmentSpec
storage.v1.VolumeAttachmentSource inlineVolumeSpec core.v1.PersistentVolumeSpec
storage.v1.VolumeAttachmentSpec source storage.v1.VolumeAttachmentSource
apiextensions.v1.CustomResourceDefinition metadata meta.v1.ObjectMeta
apiextensions.v1.CustomResourceDefinition spec apiextensions.v1.CustomResourceDefinitionSpec
apiextensions.v1.CustomResourceDefinition status apiextensions.v1.CustomResourceDefinitionStatus
apiextensions.v1.CustomResourceDefinitionSpec versions apiextensions.v1.CustomResourceDefinitionVersion
apiextensions.v1.CustomResourceDefinitionVersion schema apiextensions.v1.CustomResourceValidation
apiextensions.v1.CustomResourceValidation openAPIV3Schema apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps allOf apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps anyOf apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps not apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps oneOf apiextensions.v1.JSONSchemaProps
meta.v1.ObjectMeta ownerReferences meta.v1.OwnerReference
";

/// Maps whose values are objects of a definition: definition, field,
/// value definition.
const MAP_VALUES: &str = "
apiextensions.v1.JSONSchemaProps definitions apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps patternProperties apiextensions.v1.JSONSchemaProps
apiextensions.v1.JSONSchemaProps properties apiextensions.v1.JSONSchemaProps
";

#[derive(Debug, Default)]
struct Field {
    list: Option<ListType>,
    child: Option<String>,
    value: Option<String>,
    atomic_map: bool,
}

#[derive(Debug, Default)]
struct Index {
    fields: HashMap<String, HashMap<String, Field>>,
    atomic: HashSet<String>,
    rows: usize,
}

impl Index {
    fn field(&mut self, definition: &str, field: &str) -> &mut Field {
        self.rows += 1;
        self.fields
            .entry(full(definition))
            .or_default()
            .entry(field.to_string())
            .or_default()
    }
}

fn full(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("meta.v1.") {
        format!("io.k8s.apimachinery.pkg.apis.meta.v1.{rest}")
    } else if let Some(rest) = name.strip_prefix("apiextensions.v1.") {
        format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.{rest}")
    } else {
        format!("io.k8s.api.{name}")
    }
}

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
}

fn list_type(text: &str) -> Option<ListType> {
    match text {
        "atomic" => Some(ListType::Atomic),
        "set" => Some(ListType::Set),
        _ => {
            let keys = text.strip_prefix("map=")?;
            Some(ListType::Map(keys.split(',').map(str::to_string).collect()))
        }
    }
}

fn build() -> Index {
    let mut ix = Index::default();
    for r in rows(LISTS) {
        if let [d, f, t] = r[..] {
            if let Some(list) = list_type(t) {
                ix.field(d, f).list = Some(list);
            }
        }
    }
    for r in rows(ATOMIC_MAPS) {
        if let [d, f] = r[..] {
            ix.field(d, f).atomic_map = true;
        }
    }
    for r in rows(LINKS) {
        if let [d, f, c] = r[..] {
            ix.field(d, f).child = Some(full(c));
        }
    }
    for r in rows(MAP_VALUES) {
        if let [d, f, v] = r[..] {
            ix.field(d, f).value = Some(full(v));
        }
    }
    for r in rows(ATOMIC_STRUCTS) {
        if let [d] = r[..] {
            ix.atomic.insert(full(d));
            ix.rows += 1;
        }
    }
    ix
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(build)
}

fn lookup(definition: &str, field: &str) -> Option<&'static Field> {
    index().fields.get(definition)?.get(field)
}

/// The list type upstream marks `field` of `definition` with, where the
/// patch tables imply another.
pub(super) fn list(definition: &str, field: &str) -> Option<ListType> {
    lookup(definition, field)?.list.clone()
}

/// The definition under `field` of `definition` where the patch tables
/// have no link.
pub(super) fn child(definition: &str, field: &str) -> Option<&'static str> {
    lookup(definition, field)?.child.as_deref()
}

/// The definition of the values of map `field` of `definition`.
pub(super) fn map_value(definition: &str, field: &str) -> Option<&'static str> {
    lookup(definition, field)?.value.as_deref()
}

/// Whether `field` of `definition` is a map marked atomic.
pub(super) fn atomic_map(definition: &str, field: &str) -> bool {
    lookup(definition, field).is_some_and(|f| f.atomic_map)
}

/// Whether objects of `definition` are atomic.
pub(super) fn atomic_struct(definition: &str) -> bool {
    index().atomic.contains(definition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses() {
        let total: usize = [LISTS, ATOMIC_MAPS, ATOMIC_STRUCTS, LINKS, MAP_VALUES]
            .iter()
            .map(|t| rows(t).count())
            .sum();
        assert_eq!(index().rows, total);
        assert_eq!(total, 15 + 3 + 21 + 180 + 3);
    }
}
