//! core/v1 kinds.

use super::{Resource, Strategy, Subresource, RW};
use crate::api::validation::NameRule;

pub(super) const BASE: Resource = Resource {
    group: "",
    version: "v1",
    kind: "",
    plural: "",
    singular: "",
    short_names: &[],
    categories: &[],
    namespaced: true,
    verbs: RW,
    subresources: &[],
    definition: None,
    storage: "",
    name_rule: NameRule::Dns1123Subdomain,
    strategy: Strategy::PLAIN,
    custom: None,
};

/// Verbs of a `status` subresource.
pub(super) const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

pub(super) const fn status(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}

pub(super) const fn scale(name: &'static str) -> Subresource {
    Subresource {
        name,
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: STATUS_VERBS,
    }
}

const fn stream(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "v1",
        kind,
        verbs,
    }
}

const GET_CREATE: &[&str] = &["create", "get"];

pub(super) static RESOURCES: &[Resource] = &[
    Resource {
        kind: "Binding",
        plural: "bindings",
        singular: "binding",
        verbs: &["create"],
        definition: Some("io.k8s.api.core.v1.Binding"),
        storage: "bindings",
        ..BASE
    },
    Resource {
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        definition: Some("io.k8s.api.core.v1.ConfigMap"),
        storage: "configmaps",
        strategy: crate::api::kinds::CONFIG_MAP,
        ..BASE
    },
    Resource {
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        definition: Some("io.k8s.api.core.v1.Endpoints"),
        storage: "services/endpoints",
        strategy: crate::api::kinds::ENDPOINTS,
        ..BASE
    },
    Resource {
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        definition: Some("io.k8s.api.core.v1.Event"),
        storage: "events",
        ..BASE
    },
    Resource {
        kind: "LimitRange",
        plural: "limitranges",
        singular: "limitrange",
        short_names: &["limits"],
        definition: Some("io.k8s.api.core.v1.LimitRange"),
        storage: "limitranges",
        strategy: crate::api::kinds::LIMIT_RANGE,
        ..BASE
    },
    Resource {
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        short_names: &["ns"],
        namespaced: false,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[
            Subresource {
                name: "finalize",
                group: "",
                version: "v1",
                kind: "Namespace",
                verbs: &["update"],
            },
            status("", "v1", "Namespace"),
        ],
        definition: Some("io.k8s.api.core.v1.Namespace"),
        storage: "namespaces",
        name_rule: NameRule::Dns1123Label,
        strategy: crate::api::kinds::NAMESPACE,
        ..BASE
    },
    Resource {
        kind: "Node",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        namespaced: false,
        subresources: &[status("", "v1", "Node")],
        definition: Some("io.k8s.api.core.v1.Node"),
        storage: "minions",
        strategy: crate::api::kinds::NODE,
        ..BASE
    },
    Resource {
        kind: "PersistentVolumeClaim",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        short_names: &["pvc"],
        subresources: &[status("", "v1", "PersistentVolumeClaim")],
        definition: Some("io.k8s.api.core.v1.PersistentVolumeClaim"),
        storage: "persistentvolumeclaims",
        strategy: crate::api::kinds::PERSISTENT_VOLUME_CLAIM,
        ..BASE
    },
    Resource {
        kind: "PersistentVolume",
        plural: "persistentvolumes",
        singular: "persistentvolume",
        short_names: &["pv"],
        namespaced: false,
        subresources: &[status("", "v1", "PersistentVolume")],
        definition: Some("io.k8s.api.core.v1.PersistentVolume"),
        storage: "persistentvolumes",
        strategy: crate::api::kinds::PERSISTENT_VOLUME,
        ..BASE
    },
    Resource {
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            stream("attach", "PodAttachOptions", GET_CREATE),
            stream("binding", "Binding", &["create"]),
            Subresource {
                name: "ephemeralcontainers",
                group: "",
                version: "v1",
                kind: "Pod",
                verbs: STATUS_VERBS,
            },
            Subresource {
                name: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            stream("exec", "PodExecOptions", GET_CREATE),
            stream("log", "Pod", &["get"]),
            stream("portforward", "PodPortForwardOptions", GET_CREATE),
            status("", "v1", "Pod"),
        ],
        definition: Some("io.k8s.api.core.v1.Pod"),
        storage: "pods",
        strategy: crate::api::kinds::POD,
        ..BASE
    },
    Resource {
        kind: "PodTemplate",
        plural: "podtemplates",
        singular: "podtemplate",
        definition: Some("io.k8s.api.core.v1.PodTemplate"),
        storage: "podtemplates",
        strategy: crate::api::kinds::POD_TEMPLATE,
        ..BASE
    },
    Resource {
        kind: "ReplicationController",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        short_names: &["rc"],
        categories: &["all"],
        subresources: &[scale("scale"), status("", "v1", "ReplicationController")],
        definition: Some("io.k8s.api.core.v1.ReplicationController"),
        storage: "controllers",
        strategy: crate::api::kinds::REPLICATION_CONTROLLER,
        ..BASE
    },
    Resource {
        kind: "ResourceQuota",
        plural: "resourcequotas",
        singular: "resourcequota",
        short_names: &["quota"],
        subresources: &[status("", "v1", "ResourceQuota")],
        definition: Some("io.k8s.api.core.v1.ResourceQuota"),
        storage: "resourcequotas",
        strategy: crate::api::kinds::RESOURCE_QUOTA,
        ..BASE
    },
    Resource {
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        definition: Some("io.k8s.api.core.v1.Secret"),
        storage: "secrets",
        strategy: crate::api::kinds::SECRET,
        ..BASE
    },
    Resource {
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        short_names: &["sa"],
        subresources: &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"],
        }],
        definition: Some("io.k8s.api.core.v1.ServiceAccount"),
        storage: "serviceaccounts",
        ..BASE
    },
    Resource {
        kind: "Service",
        plural: "services",
        singular: "service",
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[status("", "v1", "Service")],
        definition: Some("io.k8s.api.core.v1.Service"),
        storage: "services/specs",
        name_rule: NameRule::Dns1035Label,
        strategy: crate::api::kinds::SERVICE,
        ..BASE
    },
];
