//! Per-kind strategies: upstream's defaulting (`SetDefaults_*`), create
//! preparation (`PrepareForCreate`) and validation, including what an
//! update may not change. Each kind's [`Strategy`] is a constant here; the
//! registry entries point at them. Bodies are raw JSON from clients, so
//! nothing here panics on wrong types: defaults skip what they cannot
//! read and validation reports it.

mod admissionregistration;
mod apps;
mod batch;
mod config;
mod container;
mod core;
mod cron;
mod json;
mod network;
mod pod;
mod podcheck;
mod podspec;
mod policy;
mod rbac;
mod rules;
mod service;

pub(super) use service::headless_without_selector;
mod statefulset;
mod storage;

use crate::api::registry::Strategy;

// core/v1

pub const POD: Strategy = Strategy {
    defaults: pod::defaults,
    prepare_create: pod::prepare_create,
    validate: pod::validate,
    validate_update: pod::validate_update,
    ..Strategy::PLAIN
};

pub const POD_TEMPLATE: Strategy = Strategy {
    defaults: core::podtemplate_defaults,
    validate: core::podtemplate_validate,
    ..Strategy::PLAIN
};

pub const REPLICATION_CONTROLLER: Strategy = Strategy {
    defaults: core::rc_defaults,
    validate: core::rc_validate,
    ..Strategy::SPEC
};

pub const SERVICE: Strategy = Strategy {
    defaults: service::defaults,
    prepare_create: service::prepare_create,
    validate: service::validate,
    ..Strategy::PLAIN
};

pub const NAMESPACE: Strategy = Strategy {
    defaults: core::namespace_defaults,
    prepare_create: core::namespace_prepare_create,
    validate: core::namespace_validate,
    ..Strategy::PLAIN
};

pub const SECRET: Strategy = Strategy {
    defaults: config::secret_defaults,
    validate: config::secret_validate,
    validate_update: config::secret_validate_update,
    ..Strategy::PLAIN
};

pub const CONFIG_MAP: Strategy = Strategy {
    validate: config::configmap_validate,
    validate_update: config::configmap_validate_update,
    ..Strategy::PLAIN
};

pub const NODE: Strategy = Strategy {
    defaults: core::node_defaults,
    ..Strategy::PLAIN
};

pub const ENDPOINTS: Strategy = Strategy {
    defaults: core::endpoints_defaults,
    validate: core::endpoints_validate,
    ..Strategy::PLAIN
};

pub const RESOURCE_QUOTA: Strategy = Strategy {
    prepare_create: core::quota_prepare_create,
    validate: core::quota_validate,
    ..Strategy::PLAIN
};

pub const LIMIT_RANGE: Strategy = Strategy {
    defaults: core::limitrange_defaults,
    validate: core::limitrange_validate,
    ..Strategy::PLAIN
};

pub const PERSISTENT_VOLUME_CLAIM: Strategy = Strategy {
    defaults: storage::pvc_defaults,
    validate: storage::pvc_validate,
    validate_update: storage::pvc_validate_update,
    ..Strategy::PLAIN
};

pub const PERSISTENT_VOLUME: Strategy = Strategy {
    defaults: storage::pv_defaults,
    validate: storage::pv_validate,
    validate_update: storage::pv_validate_update,
    ..Strategy::PLAIN
};

// apps/v1, batch/v1, autoscaling/v2

pub const DEPLOYMENT: Strategy = Strategy {
    defaults: apps::deployment_defaults,
    validate: apps::deployment_validate,
    validate_update: apps::selector_immutable,
    ..Strategy::SPEC
};

pub const REPLICA_SET: Strategy = Strategy {
    defaults: apps::replicaset_defaults,
    validate: apps::replicaset_validate,
    validate_update: apps::selector_immutable,
    ..Strategy::SPEC
};

pub const DAEMON_SET: Strategy = Strategy {
    defaults: apps::daemonset_defaults,
    validate: apps::daemonset_validate,
    validate_update: apps::selector_immutable,
    ..Strategy::SPEC
};

pub const STATEFUL_SET: Strategy = Strategy {
    defaults: statefulset::defaults,
    validate: statefulset::validate,
    validate_update: statefulset::validate_update,
    ..Strategy::SPEC
};

/// Jobs: `prepare_create` generates the selector from `metadata.uid`,
/// which the create path assigns before calling it.
pub const JOB: Strategy = Strategy {
    defaults: batch::job_defaults,
    prepare_create: batch::job_prepare_create,
    validate: batch::job_validate,
    validate_update: batch::job_validate_update,
    ..Strategy::SPEC
};

pub const CRON_JOB: Strategy = Strategy {
    defaults: cron::cronjob_defaults,
    validate: cron::cronjob_validate,
    ..Strategy::SPEC
};

pub const HORIZONTAL_POD_AUTOSCALER: Strategy = Strategy {
    defaults: policy::hpa_defaults,
    validate: policy::hpa_validate,
    ..Strategy::SPEC
};

// networking, discovery, coordination

pub const INGRESS: Strategy = Strategy {
    validate: network::ingress_validate,
    ..Strategy::SPEC
};

pub const INGRESS_CLASS: Strategy = Strategy {
    validate: network::ingressclass_validate,
    validate_update: network::ingressclass_validate_update,
    ..Strategy::SPEC
};

pub const NETWORK_POLICY: Strategy = Strategy {
    defaults: network::networkpolicy_defaults,
    validate: network::networkpolicy_validate,
    ..Strategy::SPEC
};

pub const ENDPOINT_SLICE: Strategy = Strategy {
    defaults: network::endpointslice_defaults,
    validate: network::endpointslice_validate,
    validate_update: network::endpointslice_validate_update,
    ..Strategy::SPEC
};

pub const LEASE: Strategy = Strategy {
    validate: policy::lease_validate,
    ..Strategy::PLAIN
};

// rbac, storage, scheduling, policy

pub const ROLE: Strategy = Strategy {
    validate: rbac::role_validate,
    ..Strategy::PLAIN
};

pub const CLUSTER_ROLE: Strategy = Strategy {
    validate: rbac::clusterrole_validate,
    ..Strategy::PLAIN
};

pub const ROLE_BINDING: Strategy = Strategy {
    defaults: rbac::binding_defaults,
    validate: rbac::rolebinding_validate,
    validate_update: rbac::binding_validate_update,
    ..Strategy::PLAIN
};

pub const CLUSTER_ROLE_BINDING: Strategy = Strategy {
    defaults: rbac::binding_defaults,
    validate: rbac::clusterrolebinding_validate,
    validate_update: rbac::binding_validate_update,
    ..Strategy::PLAIN
};

pub const STORAGE_CLASS: Strategy = Strategy {
    defaults: storage::storageclass_defaults,
    validate: storage::storageclass_validate,
    validate_update: storage::storageclass_validate_update,
    ..Strategy::PLAIN
};

pub const PRIORITY_CLASS: Strategy = Strategy {
    defaults: policy::priorityclass_defaults,
    validate: policy::priorityclass_validate,
    validate_update: policy::priorityclass_validate_update,
    ..Strategy::PLAIN
};

pub const POD_DISRUPTION_BUDGET: Strategy = Strategy {
    validate: policy::pdb_validate,
    ..Strategy::SPEC
};

// admissionregistration.k8s.io/v1

pub const MUTATING_WEBHOOK_CONFIGURATION: Strategy = Strategy {
    defaults: admissionregistration::mutating_defaults,
    validate: admissionregistration::mutating_validate,
    ..Strategy::PLAIN
};

pub const VALIDATING_WEBHOOK_CONFIGURATION: Strategy = Strategy {
    defaults: admissionregistration::validating_defaults,
    validate: admissionregistration::validating_validate,
    ..Strategy::PLAIN
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const ALL: &[Strategy] = &[
        POD,
        POD_TEMPLATE,
        REPLICATION_CONTROLLER,
        SERVICE,
        NAMESPACE,
        SECRET,
        CONFIG_MAP,
        NODE,
        ENDPOINTS,
        RESOURCE_QUOTA,
        LIMIT_RANGE,
        PERSISTENT_VOLUME_CLAIM,
        PERSISTENT_VOLUME,
        DEPLOYMENT,
        REPLICA_SET,
        DAEMON_SET,
        STATEFUL_SET,
        JOB,
        CRON_JOB,
        HORIZONTAL_POD_AUTOSCALER,
        INGRESS,
        INGRESS_CLASS,
        NETWORK_POLICY,
        ENDPOINT_SLICE,
        LEASE,
        ROLE,
        CLUSTER_ROLE,
        ROLE_BINDING,
        CLUSTER_ROLE_BINDING,
        STORAGE_CLASS,
        PRIORITY_CLASS,
        POD_DISRUPTION_BUDGET,
    ];

    /// Bodies of every wrong shape, at every level the strategies read.
    fn junk() -> Vec<Value> {
        let shapes = [
            json!(null),
            json!(1),
            json!("x"),
            json!([1, null, "x"]),
            json!({"a": []}),
            json!(true),
        ];
        let mut out: Vec<Value> = shapes.to_vec();
        for s in &shapes {
            out.push(json!({"metadata": s, "spec": s, "status": s, "data": s, "rules": s, "template": s}));
            out.push(
                json!({"spec": {"template": {"spec": s, "metadata": s}, "selector": s, "ports": s,
                "containers": s, "jobTemplate": s, "strategy": s, "updateStrategy": s}}),
            );
            out.push(json!({"spec": {"template": {"spec": {"containers": [s], "volumes": [s], "tolerations": s}}}}));
        }
        out
    }

    #[test]
    fn no_strategy_panics_on_junk() {
        for s in ALL {
            for body in junk() {
                let mut j = body.clone();
                (s.defaults)(&mut j);
                (s.prepare_create)(&mut j);
                (s.validate)(&j);
                (s.validate_update)(&j, &body);
                (s.validate_update)(&body, &j);
            }
        }
    }

    #[test]
    fn a_minimal_deployment_round_trips_clean() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        (DEPLOYMENT.defaults)(&mut d);
        (DEPLOYMENT.prepare_create)(&mut d);
        assert!((DEPLOYMENT.validate)(&d).is_empty());
        let again = d.clone();
        (DEPLOYMENT.defaults)(&mut d);
        assert_eq!(d, again, "defaults are idempotent");
        assert!((DEPLOYMENT.validate_update)(&d, &again).is_empty());
    }
}
