//! RBAC: Roles, ClusterRoles and their bindings from the watch cache,
//! through the per-subject index (`index.rs`). Nothing matching is no
//! opinion (the chain then refuses), as upstream.

use super::index::Grant;
use super::rules::Rule;
use super::{Attributes, Decision, UserInfo};
use crate::api::Api;

/// Whether a grant applies to a request in `namespace` ("" = cluster
/// scope): cluster bindings everywhere, role bindings in their namespace.
fn applies(grant: &Grant, namespace: &str) -> bool {
    grant.namespace.as_deref().is_none_or(|ns| ns == namespace)
}

pub(super) async fn decide(api: &Api, attrs: &Attributes) -> Decision {
    let index = api.authz.rbac.get(api);
    let allowed = index
        .grants(&attrs.user)
        .filter(|g| applies(g, &attrs.namespace))
        .any(|g| g.rules.iter().any(|r| r.allows(attrs)));
    if allowed {
        Decision::Allow
    } else {
        Decision::NoOpinion(String::new())
    }
}

/// Every rule `user` holds in `namespace` ("" = cluster-wide rules only),
/// in binding order (upstream `RulesFor`).
pub(super) fn rules_for(api: &Api, user: &UserInfo, namespace: &str) -> Vec<Rule> {
    let index = api.authz.rbac.get(api);
    index
        .grants(user)
        .filter(|g| applies(g, namespace))
        .flat_map(|g| g.rules.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::api::{ServiceNetwork, WriteOptions};
    use crate::datastore::{SqliteBackend, SqliteOptions};

    fn user(name: &str, groups: &[&str]) -> Arc<UserInfo> {
        Arc::new(UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        })
    }

    fn attrs(user: &Arc<UserInfo>, verb: &str, ns: &str, resource: &str) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            resource: resource.into(),
            ..Attributes::default()
        }
    }

    #[tokio::test]
    async fn bindings_decide_and_the_index_is_rebuilt_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
        let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
            .await
            .unwrap();
        api.bootstrap("127.0.0.1".parse().unwrap(), 6443)
            .await
            .unwrap();
        let r = |plural| {
            api.registry()
                .find("rbac.authorization.k8s.io", "v1", plural)
                .unwrap()
        };
        // The caches follow the datastore: read back what bootstrap wrote.
        api.get(r("clusterrolebindings"), None, "cluster-admin")
            .await
            .unwrap();
        let admin = user("root", &["system:masters", "system:authenticated"]);
        assert_eq!(
            decide(&api, &attrs(&admin, "delete", "", "nodes")).await,
            Decision::Allow
        );
        let first = api.authz.rbac.get(&api);
        assert!(Arc::ptr_eq(&first, &api.authz.rbac.get(&api)));

        let alice = user("alice", &["system:authenticated"]);
        let get = attrs(&alice, "get", "a", "pods");
        assert_eq!(decide(&api, &get).await, Decision::NoOpinion(String::new()));
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "alice-view", "namespace": "a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        let opts = WriteOptions::default();
        let namespaces = api.registry().find("", "v1", "namespaces").unwrap();
        api.create(namespaces, None, ns, &opts).await.unwrap();
        api.create(r("rolebindings"), Some("a"), binding, &opts)
            .await
            .unwrap();
        api.get(r("rolebindings"), Some("a"), "alice-view")
            .await
            .unwrap();
        assert_eq!(decide(&api, &get).await, Decision::Allow);
        assert!(!Arc::ptr_eq(&first, &api.authz.rbac.get(&api)));
        // Only in its namespace, and only what view grants.
        assert_ne!(
            decide(&api, &attrs(&alice, "get", "b", "pods")).await,
            Decision::Allow
        );
        assert_ne!(
            decide(&api, &attrs(&alice, "delete", "a", "pods")).await,
            Decision::Allow
        );
        assert_ne!(
            decide(&api, &attrs(&alice, "get", "a", "secrets")).await,
            Decision::Allow
        );
        // The basics every authenticated user holds, cluster-wide.
        let rules = rules_for(&api, &alice, "b");
        assert!(rules
            .iter()
            .any(|r| r.resources == ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]));
        assert!(rules
            .iter()
            .all(|r| !r.resources.contains(&"pods".to_string())));
    }
}
