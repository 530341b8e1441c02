//! The ClusterRole aggregation controller: a ClusterRole with an
//! `aggregationRule` gets as rules the union of the rules of every other
//! ClusterRole its selectors match (upstream's ordering: selector by
//! selector, roles by name, duplicates dropped), kept current as roles
//! come, change and go.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::authz::aggregate_rules;
use crate::api::ListOptions;
use crate::client::{Client, Local, ResourceId};

fn cluster_roles() -> ResourceId {
    ResourceId::new("rbac.authorization.k8s.io", "v1", "clusterroles")
}

fn name(role: &Value) -> &str {
    role.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn aggregates(role: &Value) -> bool {
    role.get("aggregationRule").is_some_and(|a| !a.is_null())
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        // Any role may feed any aggregated one: every change re-checks them all.
        let mut aggregated: BTreeSet<String> = BTreeSet::new();
        runtime::watch(
            ctx.client.clone(),
            cluster_roles(),
            None,
            move |change, role| {
                let n = name(role).to_string();
                if change != Change::Deleted && aggregates(role) {
                    aggregated.insert(n);
                } else {
                    aggregated.remove(&n);
                }
                for n in &aggregated {
                    q.add(ObjectKey::new("", n));
                }
            },
        );
    }
    let controller = Arc::new(Aggregation {
        client: ctx.client.clone(),
    });
    runtime::run("clusterrole-aggregation", queue, controller, 1);
}

struct Aggregation {
    client: Local,
}

impl Reconciler for Aggregation {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let res = cluster_roles();
        let role = match self.client.get(&res, None, &key.name).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let all = self.client.list(&res, None, &opts).await?.items;
        let Some(rules) = aggregate_rules(&role, &all) else {
            return Ok(Action::Done);
        };
        let rules = Value::Array(rules);
        if role.get("rules") == Some(&rules) {
            return Ok(Action::Done);
        }
        let mut updated = (*role).clone();
        updated["rules"] = rules;
        match self
            .client
            .update(&res, None, &key.name, updated, None)
            .await
        {
            Ok(_) => {
                tracing::info!(clusterrole = %key.name, "aggregated clusterrole rules updated");
                Ok(Action::Done)
            }
            Err(e) if e.is_not_found() => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
