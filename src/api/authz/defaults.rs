//! The default ClusterRoles and bindings every cluster starts with
//! (upstream's bootstrap policy, the roles nanokube serves), plus the role
//! of the agents' shared identity `nanokube:agent`. Created when missing at
//! start; existing ones are left to their owners.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::{Api, WriteOptions};

const GET: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const CREATE: &[&str] = &["create"];
const EVENTS: &[&str] = &["create", "patch", "update"];

/// A resource rule.
fn r(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// A non-resource rule.
fn u(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

fn aggregate_to(which: &str) -> Value {
    json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{which}"): "true"}}
    ]})
}

fn metadata(name: &str, extra_label: Option<&str>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(which) = extra_label {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{which}")] = json!("true");
    }
    json!({"name": name, "labels": labels,
           "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn cluster_role(name: &str, label: Option<&str>, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": metadata(name, label), "rules": rules})
}

fn aggregated(name: &str, label: Option<&str>, from: &str) -> Value {
    let mut role = cluster_role(name, label, Vec::new());
    role["aggregationRule"] = aggregate_to(from);
    role
}

/// The rules upstream's `system:node` has.
fn node_rules() -> Vec<Value> {
    vec![
        r(&["authentication.k8s.io"], &["tokenreviews"], CREATE),
        r(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews", "subjectaccessreviews"],
            CREATE,
        ),
        r(&[""], &["services"], GET),
        r(&[""], &["nodes"], &["create", "get", "list", "watch"]),
        r(&[""], &["nodes/status"], &["patch", "update"]),
        r(&[""], &["nodes"], &["patch", "update"]),
        r(&[""], &["events"], EVENTS),
        r(&[""], &["pods"], GET),
        r(&[""], &["pods"], &["create", "delete"]),
        r(&[""], &["pods/status"], &["patch", "update"]),
        r(&[""], &["pods/eviction"], CREATE),
        r(&[""], &["configmaps", "secrets"], GET),
        r(
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
            &["get"],
        ),
        r(&[""], &["endpoints"], &["get"]),
        r(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create", "get", "list", "watch"],
        ),
        r(
            &["coordination.k8s.io"],
            &["leases"],
            &["create", "delete", "get", "patch", "update"],
        ),
        r(&["storage.k8s.io"], &["volumeattachments"], &["get"]),
        r(&[""], &["serviceaccounts/token"], CREATE),
        r(
            &[""],
            &["persistentvolumeclaims/status"],
            &["get", "patch", "update"],
        ),
        r(&["storage.k8s.io"], &["csidrivers"], GET),
        r(
            &["storage.k8s.io"],
            &["csinodes"],
            &["create", "delete", "get", "patch", "update"],
        ),
        r(&["node.k8s.io"], &["runtimeclasses"], GET),
    ]
}

/// What agents joined with the shared token do for every node they run:
/// the node's rules cluster-wide, plus what hollow and remote agents (and
/// their service proxy and DNS) read and write.
fn agent_rules() -> Vec<Value> {
    let mut rules = node_rules();
    rules.extend([
        r(&[""], &["nodes", "nodes/status"], ALL),
        r(&["coordination.k8s.io"], &["leases"], ALL),
        r(&[""], &["pods"], ALL),
        r(&[""], &["pods/status"], &["get", "patch", "update"]),
        r(&["", "events.k8s.io"], &["events"], ALL),
        r(
            &[""],
            &[
                "secrets",
                "configmaps",
                "persistentvolumeclaims",
                "persistentvolumes",
                "namespaces",
                "serviceaccounts",
            ],
            GET,
        ),
        r(&[""], &["services", "endpoints"], GET),
        r(&["discovery.k8s.io"], &["endpointslices"], GET),
    ]);
    rules
}

fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            None,
            vec![r(&["*"], &["*"], &["*"]), u(&["*"], &["*"])],
        ),
        aggregated("admin", None, "admin"),
        aggregated("edit", Some("admin"), "edit"),
        aggregated("view", Some("edit"), "view"),
        cluster_role(
            "system:aggregate-to-admin",
            Some("admin"),
            vec![
                r(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    CREATE,
                ),
                r(
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                    ALL,
                ),
            ],
        ),
        cluster_role("system:aggregate-to-edit", Some("edit"), edit_rules()),
        cluster_role("system:aggregate-to-view", Some("view"), view_rules()),
        cluster_role(
            "system:auth-delegator",
            None,
            vec![
                r(&["authentication.k8s.io"], &["tokenreviews"], CREATE),
                r(&["authorization.k8s.io"], &["subjectaccessreviews"], CREATE),
            ],
        ),
        cluster_role(
            "system:basic-user",
            None,
            vec![
                r(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    CREATE,
                ),
                r(&["authentication.k8s.io"], &["selfsubjectreviews"], CREATE),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            None,
            vec![r(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
                CREATE,
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            None,
            vec![r(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
                CREATE,
            )],
        ),
        cluster_role(
            "system:discovery",
            None,
            vec![u(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:heapster",
            None,
            vec![
                r(&[""], &["events", "namespaces", "nodes", "pods"], GET),
                r(&["extensions"], &["deployments"], GET),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            None,
            vec![r(&[""], &["endpoints", "services"], &["list", "watch"])],
        ),
        cluster_role(
            "system:monitoring",
            None,
            vec![u(
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        cluster_role("system:node", None, node_rules()),
        cluster_role(
            "system:node-proxier",
            None,
            vec![
                r(&[""], &["endpoints", "services"], &["list", "watch"]),
                r(&[""], &["nodes"], GET),
                r(&["", "events.k8s.io"], &["events"], EVENTS),
                r(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["list", "watch"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            None,
            vec![u(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        cluster_role("nanokube:agent", None, agent_rules()),
        // Joining nodes obtain (and kubelets renew) their certificates at
        // nanokube's equivalent of upstream's CSR flow.
        cluster_role(
            "nanokube:node-credentials",
            None,
            vec![u(&["/nanokube/v1/node-credentials"], &["post"])],
        ),
        // What the in-process cluster DNS of every agent reads, as the
        // service proxy's `system:kube-proxy` (upstream's CoreDNS role).
        cluster_role(
            "nanokube:cluster-dns",
            None,
            vec![
                r(
                    &[""],
                    &["endpoints", "services", "pods", "namespaces", "nodes"],
                    GET,
                ),
                r(&["discovery.k8s.io"], &["endpointslices"], GET),
            ],
        ),
    ]
}

fn edit_rules() -> Vec<Value> {
    vec![
        r(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            GET,
        ),
        r(&[""], &["serviceaccounts"], &["impersonate"]),
        r(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            WRITE,
        ),
        r(&[""], &["pods/eviction"], CREATE),
        r(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        r(&[""], &["serviceaccounts/token"], CREATE),
        r(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        r(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        r(&["batch"], &["cronjobs", "jobs"], WRITE),
        r(
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
            WRITE,
        ),
        r(&["policy"], &["poddisruptionbudgets"], WRITE),
        r(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            WRITE,
        ),
        r(&["coordination.k8s.io"], &["leases"], ALL),
    ]
}

fn view_rules() -> Vec<Value> {
    vec![
        r(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            GET,
        ),
        r(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            GET,
        ),
        r(&[""], &["namespaces"], GET),
        r(&["discovery.k8s.io"], &["endpointslices"], GET),
        r(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            GET,
        ),
        r(
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
            GET,
        ),
        r(
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
            GET,
        ),
        r(
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
            GET,
        ),
        r(
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
            GET,
        ),
        r(
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
            GET,
        ),
    ]
}

/// (binding = role name, subjects as (kind, name, namespace)).
fn cluster_role_bindings() -> Vec<Value> {
    let bind = |role: &str, subjects: &[(&str, &str, &str)]| {
        let subjects: Vec<Value> = subjects
            .iter()
            .map(|(kind, name, ns)| {
                let mut s = json!({"kind": kind, "name": name});
                if ns.is_empty() {
                    s["apiGroup"] = json!("rbac.authorization.k8s.io");
                } else {
                    s["namespace"] = json!(ns);
                }
                s
            })
            .collect();
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": metadata(role, None),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects})
    };
    vec![
        bind("cluster-admin", &[("Group", "system:masters", "")]),
        bind(
            "system:basic-user",
            &[("Group", "system:authenticated", "")],
        ),
        bind("system:discovery", &[("Group", "system:authenticated", "")]),
        bind(
            "system:public-info-viewer",
            &[
                ("Group", "system:authenticated", ""),
                ("Group", "system:unauthenticated", ""),
            ],
        ),
        bind("system:monitoring", &[("Group", "system:monitoring", "")]),
        bind("system:node-proxier", &[("User", "system:kube-proxy", "")]),
        bind(
            "system:kube-dns",
            &[("ServiceAccount", "kube-dns", "kube-system")],
        ),
        bind("nanokube:agent", &[("User", "nanokube:agent", "")]),
        bind(
            "nanokube:node-credentials",
            &[
                ("Group", "system:nodes", ""),
                ("Group", "system:bootstrappers", ""),
            ],
        ),
        bind("nanokube:cluster-dns", &[("User", "system:kube-proxy", "")]),
    ]
}

impl Api {
    /// Creates the default ClusterRoles (aggregated ones with their rules
    /// already gathered, so they work before the aggregation controller
    /// runs) and ClusterRoleBindings that are missing.
    pub(crate) async fn bootstrap_rbac(&self) -> Result<(), ApiError> {
        let find = |plural| {
            self.registry()
                .find("rbac.authorization.k8s.io", "v1", plural)
                .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))
        };
        let roles_r = find("clusterroles")?;
        let bindings_r = find("clusterrolebindings")?;
        let opts = WriteOptions::default();
        let mut roles = cluster_roles();
        // Leaves first: view feeds edit, edit feeds admin.
        for name in ["view", "edit", "admin"] {
            let all: Vec<Arc<Value>> = roles.iter().cloned().map(Arc::new).collect();
            if let Some(role) = roles
                .iter_mut()
                .find(|r| r.pointer("/metadata/name") == Some(&json!(name)))
            {
                if let Some(rules) = super::rules::aggregate(role, &all) {
                    role["rules"] = Value::Array(rules);
                }
            }
        }
        let mut created = 0;
        for role in roles {
            created += created_or_exists(self.create(roles_r, None, role, &opts).await)?;
        }
        for binding in cluster_role_bindings() {
            created += created_or_exists(self.create(bindings_r, None, binding, &opts).await)?;
        }
        if created > 0 {
            tracing::info!(created, "created default rbac roles and bindings");
        }
        Ok(())
    }
}

fn created_or_exists(r: Result<Value, ApiError>) -> Result<usize, ApiError> {
    match r {
        Ok(_) => Ok(1),
        Err(ApiError::AlreadyExists { .. }) => Ok(0),
        Err(e) => Err(e),
    }
}
