//! The per-subject RBAC index: user, group and service account → the
//! rules bound to them, with the namespace a RoleBinding limits them to.
//! Built from the watch caches of the four RBAC kinds and rebuilt only
//! when one of them changed, so a request costs four revision reads and
//! a few hash lookups.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::rules::Rule;
use super::UserInfo;
use crate::api::Api;

/// The storages the index is derived from, in a fixed order.
const STORAGES: [&str; 4] = [
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

/// Rules bound to a subject, in one namespace or cluster-wide.
#[derive(Debug)]
pub struct Grant {
    /// `None` for a ClusterRoleBinding (every namespace and cluster scope).
    pub namespace: Option<String>,
    pub rules: Arc<Vec<Rule>>,
}

#[derive(Debug, Default)]
pub struct Index {
    users: HashMap<String, Vec<Grant>>,
    groups: HashMap<String, Vec<Grant>>,
}

impl Index {
    /// Every grant that applies to `user`.
    pub fn grants<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = &'a Grant> + 'a {
        let own = self.users.get(&user.name).into_iter().flatten();
        let groups = user
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten();
        own.chain(groups)
    }

    fn build(objects: [Vec<Arc<Value>>; 4]) -> Index {
        let [roles, cluster_roles, bindings, cluster_bindings] = objects;
        let key = |o: &Value| {
            let m = o.get("metadata");
            let get = |k| {
                m.and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            (get("namespace").to_string(), get("name").to_string())
        };
        let roles: HashMap<(String, String), Arc<Vec<Rule>>> = roles
            .iter()
            .map(|r| (key(r), Arc::new(Rule::all_of(r))))
            .collect();
        let cluster_roles: HashMap<String, Arc<Vec<Rule>>> = cluster_roles
            .iter()
            .map(|r| (key(r).1, Arc::new(Rule::all_of(r))))
            .collect();
        let mut index = Index::default();
        let all = bindings
            .iter()
            .map(|b| (b, false))
            .chain(cluster_bindings.iter().map(|b| (b, true)));
        for (binding, cluster) in all {
            let (ns, _) = key(binding);
            let role_ref = binding.get("roleRef");
            let text = |k| {
                role_ref
                    .and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let rules = match text("kind") {
                "ClusterRole" => cluster_roles.get(text("name")),
                "Role" if !cluster => roles.get(&(ns.clone(), text("name").to_string())),
                _ => None,
            };
            let Some(rules) = rules else { continue };
            let namespace = (!cluster).then(|| ns.clone());
            let subjects = binding.get("subjects").and_then(Value::as_array);
            for s in subjects.into_iter().flatten() {
                let field = |k| s.get(k).and_then(Value::as_str).unwrap_or("");
                let (map, name) = match field("kind") {
                    "User" => (&mut index.users, field("name").to_string()),
                    "Group" => (&mut index.groups, field("name").to_string()),
                    "ServiceAccount" => {
                        // The binding's namespace when the subject has none.
                        let sa_ns = match field("namespace") {
                            "" => ns.as_str(),
                            n => n,
                        };
                        if sa_ns.is_empty() {
                            continue;
                        }
                        let user = format!("system:serviceaccount:{sa_ns}:{}", field("name"));
                        (&mut index.users, user)
                    }
                    _ => continue,
                };
                map.entry(name).or_default().push(Grant {
                    namespace: namespace.clone(),
                    rules: rules.clone(),
                });
            }
        }
        index
    }
}

/// The current index and the cache revisions it reflects.
#[derive(Default)]
pub struct Holder {
    current: RwLock<Option<([i64; 4], Arc<Index>)>>,
}

impl Holder {
    /// The index for the caches as they are now, rebuilt if any changed.
    pub fn get(&self, api: &Api) -> Arc<Index> {
        let caches = STORAGES.map(|s| api.store.cache(s));
        let revisions = caches
            .each_ref()
            .map(|c| c.as_ref().map(|c| c.last_applied()).unwrap_or(-1));
        if let Some((at, index)) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if *at == revisions {
                return index.clone();
            }
        }
        let objects = caches.map(|c| {
            c.map(|c| {
                c.snapshot(None, None, 0)
                    .0
                    .into_iter()
                    .map(|s| s.object)
                    .collect()
            })
            .unwrap_or_default()
        });
        let index = Arc::new(Index::build(objects));
        tracing::debug!(?revisions, "rbac index rebuilt");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((revisions, index.clone()));
        index
    }
}
