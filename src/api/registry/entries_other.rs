//! The remaining groups: networking, discovery, coordination, rbac, storage,
//! policy, scheduling, events, apiextensions and admissionregistration.

use super::entries_core::{status, BASE};
use super::{Resource, Strategy};
use crate::api::validation::NameRule;

const fn group(name: &'static str) -> Resource {
    Resource {
        group: name,
        ..BASE
    }
}

const NET: Resource = group("networking.k8s.io");
const RBAC: Resource = Resource {
    name_rule: NameRule::PathSegment,
    ..group("rbac.authorization.k8s.io")
};
const STORAGE: Resource = Resource {
    namespaced: false,
    ..group("storage.k8s.io")
};

pub(super) static RESOURCES: &[Resource] = &[
    Resource {
        kind: "Ingress",
        plural: "ingresses",
        singular: "ingress",
        short_names: &["ing"],
        subresources: &[status("networking.k8s.io", "v1", "Ingress")],
        definition: Some("io.k8s.api.networking.v1.Ingress"),
        storage: "ingress",
        strategy: crate::api::kinds::INGRESS,
        ..NET
    },
    Resource {
        kind: "IngressClass",
        plural: "ingressclasses",
        singular: "ingressclass",
        namespaced: false,
        definition: Some("io.k8s.api.networking.v1.IngressClass"),
        storage: "ingressclasses",
        strategy: crate::api::kinds::INGRESS_CLASS,
        ..NET
    },
    Resource {
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        singular: "networkpolicy",
        short_names: &["netpol"],
        definition: Some("io.k8s.api.networking.v1.NetworkPolicy"),
        storage: "networkpolicies",
        strategy: crate::api::kinds::NETWORK_POLICY,
        ..NET
    },
    Resource {
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        definition: Some("io.k8s.api.discovery.v1.EndpointSlice"),
        storage: "endpointslices",
        strategy: crate::api::kinds::ENDPOINT_SLICE,
        ..group("discovery.k8s.io")
    },
    Resource {
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        definition: Some("io.k8s.api.coordination.v1.Lease"),
        storage: "leases",
        strategy: crate::api::kinds::LEASE,
        ..group("coordination.k8s.io")
    },
    Resource {
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        namespaced: false,
        definition: Some("io.k8s.api.rbac.v1.ClusterRoleBinding"),
        storage: "clusterrolebindings",
        strategy: crate::api::kinds::CLUSTER_ROLE_BINDING,
        ..RBAC
    },
    Resource {
        kind: "ClusterRole",
        plural: "clusterroles",
        singular: "clusterrole",
        namespaced: false,
        definition: Some("io.k8s.api.rbac.v1.ClusterRole"),
        storage: "clusterroles",
        strategy: crate::api::kinds::CLUSTER_ROLE,
        ..RBAC
    },
    Resource {
        kind: "RoleBinding",
        plural: "rolebindings",
        singular: "rolebinding",
        definition: Some("io.k8s.api.rbac.v1.RoleBinding"),
        storage: "rolebindings",
        strategy: crate::api::kinds::ROLE_BINDING,
        ..RBAC
    },
    Resource {
        kind: "Role",
        plural: "roles",
        singular: "role",
        definition: Some("io.k8s.api.rbac.v1.Role"),
        storage: "roles",
        strategy: crate::api::kinds::ROLE,
        ..RBAC
    },
    Resource {
        kind: "CSIDriver",
        plural: "csidrivers",
        singular: "csidriver",
        definition: Some("io.k8s.api.storage.v1.CSIDriver"),
        storage: "csidrivers",
        ..STORAGE
    },
    Resource {
        kind: "StorageClass",
        plural: "storageclasses",
        singular: "storageclass",
        short_names: &["sc"],
        definition: Some("io.k8s.api.storage.v1.StorageClass"),
        storage: "storageclasses",
        strategy: crate::api::kinds::STORAGE_CLASS,
        ..STORAGE
    },
    Resource {
        kind: "VolumeAttachment",
        plural: "volumeattachments",
        singular: "volumeattachment",
        subresources: &[status("storage.k8s.io", "v1", "VolumeAttachment")],
        definition: Some("io.k8s.api.storage.v1.VolumeAttachment"),
        storage: "volumeattachments",
        ..STORAGE
    },
    Resource {
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        short_names: &["pdb"],
        subresources: &[status("policy", "v1", "PodDisruptionBudget")],
        definition: Some("io.k8s.api.policy.v1.PodDisruptionBudget"),
        storage: "poddisruptionbudgets",
        strategy: crate::api::kinds::POD_DISRUPTION_BUDGET,
        ..group("policy")
    },
    Resource {
        kind: "PriorityClass",
        plural: "priorityclasses",
        singular: "priorityclass",
        short_names: &["pc"],
        namespaced: false,
        definition: Some("io.k8s.api.scheduling.v1.PriorityClass"),
        storage: "priorityclasses",
        strategy: crate::api::kinds::PRIORITY_CLASS,
        ..group("scheduling.k8s.io")
    },
    Resource {
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        definition: Some("io.k8s.api.events.v1.Event"),
        storage: "events",
        strategy: crate::api::convert::EVENTS_V1,
        ..group("events.k8s.io")
    },
    Resource {
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        namespaced: false,
        subresources: &[status(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )],
        definition: Some(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
        storage: "apiextensions.k8s.io/customresourcedefinitions",
        strategy: Strategy::SPEC,
        ..group("apiextensions.k8s.io")
    },
    Resource {
        kind: "MutatingWebhookConfiguration",
        plural: "mutatingwebhookconfigurations",
        singular: "mutatingwebhookconfiguration",
        categories: &["api-extensions"],
        namespaced: false,
        definition: Some("io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration"),
        storage: "mutatingwebhookconfigurations",
        strategy: crate::api::kinds::MUTATING_WEBHOOK_CONFIGURATION,
        ..group("admissionregistration.k8s.io")
    },
    Resource {
        kind: "ValidatingWebhookConfiguration",
        plural: "validatingwebhookconfigurations",
        singular: "validatingwebhookconfiguration",
        categories: &["api-extensions"],
        namespaced: false,
        definition: Some("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration"),
        storage: "validatingwebhookconfigurations",
        strategy: crate::api::kinds::VALIDATING_WEBHOOK_CONFIGURATION,
        ..group("admissionregistration.k8s.io")
    },
    // Answered from the token authenticator, never stored (verbs/token.rs).
    Resource {
        kind: "TokenReview",
        plural: "tokenreviews",
        singular: "tokenreview",
        namespaced: false,
        verbs: &["create"],
        definition: Some("io.k8s.api.authentication.v1.TokenReview"),
        storage: "authentication.k8s.io/tokenreviews",
        ..group("authentication.k8s.io")
    },
    // Answered from the authorizer chain, never stored (verbs/review.rs).
    Resource {
        kind: "SelfSubjectReview",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        namespaced: false,
        verbs: &["create"],
        definition: Some("io.k8s.api.authentication.v1.SelfSubjectReview"),
        storage: "authentication.k8s.io/selfsubjectreviews",
        ..group("authentication.k8s.io")
    },
    // kubectl 1.27 asks v1beta1 (no schema: k8s-openapi has only v1).
    Resource {
        kind: "SelfSubjectReview",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        namespaced: false,
        version: "v1beta1",
        verbs: &["create"],
        storage: "authentication.k8s.io/selfsubjectreviews",
        ..group("authentication.k8s.io")
    },
    Resource {
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        verbs: &["create"],
        definition: Some("io.k8s.api.authorization.v1.SelfSubjectAccessReview"),
        storage: "authorization.k8s.io/selfsubjectaccessreviews",
        ..group("authorization.k8s.io")
    },
    Resource {
        kind: "SubjectAccessReview",
        plural: "subjectaccessreviews",
        singular: "subjectaccessreview",
        namespaced: false,
        verbs: &["create"],
        definition: Some("io.k8s.api.authorization.v1.SubjectAccessReview"),
        storage: "authorization.k8s.io/subjectaccessreviews",
        ..group("authorization.k8s.io")
    },
    Resource {
        kind: "LocalSubjectAccessReview",
        plural: "localsubjectaccessreviews",
        singular: "localsubjectaccessreview",
        verbs: &["create"],
        definition: Some("io.k8s.api.authorization.v1.LocalSubjectAccessReview"),
        storage: "authorization.k8s.io/localsubjectaccessreviews",
        ..group("authorization.k8s.io")
    },
    Resource {
        kind: "SelfSubjectRulesReview",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        namespaced: false,
        verbs: &["create"],
        definition: Some("io.k8s.api.authorization.v1.SelfSubjectRulesReview"),
        storage: "authorization.k8s.io/selfsubjectrulesreviews",
        ..group("authorization.k8s.io")
    },
];
