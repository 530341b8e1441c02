//! The dependency graph of the garbage collector (upstream GraphBuilder):
//! one node per object uid with its owner references and its dependents.
//! Owners referenced before they are observed are "virtual" nodes, to be
//! verified against the API. Every change reports which uids the workers
//! must look at.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::api::meta;
use crate::controllers::objects;

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";
/// Known-absent owners kept at most (uids never come back; the cap bounds memory).
const ABSENT_CAP: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    pub fn parse(r: &Value) -> Option<OwnerRef> {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let uid = s("uid");
        if uid.is_empty() {
            return None;
        }
        Some(OwnerRef {
            uid,
            api_version: s("apiVersion"),
            kind: s("kind"),
            name: s("name"),
            block_owner_deletion: r.get("blockOwnerDeletion").and_then(Value::as_bool)
                == Some(true),
        })
    }
}

/// Where an object is found: its kind and coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub identity: Identity,
    /// The watched collection that reported the object; None while virtual.
    pub source: Option<usize>,
    pub owners: Vec<OwnerRef>,
    pub dependents: HashSet<String>,
    pub being_deleted: bool,
    /// Deleting with the `foregroundDeletion` finalizer.
    pub deleting_dependents: bool,
    /// Deleting with the `orphan` finalizer.
    pub orphaning: bool,
}

impl Node {
    pub fn is_virtual(&self) -> bool {
        self.source.is_none()
    }
}

/// Uids the workers must look at after a change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub attempt_delete: Vec<String>,
    pub attempt_orphan: Vec<String>,
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    absent: HashSet<String>,
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the owner with `uid` is known to be gone.
    pub fn is_absent(&self, uid: &str) -> bool {
        self.absent.contains(uid)
    }

    pub fn mark_absent(&mut self, uid: &str) {
        if self.absent.len() >= ABSENT_CAP {
            self.absent.clear();
        }
        self.absent.insert(uid.to_string());
    }

    pub fn dependents(&self, uid: &str) -> Vec<String> {
        self.nodes
            .get(uid)
            .map(|n| n.dependents.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Dependents whose reference to `uid` blocks its foreground deletion.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<String> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter(|d| {
                self.nodes.get(*d).is_some_and(|dep| {
                    dep.owners
                        .iter()
                        .any(|o| o.uid == uid && o.block_owner_deletion)
                })
            })
            .cloned()
            .collect()
    }

    /// An object seen by the watch of collection `source` (typed as
    /// `api_version`/`kind`): added or changed.
    pub fn upsert(
        &mut self,
        source: usize,
        api_version: &str,
        kind: &str,
        obj: &Value,
        fx: &mut Effects,
    ) {
        let uid = objects::uid(obj);
        if uid.is_empty() {
            return;
        }
        let identity = Identity {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: objects::namespace(obj).to_string(),
            name: objects::name(obj).to_string(),
        };
        let owners: Vec<OwnerRef> = objects::owner_references(obj)
            .iter()
            .filter_map(OwnerRef::parse)
            .collect();
        let being_deleted = objects::is_deleting(obj);
        let finalizers = meta::finalizers(obj);
        let orphaning = being_deleted && finalizers.iter().any(|f| f == ORPHAN);
        let deleting_dependents = being_deleted && finalizers.iter().any(|f| f == FOREGROUND);

        let (old_owners, was_orphaning, was_deleting_dependents) = match self.nodes.get_mut(uid) {
            Some(node) => {
                let old = std::mem::replace(&mut node.owners, owners.clone());
                let flags = (node.orphaning, node.deleting_dependents);
                node.identity = identity;
                node.source = Some(source);
                node.being_deleted = being_deleted;
                node.orphaning = orphaning;
                node.deleting_dependents = deleting_dependents;
                (old, flags.0, flags.1)
            }
            None => {
                self.nodes.insert(
                    uid.to_string(),
                    Node {
                        identity,
                        source: Some(source),
                        owners: owners.clone(),
                        dependents: HashSet::new(),
                        being_deleted,
                        deleting_dependents,
                        orphaning,
                    },
                );
                (Vec::new(), false, false)
            }
        };
        for owner in &owners {
            match old_owners.iter().find(|o| o.uid == owner.uid) {
                None => self.add_dependent(owner, uid, objects::namespace(obj), fx),
                // An owner waiting for blocking dependents may now be free.
                Some(old) if old.block_owner_deletion && !owner.block_owner_deletion => {
                    self.wake_if_waiting(&owner.uid, fx)
                }
                Some(_) => {}
            }
        }
        for old in &old_owners {
            if !owners.iter().any(|o| o.uid == old.uid) {
                if let Some(owner) = self.nodes.get_mut(&old.uid) {
                    owner.dependents.remove(uid);
                }
                self.wake_if_waiting(&old.uid, fx);
            }
        }
        if orphaning && !was_orphaning {
            fx.attempt_orphan.push(uid.to_string());
        } else if deleting_dependents && !was_deleting_dependents {
            fx.attempt_delete.extend(self.dependents(uid));
            fx.attempt_delete.push(uid.to_string());
        }
    }

    fn add_dependent(
        &mut self,
        owner: &OwnerRef,
        dependent: &str,
        namespace: &str,
        fx: &mut Effects,
    ) {
        if self.absent.contains(&owner.uid) {
            // The owner is known gone: the dependent may be garbage.
            fx.attempt_delete.push(dependent.to_string());
            return;
        }
        match self.nodes.get_mut(&owner.uid) {
            Some(node) => {
                node.dependents.insert(dependent.to_string());
            }
            None => {
                let mut node = Node {
                    identity: Identity {
                        api_version: owner.api_version.clone(),
                        kind: owner.kind.clone(),
                        namespace: namespace.to_string(),
                        name: owner.name.clone(),
                    },
                    source: None,
                    owners: Vec::new(),
                    dependents: HashSet::new(),
                    being_deleted: false,
                    deleting_dependents: false,
                    orphaning: false,
                };
                node.dependents.insert(dependent.to_string());
                self.nodes.insert(owner.uid.clone(), node);
                // Verify the owner exists; if not, its dependents are garbage.
                fx.attempt_delete.push(owner.uid.clone());
            }
        }
    }

    fn wake_if_waiting(&self, owner: &str, fx: &mut Effects) {
        if self.nodes.get(owner).is_some_and(|n| n.deleting_dependents) {
            fx.attempt_delete.push(owner.to_string());
        }
    }

    /// An object the watch reported deleted, or one a live read found gone
    /// (`verified` lookups of virtual owners): its dependents may be garbage
    /// and owners waiting for it may finish.
    pub fn remove(&mut self, uid: &str, fx: &mut Effects) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        for owner in &node.owners {
            if let Some(o) = self.nodes.get_mut(&owner.uid) {
                o.dependents.remove(uid);
            }
            self.wake_if_waiting(&owner.uid, fx);
        }
        if !node.dependents.is_empty() {
            self.mark_absent(uid);
        }
        fx.attempt_delete.extend(node.dependents);
    }

    /// A fresh list of collection `source`: every item upserted, and the
    /// objects it reported before that are no longer there removed.
    pub fn replace(
        &mut self,
        source: usize,
        api_version: &str,
        kind: &str,
        items: &[std::sync::Arc<Value>],
        fx: &mut Effects,
    ) {
        let seen: HashSet<&str> = items.iter().map(|o| objects::uid(o)).collect();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, n)| n.source == Some(source) && !seen.contains(uid.as_str()))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in gone {
            self.remove(&uid, fx);
        }
        for item in items {
            self.upsert(source, api_version, kind, item, fx);
        }
    }
}

#[cfg(test)]
mod tests;
